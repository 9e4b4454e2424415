/* The C ABI from C99: every call, its results checked against what the definitions give, and every error path
 * (null pointers, dead handles, wrong indices, small buffers, bad files). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

/* apx_tokenizer_encode_text with add_special_tokens set. */
static apx_status encode(const apx_tokenizer* tok, const char* text, size_t length, int32_t add_special_tokens,
                         apx_encoding** enc) {
  apx_encode_params params = apx_encode_default_params();
  params.add_special_tokens = add_special_tokens;
  return apx_tokenizer_encode_text(tok, text, length, &params, enc);
}

typedef struct {
  int lines, debug_lines, loaded_lines;
  void* user_data;
} log_record;

static void record_log(apx_log_level level, const char* message, void* user_data) {
  log_record* record = user_data;
  ++record->lines;
  record->user_data = user_data;
  if (level == APX_LOG_DEBUG) ++record->debug_lines;
  if (strncmp(message, "loaded ", 7) == 0 && strchr(message, '\n') == NULL) ++record->loaded_lines;
}

/* The host program takes the log: lines at the level set go to its callback, with its user_data; NULL gives them
 * back to stderr. */
static void logging(void) {
  log_record record = {0, 0, 0, NULL};
  apx_log_set(record_log, &record);
  CHECK_OK(apx_set_log_level("debug"));
  apx_model* model = NULL;
  CHECK_OK(apx_model_load(model_path("gpt2.apx"), NULL, &model));
  CHECK(record.loaded_lines == 1 && record.debug_lines >= 1 && record.user_data == &record);
  CHECK_OK(apx_set_log_level("warn")); /* debug lines no longer pass */
  const int before = record.lines;
  apx_model_free(model);
  CHECK_OK(apx_model_load(model_path("gpt2.apx"), NULL, &model));
  CHECK(record.lines == before);
  CHECK_OK(apx_set_log_level("debug"));
  apx_log_set(NULL, NULL); /* back to stderr: the callback hears nothing more */
  apx_model_free(model);
  CHECK_OK(apx_model_load(model_path("gpt2.apx"), NULL, &model));
  CHECK(record.lines == before);
  CHECK_OK(apx_set_log_level("warn"));
  apx_model_free(model);
}

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
/* The 0.1 functions that 0.2 deprecates keep working, with the results of their replacements. */
static void deprecated_functions(apx_tokenizer* tok) {
  apx_encoding *old = NULL, *now = NULL;
  CHECK_OK(apx_tokenizer_encode(tok, "the bank by the river", SIZE_MAX, 1, &old));
  CHECK_OK(apx_tokenizer_encode_text(tok, "the bank by the river", SIZE_MAX, NULL, &now));
  CHECK(old && now && old->count == 7 && now->count == 7 && memcmp(old->ids, now->ids, 7 * sizeof(int64_t)) == 0);
  apx_encoding_free(old);
  apx_encoding_free(now);
  apx_encode_params too_small = apx_encode_default_params();
  too_small.struct_size = sizeof(size_t);
  CHECK_STATUS(apx_tokenizer_encode_text(tok, "the bank", SIZE_MAX, &too_small, &now), APX_ERROR_INVALID_ARGUMENT,
               "params.struct_size");
  CHECK_OK(apx_tokenizer_encode(tok, "the bank", SIZE_MAX, 0, &old));
  CHECK(old && old->count == 2);
  apx_encoding_free(old);
  const double weights[] = {1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5};
  apx_attention_stats stats, summary;
  stats.struct_size = summary.struct_size = sizeof stats;
  double entropy[3], normalized[3], entropy_now[3], normalized_now[3];
  CHECK_OK(apx_metrics_attention_stats(weights, 3, 3, 1, 0, &stats, entropy, normalized, 3));
  CHECK_OK(apx_metrics_attention_summary(weights, 3, 3, 1, 0, &summary));
  CHECK_OK(apx_metrics_attention_entropy(weights, 3, 3, 1, 0, 0, entropy_now, 3, NULL));
  CHECK_OK(apx_metrics_attention_entropy(weights, 3, 3, 1, 0, 1, normalized_now, 3, NULL));
  CHECK(memcmp(&stats, &summary, sizeof stats) == 0);
  CHECK(memcmp(entropy, entropy_now, sizeof entropy) == 0 && memcmp(normalized, normalized_now, sizeof entropy) == 0);
  CHECK(fabs(entropy[1] - log(2.0)) < 1e-12 && normalized[0] == 0 && fabs(normalized[1] - 1) < 1e-12);
  CHECK_STATUS(apx_metrics_attention_stats(weights, 3, 3, 1, 0, &stats, entropy, normalized, 2),
               APX_ERROR_BUFFER_TOO_SMALL, "holds 2 elements");
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

static void library(void) {
  CHECK(apx_abi_version() == APX_ABI_VERSION);
  CHECK(strcmp(apx_status_name((apx_status)99), "APX_UNKNOWN_STATUS") == 0);
  CHECK(strlen(apx_version()) >= 5);
  /* the header's version macros are the library's */
  CHECK(strcmp(apx_version(), APX_VERSION_STRING) == 0);
  CHECK(apx_version_number() == APX_VERSION_NUMBER);
  CHECK(APX_VERSION_NUMBER == APX_VERSION_MAJOR * 10000 + APX_VERSION_MINOR * 100 + APX_VERSION_PATCH);
  {
    char joined[32];
    snprintf(joined, sizeof joined, "%d.%d.%d", APX_VERSION_MAJOR, APX_VERSION_MINOR, APX_VERSION_PATCH);
    CHECK(strcmp(joined, APX_VERSION_STRING) == 0);
  }
  CHECK(strcmp(apx_status_name(APX_ERROR_OUT_OF_RANGE), "APX_ERROR_OUT_OF_RANGE") == 0);
  CHECK_OK(apx_set_log_level("warn"));
  CHECK_STATUS(apx_set_log_level("chatty"), APX_ERROR_INVALID_ARGUMENT, "log level \"chatty\"");
  CHECK_STATUS(apx_set_log_level(NULL), APX_ERROR_NULL_POINTER, "level is NULL");
  CHECK(apx_last_error() != NULL);
  apx_string_free(NULL);
}

static void loading(void) {
  apx_model* model = NULL;
  CHECK_STATUS(apx_model_load(model_path("absent.apx"), NULL, &model), APX_ERROR_NOT_FOUND, "does not exist");
  CHECK(model == NULL);
  CHECK_STATUS(apx_model_load(model_path("not_an_archive.apx"), NULL, &model), APX_ERROR_INVALID_MODEL,
               "not a TorchScript archive");
  CHECK_STATUS(apx_model_load(model_path("no_manifest.apx"), NULL, &model), APX_ERROR_INVALID_MODEL,
               "without an attnprox manifest");
  CHECK_STATUS(apx_model_load(model_path("wrong_heads.apx"), NULL, &model), APX_ERROR_INVALID_MODEL,
               "returned queries of shape");
  CHECK_STATUS(apx_model_load(NULL, NULL, &model), APX_ERROR_NULL_POINTER, "path is NULL");
  CHECK_STATUS(apx_model_load(model_path("gpt2.apx"), NULL, NULL), APX_ERROR_NULL_POINTER, "model is NULL");
  apx_load_params params = apx_load_default_params();
  params.device = "cuda";
  const apx_status cuda_load = apx_model_load(model_path("gpt2.apx"), &params, &model);
  if (cuda_load == APX_OK) { /* a CUDA build on a GPU machine */
    char* device = NULL;
    CHECK_OK(apx_model_device(model, &device));
    CHECK(device != NULL && strcmp(device, "cuda:0") == 0);
    apx_string_free(device);
    apx_model_free(model);
    model = NULL;
  } else {
    CHECK_STATUS(cuda_load, APX_ERROR_UNSUPPORTED, "without CUDA");
  }
  params.device = "cpu";
  params.dtype = (apx_dtype)42;
  CHECK_STATUS(apx_model_load(model_path("gpt2.apx"), &params, &model), APX_ERROR_INVALID_ARGUMENT, "dtype");
  params = apx_load_default_params();
  params.struct_size = 4;
  CHECK_STATUS(apx_model_load(model_path("gpt2.apx"), &params, &model), APX_ERROR_INVALID_ARGUMENT, "struct_size");
  params = apx_load_default_params();
  params.dtype = APX_DTYPE_BFLOAT16;
  CHECK_OK(apx_model_load(model_path("llama.apx"), &params, &model));
  apx_model_info info;
  info.struct_size = sizeof info;
  CHECK_OK(apx_model_get_info(model, &info));
  CHECK(info.dtype == APX_DTYPE_BFLOAT16);
  apx_model_free(model);
}

/* Choosing the layers a run keeps: at load, per run, per text; struct_size of the first published params. */
static void layers(void) {
  const int64_t ids[] = {5, 6, 7, 8, 9};
  apx_model* full = NULL;
  apx_model* last = NULL;
  apx_result* all = NULL;
  apx_result* kept = NULL;
  CHECK_OK(apx_model_load(model_path("llama.apx"), NULL, &full));
  apx_load_params params = apx_load_default_params();
  const int32_t wanted[] = {-1};
  params.layers = wanted;
  params.layer_count = 1;
  CHECK_OK(apx_model_load(model_path("llama.apx"), &params, &last));
  if (!full || !last) return;
  int32_t numbers[3];
  size_t needed = 0;
  CHECK_OK(apx_model_layers(last, numbers, 3, &needed));
  CHECK(needed == 1 && numbers[0] == 2);
  CHECK_OK(apx_model_captured_layers(last, numbers, 3, &needed));
  CHECK(needed == 3);
  CHECK_OK(apx_model_run_ids(full, ids, 5, &all));
  CHECK_OK(apx_model_run_ids(last, ids, 5, &kept));
  CHECK_OK(apx_result_layers(kept, numbers, 3, &needed));
  CHECK(needed == 1 && numbers[0] == 2);
  float q_all[4 * 5 * 16], q_kept[4 * 5 * 16];
  CHECK_OK(apx_result_queries(all, 2, q_all, 320, NULL));
  CHECK_OK(apx_result_queries(kept, -1, q_kept, 320, NULL));
  CHECK(memcmp(q_all, q_kept, sizeof q_all) == 0);
  CHECK_STATUS(apx_result_queries(kept, 0, q_kept, 320, NULL), APX_ERROR_OUT_OF_RANGE, "not kept by this run");
  apx_result_free(kept);
  kept = NULL;
  /* per run, overriding the model's choice */
  apx_run_params run = apx_run_default_params();
  const int32_t first[] = {0};
  run.layers = first;
  run.layer_count = 1;
  CHECK_OK(apx_model_run_ids_with(last, ids, 5, &run, &kept));
  CHECK_OK(apx_result_layers(kept, numbers, 3, &needed));
  CHECK(needed == 1 && numbers[0] == 0);
  CHECK_OK(apx_result_queries(all, 0, q_all, 320, NULL));
  CHECK_OK(apx_result_queries(kept, 0, q_kept, 320, NULL));
  CHECK(memcmp(q_all, q_kept, sizeof q_all) == 0);
  apx_result_free(kept);
  const int64_t* batch[] = {ids, ids + 2};
  const size_t counts[] = {5, 3};
  apx_result* two[2] = {NULL, NULL};
  CHECK_OK(apx_model_run_batch_with(full, batch, counts, 2, &run, two));
  CHECK_OK(apx_result_layers(two[1], numbers, 3, &needed));
  CHECK(needed == 1 && numbers[0] == 0);
  apx_result_free(two[0]);
  apx_result_free(two[1]);
  const int32_t absent[] = {7};
  run.layers = absent;
  CHECK_STATUS(apx_model_run_ids_with(full, ids, 5, &run, &kept), APX_ERROR_OUT_OF_RANGE, "the model has 3 layers");
  run.layers = NULL;
  CHECK_STATUS(apx_model_run_ids_with(full, ids, 5, &run, &kept), APX_ERROR_NULL_POINTER, "params->layers is NULL");
  /* A caller compiled against the first apx_load_params (without layers) still loads, every layer kept. */
  apx_model* old = NULL;
  params = apx_load_default_params();
  params.struct_size = offsetof(apx_load_params, layers);
  params.layers = NULL;
  params.layer_count = 99; /* beyond the caller's struct: never read */
  CHECK_OK(apx_model_load(model_path("llama.apx"), &params, &old));
  CHECK_OK(apx_model_layers(old, numbers, 3, &needed));
  CHECK(needed == 3);
  apx_model_free(old);
  apx_result_free(all);
  apx_model_free(full);
  apx_model_free(last);
}

/* The structs as the first published header (attnprox 0.1) declared them: what a caller compiled then passes. */
typedef struct {
  size_t struct_size;
  const char* device;
  apx_dtype dtype;
  int32_t threads;
} load_params_v1;
typedef struct {
  size_t struct_size;
  int32_t add_special_tokens;
} text_params_v1;

/* Params structs grow: an older caller's smaller struct is read only as far as its struct_size (the bytes after it
 * are garbage here, or beyond the allocation), the rest defaulted; a newer caller's larger report struct is written
 * only as far as this library's fields (the bytes after them keep their canary). */
static void struct_growth(apx_model* model) {
  struct {
    text_params_v1 v1;
    unsigned char after[64];
  } garbage_after;
  memset(&garbage_after, 0xFF, sizeof garbage_after); /* max_length -1, truncation -1, layers 0xFF..: all refused */
  garbage_after.v1.struct_size = sizeof(text_params_v1);
  garbage_after.v1.add_special_tokens = 0;
  apx_result* r = NULL;
  size_t count = 0, needed = 0;
  int32_t kept[3];
  CHECK_OK(apx_model_run_text(model, "the bank by the river", SIZE_MAX, (const apx_text_params*)&garbage_after.v1, &r));
  CHECK_OK(apx_result_num_tokens(r, &count));
  CHECK(count == 5); /* no special tokens, as the v1 field asks; no truncation, every layer */
  CHECK_OK(apx_result_layers(r, kept, 3, &needed));
  CHECK(needed == 3);
  apx_result_free(r);
  text_params_v1* exact = malloc(sizeof(text_params_v1)); /* nothing after it to read (a sanitizer build checks) */
  exact->struct_size = sizeof *exact;
  exact->add_special_tokens = 1;
  CHECK_OK(apx_model_run_text(model, "the bank", SIZE_MAX, (const apx_text_params*)exact, &r));
  CHECK_OK(apx_result_num_tokens(r, &count));
  CHECK(count == 4);
  apx_result_free(r);
  exact->struct_size = offsetof(text_params_v1, add_special_tokens) + sizeof(int32_t) - 1; /* cuts its one field */
  CHECK_STATUS(apx_model_run_text(model, "the bank", SIZE_MAX, (const apx_text_params*)exact, &r),
               APX_ERROR_INVALID_ARGUMENT, "at least 12 expected");
  free(exact);

  load_params_v1* load_v1 = malloc(sizeof(load_params_v1));
  load_v1->struct_size = sizeof *load_v1;
  load_v1->device = "cpu";
  load_v1->dtype = APX_DTYPE_DEFAULT;
  load_v1->threads = 0;
  apx_model* old = NULL;
  CHECK_OK(apx_model_load(model_path("llama.apx"), (const apx_load_params*)load_v1, &old));
  CHECK_OK(apx_model_layers(old, kept, 3, &needed));
  CHECK(needed == 3);
  apx_model_free(old);
  free(load_v1);

  /* a run params struct of exactly its first published size */
  apx_run_params* run = malloc(sizeof(apx_run_params));
  *run = apx_run_default_params();
  const int64_t ids[] = {10, 12, 13};
  CHECK_OK(apx_model_run_ids_with(model, ids, 3, run, &r));
  apx_result_free(r);
  run->struct_size = offsetof(apx_run_params, layer_count);
  CHECK_STATUS(apx_model_run_ids_with(model, ids, 3, run, &r), APX_ERROR_INVALID_ARGUMENT, "params.struct_size");
  free(run);

  /* A caller of a later header: larger report structs; this library fills its fields and leaves the rest. */
  struct {
    apx_model_info info;
    unsigned char later[32];
  } newer_info;
  memset(&newer_info, 0xAB, sizeof newer_info);
  newer_info.info.struct_size = sizeof newer_info;
  CHECK_OK(apx_model_get_info(model, &newer_info.info));
  CHECK(newer_info.info.struct_size == sizeof newer_info);
  CHECK(newer_info.info.num_layers == 3 && newer_info.info.has_tokenizer == 1 && newer_info.later[0] == 0xAB &&
        newer_info.later[31] == 0xAB);
  struct {
    apx_ape_report report;
    unsigned char later[16];
  } newer_report;
  memset(&newer_report, 0xAB, sizeof newer_report);
  newer_report.report.struct_size = sizeof newer_report;
  CHECK_OK(apx_model_run_ids(model, ids, 3, &r));
  CHECK_OK(apx_result_ape(r, -1, APX_APE_SHIFT, &newer_report.report, NULL, 0, NULL));
  CHECK(newer_report.report.policy == APX_APE_SHIFT && newer_report.later[0] == 0xAB && newer_report.later[15] == 0xAB);
  struct {
    apx_attention_stats stats;
    unsigned char later[16];
  } newer_stats;
  memset(&newer_stats, 0xAB, sizeof newer_stats);
  newer_stats.stats.struct_size = sizeof newer_stats;
  CHECK_OK(apx_result_attention_stats(r, -1, -1, 1.0, &newer_stats.stats));
  CHECK(newer_stats.stats.max_weight > 0 && newer_stats.stats.max_weight <= 1 && newer_stats.later[0] == 0xAB);
  apx_result_free(r);
  /* an output struct exactly as large as its first published layout, on the heap: nothing written past it */
  apx_attention_stats* stats = malloc(sizeof(apx_attention_stats));
  stats->struct_size = sizeof *stats;
  const double weights[] = {1, 0, 0.5, 0.5};
  CHECK_OK(apx_metrics_attention_summary(weights, 2, 2, 1, 0, stats));
  CHECK(stats->most_attended == 0 && stats->max_weight == 0.5);
  free(stats);
}

static void model_facts(apx_model* model) {
  apx_model_info info;
  info.struct_size = sizeof info;
  CHECK_OK(apx_model_get_info(model, &info));
  CHECK(info.num_layers == 3 && info.num_captured_layers == 3);
  CHECK(info.num_heads == 4 && info.num_kv_heads == 4 && info.head_dim == 8);
  CHECK(info.causal == 0 && info.max_positions == 32 && info.vocab_size == 96);
  CHECK(info.dtype == APX_DTYPE_FLOAT32 && info.has_tokenizer == 1);
  info.struct_size = 8;
  CHECK_STATUS(apx_model_get_info(model, &info), APX_ERROR_INVALID_ARGUMENT, "struct_size");
  CHECK_STATUS(apx_model_get_info(model, NULL), APX_ERROR_NULL_POINTER, "info is NULL");
  size_t needed = 0;
  CHECK_OK(apx_model_captured_layers(model, NULL, 0, &needed));
  CHECK(needed == 3);
  int32_t layers[3] = {-1, -1, -1};
  CHECK_STATUS(apx_model_captured_layers(model, layers, 2, &needed), APX_ERROR_BUFFER_TOO_SMALL,
               "the buffer holds 2 elements, 3 are needed");
  CHECK(layers[0] == -1);
  CHECK_OK(apx_model_captured_layers(model, layers, 3, &needed));
  CHECK(layers[0] == 0 && layers[2] == 2);
  char* json = NULL;
  CHECK_OK(apx_model_manifest_json(model, &json));
  CHECK(json && strstr(json, "\"family\": \"bert\"") != NULL);
  apx_string_free(json);
  char* device = NULL;
  CHECK_OK(apx_model_device(model, &device));
  CHECK(device && strcmp(device, "cpu") == 0);
  apx_string_free(device);
}

static void tokenizers(apx_model* bert_text, apx_model* gpt2) {
  apx_tokenizer* tok = NULL;
  CHECK_OK(apx_model_tokenizer(bert_text, &tok));
  apx_encoding* enc = NULL;
  CHECK_OK(encode(tok, "The bank by the river", SIZE_MAX, 1, &enc));
  /* [CLS] the bank by the river [SEP], the test tokenizer's ids */
  const int64_t want[] = {4, 10, 12, 13, 10, 14, 5};
  CHECK(enc && enc->count == 7);
  for (size_t i = 0; enc && i < 7; ++i) CHECK(enc->ids[i] == want[i]);
  CHECK(enc && strcmp(enc->tokens[2], "bank") == 0 && enc->offsets[4] == 4 && enc->offsets[5] == 8);
  CHECK(enc && enc->special[0] == 1 && enc->special[1] == 0 && enc->char_offsets[5] == 8);
  apx_encoding_free(enc);
  CHECK_STATUS(encode(tok, "caf\xC3", SIZE_MAX, 0, &enc), APX_ERROR_INVALID_ARGUMENT,
               "not valid UTF-8");
  CHECK_OK(encode(tok, "bank\0river", 10, 0, &enc)); /* an explicit length: NUL is a character */
  CHECK(enc && enc->count == 3 && enc->ids[0] == 12 && enc->ids[1] == 3 && enc->ids[2] == 14); /* NUL: [UNK] */
  apx_encoding_free(enc);
  char* text = NULL;
  CHECK_OK(apx_tokenizer_decode(tok, want, 7, 1, &text));
  CHECK(text && strcmp(text, "the bank by the river") == 0);
  apx_string_free(text);
  const int64_t bad[] = {9999};
  CHECK_STATUS(apx_tokenizer_decode(tok, bad, 1, 0, &text), APX_ERROR_INVALID_ARGUMENT, "token id 9999");
  size_t size = 0;
  CHECK_OK(apx_tokenizer_vocab_size(tok, &size));
  CHECK(size == 29);
  int64_t id = 0;
  CHECK_OK(apx_tokenizer_token_to_id(tok, "river", &id));
  CHECK(id == 14);
  CHECK_OK(apx_tokenizer_token_to_id(tok, "zebra", &id));
  CHECK(id == -1);
  apx_tokenizer_free(tok);
  apx_tokenizer_free(tok); /* freed twice: ignored */
  CHECK_STATUS(apx_tokenizer_vocab_size(tok, &size), APX_ERROR_INVALID_HANDLE, "not a live handle");
  CHECK_STATUS(apx_model_tokenizer(gpt2, &tok), APX_ERROR_UNSUPPORTED, "has no tokenizer");

  const char* json =
      "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"<unk>\": 0, \"hello\": 1, \"world\": 2}, "
      "\"unk_token\": \"<unk>\"}, \"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}}";
  CHECK_OK(apx_tokenizer_from_json(json, SIZE_MAX, &tok));
  CHECK_OK(encode(tok, "hello big world", SIZE_MAX, 0, &enc));
  CHECK(enc && enc->count == 3 && enc->ids[0] == 1 && enc->ids[1] == 0 && enc->ids[2] == 2);
  apx_encoding_free(enc);
  apx_tokenizer_free(tok);
  CHECK_STATUS(apx_tokenizer_from_json("{", SIZE_MAX, &tok), APX_ERROR_INVALID_ARGUMENT, "not valid JSON");
  CHECK_STATUS(apx_tokenizer_from_file("/nonexistent/tokenizer.json", &tok), APX_ERROR_NOT_FOUND, "does not exist");

  /* Vocabulary files written here: GPT-2 style (vocab.json + merges) and BERT style (vocab.txt). */
  FILE* f = fopen("capi_test_vocab.json", "w");
  fputs("{\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"\\u0120a\": 4}", f);
  fclose(f);
  f = fopen("capi_test_merges.txt", "w");
  fputs("#version: 0.2\na b\n\xC4\xA0 a\n", f);
  fclose(f);
  CHECK_OK(apx_tokenizer_byte_level_bpe("capi_test_vocab.json", "capi_test_merges.txt", &tok));
  CHECK_OK(encode(tok, "ab a", SIZE_MAX, 0, &enc));
  CHECK(enc && enc->count == 2 && enc->ids[0] == 2 && enc->ids[1] == 4);
  apx_encoding_free(enc);
  apx_tokenizer_free(tok);
  f = fopen("capi_test_vocab.txt", "w");
  fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\n", f);
  fclose(f);
  CHECK_OK(apx_tokenizer_wordpiece("capi_test_vocab.txt", 1, &tok));
  CHECK_OK(encode(tok, "Hello worlds", SIZE_MAX, 1, &enc));
  CHECK(enc && enc->count == 5 && enc->ids[0] == 2 && enc->ids[1] == 4 && enc->ids[3] == 6 && enc->ids[4] == 3);
  apx_encoding_free(enc);
  apx_tokenizer_free(tok);
  CHECK_STATUS(apx_tokenizer_wordpiece(NULL, 1, &tok), APX_ERROR_NULL_POINTER, "vocab_txt is NULL");
  remove("capi_test_vocab.json");
  remove("capi_test_merges.txt");
  remove("capi_test_vocab.txt");
}

/* A_raw = mean_h Q_h K_hᵀ / sqrt(d), A = (A_raw + A_rawᵀ)/2, by the definition, from the result's own Q/K. */
static double proximity_entry(const float* q, const float* k, int heads, int kv_heads, size_t n, int d, size_t i,
                              size_t j) {
  double sum = 0;
  for (int h = 0; h < heads; ++h) {
    int g = h / (heads / kv_heads);
    double ij = 0, ji = 0;
    for (int e = 0; e < d; ++e) {
      ij += (double)q[((size_t)h * n + i) * d + e] * k[((size_t)g * n + j) * d + e];
      ji += (double)q[((size_t)h * n + j) * d + e] * k[((size_t)g * n + i) * d + e];
    }
    sum += (ij + ji) / 2;
  }
  return sum / heads / sqrt((double)d);
}

static void running(apx_model* model) {
  const int64_t ids[] = {10, 12, 13, 10, 14, 15, 16, 33};
  const size_t n = 8;
  apx_result* r = NULL;
  CHECK_OK(apx_model_run_ids(model, ids, n, &r));
  size_t count = 0, needed = 0;
  CHECK_OK(apx_result_num_tokens(r, &count));
  CHECK(count == n);
  int64_t got_ids[8];
  CHECK_OK(apx_result_ids(r, got_ids, 8, &needed));
  CHECK(needed == 8 && got_ids[7] == 33);

  /* queries [4, 8, 8], keys [4, 8, 8] */
  float q[4 * 8 * 8], k[4 * 8 * 8];
  CHECK_OK(apx_result_queries(r, -1, NULL, 0, &needed));
  CHECK(needed == 4 * 8 * 8);
  CHECK_OK(apx_result_queries(r, -1, q, sizeof q / sizeof q[0], &needed));
  CHECK_OK(apx_result_keys(r, 2, k, sizeof k / sizeof k[0], NULL));
  CHECK_STATUS(apx_result_keys(r, 7, k, 256, NULL), APX_ERROR_OUT_OF_RANGE, "the model has 3 layers");
  CHECK_STATUS(apx_result_queries(r, -1, q, 10, NULL), APX_ERROR_BUFFER_TOO_SMALL, "10 elements");

  /* attention: rows are distributions */
  float p[4 * 8 * 8], p0[8 * 8];
  CHECK_OK(apx_result_attention(r, -1, -1, 1.0, p, 256, &needed));
  CHECK(needed == 256);
  CHECK_OK(apx_result_attention(r, -1, 2, 1.0, p0, 64, &needed));
  CHECK(needed == 64);
  double row = 0;
  for (size_t j = 0; j < n; ++j) row += p0[3 * n + j];
  CHECK(fabs(row - 1.0) < 1e-5);
  CHECK(fabs(p0[3 * n + 5] - p[(2 * n + 3) * n + 5]) < 1e-7);
  CHECK_STATUS(apx_result_attention(r, -1, 4, 1.0, p0, 64, NULL), APX_ERROR_OUT_OF_RANGE, "head 4");
  CHECK_STATUS(apx_result_attention(r, -1, 0, 0.0, p0, 64, NULL), APX_ERROR_INVALID_ARGUMENT, "temperature");
  float avg[64];
  const int32_t layers[] = {0, 2}, heads[] = {1, 3};
  CHECK_OK(apx_result_average_attention(r, layers, 2, heads, 2, 1.0, avg, 64, &needed));
  CHECK_OK(apx_result_average_attention(r, NULL, 0, NULL, 0, 1.0, avg, 64, &needed));
  CHECK_STATUS(apx_result_average_attention(r, NULL, 2, NULL, 0, 1.0, avg, 64, &needed), APX_ERROR_NULL_POINTER,
               "layers is NULL");

  /* proximity and AP against the definition */
  float a[64];
  CHECK_OK(apx_result_proximity(r, -1, a, 64, &needed));
  CHECK(fabs(a[1 * n + 6] - proximity_entry(q, k, 4, 4, n, 8, 1, 6)) < 1e-4);
  double ap_tokens[8], ap = 0, want_ap = 0;
  CHECK_OK(apx_result_ap_tokens(r, -1, ap_tokens, 8, &needed));
  for (size_t i = 0; i < n; ++i) {
    double off = 0;
    for (size_t j = 0; j < n; ++j)
      if (j != i) off += proximity_entry(q, k, 4, 4, n, 8, i, j);
    CHECK(fabs(ap_tokens[i] - off / (n - 1)) < 1e-6);
    want_ap += off / (n - 1) / n;
  }
  CHECK_OK(apx_result_ap(r, -1, &ap));
  CHECK(fabs(ap - want_ap) < 1e-6);
  const int64_t subset[] = {1, 4, 4};
  double sp[8];
  CHECK_OK(apx_result_subset_proximity(r, -1, subset, 3, sp, 8, &needed));
  CHECK(fabs(sp[6] - (proximity_entry(q, k, 4, 4, n, 8, 1, 6) + proximity_entry(q, k, 4, 4, n, 8, 4, 6)) / 2) < 1e-6);
  const int64_t outside[] = {8};
  CHECK_STATUS(apx_result_subset_proximity(r, -1, outside, 1, sp, 8, NULL), APX_ERROR_OUT_OF_RANGE, "token 8");
  float avg_prox[64];
  CHECK_OK(apx_result_average_proximity(r, layers + 1, 1, NULL, 0, 1, avg_prox, 64, &needed));
  CHECK(fabs(avg_prox[13] - a[13]) < 1e-5);

  /* APE, every policy; the same from the Eigen reference on the same Q/K */
  apx_ape_report report, reference;
  report.struct_size = reference.struct_size = sizeof report;
  double tokens[8], reference_tokens[8];
  apx_queries_keys qk = {q, k, APX_DTYPE_FLOAT32, 4, 4, 8, 8};
  for (int policy = APX_APE_DEFAULT; policy <= APX_APE_SOFTMAX; ++policy) {
    CHECK_OK(apx_result_ape(r, -1, (apx_ape_policy)policy, &report, tokens, 8, &needed));
    CHECK_OK(apx_metrics_ape(&qk, (apx_ape_policy)policy, &reference, reference_tokens, 8, NULL));
    CHECK(report.undefined_rows == reference.undefined_rows);
    CHECK(report.has_value == reference.has_value);
    if (report.has_value) CHECK(fabs(report.value - reference.value) < 1e-4);
    for (size_t i = 0; i < n; ++i) CHECK(isnan(tokens[i]) == isnan(reference_tokens[i]));
  }
  CHECK_OK(apx_result_ape(r, -1, APX_APE_DEFAULT, &report, NULL, 0, NULL));
  CHECK(report.policy == APX_APE_SHIFT);
  CHECK_STATUS(apx_result_ape(r, -1, (apx_ape_policy)9, &report, NULL, 0, NULL), APX_ERROR_INVALID_ARGUMENT,
               "unknown APE policy");
  report.struct_size = 3;
  CHECK_STATUS(apx_result_ape(r, -1, APX_APE_SHIFT, &report, NULL, 0, NULL), APX_ERROR_INVALID_ARGUMENT,
               "struct_size");

  /* statistics */
  double entropy[4 * 8];
  CHECK_OK(apx_result_attention_entropy(r, -1, 0, 1.0, entropy, 32, &needed));
  CHECK(needed == 32);
  double h = 0;
  for (size_t j = 0; j < n; ++j) h -= p0[3 * n + j] > 0 ? p0[3 * n + j] * log(p0[3 * n + j]) : 0;
  CHECK(fabs(entropy[2 * n + 3] - h) < 1e-5);
  apx_attention_stats stats;
  stats.struct_size = sizeof stats;
  CHECK_OK(apx_result_attention_stats(r, -1, 2, 1.0, &stats));
  CHECK(stats.max_query >= 0 && stats.max_query < 8 && fabs(stats.max_weight - p0[stats.max_query * n + stats.max_key]) < 1e-6);
  CHECK_OK(apx_result_attention_stats(r, -1, -1, 1.0, &stats));
  {
    double maxima[8];
    int64_t argmax[8];
    CHECK_OK(apx_result_attention_maxima(r, -1, 2, 1.0, maxima, argmax, 8, &needed));
    CHECK(needed == 8);
    for (size_t i = 0; i < 8; ++i) {
      double best = -1;
      for (size_t j = 0; j < n; ++j) best = p0[i * n + j] > best ? p0[i * n + j] : best;
      CHECK(fabs(maxima[i] - best) < 1e-6 && fabs(p0[i * n + (size_t)argmax[i]] - best) < 1e-6);
    }
    CHECK_STATUS(apx_result_attention_maxima(r, -1, 2, 1.0, maxima, argmax, 7, NULL), APX_ERROR_BUFFER_TOO_SMALL,
                 "holds 7");
  }
  int64_t arc_keys[3];
  double arc_weights[3];
  CHECK_OK(apx_result_top_arcs(r, -1, 2, 3, 3, 1.0, arc_keys, arc_weights, 3, &needed));
  CHECK(needed == 3 && arc_weights[0] >= arc_weights[1] && arc_weights[1] >= arc_weights[2]);
  CHECK(fabs(arc_weights[0] - p0[3 * n + arc_keys[0]]) < 1e-6);
  CHECK_STATUS(apx_result_top_arcs(r, -1, 2, 8, 3, 1.0, arc_keys, arc_weights, 3, NULL), APX_ERROR_OUT_OF_RANGE,
               "query token 8");
  apx_head_link links[12];
  CHECK_OK(apx_result_linking_heads(r, 1, 6, 1.0, NULL, 0, &needed));
  CHECK(needed == 12);
  CHECK_OK(apx_result_linking_heads(r, 1, 6, 1.0, links, 12, &needed));
  CHECK(links[0].score >= links[11].score);

  apx_encoding* enc = NULL;
  CHECK_OK(apx_result_encoding(r, &enc));
  CHECK(enc && enc->count == 8 && strcmp(enc->tokens[1], "bank") == 0 && enc->offsets[0] == 0);
  apx_encoding_free(enc);
  CHECK_STATUS(apx_model_get_info((const apx_model*)r, NULL), APX_ERROR_INVALID_HANDLE, "model is not a live handle");
  apx_model_free((apx_model*)r); /* a result passed as a model: ignored, the result stays */
  CHECK_OK(apx_result_ap(r, -1, &ap));
  apx_result_free(r);
  CHECK_STATUS(apx_result_ap(r, -1, &ap), APX_ERROR_INVALID_HANDLE, "not a live handle");
  apx_result_free(r);
  {
    /* Handles are never given out twice: a freed handle stays dead while new results come and go (with addresses
     * as handles, the allocator would hand the freed address to one of them). */
    apx_result* fresh = NULL;
    int reused = 0;
    for (int i = 0; i < 50; ++i) {
      CHECK_OK(apx_model_run_ids(model, ids, 2, &fresh));
      reused += fresh == r;
      apx_result_free(fresh);
      CHECK_STATUS(apx_result_ap(r, -1, &ap), APX_ERROR_INVALID_HANDLE, "not a live handle");
    }
    CHECK(reused == 0);
  }

  /* text, batches and bad input */
  CHECK_OK(apx_model_run_text(model, "the bank by the river", SIZE_MAX, NULL, &r));
  CHECK_OK(apx_result_num_tokens(r, &count));
  CHECK(count == 7);
  CHECK_OK(apx_result_encoding(r, &enc));
  CHECK(enc && enc->ids[0] == 4 && enc->offsets[2 * 2] == 4);
  apx_encoding_free(enc);
  apx_result_free(r);
  apx_text_params tp = apx_text_default_params();
  tp.add_special_tokens = 0;
  CHECK_OK(apx_model_run_text(model, "the bank", SIZE_MAX, &tp, &r));
  CHECK_OK(apx_result_num_tokens(r, &count));
  CHECK(count == 2);
  CHECK_STATUS(apx_result_ap(r, -1, NULL), APX_ERROR_NULL_POINTER, "ap is NULL");
  apx_result_free(r);
  const int32_t middle[] = {1};
  tp.layers = middle;
  tp.layer_count = 1;
  CHECK_OK(apx_model_run_text(model, "the bank", SIZE_MAX, &tp, &r));
  int32_t kept[3];
  CHECK_OK(apx_result_layers(r, kept, 3, &needed));
  CHECK(needed == 1 && kept[0] == 1);
  apx_result_free(r);
  tp = apx_text_default_params();
  tp.struct_size = offsetof(apx_text_params, layers); /* a size before the layers: every layer */
  CHECK_OK(apx_model_run_text(model, "the bank", SIZE_MAX, &tp, &r));
  CHECK_OK(apx_result_layers(r, kept, 3, &needed));
  CHECK(needed == 3);
  apx_result_free(r);

  /* truncation: [CLS] + the text's first tokens + [SEP], max_length in all */
  tp = apx_text_default_params();
  CHECK(tp.truncation == 0 && tp.max_length == 0);
  CHECK_STATUS(apx_model_run_text(model, "the bank by the river", SIZE_MAX, NULL, &r), APX_OK, "");
  apx_result_free(r);
  tp.truncation = 1;
  tp.max_length = 4;
  CHECK_OK(apx_model_run_text(model, "the bank by the river", SIZE_MAX, &tp, &r));
  CHECK_OK(apx_result_encoding(r, &enc));
  CHECK(enc && enc->count == 4 && enc->ids[0] == 4 && enc->ids[1] == 10 && enc->ids[2] == 12 && enc->ids[3] == 5);
  apx_encoding_free(enc);
  apx_result_free(r);
  tp.max_length = -1;
  CHECK_STATUS(apx_model_run_text(model, "the bank", SIZE_MAX, &tp, &r), APX_ERROR_INVALID_ARGUMENT,
               "max_length must be 0");
  {
    /* A caller compiled against the first header passes the first, smaller struct: its fields only are read. */
    apx_text_params old_caller = apx_text_default_params();
    old_caller.truncation = 1;  /* beyond the old size: never read */
    old_caller.max_length = 2;
    old_caller.struct_size = offsetof(apx_text_params, add_special_tokens) + sizeof(int32_t);
    CHECK_OK(apx_model_run_text(model, "the bank by the river", SIZE_MAX, &old_caller, &r));
    CHECK_OK(apx_result_num_tokens(r, &count));
    CHECK(count == 7);
    apx_result_free(r);
    old_caller.struct_size = 4;
    CHECK_STATUS(apx_model_run_text(model, "the bank", SIZE_MAX, &old_caller, &r), APX_ERROR_INVALID_ARGUMENT,
                 "struct_size is 4");
  }
  /* a text pair: [CLS] the bank [SEP] the river [SEP], the pair's offsets in the pair */
  CHECK_OK(apx_model_run_text_pair(model, "the bank", SIZE_MAX, "the river", SIZE_MAX, NULL, &r));
  CHECK_OK(apx_result_encoding(r, &enc));
  CHECK(enc && enc->count == 7 && enc->ids[3] == 5 && enc->ids[5] == 14 && enc->ids[6] == 5 &&
        enc->offsets[2 * 5] == 4 && enc->offsets[2 * 5 + 1] == 9);
  apx_encoding_free(enc);
  apx_result_free(r);
  CHECK_STATUS(apx_model_run_text_pair(model, "the bank", SIZE_MAX, NULL, SIZE_MAX, NULL, &r), APX_ERROR_NULL_POINTER,
               "pair is NULL");

  /* truncation and layers together, in a text and in a text pair */
  tp = apx_text_default_params();
  CHECK(tp.layers == NULL && tp.layer_count == 0);
  tp.truncation = 1;
  tp.max_length = 4;
  tp.layers = middle;
  tp.layer_count = 1;
  CHECK_OK(apx_model_run_text(model, "the bank by the river", SIZE_MAX, &tp, &r));
  CHECK_OK(apx_result_num_tokens(r, &count));
  CHECK(count == 4);
  CHECK_OK(apx_result_layers(r, kept, 3, &needed));
  CHECK(needed == 1 && kept[0] == 1);
  apx_result_free(r);
  tp.max_length = 6;
  CHECK_OK(apx_model_run_text_pair(model, "the bank by", SIZE_MAX, "the river", SIZE_MAX, &tp, &r));
  CHECK_OK(apx_result_num_tokens(r, &count));
  CHECK(count == 6);
  CHECK_OK(apx_result_layers(r, kept, 3, &needed));
  CHECK(needed == 1 && kept[0] == 1);
  apx_result_free(r);
  {
    /* A caller compiled against the header with truncation but before layers: truncation read, layers not. */
    apx_text_params before_layers = tp;
    before_layers.max_length = 4;
    before_layers.struct_size = offsetof(apx_text_params, layers);
    CHECK_OK(apx_model_run_text(model, "the bank by the river", SIZE_MAX, &before_layers, &r));
    CHECK_OK(apx_result_num_tokens(r, &count));
    CHECK(count == 4);
    CHECK_OK(apx_result_layers(r, kept, 3, &needed));
    CHECK(needed == 3);
    apx_result_free(r);
  }
  {
    const int32_t wrong[] = {7};
    tp.layers = wrong;
    CHECK_STATUS(apx_model_run_text_pair(model, "the bank", SIZE_MAX, "the river", SIZE_MAX, &tp, &r),
                 APX_ERROR_OUT_OF_RANGE, "layer 7");
    CHECK(r == NULL);
  }
  const int64_t first[] = {10, 12, 13}, second[] = {14, 15};
  const int64_t* batch[] = {first, second};
  const size_t counts[] = {3, 2};
  apx_result* results[2] = {NULL, NULL};
  CHECK_OK(apx_model_run_batch(model, batch, counts, 2, results));
  CHECK_OK(apx_result_num_tokens(results[1], &count));
  CHECK(count == 2);
  apx_result_free(results[0]);
  apx_result_free(results[1]);
  {
    /* A batch that fails leaves no result behind: every output NULL (not the caller's old values). */
    const int64_t bad[] = {14, 96};
    const int64_t* failing[] = {first, bad};
    const size_t failing_counts[] = {3, 2};
    results[0] = results[1] = (apx_result*)first; /* sentinels */
    CHECK_STATUS(apx_model_run_batch(model, failing, failing_counts, 2, results), APX_ERROR_INVALID_ARGUMENT,
                 "outside the vocabulary");
    CHECK(results[0] == NULL && results[1] == NULL);
  }
  const int64_t too_big[] = {96};
  CHECK_STATUS(apx_model_run_ids(model, too_big, 1, &r), APX_ERROR_INVALID_ARGUMENT, "outside the vocabulary");
  CHECK(r == NULL);
  CHECK_STATUS(apx_model_run_ids(model, NULL, 0, &r), APX_ERROR_INVALID_ARGUMENT, "empty");
  CHECK_STATUS(apx_model_run_ids(model, NULL, 3, &r), APX_ERROR_NULL_POINTER, "ids is NULL");
  CHECK_STATUS(apx_model_run_text(model, NULL, SIZE_MAX, NULL, &r), APX_ERROR_NULL_POINTER, "text is NULL");
  CHECK_STATUS(apx_model_run_ids(NULL, ids, n, &r), APX_ERROR_NULL_POINTER, "model is NULL");
  CHECK_STATUS(apx_model_run_ids((const apx_model*)ids, ids, n, &r), APX_ERROR_INVALID_HANDLE, "not a live handle");
}

static void metrics_without_a_model(void) {
  /* One head, three tokens, d = 1: q = (1, 2, 3), k = (1, 0, -1) → A_raw[i][j] = q_i k_j. */
  const double q[] = {1, 2, 3}, k[] = {1, 0, -1};
  apx_queries_keys qk = {q, k, APX_DTYPE_FLOAT64, 1, 1, 3, 1};
  double a[9], ap_tokens[3], ap = 0;
  size_t needed = 0;
  CHECK_OK(apx_metrics_proximity(&qk, a, 9, &needed));
  /* A = (q kᵀ + k qᵀ)/2: A[0][1] = (1·0 + 1·2)/2 = 1, A[0][2] = (1·(−1) + 1·3)/2 = 1, A[1][2] = (2·(−1) + 0·3)/2 = −1 */
  CHECK(fabs(a[1] - 1) < 1e-12 && fabs(a[2] - 1) < 1e-12 && fabs(a[5] + 1) < 1e-12);
  CHECK_OK(apx_metrics_ap_tokens(&qk, ap_tokens, 3, &needed));
  CHECK(fabs(ap_tokens[0] - 1) < 1e-12 && fabs(ap_tokens[1] - 0) < 1e-12 && fabs(ap_tokens[2] - 0) < 1e-12);
  CHECK_OK(apx_metrics_ap(&qk, &ap));
  CHECK(fabs(ap - 1.0 / 3) < 1e-12);
  CHECK_OK(apx_metrics_ap_tokens_of(a, 3, ap_tokens, 3, &needed));
  CHECK(fabs(ap_tokens[0] - 1) < 1e-12);
  const int64_t s[] = {0};
  double sp[3];
  CHECK_OK(apx_metrics_subset_proximity(&qk, s, 1, sp, 3, &needed));
  CHECK(fabs(sp[1] - 1) < 1e-12 && fabs(sp[0] - 1) < 1e-12);
  apx_ape_report report;
  report.struct_size = sizeof report;
  double tokens[3];
  CHECK_OK(apx_metrics_ape(&qk, APX_APE_LITERAL, &report, tokens, 3, &needed));
  CHECK(report.undefined_rows == 2 && report.has_value && fabs(report.value - log(2.0)) < 1e-12);
  CHECK(isnan(tokens[1]) && isnan(tokens[2]));
  CHECK_OK(apx_metrics_ape_of(a, 3, APX_APE_LITERAL, &report, tokens, 3, &needed));
  CHECK(report.undefined_rows == 2);
  const float qf[] = {1, 2, 3}, kf[] = {1, 0, -1};
  apx_queries_keys qk32 = {qf, kf, APX_DTYPE_FLOAT32, 1, 1, 3, 1};
  CHECK_OK(apx_metrics_ap(&qk32, &ap));
  CHECK(fabs(ap - 1.0 / 3) < 1e-7);
  qk32.dtype = APX_DTYPE_DEFAULT;
  CHECK_STATUS(apx_metrics_ap(&qk32, &ap), APX_ERROR_INVALID_ARGUMENT, "qk->dtype");
  apx_queries_keys one = {q, k, APX_DTYPE_FLOAT64, 1, 1, 1, 1};
  CHECK_STATUS(apx_metrics_ap(&one, &ap), APX_ERROR_INVALID_ARGUMENT, "at least 2 tokens");
  apx_queries_keys grouped = {q, k, APX_DTYPE_FLOAT64, 3, 2, 1, 1};
  CHECK_STATUS(apx_metrics_ap(&grouped, &ap), APX_ERROR_INVALID_ARGUMENT, "multiple of key heads");
  CHECK_STATUS(apx_metrics_ap(NULL, &ap), APX_ERROR_NULL_POINTER, "qk is NULL");
  const double weights[] = {1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5};
  apx_attention_stats stats;
  stats.struct_size = sizeof stats;
  double entropy[3], normalized[3];
  CHECK_OK(apx_metrics_attention_summary(weights, 3, 3, 1, 0, &stats));
  CHECK_OK(apx_metrics_attention_entropy(weights, 3, 3, 1, 0, 0, NULL, 0, &needed)); /* the size alone */
  CHECK(needed == 3);
  CHECK_OK(apx_metrics_attention_entropy(weights, 3, 3, 1, 0, 0, entropy, 3, &needed));
  CHECK_OK(apx_metrics_attention_entropy(weights, 3, 3, 1, 0, 1, normalized, 3, &needed));
  /* rows: (1), (0.5, 0.5), (0.2, 0.3, 0.5): entropies 0, log 2, −Σ p log p; normalized by log(visible keys) */
  const double h2 = -(0.2 * log(0.2) + 0.3 * log(0.3) + 0.5 * log(0.5));
  CHECK(entropy[0] == 0 && fabs(entropy[1] - log(2.0)) < 1e-12 && fabs(entropy[2] - h2) < 1e-12);
  CHECK(normalized[0] == 0 && fabs(normalized[1] - 1) < 1e-12 && fabs(normalized[2] - h2 / log(3.0)) < 1e-12);
  CHECK_STATUS(apx_metrics_attention_entropy(weights, 3, 3, 1, 0, 0, entropy, 2, &needed), APX_ERROR_BUFFER_TOO_SMALL,
               "holds 2 elements, 3 are needed");
  CHECK(stats.most_attended == 0 && stats.max_weight == 0.5 && stats.max_query == 1 && stats.max_key == 0);
  double maxima[3];
  int64_t argmax[3];
  CHECK_OK(apx_metrics_attention_maxima(weights, 3, 3, 1, 0, maxima, argmax, 3, &needed));
  CHECK(needed == 3 && maxima[0] == 1 && maxima[1] == 0.5 && maxima[2] == 0.5 && argmax[0] == 0 && argmax[1] == 0 &&
        argmax[2] == 2);
  CHECK_STATUS(apx_metrics_attention_maxima(weights, 3, 3, 1, 0, maxima, NULL, 3, &needed), APX_ERROR_NULL_POINTER,
               "argmax_keys is NULL");
}

/* The proximity family before RoPE (the default) and after it (params' rope), and the queries before RoPE. */
static void rope(void) {
  const int64_t ids[] = {5, 6, 7, 8, 9, 10};
  const size_t n = 6;
  apx_model* model = NULL;
  apx_model* after_model = NULL;
  CHECK_OK(apx_model_load(model_path("llama.apx"), NULL, &model));
  apx_load_params load = apx_load_default_params();
  CHECK(load.rope == 0);
  load.rope = 1;
  CHECK_OK(apx_model_load(model_path("llama.apx"), &load, &after_model));
  load.rope = 2;
  apx_model* bad = NULL;
  CHECK_STATUS(apx_model_load(model_path("llama.apx"), &load, &bad), APX_ERROR_INVALID_ARGUMENT, "params->rope");
  if (!model || !after_model) return;
  apx_run_params run = apx_run_default_params();
  CHECK(run.rope == -1);
  apx_result* before = NULL;
  apx_result* after = NULL;
  apx_result* after_by_load = NULL;
  apx_result* before_by_run = NULL;
  CHECK_OK(apx_model_run_ids(model, ids, n, &before));
  run.rope = 1;
  CHECK_OK(apx_model_run_ids_with(model, ids, n, &run, &after));
  CHECK_OK(apx_model_run_ids(after_model, ids, n, &after_by_load));
  run.rope = 0;
  CHECK_OK(apx_model_run_ids_with(after_model, ids, n, &run, &before_by_run));
  run.rope = 5;
  apx_result* none = NULL;
  CHECK_STATUS(apx_model_run_ids_with(model, ids, n, &run, &none), APX_ERROR_INVALID_ARGUMENT, "params->rope");
  double ap_before = 0, ap_after = 0, ap_after_by_load = 0, ap_before_by_run = 0;
  CHECK_OK(apx_result_ap(before, -1, &ap_before));
  CHECK_OK(apx_result_ap(after, -1, &ap_after));
  CHECK_OK(apx_result_ap(after_by_load, -1, &ap_after_by_load));
  CHECK_OK(apx_result_ap(before_by_run, -1, &ap_before_by_run));
  CHECK(fabs(ap_before - ap_after) > 1e-6);
  CHECK(ap_after == ap_after_by_load && ap_before == ap_before_by_run);
  /* AP after RoPE from the queries and keys the attention used; before RoPE from those before it. */
  size_t needed = 0;
  CHECK_OK(apx_result_queries(before, -1, NULL, 0, &needed));
  float* q = malloc(needed * sizeof(float));
  float* q0 = malloc(needed * sizeof(float));
  CHECK_OK(apx_result_queries(before, -1, q, needed, NULL));
  CHECK_OK(apx_result_queries_before_rope(before, -1, q0, needed, NULL));
  size_t key_count = 0;
  CHECK_OK(apx_result_keys_before_rope(before, -1, NULL, 0, &key_count));
  float* k0 = malloc(key_count * sizeof(float));
  CHECK_OK(apx_result_keys_before_rope(before, -1, k0, key_count, NULL));
  apx_model_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  CHECK_OK(apx_model_get_info(model, &info));
  const int d = info.head_dim, heads = info.num_heads, kv = info.num_kv_heads;
  /* position 0 is not turned, position 3 is */
  double first = 0, later = 0;
  for (int x = 0; x < d; ++x) {
    first = fmax(first, fabs(q[x] - q0[x]));
    later = fmax(later, fabs(q[3 * d + x] - q0[3 * d + x]));
  }
  CHECK(first < 1e-6 && later > 1e-4);
  double want = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i != j) want += proximity_entry(q0, k0, heads, kv, n, d, i, j);
    }
  }
  want /= (double)(n * (n - 1));
  CHECK(fabs(ap_before - want) < 1e-5);
  free(q);
  free(q0);
  free(k0);
  apx_result_free(before);
  apx_result_free(after);
  apx_result_free(after_by_load);
  apx_result_free(before_by_run);
  apx_model_free(model);
  apx_model_free(after_model);
}

int main(void) {
  library();
  logging();
  loading();
  layers();
  rope();
  apx_model* bert_text = NULL;
  apx_model* gpt2 = NULL;
  CHECK_OK(apx_model_load(model_path("bert-text.apx"), NULL, &bert_text));
  CHECK_OK(apx_model_load(model_path("gpt2.apx"), NULL, &gpt2));
  if (bert_text && gpt2) {
    model_facts(bert_text);
    struct_growth(bert_text);
    tokenizers(bert_text, gpt2);
    {
      apx_tokenizer* tok = NULL;
      CHECK_OK(apx_model_tokenizer(bert_text, &tok));
      deprecated_functions(tok);
      apx_tokenizer_free(tok);
    }
    running(bert_text);
  }
  metrics_without_a_model();
  apx_model_free(bert_text);
  apx_model_free(gpt2);
  apx_model_free(gpt2); /* freed twice: ignored */
  apx_model_free(NULL);
  return check_report("capi_test");
}
