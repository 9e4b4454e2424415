// Queries and keys before the rotary position embedding (RoPE), recovered from the ones the attention used.
//
// RoPE turns each pair (a, b) of a head's vector at position t by the angle θ = t·f (f an inverse frequency) and
// scales both by s (the rope type's attention scaling): with c = s·cos θ and n = s·sin θ,
//   a' = a·c − b·n,   b' = b·c + a·n.
// Its inverse is a = (a'·c + b'·n) / (c² + n²), b = (b'·c − a'·n) / (c² + n²). The model computes θ in float32
// (positions and inverse frequencies in float32, as Hugging Face's rotary modules do) and rounds c and n to
// its dtype before multiplying; the same c and n are formed here, so the rotation undone is the one that was
// applied, up to the rounding of the rotated values themselves (docs/model-file.md, "rope").
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "internal.hpp"

namespace attnprox {

at::Tensor unrotate(const at::Tensor& x, const RotaryEmbedding& rotary) {
  const int64_t n = x.size(1), d = x.size(2);
  const int64_t dim = rotary.rotary_dim, half = dim / 2;
  if (dim < 2 || dim > d || static_cast<int64_t>(rotary.inv_freq.size()) != half) {
    throw Error(ErrorCode::kInvalidModel, "the rotary embedding rotates " + std::to_string(dim) + " of " +
                                              std::to_string(d) + " dimensions with " +
                                              std::to_string(rotary.inv_freq.size()) + " frequencies");
  }
  c10::InferenceMode guard;
  return guarded("undoing the rotary embedding", [&] {
    const auto f32 = x.options().dtype(at::kFloat);
    std::vector<float> frequencies(rotary.inv_freq.begin(), rotary.inv_freq.end());
    const at::Tensor inv_freq = at::tensor(frequencies, at::kFloat).to(x.device());
    const at::Tensor angle = at::arange(n, f32).view({n, 1}) * inv_freq.view({1, half});  // [N, half], float32
    const float scaling = static_cast<float>(rotary.attention_scaling);
    // cos and sin as the model used them: float32, scaled, rounded to its dtype.
    const at::Tensor c = angle.cos().mul_(scaling).to(x.scalar_type()).to(at::kFloat);
    const at::Tensor s = angle.sin().mul_(scaling).to(x.scalar_type()).to(at::kFloat);
    const at::Tensor norm = c * c + s * s;
    const at::Tensor work = x.to(at::kFloat);
    at::Tensor a, b;
    if (rotary.layout == RotaryEmbedding::Layout::kRotateHalf) {
      a = work.narrow(2, 0, half);
      b = work.narrow(2, half, half);
    } else {
      const at::Tensor pairs = work.narrow(2, 0, dim).reshape({x.size(0), n, half, 2});
      a = pairs.select(3, 0);
      b = pairs.select(3, 1);
    }
    const at::Tensor a0 = (a * c + b * s).div_(norm);
    const at::Tensor b0 = (b * c - a * s).div_(norm);
    at::Tensor rotated = rotary.layout == RotaryEmbedding::Layout::kRotateHalf
                             ? at::cat({a0, b0}, 2)
                             : at::stack({a0, b0}, 3).reshape({x.size(0), n, dim});
    at::Tensor out = dim < d ? at::cat({rotated, work.narrow(2, dim, d - dim)}, 2) : rotated;
    return out.to(x.scalar_type());
  });
}

namespace {

const char* const kAfterRope =
    " Ask for the queries and keys after RoPE instead (rope=True in Python, --rope on the command line, "
    "ProximityOptions::rope in C++, the params' rope field in C).";

/// `x` (a slot's queries or keys) before the rotary embedding of its layer, or Error(kUnsupported) saying why
/// the file cannot give them.
at::Tensor before_rope(const at::Tensor& x, const Manifest& m, size_t slot) {
  const RopeRecord& record = m.rope_of(m.layers[slot]);
  switch (record.state) {
    case RopeRecord::State::kNone:
      return x;
    case RopeRecord::State::kRotary:
      return unrotate(x, record.rotary);
    case RopeRecord::State::kUnavailable:
      throw Error(ErrorCode::kUnsupported, "the queries and keys before the rotary embedding (RoPE) of layer " +
                                               std::to_string(m.layers[slot].index) +
                                               " cannot be had from this model file: its exporter could not "
                                               "describe the rotation (" +
                                               record.reason + ")." + kAfterRope);
    case RopeRecord::State::kNotRecorded:
      break;
  }
  throw Error(ErrorCode::kUnsupported,
              "this model file (" + (m.source.empty() ? m.family : m.source) +
                  ") was written before attnprox recorded the rotary position embedding (its manifest has no "
                  "\"rope\"), so the queries and keys before RoPE — what the proximity family measures by default, "
                  "as the original Attention Proximity code does — cannot be recovered. Export the model again "
                  "with this version of attnprox (its file then records the rotation)." +
                  std::string(kAfterRope));
}

}  // namespace

std::pair<at::Tensor, at::Tensor> Result::proximity_inputs(size_t slot, bool rope) const {
  const at::Tensor& queries = data_->queries[slot];
  const at::Tensor& keys = data_->keys[slot];
  if (rope) return {queries, keys};
  const Manifest& m = *data_->manifest;
  at::Tensor q = before_rope(queries, m, slot);
  return {q, before_rope(keys, m, slot)};
}

at::Tensor Result::queries(int layer, bool rope) const {
  const size_t slot = data_->manifest->slot(layer);
  return rope ? data_->queries[slot] : before_rope(data_->queries[slot], *data_->manifest, slot);
}

at::Tensor Result::keys(int layer, bool rope) const {
  const size_t slot = data_->manifest->slot(layer);
  return rope ? data_->keys[slot] : before_rope(data_->keys[slot], *data_->manifest, slot);
}

}  // namespace attnprox
