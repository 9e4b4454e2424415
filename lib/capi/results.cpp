// The C ABI: what a result holds (the section "what a result holds" of include/attnprox/attnprox.h).
#include "internal.hpp"

using namespace attnprox::capi;

extern "C" {

apx_status apx_result_num_tokens(const apx_result* result, size_t* count) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    need(count, "count");
    *count = static_cast<size_t>(r.num_tokens());
  });
}

apx_status apx_result_layers(const apx_result* result, int32_t* out, size_t capacity, size_t* needed) {
  return call([&] {
    const std::vector<int> layers = live(results(), result, "result").result.layers();
    deliver(std::vector<int32_t>(layers.begin(), layers.end()), out, capacity, needed);
  });
}

apx_status apx_result_ids(const apx_result* result, int64_t* out, size_t capacity, size_t* needed) {
  return call([&] { deliver(live(results(), result, "result").result.ids(), out, capacity, needed); });
}

apx_status apx_result_queries(const apx_result* result, int32_t layer, float* out, size_t capacity, size_t* needed) {
  return call(
      [&] { deliver(live(results(), result, "result").result.queries(layer), at::kFloat, out, capacity, needed); });
}

apx_status apx_result_keys(const apx_result* result, int32_t layer, float* out, size_t capacity, size_t* needed) {
  return call(
      [&] { deliver(live(results(), result, "result").result.keys(layer), at::kFloat, out, capacity, needed); });
}

apx_status apx_result_queries_before_rope(const apx_result* result, int32_t layer, float* out, size_t capacity,
                                          size_t* needed) {
  return call([&] {
    deliver(live(results(), result, "result").result.queries(layer, /*rope=*/false), at::kFloat, out, capacity, needed);
  });
}

apx_status apx_result_keys_before_rope(const apx_result* result, int32_t layer, float* out, size_t capacity,
                                       size_t* needed) {
  return call([&] {
    deliver(live(results(), result, "result").result.keys(layer, /*rope=*/false), at::kFloat, out, capacity, needed);
  });
}

apx_status apx_result_attention(const apx_result* result, int32_t layer, int32_t head, double temperature, float* out,
                                size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    const attnprox::AttentionOptions options{temperature};
    const at::Tensor p = head == -1 ? r.attention(layer, options) : r.attention(layer, head, options);
    deliver(p, at::kFloat, out, capacity, needed);
  });
}

apx_status apx_result_average_attention(const apx_result* result, const int32_t* layers, size_t layer_count,
                                        const int32_t* heads, size_t head_count, double temperature, float* out,
                                        size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    const at::Tensor p = r.average_attention(int_list(layers, layer_count, "layers"),
                                             int_list(heads, head_count, "heads"), {temperature});
    deliver(p, at::kFloat, out, capacity, needed);
  });
}

}  // extern "C"
