/* The C ABI against hostile input (docs/limits.md): deep JSON, corrupt model files, a regular expression that
 * backtracks without end, enum arguments outside their range; each a status and a message, never a crash. */
#include <stddef.h>
#include <stdint.h>

#include "check.h"

static char* nested(size_t depth, const char* prefix, const char* suffix) {
  const size_t a = strlen(prefix), b = strlen(suffix);
  char* text = malloc(a + 2 * depth + b + 1);
  if (!text) exit(2);
  memcpy(text, prefix, a);
  memset(text + a, '[', depth);
  memset(text + a + depth, ']', depth);
  memcpy(text + a + 2 * depth, suffix, b + 1);
  return text;
}

static void model_files(void) {
  apx_model* model = NULL;
  CHECK_STATUS(apx_model_load(model_path("deep_manifest.apx"), NULL, &model), APX_ERROR_INVALID_MODEL,
               "nested more than 100 levels");
  CHECK(model == NULL);
  CHECK_STATUS(apx_model_load(model_path("corrupt.apx"), NULL, &model), APX_ERROR_INVALID_MODEL, "is corrupt");
  CHECK(model == NULL);
  CHECK_STATUS(apx_model_load("/dev/null", NULL, &model), APX_ERROR_INVALID_ARGUMENT, "not a regular file");
}

static void tokenizer_files(void) {
  apx_tokenizer* tokenizer = NULL;
  char* deep = nested(100000, "{\"model\": ", "}");
  CHECK_STATUS(apx_tokenizer_from_json(deep, (size_t)-1, &tokenizer), APX_ERROR_INVALID_ARGUMENT,
               "more than 100 levels deep");
  free(deep);
  CHECK_STATUS(apx_tokenizer_from_file("/dev/null", &tokenizer), APX_ERROR_INVALID_ARGUMENT, "not a regular file");

  /* A pattern that backtracks exponentially: Oniguruma's retry limit is an error, not "no more matches". */
  const char* json =
      "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"<unk>\": 0, \"a\": 1}, \"unk_token\": \"<unk>\"},"
      " \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a|a?)+$\"}, \"behavior\": \"Isolated\","
      " \"invert\": false}}";
  CHECK_OK(apx_tokenizer_from_json(json, (size_t)-1, &tokenizer));
  apx_encoding* encoding = NULL;
  apx_encode_params params = apx_encode_default_params();
  params.add_special_tokens = 0;
  CHECK_OK(apx_tokenizer_encode_text(tokenizer, "aaaa", (size_t)-1, &params, &encoding));
  CHECK(encoding && encoding->count == 1);
  apx_encoding_free(encoding);
  encoding = NULL;
  CHECK_STATUS(apx_tokenizer_encode_text(tokenizer, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", (size_t)-1, &params,
                                         &encoding),
               APX_ERROR_INVALID_ARGUMENT, "retry-limit-in-match over");
  CHECK(encoding == NULL);
  apx_tokenizer_free(tokenizer);
}

static void enum_arguments(void) {
  /* Values outside an enum's range are read as integers and refused (never loaded as the C++ enum type). */
  const double a[4] = {0.5, 0.5, 0.5, 0.5};
  apx_ape_report report;
  report.struct_size = sizeof report;
  int policy = 77;
  apx_ape_policy bad_policy;
  memcpy(&bad_policy, &policy, sizeof bad_policy);
  CHECK_STATUS(apx_metrics_ape_of(a, 2, bad_policy, &report, NULL, 0, NULL), APX_ERROR_INVALID_ARGUMENT,
               "unknown APE policy 77");
  apx_load_params params = apx_load_default_params();
  int dtype = -5;
  memcpy(&params.dtype, &dtype, sizeof dtype);
  apx_model* model = NULL;
  CHECK_STATUS(apx_model_load(model_path("gpt2.apx"), &params, &model), APX_ERROR_INVALID_ARGUMENT, "dtype");
  apx_queries_keys qk;
  memset(&qk, 0, sizeof qk);
  const float values[8] = {0};
  qk.queries = values;
  qk.keys = values;
  qk.heads = qk.kv_heads = 1;
  qk.tokens = 2;
  qk.head_dim = 4;
  int qk_dtype = 1000;
  memcpy(&qk.dtype, &qk_dtype, sizeof qk_dtype);
  double ap = 0;
  CHECK_STATUS(apx_metrics_ap(&qk, &ap), APX_ERROR_INVALID_ARGUMENT, "qk->dtype");
}

int main(void) {
  model_files();
  tokenizer_files();
  enum_arguments();
  return check_report("capi_hardening_test");
}
