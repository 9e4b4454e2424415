// attnprox._core: the Python binding of the C++ engine. The public Python API lives in attnprox/*.py, which
// wraps these objects; arrays cross as NumPy arrays that share the result tensors' memory where they can.
#include <ATen/ATen.h>
#include <ATen/DLConvertor.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "attnprox/engine.hpp"
#include "attnprox/tokenizer.hpp"

namespace py = pybind11;
using attnprox::ErrorCode;

namespace {

/// A CPU NumPy array that owns a reference to the tensor it views (float32 or float64; others converted).
py::array to_numpy(at::Tensor tensor) {
  {
    py::gil_scoped_release release;
    tensor = tensor.to(at::kCPU);
    if (tensor.scalar_type() != at::kDouble && tensor.scalar_type() != at::kBool) tensor = tensor.to(at::kFloat);
    tensor = tensor.contiguous();
  }
  auto* owner = new at::Tensor(tensor);
  py::capsule free_owner(owner, [](void* p) { delete static_cast<at::Tensor*>(p); });
  std::vector<py::ssize_t> shape(tensor.sizes().begin(), tensor.sizes().end());
  if (tensor.scalar_type() == at::kDouble) {
    return py::array_t<double>(shape, static_cast<double*>(tensor.data_ptr()), free_owner);
  }
  if (tensor.scalar_type() == at::kBool) {
    return py::array_t<bool>(shape, static_cast<bool*>(tensor.data_ptr()), free_owner);
  }
  return py::array_t<float>(shape, static_cast<float*>(tensor.data_ptr()), free_owner);
}

/// An int64 NumPy array, copied from a tensor of integers.
py::array_t<int64_t> int64_numpy(const at::Tensor& tensor) {
  const at::Tensor cpu = tensor.to(at::kCPU, at::kLong).contiguous();
  py::array_t<int64_t> out(cpu.numel());
  std::copy_n(cpu.data_ptr<int64_t>(), cpu.numel(), out.mutable_data());
  return out;
}

at::Tensor from_numpy(const py::array_t<float, py::array::c_style | py::array::forcecast>& array) {
  std::vector<int64_t> shape(array.shape(), array.shape() + array.ndim());
  return at::from_blob(const_cast<float*>(array.data()), shape, at::kFloat).clone();
}

/// A DLPack capsule sharing the tensor's memory (and device): torch.utils.dlpack.from_dlpack takes it as it is.
py::object to_dlpack(const at::Tensor& tensor) {
  DLManagedTensor* managed = at::toDLPack(tensor);
  PyObject* capsule = PyCapsule_New(managed, "dltensor", [](PyObject* self) {
    if (PyCapsule_IsValid(self, "dltensor")) {  // never consumed: free it here
      auto* unused = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(self, "dltensor"));
      unused->deleter(unused);
    }
  });
  if (!capsule) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(capsule);
}

/// NumPy (on the CPU, float32/float64) or, for `torch`, a DLPack capsule of the tensor as it is.
py::object out(at::Tensor tensor, bool torch) {
  if (torch) return to_dlpack(tensor.contiguous());
  return to_numpy(std::move(tensor));
}

py::dict ape_dict(std::optional<double> value, std::optional<double> normalized, int64_t undefined_rows,
                  py::array tokens, py::array defined, const std::string& policy) {
  py::dict d;
  d["value"] = value ? py::cast(*value) : py::none();
  d["normalized"] = normalized ? py::cast(*normalized) : py::none();
  d["undefined_rows"] = undefined_rows;
  d["tokens"] = std::move(tokens);
  d["defined"] = std::move(defined);
  d["policy"] = policy;
  return d;
}

/// Runs a computation without the GIL.
template <typename F>
auto released(F&& f) {
  py::gil_scoped_release release;
  return f();
}

std::optional<attnprox::DType> dtype_arg(const std::optional<std::string>& name) {
  if (!name) return std::nullopt;
  return attnprox::parse_dtype(*name);
}

const char* exception_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "InvalidArgumentError";
    case ErrorCode::kOutOfRange: return "OutOfRangeError";
    case ErrorCode::kNotFound: return "ModelNotFoundError";
    case ErrorCode::kInvalidModel: return "InvalidModelError";
    case ErrorCode::kUnsupported: return "UnsupportedError";
    case ErrorCode::kRuntime: return "ComputeError";
  }
  return "Error";
}

}  // namespace

void bind_metrics(py::module_& m);  // metrics_bindings.cpp

PYBIND11_MODULE(_core, m) {
  m.doc() = "attnprox C++ engine (use the `attnprox` package, not this module)";

  py::register_exception_translator([](std::exception_ptr p) {  // NOLINT(performance-unnecessary-value-param)
    try {
      if (p) std::rethrow_exception(p);
    } catch (const attnprox::Error& e) {
      py::object errors = py::module_::import("attnprox.errors");
      // A message may quote bytes of a broken file: decode it leniently (U+FFFD), never lose it.
      const std::string message = e.what();
      py::object text = py::reinterpret_steal<py::object>(
          PyUnicode_DecodeUTF8(message.data(), static_cast<Py_ssize_t>(message.size()), "replace"));
      if (!text) {
        PyErr_Clear();
        text = py::str("(a message that could not be decoded)");
      }
      PyErr_SetObject(errors.attr(exception_name(e.code())).ptr(), text.ptr());
    }
  });

  bind_metrics(m);
  m.def("version", &attnprox::version);
  m.def("torch_version", &attnprox::torch_version);
  m.def("set_log_level", &attnprox::set_log_level, py::arg("level"));

  py::class_<attnprox::Model>(m, "Model")
      .def_property_readonly("manifest_json", [](const attnprox::Model& self) { return self.manifest().raw_json; })
      .def_property_readonly("path", &attnprox::Model::path)
      .def_property_readonly("device", &attnprox::Model::device)
      .def_property_readonly("dtype", [](const attnprox::Model& self) { return attnprox::to_string(self.dtype()); })
      .def_property_readonly("tokenizer_json", &attnprox::Model::tokenizer_json)
      .def_property_readonly("tokenizer",
                             [](const attnprox::Model& self) -> std::optional<attnprox::Tokenizer> {
                               if (const attnprox::Tokenizer* t = self.tokenizer()) return *t;
                               return std::nullopt;
                             })
      .def_property_readonly("layers", &attnprox::Model::layers)
      .def(
          "run_texts",
          [](const attnprox::Model& self, const std::vector<std::string>& texts, bool add_special_tokens,
             const std::vector<int>& layers) {
            attnprox::TextOptions options;
            options.add_special_tokens = add_special_tokens;
            options.layers = layers;
            return released([&] { return self.run_texts(texts, options); });
          },
          py::arg("texts"), py::arg("add_special_tokens") = true, py::arg("layers") = std::vector<int>{})
      .def(
          "encode",
          [](const attnprox::Model& self, const std::string& text, bool add_special_tokens, bool truncation,
             std::optional<int64_t> max_length) {
            attnprox::TextOptions options;
            options.add_special_tokens = add_special_tokens;
            options.truncation = truncation;
            options.max_length = max_length;
            return released([&] { return self.encode(text, options); });
          },
          py::arg("text"), py::arg("add_special_tokens") = true, py::arg("truncation") = false,
          py::arg("max_length") = py::none())
      .def(
          "encode_pair",
          [](const attnprox::Model& self, const std::string& text, const std::string& pair, bool add_special_tokens,
             bool truncation, std::optional<int64_t> max_length) {
            attnprox::TextOptions options;
            options.add_special_tokens = add_special_tokens;
            options.truncation = truncation;
            options.max_length = max_length;
            return released([&] { return self.encode_pair(text, pair, options); });
          },
          py::arg("text"), py::arg("pair"), py::arg("add_special_tokens") = true, py::arg("truncation") = false,
          py::arg("max_length") = py::none())
      .def(
          "run_encoded",
          [](const attnprox::Model& self, const std::vector<std::string>& texts,
             std::vector<attnprox::Encoding> encodings, const std::vector<std::string>& pairs,
             const std::vector<int>& layers) {
            return released(
                [&] { return self.run_encoded(texts, std::move(encodings), pairs, attnprox::RunOptions{layers}); });
          },
          py::arg("texts"), py::arg("encodings"), py::arg("pairs") = std::vector<std::string>{},
          py::arg("layers") = std::vector<int>{})
      .def("check_ids", &attnprox::Model::check_ids, py::arg("ids"))
      .def(
          "run_ids",
          [](const attnprox::Model& self, const std::vector<int64_t>& ids, const std::vector<int>& layers) {
            return released([&] { return self.run(ids, attnprox::RunOptions{layers}); });
          },
          py::arg("ids"), py::arg("layers") = std::vector<int>{})
      .def(
          "run_batch",
          [](const attnprox::Model& self, const std::vector<std::vector<int64_t>>& batch,
             const std::vector<int>& layers) {
            return released([&] { return self.run_batch(batch, attnprox::RunOptions{layers}); });
          },
          py::arg("batch"), py::arg("layers") = std::vector<int>{});

  m.def(
      "load",
      [](const std::string& path, const std::string& device, const std::optional<std::string>& dtype, int threads,
         const std::vector<int>& layers) {
        attnprox::LoadOptions options;
        options.device = device;
        options.dtype = dtype_arg(dtype);
        options.threads = threads;
        options.layers = layers;
        return released([&] { return attnprox::Model::load(path, options); });
      },
      py::arg("path"), py::arg("device") = "cpu", py::arg("dtype") = py::none(), py::arg("threads") = 0,
      py::arg("layers") = std::vector<int>{});

  py::class_<attnprox::Result>(m, "Result")
      .def_property_readonly("ids", &attnprox::Result::ids)
      .def_property_readonly("num_tokens", &attnprox::Result::num_tokens)
      .def_property_readonly("layers", &attnprox::Result::layers)
      .def_property_readonly("text", &attnprox::Result::text)
      .def_property_readonly("text_pair", &attnprox::Result::text_pair)
      .def_property_readonly("type_ids", &attnprox::Result::type_ids)
      .def_property_readonly("sequence_ids", &attnprox::Result::sequence_ids)
      .def_property_readonly("tokens", &attnprox::Result::tokens)
      .def_property_readonly("offsets", &attnprox::Result::offsets)
      .def_property_readonly("char_offsets", &attnprox::Result::char_offsets)
      .def(
          "queries",
          [](const attnprox::Result& self, int layer, bool torch, bool rope) {
            return out(released([&] { return self.queries(layer, rope); }), torch);
          },
          py::arg("layer"), py::arg("torch") = false, py::arg("rope") = true)
      .def(
          "keys",
          [](const attnprox::Result& self, int layer, bool torch, bool rope) {
            return out(released([&] { return self.keys(layer, rope); }), torch);
          },
          py::arg("layer"), py::arg("torch") = false, py::arg("rope") = true)
      .def(
          "attention",
          [](const attnprox::Result& self, int layer, std::optional<int> head, double temperature, bool torch) {
            attnprox::AttentionOptions options{temperature};
            return out(released([&] { return head ? self.attention(layer, *head, options) : self.attention(layer, options); }),
                       torch);
          },
          py::arg("layer"), py::arg("head") = py::none(), py::arg("temperature") = 1.0, py::arg("torch") = false)
      .def(
          "average_attention",
          [](const attnprox::Result& self, const std::vector<int>& layers, const std::vector<int>& heads,
             double temperature, bool torch) {
            attnprox::AttentionOptions options{temperature};
            return out(released([&] { return self.average_attention(layers, heads, options); }), torch);
          },
          py::arg("layers"), py::arg("heads"), py::arg("temperature") = 1.0, py::arg("torch") = false)
      .def(
          "proximity",
          [](const attnprox::Result& self, int layer, bool torch, bool rope) {
            return out(released([&] { return self.proximity(layer, {rope}); }), torch);
          },
          py::arg("layer"), py::arg("torch") = false, py::arg("rope") = false)
      .def(
          "ap_tokens",
          [](const attnprox::Result& self, int layer, bool torch, bool rope) {
            return out(released([&] { return self.ap_tokens(layer, {rope}); }), torch);
          },
          py::arg("layer"), py::arg("torch") = false, py::arg("rope") = false)
      .def(
          "ap",
          [](const attnprox::Result& self, int layer, bool rope) {
            return released([&] { return self.ap(layer, {rope}); });
          },
          py::arg("layer"), py::arg("rope") = false)
      .def(
          "subset_proximity",
          [](const attnprox::Result& self, const std::vector<int64_t>& subset, int layer, bool torch, bool rope) {
            return out(released([&] { return self.subset_proximity(subset, layer, {rope}); }), torch);
          },
          py::arg("subset"), py::arg("layer"), py::arg("torch") = false, py::arg("rope") = false)
      .def("ape",
           [](const attnprox::Result& self, int layer, const std::string& policy, bool rope) {
             const attnprox::ApeResult r =
                 released([&] { return self.ape(layer, attnprox::metrics::parse_ape_policy(policy), {rope}); });
             return ape_dict(r.value, r.normalized, r.undefined_rows, to_numpy(r.tokens), to_numpy(r.defined),
                             attnprox::metrics::to_string(r.policy));
           },
           py::arg("layer"), py::arg("policy"), py::arg("rope") = false)
      .def(
          "average_proximity",
          [](const attnprox::Result& self, const std::vector<int>& layers, const std::vector<int>& heads,
             bool symmetric, bool torch, bool rope) {
            return out(released([&] { return self.average_proximity(layers, heads, symmetric, {rope}); }), torch);
          },
          py::arg("layers"), py::arg("heads"), py::arg("symmetric"), py::arg("torch") = false,
          py::arg("rope") = false)
      .def(
          "attention_entropy",
          [](const attnprox::Result& self, int layer, bool normalized, double temperature, bool torch) {
            attnprox::AttentionOptions options{temperature};
            return out(released([&] { return self.attention_entropy(layer, normalized, options); }), torch);
          },
          py::arg("layer"), py::arg("normalized"), py::arg("temperature"), py::arg("torch") = false)
      .def("attention_stats",
           [](const attnprox::Result& self, int layer, std::optional<int> head, double temperature) {
             attnprox::AttentionOptions options{temperature};
             const attnprox::AttentionStatistics s =
                 released([&] { return self.attention_stats(layer, head, options); });
             py::dict d;
             d["entropy"] = to_numpy(s.entropy);
             d["normalized_entropy"] = to_numpy(s.normalized_entropy);
             d["mean_entropy"] = s.mean_entropy;
             d["mean_normalized_entropy"] = s.mean_normalized_entropy;
             d["max_weight"] = s.max_weight;
             d["max_query"] = s.max_query;
             d["max_key"] = s.max_key;
             d["max_weights"] = to_numpy(s.max_weights);
             d["argmax_keys"] = int64_numpy(s.argmax_keys);
             d["received"] = to_numpy(s.received);
             d["most_attended"] = s.most_attended;
             return d;
           })
      .def("top_arcs",
           [](const attnprox::Result& self, int64_t query, int64_t k, int layer, std::optional<int> head,
              double temperature) {
             attnprox::AttentionOptions options{temperature};
             std::vector<std::pair<int64_t, double>> out;
             for (const auto& arc : released([&] { return self.top_arcs(query, k, layer, head, options); })) {
               out.emplace_back(arc.key, arc.weight);
             }
             return out;
           })
      .def("linking_heads", [](const attnprox::Result& self, int64_t a, int64_t b, double temperature) {
        attnprox::AttentionOptions options{temperature};
        std::vector<std::tuple<int, int, double>> out;
        for (const auto& link : released([&] { return self.linking_heads(a, b, options); })) {
          out.emplace_back(link.layer, link.head, link.score);
        }
        return out;
      });

  py::class_<attnprox::Encoding>(m, "Encoding")
      .def(py::init([](std::vector<int64_t> ids, std::vector<std::string> tokens,
                       std::vector<std::pair<size_t, size_t>> offsets,
                       std::vector<std::pair<size_t, size_t>> char_offsets, std::vector<uint8_t> special,
                       std::vector<uint32_t> type_ids, std::vector<int32_t> sequence_ids) {
             return attnprox::Encoding{std::move(ids),     std::move(tokens),   std::move(offsets),
                                       std::move(char_offsets), std::move(special), std::move(type_ids),
                                       std::move(sequence_ids)};
           }),
           py::arg("ids"), py::arg("tokens"), py::arg("offsets"), py::arg("char_offsets"), py::arg("special"),
           py::arg("type_ids") = std::vector<uint32_t>{}, py::arg("sequence_ids") = std::vector<int32_t>{})
      .def_readonly("type_ids", &attnprox::Encoding::type_ids)
      .def_readonly("sequence_ids", &attnprox::Encoding::sequence_ids)
      .def_readonly("ids", &attnprox::Encoding::ids)
      .def_readonly("tokens", &attnprox::Encoding::tokens)
      .def_readonly("offsets", &attnprox::Encoding::offsets)
      .def_readonly("char_offsets", &attnprox::Encoding::char_offsets)
      .def_readonly("special", &attnprox::Encoding::special)
      .def("__len__", &attnprox::Encoding::size);

  py::class_<attnprox::Tokenizer>(m, "Tokenizer")
      .def_static("from_file", &attnprox::Tokenizer::from_file, py::arg("path"))
      .def_static("from_json", &attnprox::Tokenizer::from_json, py::arg("json"))
      .def_static("byte_level_bpe", &attnprox::Tokenizer::byte_level_bpe, py::arg("vocab_json"), py::arg("merges_txt"))
      .def_static("wordpiece", &attnprox::Tokenizer::wordpiece, py::arg("vocab_txt"), py::arg("lowercase") = true)
      .def(
          "encode",
          [](const attnprox::Tokenizer& self, const std::string& text, bool add_special_tokens) {
            return released([&] { return self.encode(text, add_special_tokens); });
          },
          py::arg("text"), py::arg("add_special_tokens") = false)
      .def(
          "encode_pair",
          [](const attnprox::Tokenizer& self, const std::string& text, const std::string& pair,
             bool add_special_tokens) {
            return released([&] { return self.encode_pair(text, pair, add_special_tokens); });
          },
          py::arg("text"), py::arg("pair"), py::arg("add_special_tokens") = false)
      .def(
          "encode_batch",
          [](const attnprox::Tokenizer& self, const std::vector<std::string>& texts, bool add_special_tokens) {
            return released([&] {
              std::vector<attnprox::Encoding> out;
              out.reserve(texts.size());
              for (const std::string& text : texts) out.push_back(self.encode(text, add_special_tokens));
              return out;
            });
          },
          py::arg("texts"), py::arg("add_special_tokens") = false)
      .def("decode", &attnprox::Tokenizer::decode, py::arg("ids"), py::arg("skip_special_tokens") = false)
      .def("tokens", &attnprox::Tokenizer::tokens, py::arg("ids"))
      .def("token_to_id", &attnprox::Tokenizer::token_to_id, py::arg("token"))
      .def("is_special", &attnprox::Tokenizer::is_special, py::arg("id"))
      .def_property_readonly("vocab_size", &attnprox::Tokenizer::vocab_size);

  m.def(
      "attention_weights",
      [](const py::array_t<float, py::array::c_style | py::array::forcecast>& queries,
         const py::array_t<float, py::array::c_style | py::array::forcecast>& keys, double scaling, bool causal,
         std::optional<int64_t> sliding_window, std::optional<double> softcap, const std::vector<double>& sinks,
         double temperature) {
        attnprox::AttentionSpec spec;
        spec.scaling = scaling;
        spec.causal = causal;
        spec.sliding_window = sliding_window;
        spec.softcap = softcap;
        spec.sinks = sinks;
        spec.temperature = temperature;
        at::Tensor q = from_numpy(queries), k = from_numpy(keys);
        return to_numpy(released([&] { return attnprox::attention_weights(q, k, spec); }));
      },
      py::arg("queries"), py::arg("keys"), py::arg("scaling"), py::arg("causal"),
      py::arg("sliding_window") = py::none(), py::arg("softcap") = py::none(), py::arg("sinks") = std::vector<double>{},
      py::arg("temperature") = 1.0);
}
