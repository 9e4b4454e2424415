/* A model freed while other threads run it: the calls under way finish with the same numbers as before the free
 * (the object lives until they return), calls that start after it fail with APX_ERROR_INVALID_HANDLE, and nothing
 * else happens (no crash, no other status; a sanitizer build checks the memory). The same for a result read by
 * several threads while it is freed. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "check.h"

#define THREADS 4

static apx_model* model;
static apx_result* shared_result;
static double want_ap;
static const char* text = "the bank by the river was steep and the sky is blue";

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started_cond = PTHREAD_COND_INITIALIZER;
static int started = 0;

typedef struct {
  int ok, invalid, other, wrong_value, results_ok;
} tally;
static tally tallies[THREADS];

static void announce_start(void) {
  pthread_mutex_lock(&lock);
  ++started;
  pthread_cond_broadcast(&started_cond);
  pthread_mutex_unlock(&lock);
}

static void* run_model(void* arg) {
  tally* t = &tallies[(intptr_t)arg];
  int announced = 0;
  for (int round = 0; round < 10000; ++round) {
    if (!announced) announce_start(), announced = 1;
    apx_result* r = NULL;
    const apx_status status = apx_model_run_text(model, text, SIZE_MAX, NULL, &r);
    if (status == APX_OK) {
      ++t->ok;
      double ap = 0; /* a result made before or during the free stays valid after it */
      if (apx_result_ap(r, -1, &ap) == APX_OK && ap == want_ap) ++t->results_ok; else ++t->wrong_value;
      apx_result_free(r);
    } else if (status == APX_ERROR_INVALID_HANDLE && r == NULL && strstr(apx_last_error(), "not a live handle")) {
      ++t->invalid;
      break; /* the model is gone: every later call fails the same way */
    } else {
      ++t->other;
      fprintf(stderr, "run: %s %s\n", apx_status_name(status), apx_last_error());
      break;
    }
  }
  return NULL;
}

static void* read_result(void* arg) {
  tally* t = &tallies[(intptr_t)arg];
  float attention[64 * 64 * 4];
  int announced = 0;
  for (int round = 0; round < 100000; ++round) {
    if (!announced) announce_start(), announced = 1;
    size_t needed = 0;
    const apx_status status = apx_result_attention(shared_result, -1, -1, 1.0, attention, 64 * 64 * 4, &needed);
    if (status == APX_OK) {
      ++t->ok;
    } else if (status == APX_ERROR_INVALID_HANDLE) {
      ++t->invalid;
      break;
    } else {
      ++t->other;
      fprintf(stderr, "read: %s %s\n", apx_status_name(status), apx_last_error());
      break;
    }
  }
  return NULL;
}

static void wait_for_starts(int count) {
  pthread_mutex_lock(&lock);
  while (started < count) pthread_cond_wait(&started_cond, &lock);
  pthread_mutex_unlock(&lock);
  const struct timespec pause = {0, 20 * 1000 * 1000}; /* 20 ms: calls under way */
  nanosleep(&pause, NULL);
}

static void free_while_used(void* (*worker)(void*), void (*free_it)(void)) {
  memset(tallies, 0, sizeof tallies);
  started = 0;
  pthread_t threads[THREADS];
  for (intptr_t t = 0; t < THREADS; ++t) CHECK(pthread_create(&threads[t], NULL, worker, (void*)t) == 0);
  wait_for_starts(THREADS);
  free_it();
  for (int t = 0; t < THREADS; ++t) pthread_join(threads[t], NULL);
  int ok = 0;
  for (int t = 0; t < THREADS; ++t) {
    CHECK(tallies[t].other == 0 && tallies[t].wrong_value == 0);
    CHECK(tallies[t].invalid == 1); /* each thread saw the free */
    ok += tallies[t].ok;
  }
  CHECK(ok > 0);
  printf("%d calls succeeded before or while the handle was freed; every thread then saw it freed\n", ok);
}

static void free_model(void) {
  apx_model_free(model);
}
static void free_result(void) {
  apx_result_free(shared_result);
}

int main(void) {
  CHECK_OK(apx_model_load(model_path("bert-text.apx"), NULL, &model));
  apx_result* r = NULL;
  CHECK_OK(apx_model_run_text(model, text, SIZE_MAX, NULL, &r));
  CHECK_OK(apx_result_ap(r, -1, &want_ap));
  shared_result = r;
  free_while_used(run_model, free_model);
  apx_model_free(model); /* again: ignored */
  CHECK_STATUS(apx_model_run_text(model, text, SIZE_MAX, NULL, &r), APX_ERROR_INVALID_HANDLE, "not a live handle");
  double ap = 0;
  CHECK_OK(apx_result_ap(shared_result, -1, &ap)); /* its model is gone, the result is not */
  CHECK(ap == want_ap);
  free_while_used(read_result, free_result);
  CHECK_STATUS(apx_result_ap(shared_result, -1, &ap), APX_ERROR_INVALID_HANDLE, "not a live handle");
  return check_report("free_while_running_test");
}
