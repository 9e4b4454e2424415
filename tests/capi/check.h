/* A small test harness for the C tests (C99): CHECK and CHECK_STATUS record failures and go on. */
#ifndef ATTNPROX_TESTS_CHECK_H
#define ATTNPROX_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnprox/attnprox.h"

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond)                                                           \
  do {                                                                        \
    ++check_count;                                                            \
    if (!(cond)) {                                                            \
      ++check_failures;                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                         \
  } while (0)

/* The call returns `expected`; when it is an error, the thread's message contains `fragment` (may be ""). */
#define CHECK_STATUS(call, expected, fragment)                                                                   \
  do {                                                                                                           \
    apx_status got_ = (call);                                                                                    \
    ++check_count;                                                                                               \
    if (got_ != (expected)) {                                                                                    \
      ++check_failures;                                                                                          \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, #call,                    \
              apx_status_name(got_), apx_status_name(expected), apx_last_error());                               \
    } else if ((expected) != APX_OK && strstr(apx_last_error(), (fragment)) == NULL) {                          \
      ++check_failures;                                                                                          \
      fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, apx_last_error(), (fragment)); \
    } else if ((expected) == APX_OK && apx_last_error()[0] != '\0') {                                            \
      ++check_failures;                                                                                          \
      fprintf(stderr, "%s:%d: success left a message: %s\n", __FILE__, __LINE__, apx_last_error());             \
    }                                                                                                            \
  } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, APX_OK, "")

static int check_report(const char* name) {
  if (check_failures) {
    fprintf(stderr, "%s: %d of %d checks failed\n", name, check_failures, check_count);
    return 1;
  }
  printf("%s: %d checks passed\n", name, check_count);
  return 0;
}

/* A model file written by tests/tools/make_test_models.py. */
static const char* model_path(const char* name) {
  static char path[4096];
  const char* dir = getenv("ATTNPROX_TEST_MODELS");
  if (!dir) {
    fprintf(stderr, "ATTNPROX_TEST_MODELS is not set; run through ctest\n");
    exit(2);
  }
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

#endif
