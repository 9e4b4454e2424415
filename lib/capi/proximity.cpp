// The C ABI: Attention Proximity (the section "Attention Proximity" of include/attnprox/attnprox.h).
#include "internal.hpp"

using namespace attnprox::capi;

extern "C" {

apx_status apx_result_proximity(const apx_result* result, int32_t layer, float* out, size_t capacity, size_t* needed) {
  return call([&] {
    const ResultObject& handle = live(results(), result, "result");
    deliver(handle.result.proximity(layer, handle.proximity()), at::kFloat, out, capacity, needed);
  });
}

apx_status apx_result_average_proximity(const apx_result* result, const int32_t* layers, size_t layer_count,
                                        const int32_t* heads, size_t head_count, int32_t symmetric, float* out,
                                        size_t capacity, size_t* needed) {
  return call([&] {
    const ResultObject& handle = live(results(), result, "result");
    const at::Tensor a = handle.result.average_proximity(int_list(layers, layer_count, "layers"),
                                                         int_list(heads, head_count, "heads"), symmetric != 0,
                                                         handle.proximity());
    deliver(a, at::kFloat, out, capacity, needed);
  });
}

apx_status apx_result_ap(const apx_result* result, int32_t layer, double* ap) {
  return call([&] {
    const ResultObject& handle = live(results(), result, "result");
    need(ap, "ap");
    *ap = handle.result.ap(layer, handle.proximity());
  });
}

apx_status apx_result_ap_tokens(const apx_result* result, int32_t layer, double* out, size_t capacity, size_t* needed) {
  return call([&] {
    const ResultObject& handle = live(results(), result, "result");
    deliver(handle.result.ap_tokens(layer, handle.proximity()), at::kDouble, out, capacity, needed);
  });
}

apx_status apx_result_subset_proximity(const apx_result* result, int32_t layer, const int64_t* subset, size_t count,
                                       double* out, size_t capacity, size_t* needed) {
  return call([&] {
    const ResultObject& handle = live(results(), result, "result");
    deliver(handle.result.subset_proximity(elements(subset, count, "subset"), layer, handle.proximity()), at::kDouble,
            out, capacity, needed);
  });
}

apx_status apx_result_ape(const apx_result* result, int32_t layer, apx_ape_policy policy, apx_ape_report* report,
                          double* tokens, size_t capacity, size_t* needed) {
  return call([&] {
    const ResultObject& handle = live(results(), result, "result");
    check_report(report, "report");
    const attnprox::ApeResult a = handle.result.ape(layer, policy_of(policy), handle.proximity());
    deliver(a.tokens, at::kDouble, tokens, capacity, needed);
    fill_report(report, a.value, a.normalized, a.undefined_rows, a.policy);
  });
}

}  // extern "C"
