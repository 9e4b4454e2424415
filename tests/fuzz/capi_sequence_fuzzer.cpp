// libFuzzer target: the C ABI driven by random call sequences on random handles (live, freed, made up) and random
// arguments (ids, layers, heads, temperatures, capacities, enum values, texts). Every call must return a status of
// the enum, leave a message exactly when it fails, and write no more than the capacity it was given; results that
// succeed must be finite. Two small model files are loaded once (ATTNPROX_FUZZ_MODELS: a folder with bert-text.apx
// and llama.apx, as tests/tools/make_test_models.py writes them).
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "attnprox/attnprox.h"

namespace {

apx_model* g_models[2] = {nullptr, nullptr};

void fail(const char* what) {
  std::fprintf(stderr, "capi_sequence_fuzzer: %s (last error: %s)\n", what, apx_last_error());
  std::abort();
}

apx_status check(apx_status status) {
  if (status < APX_OK || status > APX_ERROR_INTERNAL) fail("status outside the enum");
  if (status == APX_ERROR_INTERNAL) fail("internal error");
  const bool message = apx_last_error()[0] != '\0';
  if ((status == APX_OK) == message) fail(status == APX_OK ? "success left a message" : "failure without a message");
  return status;
}

void finite(const double* values, size_t count, const char* what) {
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) fail(what);
  }
}
void finite(const float* values, size_t count, const char* what) {
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) fail(what);
  }
}

double temperature(FuzzedDataProvider& in) {
  static const double table[] = {1.0, 0.5, 2.0, 0.0, -1.0, 1e-300, 5e-324, 1e300,
                                 std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()};
  return in.ConsumeBool() ? table[in.ConsumeIntegralInRange<size_t>(0, 9)] : in.ConsumeFloatingPoint<double>();
}

/// A capacity and a buffer of exactly that many elements (the library may write only that many).
template <typename T>
std::vector<T> buffer(FuzzedDataProvider& in) {
  return std::vector<T>(in.ConsumeIntegralInRange<size_t>(0, 4096));
}

int32_t small(FuzzedDataProvider& in) {
  return in.ConsumeBool() ? in.ConsumeIntegralInRange<int32_t>(-4, 4) : in.ConsumeIntegral<int32_t>();
}

int64_t id(FuzzedDataProvider& in) {
  return in.ConsumeBool() ? in.ConsumeIntegralInRange<int64_t>(0, 120) : in.ConsumeIntegral<int64_t>();
}

template <typename E>
E any_enum(FuzzedDataProvider& in) {
  const int value = in.ConsumeBool() ? in.ConsumeIntegralInRange<int>(0, 5) : in.ConsumeIntegral<int>();
  E out;
  std::memcpy(&out, &value, sizeof out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("ATTNPROX_FUZZ_MODELS");
  if (!dir) {
    std::fprintf(stderr, "set ATTNPROX_FUZZ_MODELS to the test models folder\n");
    std::exit(2);
  }
  const std::string names[2] = {"bert-text.apx", "llama.apx"};
  for (int k = 0; k < 2; ++k) {
    if (apx_model_load((std::string(dir) + "/" + names[k]).c_str(), nullptr, &g_models[k]) != APX_OK) {
      std::fprintf(stderr, "cannot load %s: %s\n", names[k].c_str(), apx_last_error());
      std::exit(2);
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<apx_result*> results;        // live, freed (the library must tell) or made up
  std::vector<apx_tokenizer*> tokenizers;  // likewise
  std::vector<apx_result*> live_results;
  std::vector<apx_tokenizer*> live_tokenizers;
  auto pick_result = [&]() -> apx_result* {
    if (results.empty() || in.ConsumeIntegralInRange<int>(0, 15) == 0) {
      return in.ConsumeBool() ? nullptr : reinterpret_cast<apx_result*>(in.ConsumeIntegral<uintptr_t>() | 8);
    }
    return results[in.ConsumeIntegralInRange<size_t>(0, results.size() - 1)];
  };
  auto pick_tokenizer = [&]() -> apx_tokenizer* {
    if (tokenizers.empty() || in.ConsumeIntegralInRange<int>(0, 15) == 0) return nullptr;
    return tokenizers[in.ConsumeIntegralInRange<size_t>(0, tokenizers.size() - 1)];
  };
  for (int step = 0; step < 24 && in.remaining_bytes() > 0; ++step) {
    apx_model* model = g_models[in.ConsumeIntegralInRange<int>(0, 1)];
    size_t needed = 0;
    switch (in.ConsumeIntegralInRange<int>(0, 15)) {
      case 0: {  // run ids
        std::vector<int64_t> ids(in.ConsumeIntegralInRange<size_t>(0, 20));
        for (int64_t& x : ids) x = id(in);
        apx_result* r = nullptr;
        if (check(apx_model_run_ids(model, ids.data(), ids.size(), &r)) == APX_OK) {
          results.push_back(r);
          live_results.push_back(r);
        }
        break;
      }
      case 1: {  // run text
        const std::string text = in.ConsumeRandomLengthString(80);
        apx_text_params params = apx_text_default_params();
        params.add_special_tokens = in.ConsumeBool();
        params.truncation = in.ConsumeBool();
        params.max_length = in.ConsumeIntegralInRange<int64_t>(-2, 40);
        apx_result* r = nullptr;
        if (check(apx_model_run_text(model, text.data(), text.size(), in.ConsumeBool() ? &params : nullptr, &r)) ==
            APX_OK) {
          results.push_back(r);
          live_results.push_back(r);
        }
        break;
      }
      case 2: {  // run a batch
        const size_t batch = in.ConsumeIntegralInRange<size_t>(0, 3);
        std::vector<std::vector<int64_t>> seqs(batch);
        std::vector<const int64_t*> pointers;
        std::vector<size_t> counts;
        for (auto& s : seqs) {
          s.resize(in.ConsumeIntegralInRange<size_t>(0, 8));
          for (int64_t& x : s) x = id(in);
          pointers.push_back(s.data());
          counts.push_back(s.size());
        }
        std::vector<apx_result*> out(batch + 1, nullptr);
        if (check(apx_model_run_batch(model, pointers.data(), counts.data(), batch, out.data())) == APX_OK) {
          for (size_t b = 0; b < batch; ++b) {
            results.push_back(out[b]);
            live_results.push_back(out[b]);
          }
        }
        break;
      }
      case 3: {
        double ap = 0;
        if (check(apx_result_ap(pick_result(), small(in), &ap)) == APX_OK) finite(&ap, 1, "ap");
        break;
      }
      case 4: {
        auto out = buffer<float>(in);
        if (check(apx_result_attention(pick_result(), small(in), small(in), temperature(in), out.data(), out.size(),
                                       &needed)) == APX_OK) {
          finite(out.data(), std::min(needed, out.size()), "attention");
        }
        break;
      }
      case 5: {
        auto out = buffer<double>(in);
        std::vector<int64_t> subset(in.ConsumeIntegralInRange<size_t>(0, 6));
        for (int64_t& x : subset) x = in.ConsumeIntegralInRange<int64_t>(-2, 12);
        apx_result* r = pick_result();
        const int32_t layer = small(in);
        if (check(apx_result_subset_proximity(r, layer, subset.data(), subset.size(), out.data(), out.size(),
                                              &needed)) == APX_OK) {
          finite(out.data(), std::min(needed, out.size()), "subset proximity");
        }
        if (check(apx_result_ap_tokens(r, layer, out.data(), out.size(), &needed)) == APX_OK) {
          finite(out.data(), std::min(needed, out.size()), "ap_tokens");
        }
        auto prox = buffer<float>(in);
        if (check(apx_result_proximity(r, layer, prox.data(), prox.size(), &needed)) == APX_OK) {
          finite(prox.data(), std::min(needed, prox.size()), "proximity");
        }
        break;
      }
      case 6: {
        auto out = buffer<double>(in);
        apx_ape_report report;
        report.struct_size = sizeof report;
        check(apx_result_ape(pick_result(), small(in), any_enum<apx_ape_policy>(in), &report,
                             in.ConsumeBool() ? out.data() : nullptr, out.size(), &needed));
        break;
      }
      case 7: {
        apx_attention_stats stats;
        stats.struct_size = sizeof stats;
        apx_result* r = pick_result();
        const double t = temperature(in);
        if (check(apx_result_attention_stats(r, small(in), small(in), t, &stats)) == APX_OK) {
          const double values[3] = {stats.mean_entropy, stats.mean_normalized_entropy, stats.max_weight};
          finite(values, 3, "attention stats");
          if (stats.max_weight < 0 || stats.max_weight > 1 + 1e-6) fail("max_weight outside [0, 1]");
        }
        std::vector<int64_t> keys(in.ConsumeIntegralInRange<size_t>(0, 64));
        std::vector<double> weights(keys.size());
        check(apx_result_top_arcs(r, small(in), small(in), id(in), in.ConsumeIntegralInRange<int64_t>(-1, 70), t,
                                  keys.data(), weights.data(), keys.size(), &needed));
        std::vector<apx_head_link> links(in.ConsumeIntegralInRange<size_t>(0, 64));
        check(apx_result_linking_heads(r, id(in), id(in), t, links.data(), links.size(), &needed));
        break;
      }
      case 8: {  // free a result: live, already freed, or made up
        apx_result* r = pick_result();
        apx_result_free(r);
        for (auto& live : live_results) {
          if (live == r) live = nullptr;
        }
        break;
      }
      case 9: {  // tokenizers
        apx_tokenizer* t = nullptr;
        if (in.ConsumeBool()) {
          if (check(apx_model_tokenizer(model, &t)) == APX_OK) {
            tokenizers.push_back(t);
            live_tokenizers.push_back(t);
          }
        } else if (in.ConsumeBool()) {
          const std::string json = in.ConsumeRandomLengthString(200);
          if (check(apx_tokenizer_from_json(json.data(), json.size(), &t)) == APX_OK) {
            tokenizers.push_back(t);
            live_tokenizers.push_back(t);
          }
        } else {
          apx_tokenizer* victim = pick_tokenizer();
          apx_tokenizer_free(victim);
          for (auto& live : live_tokenizers) {
            if (live == victim) live = nullptr;
          }
        }
        break;
      }
      case 10: {
        apx_tokenizer* t = pick_tokenizer();
        const std::string text = in.ConsumeRandomLengthString(80);
        apx_encoding* e = nullptr;
        if (check(apx_tokenizer_encode(t, text.data(), text.size(), in.ConsumeBool(), &e)) == APX_OK) {
          apx_encoding_free(e);
        }
        std::vector<int64_t> ids(in.ConsumeIntegralInRange<size_t>(0, 10));
        for (int64_t& x : ids) x = id(in);
        char* decoded = nullptr;
        if (check(apx_tokenizer_decode(t, ids.data(), ids.size(), in.ConsumeBool(), &decoded)) == APX_OK) {
          apx_string_free(decoded);
        }
        int64_t token_id = 0;
        check(apx_tokenizer_token_to_id(t, text.c_str(), &token_id));
        break;
      }
      case 11: {  // measurements on arrays, with any dtype value and shape
        const int64_t heads = in.ConsumeIntegralInRange<int64_t>(-1, 3), kv = in.ConsumeIntegralInRange<int64_t>(-1, 3);
        const int64_t tokens = in.ConsumeIntegralInRange<int64_t>(-1, 5), dim = in.ConsumeIntegralInRange<int64_t>(-1, 4);
        std::vector<double> values(256);
        for (double& v : values) v = in.ConsumeBool() ? in.ConsumeFloatingPoint<double>() : in.ConsumeProbability<double>();
        apx_queries_keys qk;
        qk.queries = values.data();
        qk.keys = values.data() + 128;
        qk.dtype = any_enum<apx_dtype>(in);
        qk.heads = heads;
        qk.kv_heads = kv;
        qk.tokens = tokens;
        qk.head_dim = dim;
        if (heads * tokens * dim > 64 || kv * tokens * dim > 64) break;  // stay within the arrays
        double ap = 0;
        if (check(apx_metrics_ap(&qk, &ap)) == APX_OK) finite(&ap, 1, "metrics ap");
        auto out = buffer<double>(in);
        if (check(apx_metrics_proximity(&qk, out.data(), out.size(), &needed)) == APX_OK) {
          finite(out.data(), std::min(needed, out.size()), "metrics proximity");
        }
        apx_ape_report report;
        report.struct_size = sizeof report;
        check(apx_metrics_ape(&qk, any_enum<apx_ape_policy>(in), &report, nullptr, 0, &needed));
        const int64_t n = in.ConsumeIntegralInRange<int64_t>(-1, 8);
        if (n * n <= 64) {
          apx_attention_stats stats;
          stats.struct_size = sizeof stats;
          std::vector<double> entropy(8);
          check(apx_metrics_attention_stats(values.data(), n, n, in.ConsumeBool(), in.ConsumeIntegralInRange<int64_t>(-1, 3),
                                            &stats, entropy.data(), nullptr, entropy.size()));
          check(apx_metrics_ape_of(values.data(), n, any_enum<apx_ape_policy>(in), &report, nullptr, 0, &needed));
          check(apx_metrics_ap_tokens_of(values.data(), n, out.data(), out.size(), &needed));
        }
        break;
      }
      case 12: {  // model facts
        apx_model_info info;
        info.struct_size = in.ConsumeBool() ? sizeof info : in.ConsumeIntegralInRange<size_t>(0, sizeof info);
        check(apx_model_get_info(model, &info));
        char* json = nullptr;
        if (check(apx_model_manifest_json(model, &json)) == APX_OK) apx_string_free(json);
        std::vector<int32_t> layers = buffer<int32_t>(in);
        check(apx_model_captured_layers(model, layers.data(), layers.size(), &needed));
        break;
      }
      case 13: {  // what a result holds
        apx_result* r = pick_result();
        auto out = buffer<float>(in);
        check(apx_result_queries(r, small(in), out.data(), out.size(), &needed));
        check(apx_result_keys(r, small(in), out.data(), out.size(), &needed));
        std::vector<int64_t> ids = buffer<int64_t>(in);
        check(apx_result_ids(r, ids.data(), ids.size(), &needed));
        apx_encoding* e = nullptr;
        if (check(apx_result_encoding(r, &e)) == APX_OK) apx_encoding_free(e);
        break;
      }
      case 14: {  // averages over layers and heads
        std::vector<int32_t> layers(in.ConsumeIntegralInRange<size_t>(0, 4)), heads(in.ConsumeIntegralInRange<size_t>(0, 4));
        for (int32_t& x : layers) x = small(in);
        for (int32_t& x : heads) x = small(in);
        auto out = buffer<float>(in);
        apx_result* r = pick_result();
        if (check(apx_result_average_attention(r, layers.data(), layers.size(), heads.data(), heads.size(),
                                               temperature(in), out.data(), out.size(), &needed)) == APX_OK) {
          finite(out.data(), std::min(needed, out.size()), "average attention");
        }
        if (check(apx_result_average_proximity(r, layers.data(), layers.size(), heads.data(), heads.size(),
                                               in.ConsumeBool(), out.data(), out.size(), &needed)) == APX_OK) {
          finite(out.data(), std::min(needed, out.size()), "average proximity");
        }
        break;
      }
      default: {
        std::vector<double> entropy = buffer<double>(in);
        check(apx_result_attention_entropy(pick_result(), small(in), in.ConsumeBool(), temperature(in),
                                           entropy.data(), entropy.size(), &needed));
        std::vector<double> maxima(entropy.size());
        std::vector<int64_t> argmax(entropy.size());
        check(apx_result_attention_maxima(pick_result(), small(in), small(in), temperature(in), maxima.data(),
                                          argmax.data(), maxima.size(), &needed));
        break;
      }
    }
  }
  for (apx_result* r : live_results) apx_result_free(r);
  for (apx_tokenizer* t : live_tokenizers) apx_tokenizer_free(t);
  return 0;
}
