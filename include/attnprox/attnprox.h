/*
 * attnprox — the stable C ABI (C99).
 *
 * What a transformer's attention sees: load an attnprox model file, run a text or token ids through it, and read
 * the queries and keys of its attention layers, the attention weights rebuilt from them, and Attention Proximity
 * measurements; tokenize and decode with Hugging Face tokenizer.json files; measure queries and keys from anywhere.
 *
 * Conventions
 *  - Every function whose name starts with apx_ and that can fail returns an apx_status; APX_OK is 0. On failure
 *    apx_last_error() gives a message for the calling thread saying what was expected and what was found. Each
 *    call clears the thread's message first. No C++ exception ever crosses this interface.
 *  - New status codes may be added in later versions: treat every status other than APX_OK as an error, and one
 *    you do not know like APX_ERROR_INTERNAL (apx_status_name gives "APX_UNKNOWN_STATUS" for it).
 *  - Objects are opaque handles (apx_model, apx_result, apx_tokenizer) created by the library and released with
 *    their *_free function. A handle is a number, not an address: never dereference it. What is allowed:
 *      - Handles may be used from several threads at once (the library's objects are not changed by calls).
 *      - A handle may be freed while other threads' calls use it: those calls finish normally (the object lives
 *        until the last of them returns); calls that start after the free fail with APX_ERROR_INVALID_HANDLE.
 *      - A freed handle, a handle freed twice, a handle of another kind (a result passed as a model) or a pointer
 *        the library did not make is detected: calls fail with APX_ERROR_INVALID_HANDLE, *_free ignores it. The
 *        library never gives out the same handle twice (on 32-bit platforms: not within 2^28 handles of a kind),
 *        so this holds however memory is reused.
 *      - Freeing NULL does nothing. A result stays valid after its model is freed; a tokenizer from
 *        apx_model_tokenizer after its model is freed.
 *    Using a handle in one thread while another thread frees it is safe, but which of the two comes first is up
 *    to the threads: a caller that wants its call to succeed keeps the handle until the call has returned.
 *  - Arrays the library returns come in one of two ways, each stated beside the function:
 *      caller-allocated: the caller passes `out` and its `capacity` (in elements); `*needed` (if not NULL)
 *        receives the number of elements the answer has. `out == NULL` asks for the size only (APX_OK). A
 *        capacity that is too small gives APX_ERROR_BUFFER_TOO_SMALL and writes nothing.
 *      library-allocated: the library returns a pointer the caller releases with the named free function.
 *  - Strings are UTF-8, NUL-terminated unless a length is passed with them.
 *  - Parameter and report structs start with `struct_size` and come from *_default_params() (or are set by the
 *    caller to sizeof), so they can grow without breaking callers compiled against an older header: the library
 *    accepts every size from the struct's first published one up, reads and writes only the bytes that size
 *    covers (at most its own sizeof: a larger struct of a later header keeps its later fields untouched), and uses
 *    the defaults for the fields it does not cover. Fields are only ever added at the end. A struct_size below the
 *    first published size is APX_ERROR_INVALID_ARGUMENT. Set struct_size to sizeof of the struct your header
 *    declares (the *_default_params() functions do); a size that ends inside a field passes that field's first
 *    bytes only.
 *  - Functions and fields to be removed in a later ABI version are marked APX_DEPRECATED("what to use instead"),
 *    which compilers report where they are used; they keep working until then.
 *  - `layer` is the model's own layer number (0-based); negative numbers count back from the last captured layer
 *    (-1 is the last). `head` -1 means every head (or their mean, where one matrix is returned).
 *  - Matrices are row-major: attention and proximity rows are queries / tokens i, columns keys / tokens j.
 */
#ifndef ATTNPROX_ATTNPROX_H
#define ATTNPROX_ATTNPROX_H

#include <stddef.h>
#include <stdint.h>

#include "attnprox/version.h" /* APX_VERSION_MAJOR, _MINOR, _PATCH, _NUMBER, _STRING: generated with the build */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(APX_BUILDING)
#define APX_API __declspec(dllexport)
#elif defined(_WIN32)
#define APX_API __declspec(dllimport)
#elif defined(__GNUC__)
#define APX_API __attribute__((visibility("default")))
#else
#define APX_API
#endif

/* The version of this interface. It changes only when the ABI does (then old callers must be rebuilt); it is the
 * SONAME of the library (libattnprox_c.so.1). */
#define APX_ABI_VERSION 1

/* Marks a declaration that a later ABI version removes; `msg` says what to use instead. Define
 * APX_NO_DEPRECATION_WARNINGS to silence it. */
#if defined(APX_NO_DEPRECATION_WARNINGS) || defined(APX_BUILDING)
#define APX_DEPRECATED(msg)
#elif defined(__cplusplus) && __cplusplus >= 201402L
#define APX_DEPRECATED(msg) [[deprecated(msg)]]
#elif defined(__GNUC__) || defined(__clang__)
#define APX_DEPRECATED(msg) __attribute__((deprecated(msg)))
#elif defined(_MSC_VER)
#define APX_DEPRECATED(msg) __declspec(deprecated(msg))
#else
#define APX_DEPRECATED(msg)
#endif

typedef enum apx_status {
  APX_OK = 0,
  APX_ERROR_INVALID_ARGUMENT = 1, /* a value passed in is not acceptable (empty text, an id outside the vocabulary) */
  APX_ERROR_OUT_OF_RANGE = 2,     /* a layer, head or token index outside what exists */
  APX_ERROR_NOT_FOUND = 3,        /* a file that does not exist */
  APX_ERROR_INVALID_MODEL = 4,    /* a file that breaks the model-file contract */
  APX_ERROR_UNSUPPORTED = 5,      /* a valid request this build cannot serve (CUDA on a CPU-only build, ...) */
  APX_ERROR_RUNTIME = 6,          /* a failure while computing (libtorch error, non-finite values) */
  APX_ERROR_NULL_POINTER = 7,     /* a required pointer argument is NULL */
  APX_ERROR_BUFFER_TOO_SMALL = 8, /* a caller-allocated buffer holds fewer elements than needed */
  APX_ERROR_INVALID_HANDLE = 9,   /* a handle that is not live (freed, or not made by this library) */
  APX_ERROR_OUT_OF_MEMORY = 10,
  APX_ERROR_INTERNAL = 11         /* anything else (a bug: please report it with the message) */
} apx_status;

typedef enum apx_dtype { APX_DTYPE_DEFAULT = 0, APX_DTYPE_FLOAT32 = 1, APX_DTYPE_FLOAT16 = 2, APX_DTYPE_BFLOAT16 = 3,
                         APX_DTYPE_FLOAT64 = 4 } apx_dtype;

/* How APE forms a distribution from a row of the proximity matrix whose entries may be negative. */
typedef enum apx_ape_policy {
  APX_APE_DEFAULT = 0, /* the library's default: shift */
  APX_APE_LITERAL = 1, /* p_ij = A_ij / Σ A_ik as written; rows with a negative entry are undefined */
  APX_APE_SHIFT = 2,   /* p_ij ∝ A_ij − min_k A_ik */
  APX_APE_CLAMP = 3,   /* p_ij ∝ max(A_ij, 0) */
  APX_APE_SOFTMAX = 4  /* p_ij = softmax over the row */
} apx_ape_policy;

typedef struct apx_model apx_model;
typedef struct apx_result apx_result;
typedef struct apx_tokenizer apx_tokenizer;

/* ---- library ---------------------------------------------------------------------------------------------- */

/* The message of the calling thread's last failure, "" when its last call succeeded. Owned by the library; valid
 * until the thread's next apx_ call. Never NULL. */
APX_API const char* apx_last_error(void);
/* "MAJOR.MINOR.PATCH" of the library (APX_VERSION_STRING of the header it was built with). Static. */
APX_API const char* apx_version(void);
/* MAJOR·10000 + MINOR·100 + PATCH of the library (APX_VERSION_NUMBER of the header it was built with): a program
 * built against a newer header than the library it runs with finds out here. Since 0.2. */
APX_API int apx_version_number(void);
/* APX_ABI_VERSION of the library (compare with the header's to detect a mismatch). */
APX_API int apx_abi_version(void);
/* The name of a status ("APX_ERROR_OUT_OF_RANGE"). Static. */
APX_API const char* apx_status_name(apx_status status);
/* Sets the level of the library's log on stderr: "trace", "debug", "info", "warn" (default), "error", "off". */
APX_API apx_status apx_set_log_level(const char* level);
typedef enum apx_log_level { APX_LOG_TRACE = 0, APX_LOG_DEBUG = 1, APX_LOG_INFO = 2, APX_LOG_WARN = 3,
                             APX_LOG_ERROR = 4 } apx_log_level;
/* Receives one log line: its level, its text (UTF-8, one line without a newline; borrowed for the call) and the
 * user_data given to apx_log_set. */
typedef void (*apx_log_callback)(apx_log_level level, const char* message, void* user_data);
/* Sends the library's log lines to `callback` (with `user_data`) instead of stderr, as llama_log_set does; NULL
 * sends them to stderr again. The level (apx_set_log_level) still decides which lines are written. The callback
 * may be called from any thread that calls the library, one line at a time (never two at once), and must not call
 * apx_log_set itself. Since 0.2. */
APX_API void apx_log_set(apx_log_callback callback, void* user_data);
/* Releases a string the library returned. NULL is ignored. */
APX_API void apx_string_free(char* text);

/* ---- models ----------------------------------------------------------------------------------------------- */

typedef struct apx_load_params {
  size_t struct_size; /* sizeof(apx_load_params) */
  const char* device; /* "cpu", "cuda", "cuda:N"; NULL = "cpu" */
  apx_dtype dtype;    /* APX_DTYPE_DEFAULT = the file's dtype; FLOAT32, FLOAT16 or BFLOAT16 */
  int32_t threads;    /* libtorch intra-op threads for the whole process; 0 leaves libtorch's default */
  /* Added in 0.2 (read only when struct_size covers them). The captured layers whose queries and keys runs keep
   * unless a run says otherwise: layers[0 .. layer_count), the model's own numbers or negative from the last
   * captured layer (borrowed for the call); layer_count 0 = every captured layer. The forward stops after the last
   * of them where the file can. */
  const int32_t* layers;
  size_t layer_count;
  /* Added in 0.2: the queries and keys the proximity family (proximity, AP, AP_i, AP^(S), APE, averaged proximity)
   * of this model's results measures: 0 (default) before the rotary position embedding (RoPE), as the original
   * Attention Proximity code; 1 after it, as the attention used them. Runs may choose otherwise (their `rope`). */
  int32_t rope;
} apx_load_params;
APX_API apx_load_params apx_load_default_params(void);

/* Loads a model file (written by attnprox export / export_reference) and checks it with a two-token probe.
 * params may be NULL (defaults). On success *model is a new handle: release it with apx_model_free. */
APX_API apx_status apx_model_load(const char* path, const apx_load_params* params, apx_model** model);
APX_API void apx_model_free(apx_model* model);

typedef struct apx_model_info {
  size_t struct_size; /* set by the caller: sizeof(apx_model_info) */
  int32_t num_layers; /* layers of the whole model */
  int32_t num_captured_layers;
  int32_t num_heads;    /* H, query heads */
  int32_t num_kv_heads; /* Hkv; query head h reads key head h / (H / Hkv) */
  int32_t head_dim;     /* d */
  int32_t causal;       /* 1 causal, 0 bidirectional */
  int64_t max_positions;
  int64_t vocab_size;
  apx_dtype dtype; /* the dtype the model runs in */
  int32_t has_tokenizer;
} apx_model_info;
/* Fills *info (whose struct_size the caller sets). */
APX_API apx_status apx_model_get_info(const apx_model* model, apx_model_info* info);
/* The captured layers' numbers, ascending. Caller-allocated. */
APX_API apx_status apx_model_captured_layers(const apx_model* model, int32_t* out, size_t capacity, size_t* needed);
/* The layers a run keeps unless it says otherwise (apx_load_params.layers), ascending. Caller-allocated. Since
 * 0.2. */
APX_API apx_status apx_model_layers(const apx_model* model, int32_t* out, size_t capacity, size_t* needed);
/* The manifest as JSON. Library-allocated: release *json with apx_string_free. */
APX_API apx_status apx_model_manifest_json(const apx_model* model, char** json);
/* The device the model runs on ("cpu", "cuda:0"). Library-allocated: apx_string_free. */
APX_API apx_status apx_model_device(const apx_model* model, char** device);
/* The model file's tokenizer as a new handle (release with apx_tokenizer_free); APX_ERROR_UNSUPPORTED when the
 * file has none. */
APX_API apx_status apx_model_tokenizer(const apx_model* model, apx_tokenizer** tokenizer);

/* ---- running ------------------------------------------------------------------------------------------------ */

/* Runs one sequence of token ids. *result is a new handle: release it with apx_result_free. */
APX_API apx_status apx_model_run_ids(const apx_model* model, const int64_t* ids, size_t count, apx_result** result);
/* Runs `batch` sequences as one padded batch: sequence b is ids[b][0 .. counts[b]). results must hold `batch`
 * handles; on success each is new (release each with apx_result_free); on failure none is made and every
 * results[b] is NULL. */
APX_API apx_status apx_model_run_batch(const apx_model* model, const int64_t* const* ids, const size_t* counts,
                                       size_t batch, apx_result** results);

typedef struct apx_run_params {
  size_t struct_size; /* sizeof(apx_run_params) */
  /* The captured layers the results keep, as apx_load_params.layers; layer_count 0 = the model's choice. */
  const int32_t* layers;
  size_t layer_count;
  /* Added in 0.2: the proximity family of the results measures queries and keys before RoPE (0) or after it (1);
   * -1 (default) = the model's choice (apx_load_params.rope). */
  int32_t rope;
} apx_run_params;
APX_API apx_run_params apx_run_default_params(void);
/* apx_model_run_ids and apx_model_run_batch with params (NULL = defaults). Since 0.2. */
APX_API apx_status apx_model_run_ids_with(const apx_model* model, const int64_t* ids, size_t count,
                                          const apx_run_params* params, apx_result** result);
APX_API apx_status apx_model_run_batch_with(const apx_model* model, const int64_t* const* ids, const size_t* counts,
                                            size_t batch, const apx_run_params* params, apx_result** results);

typedef struct apx_text_params {
  size_t struct_size;         /* sizeof(apx_text_params) */
  int32_t add_special_tokens; /* 1 (default): the tokenizer's special tokens and the BOS the model expects */
  /* Added in 0.2 (read only when struct_size covers them): */
  int64_t max_length; /* with truncation: the most tokens to keep; 0 (default) = the model's max positions */
  int32_t truncation; /* 1: cut the tokenized text to max_length tokens, special tokens included (the text's last
                         tokens dropped); 0 (default): a text longer than the model's positions is an error */
  /* The captured layers the result keeps, as apx_run_params (layer_count 0 = the model's choice). */
  const int32_t* layers;
  size_t layer_count;
  /* Added in 0.2: as apx_run_params.rope (-1, the default: the model's choice). */
  int32_t rope;
} apx_text_params;
APX_API apx_text_params apx_text_default_params(void);
/* Tokenizes `text` (length bytes of UTF-8; length SIZE_MAX = NUL-terminated) with the model file's tokenizer and
 * runs it. params may be NULL. APX_ERROR_UNSUPPORTED when the file has no tokenizer. */
APX_API apx_status apx_model_run_text(const apx_model* model, const char* text, size_t length,
                                      const apx_text_params* params, apx_result** result);
/* A text pair (sentence-pair tasks, as Hugging Face runs one): `text` and `pair` (lengths as above) encoded with
 * the tokenizer's pair template (BERT: [CLS] text [SEP] pair [SEP]) and their token type ids (0, then 1) given to
 * models whose file takes them; with params->truncation the longer text is cut first. The result's offsets index
 * each token's own text. APX_ERROR_UNSUPPORTED for a file written before text pairs or a tokenizer without a pair
 * template. Since 0.2. */
APX_API apx_status apx_model_run_text_pair(const apx_model* model, const char* text, size_t length, const char* pair,
                                           size_t pair_length, const apx_text_params* params, apx_result** result);
APX_API void apx_result_free(apx_result* result);

/* ---- what a result holds ------------------------------------------------------------------------------------ */

APX_API apx_status apx_result_num_tokens(const apx_result* result, size_t* count);
/* The layers the result holds (those its run kept), ascending; `layer` arguments name one of them. Caller-allocated.
 * Since 0.2. */
APX_API apx_status apx_result_layers(const apx_result* result, int32_t* out, size_t capacity, size_t* needed);
/* Token ids [N]. Caller-allocated. */
APX_API apx_status apx_result_ids(const apx_result* result, int64_t* out, size_t capacity, size_t* needed);
/* Queries [H, N, d] / keys [Hkv, N, d] of a layer as float32 (the model's values, widened), as the attention used
 * them (after RoPE). Caller-allocated. */
APX_API apx_status apx_result_queries(const apx_result* result, int32_t layer, float* out, size_t capacity,
                                      size_t* needed);
APX_API apx_status apx_result_keys(const apx_result* result, int32_t layer, float* out, size_t capacity,
                                   size_t* needed);
/* The same before the rotary position embedding (RoPE), recovered by undoing the rotation the model file records
 * (docs/model-file.md, "rope"); on models without RoPE the same values. APX_ERROR_UNSUPPORTED for a file that does
 * not record it (written before attnprox 0.2: export it again). Caller-allocated. Since 0.2. */
APX_API apx_status apx_result_queries_before_rope(const apx_result* result, int32_t layer, float* out,
                                                  size_t capacity, size_t* needed);
APX_API apx_status apx_result_keys_before_rope(const apx_result* result, int32_t layer, float* out, size_t capacity,
                                               size_t* needed);
/* Attention weights rebuilt from Q and K: [H, N, N] for head -1, [N, N] for one head (float32; temperature 1 =
 * the model's own). Caller-allocated. */
APX_API apx_status apx_result_attention(const apx_result* result, int32_t layer, int32_t head, double temperature,
                                        float* out, size_t capacity, size_t* needed);
/* Mean attention weights [N, N] over layers × heads (count 0 = all of them). Caller-allocated. */
APX_API apx_status apx_result_average_attention(const apx_result* result, const int32_t* layers, size_t layer_count,
                                                const int32_t* heads, size_t head_count, double temperature,
                                                float* out, size_t capacity, size_t* needed);

/* ---- Attention Proximity ------------------------------------------------------------------------------------ */
/* Every function here measures the queries and keys before RoPE, or after it where the run's params (or the model's
 * load params) set rope to 1; before RoPE on a file that does not record its rotation is APX_ERROR_UNSUPPORTED. */

/* The proximity matrix A [N, N] of a layer (float32). Caller-allocated. */
APX_API apx_status apx_result_proximity(const apx_result* result, int32_t layer, float* out, size_t capacity,
                                        size_t* needed);
/* Mean of A_h over layers × heads [N, N] (count 0 = all), symmetrised when `symmetric` is 1. Caller-allocated. */
APX_API apx_status apx_result_average_proximity(const apx_result* result, const int32_t* layers, size_t layer_count,
                                                const int32_t* heads, size_t head_count, int32_t symmetric,
                                                float* out, size_t capacity, size_t* needed);
/* AP of the text at a layer (needs N ≥ 2). */
APX_API apx_status apx_result_ap(const apx_result* result, int32_t layer, double* ap);
/* AP_i [N]. Caller-allocated. */
APX_API apx_status apx_result_ap_tokens(const apx_result* result, int32_t layer, double* out, size_t capacity,
                                        size_t* needed);
/* AP^(S) [N] for the set S = subset[0 .. count) (duplicates count once). Caller-allocated. */
APX_API apx_status apx_result_subset_proximity(const apx_result* result, int32_t layer, const int64_t* subset,
                                               size_t count, double* out, size_t capacity, size_t* needed);

typedef struct apx_ape_report {
  size_t struct_size;     /* set by the caller: sizeof(apx_ape_report) */
  int32_t has_value;      /* 0 when no row is defined */
  double value;           /* APE: mean iAPE over the defined rows */
  double normalized;      /* length-corrected: mean of iAPE_i / log(N−1) */
  int64_t undefined_rows; /* rows the policy could not turn into a distribution */
  apx_ape_policy policy;  /* the policy used */
} apx_ape_report;
/* APE of a layer (needs N ≥ 2), streamed over tiles of rows. `tokens` (may be NULL) receives iAPE_i [N], NaN exactly
 * where a row is undefined (caller-allocated, capacity ≥ N, or NULL with capacity 0). */
APX_API apx_status apx_result_ape(const apx_result* result, int32_t layer, apx_ape_policy policy,
                                  apx_ape_report* report, double* tokens, size_t capacity, size_t* needed);

/* ---- attention statistics ----------------------------------------------------------------------------------- */

/* Per-query entropy of every head [H, N] (nats); normalized = 1 divides by log(visible keys). Caller-allocated. */
APX_API apx_status apx_result_attention_entropy(const apx_result* result, int32_t layer, int32_t normalized,
                                                double temperature, double* out, size_t capacity, size_t* needed);

typedef struct apx_attention_stats {
  size_t struct_size; /* set by the caller: sizeof(apx_attention_stats) */
  double mean_entropy;
  double mean_normalized_entropy;
  /* The largest weight, at (max_query, max_key), over the queries that see at least two keys (a query that sees
   * one key gives it weight 1, as a causal model's first token does); over every query when none sees two. */
  double max_weight;
  int64_t max_query, max_key;
  int64_t most_attended; /* the token receiving the most attention (column sums) */
} apx_attention_stats;
/* Statistics of one head's weights, or of the mean of the layer's heads (head -1). */
APX_API apx_status apx_result_attention_stats(const apx_result* result, int32_t layer, int32_t head,
                                              double temperature, apx_attention_stats* stats);
/* Each query's largest weight max_weights[i] over the keys it sees, and that key argmax_keys[i] (the first on
 * ties), [N] each (one head, or the mean for head -1). Caller-allocated (both arrays capacity ≥ N). Since 0.2. */
APX_API apx_status apx_result_attention_maxima(const apx_result* result, int32_t layer, int32_t head,
                                               double temperature, double* max_weights, int64_t* argmax_keys,
                                               size_t capacity, size_t* needed);
/* The k strongest arcs of a query token to the keys it sees, strongest first: keys[i], weights[i] (one head, or the
 * mean for head -1); fewer than k when it sees fewer (causal models: keys 0..query). Caller-allocated (both
 * arrays capacity ≥ min(k, visible keys)). */
APX_API apx_status apx_result_top_arcs(const apx_result* result, int32_t layer, int32_t head, int64_t query,
                                       int64_t k, double temperature, int64_t* keys, double* weights,
                                       size_t capacity, size_t* needed);

typedef struct apx_head_link {
  int32_t layer, head;
  double score; /* max(P[a, b], P[b, a]) */
} apx_head_link;
/* Every captured (layer, head), strongest link between tokens a and b first. Caller-allocated. */
APX_API apx_status apx_result_linking_heads(const apx_result* result, int64_t a, int64_t b, double temperature,
                                            apx_head_link* out, size_t capacity, size_t* needed);

/* ---- tokenizers --------------------------------------------------------------------------------------------- */

/* A Hugging Face tokenizer.json (file, or its contents: length bytes, SIZE_MAX = NUL-terminated). */
APX_API apx_status apx_tokenizer_from_file(const char* path, apx_tokenizer** tokenizer);
APX_API apx_status apx_tokenizer_from_json(const char* json, size_t length, apx_tokenizer** tokenizer);
/* GPT-2 style byte-level BPE from vocab.json / encoder.json and merges.txt / vocab.bpe. */
APX_API apx_status apx_tokenizer_byte_level_bpe(const char* vocab_json, const char* merges_txt,
                                                apx_tokenizer** tokenizer);
/* BERT WordPiece from vocab.txt (lowercase 1: uncased). */
APX_API apx_status apx_tokenizer_wordpiece(const char* vocab_txt, int32_t lowercase, apx_tokenizer** tokenizer);
APX_API void apx_tokenizer_free(apx_tokenizer* tokenizer);

/* One encoded text. All arrays hold `count` entries (offsets: 2·count, [start, end) pairs); library-allocated,
 * released together with apx_encoding_free. */
typedef struct apx_encoding {
  size_t count;
  int64_t* ids;
  char** tokens;         /* the vocabulary's strings, NUL-terminated */
  size_t* offsets;       /* bytes of the text */
  size_t* char_offsets;  /* characters (code points) of the text */
  uint8_t* special;      /* 1 for special tokens */
} apx_encoding;
APX_API void apx_encoding_free(apx_encoding* encoding);

typedef struct apx_encode_params {
  size_t struct_size;         /* sizeof(apx_encode_params) */
  int32_t add_special_tokens; /* 1 (default): the tokenizer's special tokens (its post-processor's template) */
} apx_encode_params;
APX_API apx_encode_params apx_encode_default_params(void);
/* Encodes `text` (length bytes of UTF-8; SIZE_MAX = NUL-terminated; invalid UTF-8 is APX_ERROR_INVALID_ARGUMENT).
 * params may be NULL (defaults). *encoding is library-allocated: apx_encoding_free. Since 0.2. */
APX_API apx_status apx_tokenizer_encode_text(const apx_tokenizer* tokenizer, const char* text, size_t length,
                                             const apx_encode_params* params, apx_encoding** encoding);
/* apx_tokenizer_encode_text with add_special_tokens as an argument (the 0.1 interface). */
APX_DEPRECATED("use apx_tokenizer_encode_text (a params struct, as apx_model_run_text)")
APX_API apx_status apx_tokenizer_encode(const apx_tokenizer* tokenizer, const char* text, size_t length,
                                        int32_t add_special_tokens, apx_encoding** encoding);
/* The text of ids. Library-allocated: apx_string_free. */
APX_API apx_status apx_tokenizer_decode(const apx_tokenizer* tokenizer, const int64_t* ids, size_t count,
                                        int32_t skip_special_tokens, char** text);
APX_API apx_status apx_tokenizer_vocab_size(const apx_tokenizer* tokenizer, size_t* size);
/* The id of a token string, or -1 when the tokenizer has no such token. */
APX_API apx_status apx_tokenizer_token_to_id(const apx_tokenizer* tokenizer, const char* token, int64_t* id);
/* The tokens and offsets of a result that was run from text (offsets empty — count 0 — when it was run from ids;
 * tokens then come from the model's tokenizer, if any). Library-allocated: apx_encoding_free. */
APX_API apx_status apx_result_encoding(const apx_result* result, apx_encoding** encoding);

/* ---- measurements on arrays from anywhere (no model; the Eigen reference implementation) ---------------------- */

/* One layer's queries [H, N, d] and keys [Hkv, N, d], row-major, borrowed. dtype: FLOAT32, FLOAT64, FLOAT16,
 * BFLOAT16 (low precision values are widened; sums run in double). A description of arrays, not a params struct:
 * published in 0.1 without struct_size, its layout is fixed for APX_ABI_VERSION 1 (it never grows; what a later
 * version needs beside it comes as a new struct). */
typedef struct apx_queries_keys {
  const void* queries;
  const void* keys;
  apx_dtype dtype;
  int64_t heads, kv_heads, tokens, head_dim;
} apx_queries_keys;

/* The proximity matrix [N, N] (double). Caller-allocated. */
APX_API apx_status apx_metrics_proximity(const apx_queries_keys* qk, double* out, size_t capacity, size_t* needed);
/* AP and AP_i [N] (double), O(N·H·d). Caller-allocated. */
APX_API apx_status apx_metrics_ap(const apx_queries_keys* qk, double* ap);
APX_API apx_status apx_metrics_ap_tokens(const apx_queries_keys* qk, double* out, size_t capacity, size_t* needed);
APX_API apx_status apx_metrics_subset_proximity(const apx_queries_keys* qk, const int64_t* subset, size_t count,
                                                double* out, size_t capacity, size_t* needed);
/* APE (as apx_result_ape). */
APX_API apx_status apx_metrics_ape(const apx_queries_keys* qk, apx_ape_policy policy, apx_ape_report* report,
                                   double* tokens, size_t capacity, size_t* needed);
/* The same from a ready-made proximity matrix a [n, n] (row-major double). */
APX_API apx_status apx_metrics_ap_tokens_of(const double* a, int64_t n, double* out, size_t capacity, size_t* needed);
APX_API apx_status apx_metrics_ape_of(const double* a, int64_t n, apx_ape_policy policy, apx_ape_report* report,
                                      double* tokens, size_t capacity, size_t* needed);
/* Statistics of attention weights [n, keys] (row-major double), the keys a query sees set by `causal` and
 * `sliding_window` (0: none), as apx_result_attention_stats. Since 0.2. */
APX_API apx_status apx_metrics_attention_summary(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                                 int64_t sliding_window, apx_attention_stats* stats);
/* Each query's entropy [n] (nats) of the same weights; normalized = 1 divides by log(visible keys), as
 * apx_result_attention_entropy. Caller-allocated. Since 0.2. */
APX_API apx_status apx_metrics_attention_entropy(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                                 int64_t sliding_window, int32_t normalized, double* out,
                                                 size_t capacity, size_t* needed);
/* apx_metrics_attention_summary and both entropies at once (the 0.1 interface, without `needed`: entropy and
 * normalized_entropy, may be NULL, receive [n] values each). */
APX_DEPRECATED("use apx_metrics_attention_summary and apx_metrics_attention_entropy (each array with its needed)")
APX_API apx_status apx_metrics_attention_stats(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                               int64_t sliding_window, apx_attention_stats* stats, double* entropy,
                                               double* normalized_entropy, size_t capacity);
/* Each query's largest weight over the keys it sees and that key, [n] each (as apx_result_attention_maxima).
 * Caller-allocated. Since 0.2. */
APX_API apx_status apx_metrics_attention_maxima(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                                int64_t sliding_window, double* max_weights, int64_t* argmax_keys,
                                                size_t capacity, size_t* needed);

#ifdef __cplusplus
}
#endif

#endif /* ATTNPROX_ATTNPROX_H */
