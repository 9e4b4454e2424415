// attnprox._core: the Eigen measurements (include/attnprox/metrics.hpp) on NumPy arrays, for queries, keys and
// attention weights from anywhere. float32 and float16 arrays are read as they are; others become float64.
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "attnprox/error.hpp"
#include "attnprox/metrics.hpp"

namespace py = pybind11;
namespace metrics = attnprox::metrics;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
metrics::QueriesKeys<T> view(const CArray<T>& queries, const CArray<T>& keys) {
  if (queries.ndim() != 3 || keys.ndim() != 3) {
    throw attnprox::Error(attnprox::ErrorCode::kInvalidArgument,
                          "queries must be [H, N, d] and keys [Hkv, N, d] (3 dimensions each)");
  }
  if (queries.shape(1) != keys.shape(1) || queries.shape(2) != keys.shape(2)) {
    throw attnprox::Error(attnprox::ErrorCode::kInvalidArgument,
                          "queries [H, N, d] and keys [Hkv, N, d] must agree in N and d");
  }
  metrics::QueriesKeys<T> qk;
  qk.queries = queries.data();
  qk.keys = keys.data();
  qk.heads = queries.shape(0);
  qk.kv_heads = keys.shape(0);
  qk.tokens = queries.shape(1);
  qk.head_dim = queries.shape(2);
  return qk;
}

/// Calls f(QueriesKeys<T>) with T chosen by the arrays' dtype.
template <typename F>
auto dispatch(const py::array& queries, const py::array& keys, F&& f) {
  const py::dtype dtype = queries.dtype();
  if (dtype.is(py::dtype::of<float>()) && keys.dtype().is(py::dtype::of<float>())) {
    CArray<float> q(queries), k(keys);
    return f(view<float>(q, k));
  }
  if (dtype.kind() == 'f' && dtype.itemsize() == 2 && keys.dtype().kind() == 'f' && keys.dtype().itemsize() == 2) {
    // NumPy's float16 is IEEE binary16, Eigen::half's layout.
    py::array q = py::array::ensure(queries, py::array::c_style), k = py::array::ensure(keys, py::array::c_style);
    metrics::QueriesKeys<Eigen::half> qk;
    qk.queries = static_cast<const Eigen::half*>(q.data());
    qk.keys = static_cast<const Eigen::half*>(k.data());
    if (q.ndim() != 3 || k.ndim() != 3 || q.shape(1) != k.shape(1) || q.shape(2) != k.shape(2)) {
      throw attnprox::Error(attnprox::ErrorCode::kInvalidArgument,
                            "queries must be [H, N, d] and keys [Hkv, N, d], agreeing in N and d");
    }
    qk.heads = q.shape(0);
    qk.kv_heads = k.shape(0);
    qk.tokens = q.shape(1);
    qk.head_dim = q.shape(2);
    return f(qk);
  }
  CArray<double> q(queries), k(keys);
  return f(view<double>(q, k));
}

py::dict ape_to_dict(const metrics::Ape& a, metrics::ApePolicy policy) {
  py::dict d;
  d["value"] = a.value ? py::cast(*a.value) : py::none();
  d["normalized"] = a.normalized ? py::cast(*a.normalized) : py::none();
  d["undefined_rows"] = a.undefined_rows;
  d["tokens"] = py::cast(a.tokens);
  py::array_t<bool> defined(static_cast<py::ssize_t>(a.defined.size()));
  for (size_t i = 0; i < a.defined.size(); ++i) defined.mutable_at(i) = a.defined[i] != 0;
  d["defined"] = defined;
  d["policy"] = metrics::to_string(policy);
  return d;
}

using Matrix = Eigen::Ref<const Eigen::MatrixXd>;

}  // namespace

void bind_metrics(py::module_& m) {
  m.def("metrics_proximity", [](const py::array& q, const py::array& k) {
    return dispatch(q, k, [](const auto& qk) { return metrics::proximity(qk); });
  });
  m.def("metrics_ap_tokens", [](const py::array& q, const py::array& k) {
    return dispatch(q, k, [](const auto& qk) { return metrics::ap_tokens(qk); });
  });
  m.def("metrics_subset_proximity", [](const py::array& q, const py::array& k, const std::vector<int64_t>& s) {
    return dispatch(q, k, [&](const auto& qk) { return metrics::subset_proximity(qk, s); });
  });
  m.def("metrics_ape", [](const py::array& q, const py::array& k, const std::string& policy) {
    const metrics::ApePolicy p = metrics::parse_ape_policy(policy);
    return ape_to_dict(dispatch(q, k, [&](const auto& qk) { return metrics::ape(qk, p); }), p);
  });
  m.def("metrics_ap_tokens_of", [](const Matrix& a) { return metrics::ap_tokens(a); });
  m.def("metrics_subset_proximity_of",
        [](const Matrix& a, const std::vector<int64_t>& s) { return metrics::subset_proximity(a, s); });
  m.def("metrics_ape_of", [](const Matrix& a, const std::string& policy) {
    const metrics::ApePolicy p = metrics::parse_ape_policy(policy);
    return ape_to_dict(metrics::ape(a, p), p);
  });
  m.def("metrics_attention_stats", [](const Matrix& weights, bool causal, std::optional<int64_t> window) {
    metrics::Visibility visibility{causal, window};
    const metrics::AttentionStats s = metrics::attention_stats(weights, visibility);
    py::dict d;
    d["entropy"] = py::cast(s.entropy);
    d["normalized_entropy"] = py::cast(s.normalized_entropy);
    d["mean_entropy"] = s.mean_entropy;
    d["mean_normalized_entropy"] = s.mean_normalized_entropy;
    d["max_weight"] = s.max_weight;
    d["max_query"] = s.max_query;
    d["max_key"] = s.max_key;
    d["max_weights"] = py::cast(s.max_weights);
    d["argmax_keys"] = py::cast(s.argmax_keys);
    d["received"] = py::cast(s.received);
    d["most_attended"] = s.most_attended;
    return d;
  });
  m.def("metrics_top_arcs",
        [](const Matrix& weights, int64_t query, int64_t k, bool causal, std::optional<int64_t> window) {
          std::vector<std::pair<int64_t, double>> out;
          for (const auto& arc : metrics::top_arcs(weights, query, k, metrics::Visibility{causal, window})) {
            out.emplace_back(arc.key, arc.weight);
          }
          return out;
        });
  m.def("metrics_rank_links", [](const std::vector<Eigen::MatrixXd>& heads, int64_t a, int64_t b) {
    std::vector<std::pair<int64_t, double>> out;
    for (const auto& link : metrics::rank_links(heads, a, b)) out.emplace_back(link.index, link.score);
    return out;
  });
}
