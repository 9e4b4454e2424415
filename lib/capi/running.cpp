// The C ABI: running (the section "running" of include/attnprox/attnprox.h).
#include "internal.hpp"

using namespace attnprox::capi;

extern "C" {

apx_run_params apx_run_default_params(void) {
  apx_run_params p;
  p.struct_size = sizeof(apx_run_params);
  p.layers = nullptr;
  p.layer_count = 0;
  p.rope = -1;
  return p;
}

namespace {
/// The rope choice of apx_run_params (NULL, or a size without the field: the model's).
bool run_rope(const apx_run_params* params, const ModelObject& model) {
  return rope_choice(params_in(params, apx_run_default_params(), "params").rope, model, "params->rope");
}
}  // namespace

apx_status apx_model_run_ids(const apx_model* model, const int64_t* ids, size_t count, apx_result** result) {
  return apx_model_run_ids_with(model, ids, count, nullptr, result);
}

apx_status apx_model_run_ids_with(const apx_model* model, const int64_t* ids, size_t count,
                                  const apx_run_params* params, apx_result** result) {
  return call([&] {
    const ModelObject& handle = live(models(), model, "model");
    const attnprox::Model& m = handle.model;
    need(result, "result");
    *result = nullptr;
    std::vector<int64_t> sequence = elements(ids, count, "ids");
    const attnprox::RunOptions options = run_options(params);
    const bool rope = run_rope(params, handle);
    *result = make_handle<apx_result>(results(), ResultObject{m.run(sequence, options), rope});
  });
}

apx_status apx_model_run_batch(const apx_model* model, const int64_t* const* ids, const size_t* counts, size_t batch,
                               apx_result** results_out) {
  return apx_model_run_batch_with(model, ids, counts, batch, nullptr, results_out);
}

apx_status apx_model_run_batch_with(const apx_model* model, const int64_t* const* ids, const size_t* counts,
                                    size_t batch, const apx_run_params* params, apx_result** results_out) {
  return call([&] {
    const ModelObject& handle = live(models(), model, "model");
    const attnprox::Model& m = handle.model;
    const attnprox::RunOptions options = run_options(params);
    const bool rope = run_rope(params, handle);
    need(results_out, "results");
    check_count(batch, "batch");
    if (batch) {
      need(ids, "ids");
      need(counts, "counts");
    }
    std::vector<std::vector<int64_t>> sequences;
    for (size_t b = 0; b < batch; ++b) sequences.push_back(elements(ids[b], counts[b], "ids[b]"));
    for (size_t b = 0; b < batch; ++b) results_out[b] = nullptr;
    std::vector<attnprox::Result> run = m.run_batch(sequences, options);
    // All or none: a handle that cannot be made (out of memory) takes back the ones made before it.
    size_t made = 0;
    try {
      for (; made < batch; ++made) {
        results_out[made] = make_handle<apx_result>(results(), ResultObject{std::move(run[made]), rope});
      }
    } catch (...) {
      for (size_t b = 0; b < made; ++b) {
        results().remove(reinterpret_cast<uintptr_t>(results_out[b]));
        results_out[b] = nullptr;
      }
      throw;
    }
  });
}

apx_text_params apx_text_default_params(void) {
  apx_text_params p;
  p.struct_size = sizeof(apx_text_params);
  p.add_special_tokens = 1;
  p.max_length = 0;
  p.truncation = 0;
  p.layers = nullptr;
  p.layer_count = 0;
  p.rope = -1;
  return p;
}

namespace {
attnprox::TextOptions text_options(const apx_text_params* params) {
  const apx_text_params p = params_in(params, apx_text_default_params(), "params");
  attnprox::TextOptions options;
  options.add_special_tokens = p.add_special_tokens != 0;
  options.truncation = p.truncation != 0;
  if (p.max_length != 0) {
    if (p.max_length < 0) {
      throw CallError{APX_ERROR_INVALID_ARGUMENT, "params->max_length must be 0 (the model's positions) or positive, "
                                                  "found " + std::to_string(p.max_length)};
    }
    if (options.truncation) options.max_length = p.max_length;
  }
  options.layers = int_list(p.layers, p.layer_count, "params->layers");
  return options;
}

/// The rope choice of apx_text_params (NULL, or a size without the field: the model's).
bool text_rope(const apx_text_params* params, const ModelObject& model) {
  return rope_choice(params_in(params, apx_text_default_params(), "params").rope, model, "params->rope");
}
}  // namespace

apx_status apx_model_run_text(const apx_model* model, const char* text, size_t length, const apx_text_params* params,
                              apx_result** result) {
  return call([&] {
    const ModelObject& handle = live(models(), model, "model");
    const attnprox::Model& m = handle.model;
    need(text, "text");
    need(result, "result");
    *result = nullptr;
    const attnprox::TextOptions options = text_options(params);
    const bool rope = text_rope(params, handle);
    *result = make_handle<apx_result>(results(), ResultObject{m.run_text(text_of(text, length), options), rope});
  });
}

apx_status apx_model_run_text_pair(const apx_model* model, const char* text, size_t length, const char* pair,
                                   size_t pair_length, const apx_text_params* params, apx_result** result) {
  return call([&] {
    const ModelObject& handle = live(models(), model, "model");
    const attnprox::Model& m = handle.model;
    need(text, "text");
    need(pair, "pair");
    need(result, "result");
    *result = nullptr;
    const attnprox::TextOptions options = text_options(params);
    const bool rope = text_rope(params, handle);
    *result = make_handle<apx_result>(
        results(), ResultObject{m.run_text_pair(text_of(text, length), text_of(pair, pair_length), options), rope});
  });
}

void apx_result_free(apx_result* result) {
  if (result) results().remove(reinterpret_cast<uintptr_t>(result));
}

}  // extern "C"
