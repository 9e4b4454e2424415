// The C ABI: models (the section "models" of include/attnprox/attnprox.h).
#include "internal.hpp"

using namespace attnprox::capi;

extern "C" {

apx_load_params apx_load_default_params(void) {
  apx_load_params p;
  p.struct_size = sizeof(apx_load_params);
  p.device = nullptr;
  p.dtype = APX_DTYPE_DEFAULT;
  p.threads = 0;
  p.layers = nullptr;
  p.layer_count = 0;
  p.rope = 0;
  return p;
}

apx_status apx_model_load(const char* path, const apx_load_params* params, apx_model** model) {
  return call([&] {
    need(path, "path");
    need(model, "model");
    *model = nullptr;
    const apx_load_params p = params_in(params, apx_load_default_params(), "params");
    attnprox::LoadOptions options;
    if (p.device) options.device = p.device;
    switch (enum_int(p.dtype)) {
      case APX_DTYPE_DEFAULT: break;
      case APX_DTYPE_FLOAT32: options.dtype = attnprox::DType::kFloat32; break;
      case APX_DTYPE_FLOAT16: options.dtype = attnprox::DType::kFloat16; break;
      case APX_DTYPE_BFLOAT16: options.dtype = attnprox::DType::kBFloat16; break;
      default:
        throw CallError{APX_ERROR_INVALID_ARGUMENT,
                        "params->dtype must be DEFAULT, FLOAT32, FLOAT16 or "
                        "BFLOAT16"};
    }
    options.threads = p.threads;
    options.layers = int_list(p.layers, p.layer_count, "params->layers");
    if (p.rope != 0 && p.rope != 1) {
      throw CallError{APX_ERROR_INVALID_ARGUMENT, "params->rope must be 0 (queries and keys before RoPE) or 1 "
                                                  "(after RoPE), found " + std::to_string(p.rope)};
    }
    *model = make_handle<apx_model>(models(), ModelObject{attnprox::Model::load(path, options), p.rope == 1});
  });
}

void apx_model_free(apx_model* model) {
  if (model) models().remove(reinterpret_cast<uintptr_t>(model));
}

apx_status apx_model_get_info(const apx_model* model, apx_model_info* info) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    check_report(info, "info");
    const attnprox::Manifest& manifest = m.manifest();
    apx_model_info full;
    full.struct_size = sizeof full;
    full.num_layers = manifest.num_layers;
    full.num_captured_layers = static_cast<int32_t>(manifest.layers.size());
    full.num_heads = manifest.num_heads;
    full.num_kv_heads = manifest.num_kv_heads;
    full.head_dim = manifest.head_dim;
    full.causal = manifest.causal ? 1 : 0;
    full.max_positions = manifest.max_positions;
    full.vocab_size = manifest.vocab_size;
    switch (m.dtype()) {
      case attnprox::DType::kFloat32: full.dtype = APX_DTYPE_FLOAT32; break;
      case attnprox::DType::kFloat16: full.dtype = APX_DTYPE_FLOAT16; break;
      case attnprox::DType::kBFloat16: full.dtype = APX_DTYPE_BFLOAT16; break;
    }
    full.has_tokenizer = m.tokenizer() ? 1 : 0;
    report_out(full, info, "info");
  });
}

apx_status apx_model_captured_layers(const apx_model* model, int32_t* out, size_t capacity, size_t* needed) {
  return call([&] {
    const std::vector<int> layers = live(models(), model, "model").model.manifest().captured_layers();
    deliver(std::vector<int32_t>(layers.begin(), layers.end()), out, capacity, needed);
  });
}

apx_status apx_model_layers(const apx_model* model, int32_t* out, size_t capacity, size_t* needed) {
  return call([&] {
    const std::vector<int> layers = live(models(), model, "model").model.layers();
    deliver(std::vector<int32_t>(layers.begin(), layers.end()), out, capacity, needed);
  });
}

apx_status apx_model_manifest_json(const apx_model* model, char** json) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(json, "json");
    *json = copy_string(m.manifest().raw_json);
  });
}

apx_status apx_model_device(const apx_model* model, char** device) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(device, "device");
    *device = copy_string(m.device());
  });
}

apx_status apx_model_tokenizer(const apx_model* model, apx_tokenizer** tokenizer) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    if (!m.tokenizer()) {
      throw CallError{APX_ERROR_UNSUPPORTED, "model file '" + m.path() + "' has no tokenizer"};
    }
    *tokenizer = make_handle<apx_tokenizer>(tokenizers(), TokenizerObject{*m.tokenizer()});
  });
}

}  // extern "C"
