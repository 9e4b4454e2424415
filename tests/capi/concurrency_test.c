/* One model used from 8 threads at once gives exactly the results of running the same texts one after another. */
#include <math.h>
#include <pthread.h>

#include "check.h"

#define THREADS 8
#define ROUNDS 5

static apx_model* model;
static const char* texts[THREADS] = {"the bank by the river was steep", "the sky is blue", "write a story about ai",
                                     "emily wanted to visit paris", "she took french lessons", "a story about the sky",
                                     "the river was blue", "paris , the bank ."};

typedef struct {
  double ap;
  float attention[4 * 32 * 32];
  size_t size;
  int ok;
} outcome;

static outcome sequential[THREADS], parallel[THREADS];

static void measure(int t, outcome* out) {
  apx_result* r = NULL;
  out->ok = apx_model_run_text(model, texts[t], SIZE_MAX, NULL, &r) == APX_OK &&
            apx_result_ap(r, -1, &out->ap) == APX_OK &&
            apx_result_attention(r, -1, -1, 1.0, out->attention, 4 * 32 * 32, &out->size) == APX_OK;
  if (!out->ok) fprintf(stderr, "thread %d: %s\n", t, apx_last_error());
  apx_result_free(r);
}

static void* worker(void* arg) {
  int t = (int)(intptr_t)arg;
  for (int round = 0; round < ROUNDS; ++round) measure(t, &parallel[t]);
  return NULL;
}

int main(void) {
  CHECK_OK(apx_model_load(model_path("bert-text.apx"), NULL, &model));
  for (int t = 0; t < THREADS; ++t) measure(t, &sequential[t]);
  pthread_t threads[THREADS];
  for (int t = 0; t < THREADS; ++t) CHECK(pthread_create(&threads[t], NULL, worker, (void*)(intptr_t)t) == 0);
  for (int t = 0; t < THREADS; ++t) pthread_join(threads[t], NULL);
  for (int t = 0; t < THREADS; ++t) {
    CHECK(sequential[t].ok && parallel[t].ok);
    CHECK(sequential[t].ap == parallel[t].ap);
    CHECK(sequential[t].size == parallel[t].size);
    CHECK(memcmp(sequential[t].attention, parallel[t].attention, sequential[t].size * sizeof(float)) == 0);
  }
  apx_model_free(model);
  return check_report("concurrency_test");
}
