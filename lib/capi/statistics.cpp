// The C ABI: attention statistics (the section "attention statistics" of include/attnprox/attnprox.h).
#include "internal.hpp"

using namespace attnprox::capi;

extern "C" {

apx_status apx_result_attention_entropy(const apx_result* result, int32_t layer, int32_t normalized, double temperature,
                                        double* out, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    deliver(r.attention_entropy(layer, normalized != 0, {temperature}), at::kDouble, out, capacity, needed);
  });
}

apx_status apx_result_attention_stats(const apx_result* result, int32_t layer, int32_t head, double temperature,
                                      apx_attention_stats* stats) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    check_report(stats, "stats");
    const attnprox::AttentionStatistics s = r.attention_stats(layer, head_arg(head), {temperature});
    report_out(stats_report(s), stats, "stats");
  });
}

apx_status apx_result_top_arcs(const apx_result* result, int32_t layer, int32_t head, int64_t query, int64_t k,
                               double temperature, int64_t* keys, double* weights, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    const std::vector<attnprox::metrics::Arc> arcs = r.top_arcs(query, k, layer, head_arg(head), {temperature});
    std::vector<int64_t> key_list;
    std::vector<double> weight_list;
    for (const auto& arc : arcs) {
      key_list.push_back(arc.key);
      weight_list.push_back(arc.weight);
    }
    if (keys || weights) {
      need(keys, "keys");
      need(weights, "weights");
    }
    deliver(key_list, keys, capacity, needed);
    deliver(weight_list, weights, capacity, needed);
  });
}

apx_status apx_result_attention_maxima(const apx_result* result, int32_t layer, int32_t head, double temperature,
                                       double* max_weights, int64_t* argmax_keys, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    if (max_weights || argmax_keys) {
      need(max_weights, "max_weights");
      need(argmax_keys, "argmax_keys");
    }
    const attnprox::AttentionStatistics s = r.attention_stats(layer, head_arg(head), {temperature});
    deliver(s.max_weights, at::kDouble, max_weights, capacity, needed);
    deliver(s.argmax_keys, at::kLong, argmax_keys, capacity, needed);
  });
}

apx_status apx_result_linking_heads(const apx_result* result, int64_t a, int64_t b, double temperature,
                                    apx_head_link* out, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    std::vector<apx_head_link> links;
    for (const auto& link : r.linking_heads(a, b, {temperature})) links.push_back({link.layer, link.head, link.score});
    deliver(links, out, capacity, needed);
  });
}

}  // extern "C"
