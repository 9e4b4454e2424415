// Loading a model file (docs/model-file.md) and running token ids through it.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../common/limits.hpp"
#include "archive.hpp"
#include "internal.hpp"

namespace attnprox {

namespace {
constexpr const char* kManifestName = "attnprox/manifest.json";
constexpr const char* kTokenizerName = "attnprox/tokenizer.json";
}  // namespace

struct Model::Impl {
  std::string path;
  std::shared_ptr<const Manifest> manifest;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when the file has none
  torch::jit::Module module;  // a handle; copies share the module, whose forward may run on several threads
  c10::Device device{c10::kCPU};
  c10::ScalarType dtype = c10::ScalarType::Float;
  bool optimize_graph = false;  // ATTNPROX_JIT_OPTIMIZE=1 at load: TorchScript's profiling executor
  bool forward_layers = false;  // the file has forward_layers(ids, mask, layers): it computes only what is kept
  std::vector<size_t> slots;    // the captured layers (positions in manifest->layers) a run keeps by default
  std::shared_ptr<const Manifest> kept;  // the manifest of those layers (`manifest` itself when all are kept)
};

namespace {

[[noreturn]] void invalid_model(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kInvalidModel, "model file '" + path + "': " + what);
}

/// The torch version that wrote a model file, read from its manifest without loading the TorchScript module (so
/// that a file this libtorch cannot load still says where it came from); empty when it cannot be read.
std::string exporting_torch(const archive::ZipFile& zip) {
  try {
    const archive::Entry* entry = zip.find_record(std::string("extra/") + kManifestName);
    if (!entry) return {};
    const std::string text = zip.read(*entry, limits::kMaxManifestBytes, "its manifest");
    if (limits::json_too_deep(text) != std::string::npos) return {};
    auto manifest = nlohmann::json::parse(text);
    const auto exporter = manifest.find("exporter");
    if (exporter == manifest.end() || !exporter->is_object()) return {};
    const auto torch = exporter->find("torch");
    return torch != exporter->end() && torch->is_string() ? torch->get<std::string>() : std::string();
  } catch (const std::exception&) {  // c10::Error and json errors: nothing more to say than the load error
    return {};
  }
}

/// The start of a long libtorch message (TorchScript compile errors quote the source at length).
std::string first_lines(std::string text, size_t max_lines = 1) {
  const size_t begin = text.find_first_not_of(" \n");
  text.erase(0, begin == std::string::npos ? text.size() : begin);
  size_t end = 0;
  for (size_t line = 0; line < max_lines && end != std::string::npos; ++line) {
    end = text.find('\n', line == 0 ? 0 : end + 1);
  }
  if (end != std::string::npos) text.resize(end);
  return text;
}

/// What to add to a load or probe failure when the file was written by another torch than this libtorch.
std::string version_note(const std::string& exported_with) {
  // 2.11.0+cu130 and 2.11.0 are one version of torch: the local part names the build's CUDA.
  // 1.13.0a0 (a pre-release mark of a distribution's build) and 1.13.0 are one version too.
  const auto base = [](const std::string& v) { return v.substr(0, v.find_first_not_of("0123456789.")); };
  if (exported_with.empty() || base(exported_with) == base(torch_version())) return {};
  return " [the file was exported with torch " + exported_with + " and this attnprox runs on libtorch " +
         torch_version() +
         ": a file using operators or a format that the older of the two does not know cannot run; export it "
         "again with torch " +
         torch_version() + ", or use an attnprox built against libtorch " + exported_with + "]";
}

void check_is_archive(const std::string& path) {
  archive::check_regular_file(path, "model file");  // before opening: opening a FIFO blocks
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, sizeof magic);
  if (!in || std::string(magic, 4) != std::string("PK\x03\x04", 4)) {
    invalid_model(path, "not a TorchScript archive (a model file is a zip archive written by `attnprox export`)");
  }
}

c10::Device parse_device(const std::string& name) {
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const c10::Error&) {
    throw Error(ErrorCode::kInvalidArgument, "device \"" + name + "\" is not a device name (cpu, cuda, cuda:N)");
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw Error(ErrorCode::kUnsupported, "device \"" + name +
                                               "\" requested, but this build of attnprox runs on "
                                               "libtorch " +
                                               torch_version() + " without CUDA (CPU only)");
    }
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (device.has_index() && device.index() >= count) {
      throw Error(ErrorCode::kInvalidArgument,
                  "device \"" + name + "\" requested, " + std::to_string(count) + " CUDA device(s) are visible");
    }
    // "cuda" is the current CUDA device, as in PyTorch: name it, so that the model reports where it runs.
    if (!device.has_index()) device = at::empty({0}, at::TensorOptions().device(device)).device();
  } else if (!device.is_cpu()) {
    throw Error(ErrorCode::kUnsupported, "device \"" + name + "\" is not supported (cpu, cuda, cuda:N)");
  }
  return device;
}

std::string shape_text(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t k = 0; k < t.dim(); ++k) out += (k ? ", " : "") + std::to_string(t.size(k));
  return out + "]";
}

/// The queries and keys a forward returned, checked against the manifest `m` of the layers asked for: a tuple of
/// two lists of tensors, one per layer of `m`, queries [B, H, N, d] and keys [B, Hkv, N, d] in the model's dtype.
std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> split_outputs(const c10::IValue& out,
                                                                          const ModelImpl& model, const Manifest& m,
                                                                          int64_t batch, int64_t n) {
  auto fail = [&](const std::string& what) { invalid_model(model.path, "forward " + what); };
  if (!out.isTuple() || out.toTupleRef().elements().size() != 2) {
    fail("must return a tuple (queries, keys) of two lists of tensors");
  }
  const auto& pair = out.toTupleRef().elements();
  if (!pair[0].isTensorList() || !pair[1].isTensorList()) fail("must return two lists of tensors");
  std::vector<at::Tensor> queries = pair[0].toTensorVector(), keys = pair[1].toTensorVector();
  const size_t captured = m.layers.size();
  if (queries.size() != captured || keys.size() != captured) {
    fail("returned queries for " + std::to_string(queries.size()) + " and keys for " + std::to_string(keys.size()) +
         " layers, " +
         (m.file_captured_layers.empty() ? "the manifest captures " + std::to_string(captured)
                                         : std::to_string(captured) + " were asked for (forward_layers)"));
  }
  for (size_t k = 0; k < captured; ++k) {
    const std::string layer = " at layer " + std::to_string(m.layers[k].index);
    const std::vector<int64_t> q_shape{batch, m.num_heads, n, m.head_dim},
        k_shape{batch, m.num_kv_heads, n, m.head_dim};
    if (queries[k].sizes() != at::IntArrayRef(q_shape)) {
      fail("returned queries of shape " + shape_text(queries[k]) + layer + ", the manifest implies [" +
           std::to_string(batch) + ", " + std::to_string(m.num_heads) + ", " + std::to_string(n) + ", " +
           std::to_string(m.head_dim) + "] (batch, heads, tokens, head size)");
    }
    if (keys[k].sizes() != at::IntArrayRef(k_shape)) {
      fail("returned keys of shape " + shape_text(keys[k]) + layer + ", the manifest implies [" +
           std::to_string(batch) + ", " + std::to_string(m.num_kv_heads) + ", " + std::to_string(n) + ", " +
           std::to_string(m.head_dim) + "] (batch, key heads, tokens, head size)");
    }
    if (queries[k].scalar_type() != model.dtype || keys[k].scalar_type() != model.dtype) {
      fail(std::string("returned ") + c10::toString(queries[k].scalar_type()) + " queries" + layer + ", expected " +
           c10::toString(model.dtype));
    }
  }
  return {std::move(queries), std::move(keys)};
}

/// The module's forward on the unoptimized plan of its graph: the operators run exactly as exported, which is what
/// the exporter verified. TorchScript's default, the profiling executor, specializes the graph to the shapes it has
/// seen and compiles fusions for them; each new text length then costs a re-profiling and a recompilation, which on
/// CUDA made a 36-layer forward take seconds. The choice is per thread (GraphOptimizerEnabledGuard), so a host's
/// own TorchScript keeps its settings; ATTNPROX_JIT_OPTIMIZE=1 at load time restores the default for comparison.
/// The forward's inputs are the ids, the mask and, for files whose manifest lists it, the token type ids.
c10::IValue run_module(const ModelImpl& model, const at::Tensor& ids, const at::Tensor& mask,
                       const at::Tensor& type_ids) {
  torch::jit::GraphOptimizerEnabledGuard optimizer(model.optimize_graph);
  torch::jit::Module module = model.module;
  if (model.manifest->takes_token_type_ids()) return module.forward({ids, mask, type_ids});
  return module.forward({ids, mask});
}

/// forward_layers(ids, mask, layers[, token_type_ids]): the queries and keys of `layers` only (the model's own
/// numbers, ascending); the token type ids come after the layers, for files whose manifest lists them.
c10::IValue run_module_layers(const ModelImpl& model, const at::Tensor& ids, const at::Tensor& mask,
                              const at::Tensor& type_ids, const Manifest& kept) {
  torch::jit::GraphOptimizerEnabledGuard optimizer(model.optimize_graph);
  torch::jit::Module module = model.module;
  c10::List<int64_t> layers;
  for (const LayerInfo& layer : kept.layers) layers.push_back(layer.index);
  if (model.manifest->takes_token_type_ids()) return module.get_method("forward_layers")({ids, mask, layers, type_ids});
  return module.get_method("forward_layers")({ids, mask, layers});
}

/// What one run keeps: slots of the file's captured layers, and the manifest of just those.
struct Selection {
  std::vector<size_t> slots;
  std::shared_ptr<const Manifest> manifest;
};

/// The slots of the layers asked for (the model's own numbers, or negative from the file's last captured layer),
/// ascending and distinct; every captured layer when none is named.
std::vector<size_t> resolve_slots(const Manifest& m, const std::vector<int>& layers) {
  std::vector<size_t> slots;
  if (layers.empty()) {
    for (size_t k = 0; k < m.layers.size(); ++k) slots.push_back(k);
    return slots;
  }
  for (int layer : layers) slots.push_back(m.slot(layer));
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  return slots;
}

Selection select(const ModelImpl& model, const std::vector<int>& layers) {
  if (layers.empty()) return {model.slots, model.kept};
  Selection out{resolve_slots(*model.manifest, layers), model.manifest};
  if (out.slots.size() != model.manifest->layers.size()) {
    out.manifest = std::make_shared<const Manifest>(model.manifest->kept(out.slots));
  }
  return out;
}

/// The queries and keys of the selected layers for one padded batch: through forward_layers where the file has it
/// (a scripted file stops after the last selected layer, a traced one cuts the others' queries and keys in its
/// graph: docs/model-file.md), otherwise through forward, keeping the selected layers' and dropping the rest.
std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> forward(const ModelImpl& model, const at::Tensor& ids,
                                                                    const at::Tensor& mask, const at::Tensor& type_ids,
                                                                    const Selection& selection) {
  const int64_t batch = ids.size(0), n = ids.size(1);
  const bool all = selection.slots.size() == model.manifest->layers.size();
  if (!all && model.forward_layers) {
    c10::IValue out = guarded("model forward failed",
                              [&] { return run_module_layers(model, ids, mask, type_ids, *selection.manifest); });
    return split_outputs(out, model, *selection.manifest, batch, n);
  }
  c10::IValue out = guarded("model forward failed", [&] { return run_module(model, ids, mask, type_ids); });
  auto [queries, keys] = split_outputs(out, model, *model.manifest, batch, n);
  if (all) return {std::move(queries), std::move(keys)};
  std::vector<at::Tensor> kept_queries, kept_keys;
  for (size_t slot : selection.slots) {
    kept_queries.push_back(std::move(queries[slot]));
    kept_keys.push_back(std::move(keys[slot]));
  }
  return {std::move(kept_queries), std::move(kept_keys)};
}

void check_ids(const Manifest& m, const std::vector<int64_t>& ids, const std::string& which) {
  if (ids.empty()) throw Error(ErrorCode::kInvalidArgument, which + "is empty: there is nothing to run");
  if (static_cast<int64_t>(ids.size()) > m.max_positions) {
    throw Error(ErrorCode::kInvalidArgument, which + "has " + std::to_string(ids.size()) + " tokens, the model has " +
                                                 std::to_string(m.max_positions) + " positions");
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= m.vocab_size) {
      throw Error(ErrorCode::kInvalidArgument, which + "has token id " + std::to_string(ids[i]) + " at position " +
                                                   std::to_string(i) + ", outside the vocabulary (0.." +
                                                   std::to_string(m.vocab_size - 1) + ")");
    }
  }
}

void check_finite(const std::vector<at::Tensor>& tensors, const Manifest& m, const char* what) {
  for (size_t k = 0; k < tensors.size(); ++k) {
    if (!at::isfinite(tensors[k]).all().item<bool>()) {
      throw Error(ErrorCode::kRuntime, std::string("the model produced non-finite ") + what +
                                           " (NaN or Inf) at layer " + std::to_string(m.layers[k].index) +
                                           "; a float16 model may overflow: try bfloat16 or float32");
    }
  }
}

}  // namespace

Model Model::load(const std::string& path, const LoadOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  check_readable(path, "model file");
  check_is_archive(path);
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->device = parse_device(options.device);
  if (options.threads < 0 || options.threads > kMaxThreads) {
    throw Error(ErrorCode::kInvalidArgument, "threads must be 0 (libtorch's default) or 1.." +
                                                 std::to_string(kMaxThreads) + ", found " +
                                                 std::to_string(options.threads));
  }
  if (options.threads > 0) at::set_num_threads(options.threads);

  // The archive is read here before libtorch reads it: every entry's CRC-32 is checked (libtorch does not, and a
  // flipped bit in a weight would change the numbers silently), and the manifest and tokenizer are read with a
  // bound on their size (libtorch would inflate them whole), then passed on in parsed form only.
  const archive::ZipFile zip(path);
  const archive::Entry* manifest_entry = zip.find_record(std::string("extra/") + kManifestName);
  const archive::Entry* tokenizer_entry = zip.find_record(std::string("extra/") + kTokenizerName);
  // First the two attnprox entries (their declared sizes checked before a byte is inflated), then all the others.
  const std::string manifest_text =
      manifest_entry ? zip.read(*manifest_entry, limits::kMaxManifestBytes, "its manifest") : std::string();
  const std::string tokenizer_text =
      tokenizer_entry ? zip.read(*tokenizer_entry, limits::kMaxTokenizerBytes, "its tokenizer.json") : std::string();
  zip.verify_all();
  try {
    impl->module = torch::jit::load(path, impl->device);
  } catch (const c10::Error& e) {
    invalid_model(path, "could not be loaded as a TorchScript module by libtorch " + torch_version() + ": " +
                            torch_message(e) + version_note(exporting_torch(zip)));
  } catch (const std::exception& e) {  // TorchScript compile errors (unknown operators) are not c10::Errors
    invalid_model(path, "could not be loaded as a TorchScript module by libtorch " + torch_version() + ": " +
                            first_lines(e.what()) + version_note(exporting_torch(zip)));
  }
  if (manifest_text.empty()) {
    invalid_model(path, std::string("a TorchScript archive without an attnprox manifest (extra/") + kManifestName +
                            "); model files are written by `attnprox export`");
  }
  try {
    impl->manifest = std::make_shared<const Manifest>(Manifest::parse(manifest_text));
  } catch (const Error& e) {
    invalid_model(path, e.what());
  }
  if (!tokenizer_text.empty()) {
    try {
      impl->tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_json(tokenizer_text));
    } catch (const Error& e) {
      invalid_model(path, std::string("its tokenizer.json cannot be used: ") + e.what());
    }
  }
  if (!impl->module.find_method("forward")) invalid_model(path, "the TorchScript module has no forward method");
  if (impl->tokenizer && impl->manifest->tokenizer.add_bos && impl->manifest->tokenizer.bos_id) {
    const int64_t bos = *impl->manifest->tokenizer.bos_id;
    if (bos >= static_cast<int64_t>(impl->tokenizer->vocab_size()) && !impl->tokenizer->is_special(bos)) {
      invalid_model(path, "the manifest adds BOS id " + std::to_string(bos) + ", which its tokenizer does not have");
    }
  }

  const Manifest& m = *impl->manifest;
  if (!m.traced_device.empty()) {
    // A traced file (attnprox export) holds device constants from the trace: it runs on that kind of device only.
    c10::Device traced(c10::kCPU);
    try {
      traced = c10::Device(m.traced_device);
    } catch (const c10::Error&) {
      invalid_model(path, "its manifest names the device \"" + m.traced_device + "\", which is not a device name");
    }
    if (traced.type() != impl->device.type()) {
      throw Error(ErrorCode::kUnsupported, "model file '" + path + "' was traced on " + m.traced_device +
                                               " and runs there only, not on " + options.device +
                                               "; export it again with --device " +
                                               c10::DeviceTypeName(impl->device.type(), /*lower_case=*/true));
    }
  }
  impl->dtype = scalar_type(options.dtype.value_or(parse_dtype(m.dtype)));
  const char* optimize = std::getenv("ATTNPROX_JIT_OPTIMIZE");
  impl->optimize_graph = optimize != nullptr && std::string(optimize) == "1";
  impl->module.eval();
  if (options.dtype && to_string(*options.dtype) != m.dtype) {
    guarded("converting the model to " + to_string(*options.dtype), [&] { impl->module.to(impl->dtype); });
  }
  impl->forward_layers = impl->module.find_method("forward_layers").has_value();
  impl->slots = resolve_slots(m, options.layers);  // Error(kOutOfRange) for a layer the file does not capture
  impl->kept = impl->slots.size() == m.layers.size() ? impl->manifest
                                                     : std::make_shared<const Manifest>(m.kept(impl->slots));

  // Probe: one forward of two tokens must return what the manifest describes.
  const int64_t n = std::min<int64_t>(2, m.max_positions);
  {
    c10::InferenceMode guard;
    auto opts = at::TensorOptions().dtype(at::kLong).device(impl->device);
    at::Tensor ids = at::arange(n, opts).remainder(m.vocab_size).unsqueeze(0);
    at::Tensor mask = at::ones({1, n}, opts);
    // forward, and forward_layers (where the file has it) asked for its last captured layer only; segment 0 for
    // files that take token type ids.
    const at::Tensor types = at::zeros_like(ids);
    const Manifest last = m.kept({m.layers.size() - 1});
    for (const bool layers : {false, true}) {
      if (layers && !impl->forward_layers) break;
      c10::IValue out;
      const std::string what = layers ? "forward_layers" : "forward";
      try {
        out = layers ? run_module_layers(*impl, ids, mask, types, last) : run_module(*impl, ids, mask, types);
      } catch (const std::exception& e) {
        const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
        const std::string cause = torch_error ? torch_message(*torch_error) : cause_first(e.what());
        if (impl->device.is_cpu() && impl->dtype == at::kHalf) {
          // libtorch's CPU kernels lack float16 for several operators: not a problem of the file.
          throw Error(ErrorCode::kUnsupported, "float16 is not supported on the CPU by libtorch " + torch_version() +
                                                   " (the probe forward failed: " + first_lines(cause) +
                                                   "); use float32 or bfloat16 on the CPU, float16 on CUDA");
        }
        throw Error(ErrorCode::kUnsupported, "model file '" + path + "': the probe " + what + " on " +
                                                 options.device + " in " + c10::toString(impl->dtype) +
                                                 " failed: " + first_lines(cause) + version_note(m.torch_version));
      }
      split_outputs(out, *impl, layers ? last : m, 1, n);
    }
  }
  logger().debug(
      "loaded {} ({}, {} of {} layers captured, H={} Hkv={} d={}) on {} in {} ms", path, m.family, m.layers.size(),
      m.num_layers, m.num_heads, m.num_kv_heads, m.head_dim, impl->device.str(),
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
  return Model(std::move(impl));
}

const Manifest& Model::manifest() const {
  return *impl_->manifest;
}
const std::string& Model::path() const {
  return impl_->path;
}
std::string Model::device() const {
  return impl_->device.str();
}
DType Model::dtype() const {
  return dtype_of(impl_->dtype);
}
std::string Model::tokenizer_json() const {
  // Read again from the file (checked as at load): the model keeps the parsed tokenizer, not its text.
  if (!impl_->tokenizer) return {};
  archive::check_regular_file(impl_->path, "model file");
  const archive::ZipFile zip(impl_->path);
  const archive::Entry* entry = zip.find_record(std::string("extra/") + kTokenizerName);
  if (!entry) invalid_model(impl_->path, "its tokenizer.json is gone (the file changed since it was loaded)");
  return zip.read(*entry, limits::kMaxTokenizerBytes, "its tokenizer.json");
}
const Tokenizer* Model::tokenizer() const {
  return impl_->tokenizer.get();
}

std::vector<int> Model::layers() const {
  return impl_->kept->captured_layers();
}

Result Model::run(const std::vector<int64_t>& ids, const RunOptions& options) const {
  return std::move(run_batch({ids}, options).front());
}

namespace {
/// One padded forward for a batch of id sequences, with their token type ids (none: zeros): the per-sequence
/// data of the results, holding the layers asked for.
std::vector<std::shared_ptr<ResultData>> run_sequences(const ModelImpl& impl,
                                                       const std::vector<std::vector<int64_t>>& batch,
                                                       const std::vector<int>& layers,
                                                       const std::vector<std::vector<int64_t>>& type_ids = {}) {
  const Manifest& m = *impl.manifest;
  const Selection selection = select(impl, layers);
  if (batch.empty()) throw Error(ErrorCode::kInvalidArgument, "no sequences given: there is nothing to run");
  int64_t longest = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    check_ids(m, batch[b], batch.size() == 1 ? "the input " : "sequence " + std::to_string(b) + " ");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(batch[b].size()));
  }
  const int64_t size = static_cast<int64_t>(batch.size());
  // Right padding: with it, causal models never see the padding and positions stay 0..n-1.
  const int64_t pad = m.tokenizer.pad_id.value_or(0);
  at::Tensor ids = at::full({size, longest}, pad, at::kLong);
  at::Tensor mask = at::zeros({size, longest}, at::kLong);
  at::Tensor types = at::zeros({size, longest}, at::kLong);
  bool typed = false;  // some token is not of segment 0
  for (int64_t b = 0; b < size; ++b) {
    const auto n = static_cast<int64_t>(batch[b].size());
    std::copy(batch[b].begin(), batch[b].end(), ids[b].data_ptr<int64_t>());
    mask[b].narrow(0, 0, n).fill_(1);
    if (!type_ids.empty() && !type_ids[b].empty()) {
      std::copy(type_ids[b].begin(), type_ids[b].end(), types[b].data_ptr<int64_t>());
      typed = typed || std::any_of(type_ids[b].begin(), type_ids[b].end(), [](int64_t t) { return t != 0; });
    }
  }
  if (typed && m.inputs.empty()) {
    throw Error(ErrorCode::kUnsupported, "model file '" + impl.path +
                                             "' was written before attnprox took text pairs (its manifest does not "
                                             "list the forward's inputs): export it again to run a text pair");
  }
  if (!m.takes_token_type_ids()) types.zero_();  // a model without segments: its forward gets none

  c10::InferenceMode guard;
  const auto start = std::chrono::steady_clock::now();
  auto [queries, keys] =
      forward(impl, ids.to(impl.device), mask.to(impl.device), types.to(impl.device), selection);
  logger().debug(
      "ran {} sequence(s) of up to {} tokens in {} ms", size, longest,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());

  std::vector<std::shared_ptr<ResultData>> results;
  for (int64_t b = 0; b < size; ++b) {
    auto data = std::make_shared<ResultData>();
    data->manifest = selection.manifest;
    data->tokenizer = impl.tokenizer;
    data->ids = batch[b];
    const auto n = static_cast<int64_t>(batch[b].size());
    data->type_ids.assign(types[b].data_ptr<int64_t>(), types[b].data_ptr<int64_t>() + n);
    for (size_t k = 0; k < queries.size(); ++k) {
      data->queries.push_back(queries[k][b].narrow(1, 0, n));
      data->keys.push_back(keys[k][b].narrow(1, 0, n));
    }
    // Only the real tokens must be finite: what a model computes at padding positions is never used.
    check_finite(data->queries, *selection.manifest, "queries");
    check_finite(data->keys, *selection.manifest, "keys");
    results.push_back(std::move(data));
  }
  return results;
}
}  // namespace

std::vector<Result> Model::run_batch(const std::vector<std::vector<int64_t>>& batch,
                                     const RunOptions& options) const {
  std::vector<Result> results;
  for (auto& data : run_sequences(*impl_, batch, options.layers)) results.push_back(Result(std::move(data)));
  return results;
}

namespace {
/// Keeps the tokens of an encoding for which `keep(k)` holds.
template <typename Keep>
void keep_tokens(Encoding& e, Keep&& keep) {
  Encoding out;
  for (size_t k = 0; k < e.size(); ++k) {
    if (!keep(k)) continue;
    out.ids.push_back(e.ids[k]);
    out.tokens.push_back(std::move(e.tokens[k]));
    out.offsets.push_back(e.offsets[k]);
    out.char_offsets.push_back(e.char_offsets[k]);
    out.special.push_back(e.special[k]);
    out.type_ids.push_back(e.type_ids[k]);
    out.sequence_ids.push_back(e.sequence_ids[k]);
  }
  e = std::move(out);
}

/// How many tokens of each input text (0: the text, 1: the pair) to keep so that the encoding fits `room` tokens
/// besides the added ones: the text's last tokens go. A pair is cut as Hugging Face's "longest_first" cuts it: the
/// shorter keeps its tokens up to half the room, the longer takes the rest.
std::pair<size_t, size_t> truncated_lengths(size_t n1, size_t n2, size_t room, bool pair) {
  if (!pair) return {std::min(n1, room), 0};
  if (n1 + n2 <= room) return {n1, n2};
  const bool swap = n1 > n2;  // n1: the shorter
  if (swap) std::swap(n1, n2);
  n2 = n1 > room ? n1 : std::max(n1, room - n1);
  if (n1 + n2 > room) {
    n1 = room / 2;
    n2 = n1 + room % 2;
  }
  if (swap) std::swap(n1, n2);
  return {n1, n2};
}

/// The encoding of one text (or text pair) for the model: the tokenizer's special tokens, the manifest's BOS when
/// the model expects one the tokenizer does not add, and truncation to max_length (the added tokens kept, each
/// text's last tokens dropped, as Hugging Face truncates).
Encoding encode_for_model(const Tokenizer& tokenizer, const Manifest& m, std::string_view text,
                          const std::optional<std::string_view>& pair, const TextOptions& options) {
  // A byte-order mark at the start (every file saved by some editors starts with one) is not part of the text, as
  // editors treat it: the rest is tokenized, and the offsets moved past it so that they index the text given.
  constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
  auto unmarked = [&](std::string_view s) {
    return s.substr(0, kByteOrderMark.size()) == kByteOrderMark ? s.substr(kByteOrderMark.size()) : s;
  };
  const bool marked[2] = {unmarked(text).size() != text.size(), pair && unmarked(*pair).size() != pair->size()};
  Encoding e = pair ? tokenizer.encode_pair(unmarked(text), unmarked(*pair), options.add_special_tokens)
                    : tokenizer.encode(unmarked(text), options.add_special_tokens);
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.sequence_ids[i] < 0 || !marked[e.sequence_ids[i]]) continue;  // added tokens cover nothing
    e.offsets[i].first += kByteOrderMark.size();
    e.offsets[i].second += kByteOrderMark.size();
    e.char_offsets[i].first += 1;
    e.char_offsets[i].second += 1;
  }
  const auto& bos = m.tokenizer.bos_id;
  if (options.add_special_tokens && m.tokenizer.add_bos && bos && (e.ids.empty() || e.ids.front() != *bos)) {
    e.ids.insert(e.ids.begin(), *bos);
    const std::vector<std::string> bos_token = tokenizer.tokens({*bos});  // Error if the tokenizer lacks it
    e.tokens.insert(e.tokens.begin(), bos_token.front());
    e.offsets.insert(e.offsets.begin(), {0, 0});
    e.char_offsets.insert(e.char_offsets.begin(), {0, 0});
    e.special.insert(e.special.begin(), 1);
    e.type_ids.insert(e.type_ids.begin(), 0);
    e.sequence_ids.insert(e.sequence_ids.begin(), -1);
  }
  size_t counts[2] = {0, 0};
  for (int32_t s : e.sequence_ids) {
    if (s >= 0) ++counts[s];
  }
  if (counts[0] == 0) throw Error(ErrorCode::kInvalidArgument, "the text gives no tokens: there is nothing to run");
  if (pair && counts[1] == 0) {
    throw Error(ErrorCode::kInvalidArgument, "the pair's second text gives no tokens");
  }
  const size_t added = e.size() - counts[0] - counts[1];
  if (options.truncation) {
    const int64_t max_length = options.max_length.value_or(m.max_positions);
    if (max_length > m.max_positions) {
      throw Error(ErrorCode::kInvalidArgument, "max_length " + std::to_string(max_length) +
                                                   " is more than the model's " + std::to_string(m.max_positions) +
                                                   " positions");
    }
    const size_t least = added + (pair ? 2 : 1);  // every text keeps a token
    if (max_length < static_cast<int64_t>(least)) {
      throw Error(ErrorCode::kInvalidArgument, "max_length " + std::to_string(max_length) +
                                                   " leaves no room for the text: " + std::to_string(added) +
                                                   " special tokens are added around it");
    }
    if (static_cast<int64_t>(e.size()) > max_length) {
      const auto [keep0, keep1] =
          truncated_lengths(counts[0], counts[1], static_cast<size_t>(max_length) - added, pair.has_value());
      const size_t limit[2] = {keep0, keep1};
      size_t seen[2] = {0, 0};
      keep_tokens(e, [&](size_t k) {
        const int32_t s = e.sequence_ids[k];
        return s < 0 || seen[s]++ < limit[s];
      });
    }
  } else if (options.max_length) {
    throw Error(ErrorCode::kInvalidArgument, "max_length is given without truncation (truncation=true cuts texts "
                                             "to max_length tokens)");
  }
  return e;
}

const Tokenizer& tokenizer_of(const ModelImpl& impl) {
  if (!impl.tokenizer) {
    throw Error(ErrorCode::kUnsupported, "model file '" + impl.path +
                                             "' has no tokenizer.json, so it takes token ids only (export it from a "
                                             "directory that has one, or add one with `attnprox set-tokenizer`)");
  }
  return *impl.tokenizer;
}
}  // namespace

Encoding Model::encode(std::string_view text, const TextOptions& options) const {
  return encode_for_model(tokenizer_of(*impl_), *impl_->manifest, text, std::nullopt, options);
}

Encoding Model::encode_pair(std::string_view text, std::string_view pair, const TextOptions& options) const {
  return encode_for_model(tokenizer_of(*impl_), *impl_->manifest, text, pair, options);
}

void Model::check_ids(const std::vector<int64_t>& ids) const {
  attnprox::check_ids(*impl_->manifest, ids, "the input ");
}

Result Model::run_text(std::string_view text, const TextOptions& options) const {
  return std::move(run_texts({std::string(text)}, options).front());
}

Result Model::run_text_pair(std::string_view text, std::string_view pair, const TextOptions& options) const {
  std::vector<Encoding> encodings{encode_pair(text, pair, options)};
  return std::move(
      run_encoded({std::string(text)}, std::move(encodings), {std::string(pair)}, RunOptions{options.layers}).front());
}

std::vector<Result> Model::run_texts(const std::vector<std::string>& texts, const TextOptions& options) const {
  const Tokenizer& tokenizer = tokenizer_of(*impl_);
  if (texts.empty()) throw Error(ErrorCode::kInvalidArgument, "no texts given: there is nothing to run");
  std::vector<Encoding> encodings;
  for (const std::string& text : texts) {
    encodings.push_back(encode_for_model(tokenizer, *impl_->manifest, text, std::nullopt, options));
  }
  return run_encoded(texts, std::move(encodings), {}, RunOptions{options.layers});
}

std::vector<Result> Model::run_encoded(const std::vector<std::string>& texts, std::vector<Encoding> encodings,
                                       const std::vector<std::string>& pairs, const RunOptions& options) const {
  if (texts.size() != encodings.size() || (!pairs.empty() && pairs.size() != texts.size())) {
    throw Error(ErrorCode::kInvalidArgument, std::to_string(texts.size()) + " texts, " +
                                                 std::to_string(pairs.size()) + " pairs and " +
                                                 std::to_string(encodings.size()) + " encodings given");
  }
  std::vector<std::vector<int64_t>> batch, types;
  for (size_t k = 0; k < encodings.size(); ++k) {
    Encoding& e = encodings[k];
    const size_t n = e.ids.size();
    if (e.type_ids.empty()) e.type_ids.assign(n, 0);
    if (e.sequence_ids.empty()) {  // as the tokenizer marks them: added tokens cover nothing of the text
      for (size_t i = 0; i < n && i < e.offsets.size(); ++i) {
        e.sequence_ids.push_back(e.special[i] && e.offsets[i] == std::pair<size_t, size_t>{0, 0} ? -1 : 0);
      }
    }
    if (e.tokens.size() != n || e.offsets.size() != n || e.char_offsets.size() != n || e.special.size() != n ||
        e.type_ids.size() != n || e.sequence_ids.size() != n) {
      throw Error(ErrorCode::kInvalidArgument, "encoding " + std::to_string(k) +
                                                   " is inconsistent: ids, tokens, offsets, special, type_ids and "
                                                   "sequence_ids differ in length");
    }
    for (size_t i = 0; i < n; ++i) {
      const int32_t s = e.sequence_ids[i];
      if (s < -1 || s > 1 || (s == 1 && pairs.empty())) {
        throw Error(ErrorCode::kInvalidArgument, "encoding " + std::to_string(k) + " has sequence id " +
                                                     std::to_string(s) + " at token " + std::to_string(i) +
                                                     ", expected -1, 0" + (pairs.empty() ? "" : " or 1"));
      }
      const std::string& source = s == 1 ? pairs[k] : texts[k];
      const auto [start, end] = e.offsets[i];
      if (start > end || end > source.size()) {
        throw Error(ErrorCode::kInvalidArgument, "encoding " + std::to_string(k) + " has offsets [" +
                                                     std::to_string(start) + ", " + std::to_string(end) +
                                                     ") outside its text of " + std::to_string(source.size()) +
                                                     " bytes");
      }
    }
    batch.push_back(e.ids);
    types.emplace_back(e.type_ids.begin(), e.type_ids.end());
  }
  std::vector<Result> results;
  std::vector<std::shared_ptr<ResultData>> data = run_sequences(*impl_, batch, options.layers, types);
  for (size_t k = 0; k < data.size(); ++k) {
    data[k]->text = texts[k];
    if (!pairs.empty()) data[k]->text_pair = pairs[k];
    data[k]->encoding = std::move(encodings[k]);
    results.push_back(Result(std::move(data[k])));
  }
  return results;
}

}  // namespace attnprox
