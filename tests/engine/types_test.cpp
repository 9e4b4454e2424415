// One type per concept: the engine's ApeResult and AttentionStatistics and metrics' Ape and AttentionStats are the
// same templates (attnprox/measures.hpp) in two storages; HeadLink and metrics::IndexedLink hold different things
// and are named apart; the pimpl state of Model, Result and Tokenizer is private. Checked at compile time, then
// at run time: the two implementations fill the same fields with the same values, read by one generic function.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <Eigen/Core>
#include <cmath>
#include <type_traits>
#include <vector>

#include "attnprox/engine.hpp"
#include "attnprox/metrics.hpp"
#include "test_support.hpp"

namespace attnprox {
namespace {

using testing::model_path;

// --- compile time ---

template <template <typename...> class Template, typename T>
struct is_instance_of : std::false_type {};
template <template <typename...> class Template, typename... Args>
struct is_instance_of<Template, Template<Args...>> : std::true_type {};

static_assert(is_instance_of<metrics::BasicApe, ApeResult>::value, "ApeResult is a BasicApe");
static_assert(is_instance_of<metrics::BasicApe, metrics::Ape>::value, "metrics::Ape is a BasicApe");
static_assert(std::is_same_v<ApeResult, metrics::BasicApe<at::Tensor, at::Tensor>>);
static_assert(std::is_same_v<metrics::Ape, metrics::BasicApe<Eigen::VectorXd, std::vector<uint8_t>>>);
static_assert(is_instance_of<metrics::BasicAttentionStats, AttentionStatistics>::value);
static_assert(is_instance_of<metrics::BasicAttentionStats, metrics::AttentionStats>::value);
static_assert(std::is_same_v<AttentionStatistics, metrics::BasicAttentionStats<at::Tensor, at::Tensor>>);
static_assert(std::is_same_v<metrics::AttentionStats,
                             metrics::BasicAttentionStats<Eigen::VectorXd, Eigen::Matrix<int64_t, Eigen::Dynamic, 1>>>);
// The check can fail: a type of another template is not an instance.
static_assert(!is_instance_of<metrics::BasicApe, AttentionStatistics>::value);
static_assert(!is_instance_of<metrics::BasicAttentionStats, metrics::Ape>::value);

// HeadLink (a model's layer and head) and IndexedLink (a place in a list) are two things with two names; the
// former name Link still names IndexedLink (deprecated).
static_assert(!std::is_same_v<HeadLink, metrics::IndexedLink>);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static_assert(std::is_same_v<metrics::Link, metrics::IndexedLink>);
#pragma GCC diagnostic pop
static_assert(std::is_same_v<decltype(metrics::rank_links({}, 0, 1)), std::vector<metrics::IndexedLink>>);

// Private nested types cannot be named from outside (access is checked during substitution since C++11).
template <typename T, typename = void>
struct names_impl : std::false_type {};
template <typename T>
struct names_impl<T, std::void_t<typename T::Impl>> : std::true_type {};
template <typename T, typename = void>
struct names_data : std::false_type {};
template <typename T>
struct names_data<T, std::void_t<typename T::Data>> : std::true_type {};
struct PublicImpl {  // the check sees a public nested type
  struct Impl;
  struct Data;
};
static_assert(names_impl<PublicImpl>::value && names_data<PublicImpl>::value);
static_assert(!names_impl<Model>::value, "Model::Impl is private");
static_assert(!names_data<Result>::value, "Result::Data is private");
static_assert(!names_impl<Tokenizer>::value, "Tokenizer::Impl is private");

// --- run time: one generic reader for both storages ---

std::vector<double> values(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous().cpu();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}
template <typename Derived>
std::vector<double> values(const Eigen::MatrixBase<Derived>& v) {
  std::vector<double> out;
  for (Eigen::Index i = 0; i < v.size(); ++i) out.push_back(static_cast<double>(v(i)));
  return out;
}
std::vector<double> values(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

/// Every field of an APE record, whatever its storage, as plain numbers.
struct ApeFields {
  std::optional<double> value, normalized;
  int64_t undefined_rows;
  std::vector<double> tokens, defined;
  metrics::ApePolicy policy;
};
template <typename Values, typename Flags>
ApeFields fields(const metrics::BasicApe<Values, Flags>& a) {
  return {a.value, a.normalized, a.undefined_rows, values(a.tokens), values(a.defined), a.policy};
}

struct StatsFields {
  std::vector<double> entropy, normalized_entropy, max_weights, argmax_keys, received;
  double mean_entropy, mean_normalized_entropy, max_weight;
  int64_t max_query, max_key, most_attended;
};
template <typename Values, typename Indices>
StatsFields fields(const metrics::BasicAttentionStats<Values, Indices>& s) {
  return {values(s.entropy),    values(s.normalized_entropy), values(s.max_weights), values(s.argmax_keys),
          values(s.received),   s.mean_entropy,               s.mean_normalized_entropy, s.max_weight,
          s.max_query,          s.max_key,                    s.most_attended};
}

void expect_near(const std::vector<double>& x, const std::vector<double>& y, double tolerance) {
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(y[i])) {
      EXPECT_TRUE(std::isnan(x[i])) << i;
    } else {
      EXPECT_NEAR(x[i], y[i], tolerance) << i;
    }
  }
}

Eigen::MatrixXd eigen(const at::Tensor& t) {  // [N, N] → row-major copy into Eigen's column-major matrix
  const at::Tensor c = t.to(at::kDouble).contiguous().cpu();
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      c.data_ptr<double>(), c.size(0), c.size(1));
}

// Models without rotary embeddings: their queries and keys are the proximity family's whatever it reads.
TEST(Types, ApeIsOneRecordInTwoStorages) {
  for (const char* name : {"gpt2.apx", "bert.apx"}) {
    const Model model = Model::load(model_path(name));
    const Result r = model.run({5, 17, 3, 42, 8, 11, 29});
    const at::Tensor q = r.queries(-1).to(at::kDouble).contiguous(), k = r.keys(-1).to(at::kDouble).contiguous();
    const metrics::QueriesKeys<double> qk{q.data_ptr<double>(), k.data_ptr<double>(), q.size(0), k.size(0),
                                          q.size(1), q.size(2)};
    for (const auto policy : {metrics::ApePolicy::kLiteral, metrics::ApePolicy::kShift, metrics::ApePolicy::kClamp,
                              metrics::ApePolicy::kSoftmax}) {
      SCOPED_TRACE(std::string(name) + " " + metrics::to_string(policy));
      const ApeFields engine = fields(r.ape(-1, policy)), reference = fields(metrics::ape(qk, policy));
      EXPECT_EQ(engine.policy, policy);
      EXPECT_EQ(reference.policy, policy);
      EXPECT_EQ(fields(metrics::ape(eigen(r.proximity(-1)), policy)).policy, policy);
      EXPECT_EQ(engine.undefined_rows, reference.undefined_rows);
      EXPECT_EQ(engine.defined, reference.defined);
      ASSERT_EQ(engine.value.has_value(), reference.value.has_value());
      if (reference.value) {
        EXPECT_NEAR(*engine.value, *reference.value, 1e-4);
        EXPECT_NEAR(*engine.normalized, *reference.normalized, 1e-4);
      }
      expect_near(engine.tokens, reference.tokens, 1e-4);
    }
  }
}

TEST(Types, AttentionStatisticsAreOneRecordInTwoStorages) {
  for (const char* name : {"gpt2.apx", "bert.apx"}) {
    const Model model = Model::load(model_path(name));
    const Result r = model.run({5, 17, 3, 42, 8, 11, 29});
    const metrics::Visibility visibility{model.manifest().causal, std::nullopt};
    for (const std::optional<int> head : {std::optional<int>{}, std::optional<int>{1}}) {
      SCOPED_TRACE(std::string(name) + (head ? " head 1" : " mean of heads"));
      const at::Tensor p = head ? r.attention(-1, *head) : r.attention(-1).mean(0);
      const StatsFields engine = fields(r.attention_stats(-1, head));
      const StatsFields reference = fields(metrics::attention_stats(eigen(p), visibility));
      expect_near(engine.entropy, reference.entropy, 1e-5);
      expect_near(engine.normalized_entropy, reference.normalized_entropy, 1e-5);
      expect_near(engine.max_weights, reference.max_weights, 1e-6);
      expect_near(engine.received, reference.received, 1e-5);
      EXPECT_NEAR(engine.mean_entropy, reference.mean_entropy, 1e-5);
      EXPECT_NEAR(engine.mean_normalized_entropy, reference.mean_normalized_entropy, 1e-5);
      EXPECT_NEAR(engine.max_weight, reference.max_weight, 1e-6);
      // Positions: equal unless two weights tie within float rounding (then either is right).
      EXPECT_EQ(engine.argmax_keys, reference.argmax_keys);
      EXPECT_EQ(engine.max_query, reference.max_query);
      EXPECT_EQ(engine.max_key, reference.max_key);
      EXPECT_EQ(engine.most_attended, reference.most_attended);
    }
  }
}

}  // namespace
}  // namespace attnprox
