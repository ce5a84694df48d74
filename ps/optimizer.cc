#include "ps/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace granary {
namespace {

// Defaults of the optional fields, as documented in config.proto.
constexpr float kDefaultInitialAccumulator = 0.1f;
constexpr float kDefaultEpsilon = 1e-8f;
constexpr float kDefaultBeta1 = 0.9f;
constexpr float kDefaultBeta2 = 0.999f;
constexpr float kDefaultFtrlBeta = 1.0f;

// Each Apply below runs one loop over rows around plain, branch-free loops over dimensions:
// no virtual call, no branch on the config and no allocation per row.

// Clamps g to [-clip, clip]. Branch-free, and with clip = +inf (no clipping) it returns g
// exactly, so an unclipped table computes what it did before clipping existed.
inline float Clip(float g, float clip) { return std::min(std::max(g, -clip), clip); }

// The gradient a rule applies (GradientTerms): the clipped push plus the L2 term of the row's
// stored value w. Branch-free: with l2 = 0 it adds 0 * w = +0 (w is always finite), which
// changes no value, so a table without L2 computes what it did before L2 existed.
inline float Penalized(float g, float w, const GradientTerms& terms) {
  return Clip(g, terms.clip) + terms.l2 * w;
}

// 1 if any of `xs` is ±Inf or NaN, else 0: x * 0 is ±0 for a finite x and NaN otherwise, and
// a NaN survives the sum. OR-ed over a row's dims it is a finiteness test without a branch per
// dimension, and it vectorizes (a float sum over the dims would not: its order is fixed).
template <typename... Floats>
inline int AnyNonFinite(Floats... xs) {
  return !(((xs * 0.0f) + ...) == 0.0f);
}

// Updates one row in two passes over its dims, so that a row is either wholly updated or left
// as it was: update(d, std::false_type) computes dimension d's new value and slots and returns
// the AnyNonFinite of them without writing them; update(d, std::true_type) computes
// and writes them. Returns false, having written nothing, if any new value or slot would be
// non-finite (e.g. Adagrad's accumulator overflowing on a huge but finite gradient).
// Recomputing rather than keeping a copy of the old row keeps Apply free of allocation; it
// about doubles the optimizer's own cost (Adagrad at dim 16: ~5.5 -> ~11-14 ns per row,
// measured on 2026-12-07 with a loop over Apply alone), against ~100 ns per row of a whole
// in-memory push (docs/performance.md).
template <typename Update>
bool UpdateRowIfFinite(int dim, Update update) {
  int non_finite = 0;
  for (int d = 0; d < dim; ++d) non_finite |= update(d, std::false_type());
  if (non_finite != 0) return false;
  for (int d = 0; d < dim; ++d) update(d, std::true_type());
  return true;
}

// w -= lr g
class Sgd final : public Optimizer {
 public:
  Sgd(const proto::SgdConfig& config, const GradientTerms& terms)
      : learning_rate_(config.learning_rate()), terms_(terms) {}

  int num_slots() const override { return 0; }
  void InitSlots(const float*, float*, int) const override {}

  size_t Apply(absl::Span<const RowUpdate> updates, int dim) const override {
    const float lr = learning_rate_;
    const GradientTerms terms = terms_;
    size_t rejected = 0;
    for (const RowUpdate& update : updates) {
      float* w = update.values;
      const float* g = update.grad;
      rejected += !UpdateRowIfFinite(dim, [&](int d, auto commit) {
        const float wd = w[d] - lr * Penalized(g[d], w[d], terms);
        if constexpr (decltype(commit)::value) w[d] = wd;
        return AnyNonFinite(wd);
      });
    }
    return rejected;
  }

 private:
  const float learning_rate_;
  const GradientTerms terms_;
};

// acc += g^2; w -= lr g / (sqrt(acc) + eps). Slot 0: acc.
class Adagrad final : public Optimizer {
 public:
  Adagrad(const proto::AdagradConfig& config, const GradientTerms& terms)
      : learning_rate_(config.learning_rate()),
        terms_(terms),
        initial_accumulator_(config.has_initial_accumulator() ? config.initial_accumulator()
                                                              : kDefaultInitialAccumulator),
        epsilon_(config.has_epsilon() ? config.epsilon() : kDefaultEpsilon) {}

  int num_slots() const override { return 1; }

  void InitSlots(const float*, float* slots, int dim) const override {
    std::fill(slots, slots + dim, initial_accumulator_);
  }

  size_t Apply(absl::Span<const RowUpdate> updates, int dim) const override {
    const float lr = learning_rate_;
    const float eps = epsilon_;
    const GradientTerms terms = terms_;
    size_t rejected = 0;
    for (const RowUpdate& update : updates) {
      float* w = update.values;
      float* acc = update.slots;
      const float* g = update.grad;
      rejected += !UpdateRowIfFinite(dim, [&](int d, auto commit) {
        const float gd = Penalized(g[d], w[d], terms);
        const float a = acc[d] + gd * gd;
        const float wd = w[d] - lr * gd / (std::sqrt(a) + eps);
        if constexpr (decltype(commit)::value) {
          acc[d] = a;
          w[d] = wd;
        }
        return AnyNonFinite(a, wd);
      });
    }
    return rejected;
  }

 private:
  const float learning_rate_;
  const GradientTerms terms_;
  const float initial_accumulator_;
  const float epsilon_;
};

// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + lr wd w, t = the row's meta->step
// after this update, wd the decoupled weight decay (0: plain Adam). Slot 0: m, slot 1: v.
class Adam final : public Optimizer {
 public:
  Adam(const proto::AdamConfig& config, const GradientTerms& terms, float weight_decay)
      : learning_rate_(config.learning_rate()),
        decay_rate_(config.learning_rate() * weight_decay),
        terms_(terms),
        beta1_(config.has_beta1() ? config.beta1() : kDefaultBeta1),
        beta2_(config.has_beta2() ? config.beta2() : kDefaultBeta2),
        epsilon_(config.has_epsilon() ? config.epsilon() : kDefaultEpsilon),
        one_minus_beta1_(1.0f - beta1_),
        one_minus_beta2_(1.0f - beta2_),
        log_beta1_(std::log(beta1_)),
        log_beta2_(std::log(beta2_)) {}

  int num_slots() const override { return 2; }

  void InitSlots(const float*, float* slots, int dim) const override {
    std::fill(slots, slots + 2 * dim, 0.0f);
  }

  size_t Apply(absl::Span<const RowUpdate> updates, int dim) const override {
    const float b1 = beta1_, b2 = beta2_, c1 = one_minus_beta1_, c2 = one_minus_beta2_;
    const float eps = epsilon_;
    const float decay_rate = decay_rate_;
    const GradientTerms terms = terms_;
    size_t rejected = 0;
    for (const RowUpdate& update : updates) {
      // Saturates rather than wrapping to 0 (a bias correction of 0); far below the maximum
      // b^t is already 0 in float. Stored only if the row is updated.
      const uint32_t step =
          update.meta->step + (update.meta->step < std::numeric_limits<uint32_t>::max());
      const float t = static_cast<float>(step);
      // 1 - b^t as -expm1(t log b): no cancellation when b^t is close to 1 (b2 = 0.999, small
      // t), where 1 - powf(b, t) would lose most digits. b = 0 gives log b = -inf and 1 - 0.
      const float bias1 = -std::expm1(t * log_beta1_);
      const float bias2 = -std::expm1(t * log_beta2_);
      const float step_size = learning_rate_ / bias1;
      const float inv_bias2 = 1.0f / bias2;
      float* w = update.values;
      float* m = update.slots;
      float* v = update.slots + dim;
      const float* g = update.grad;
      const bool updated = UpdateRowIfFinite(dim, [&](int d, auto commit) {
        const float gd = Penalized(g[d], w[d], terms);
        const float md = b1 * m[d] + c1 * gd;
        const float vd = b2 * v[d] + c2 * gd * gd;
        // Branch-free decay: with decay_rate 0 it subtracts +0, which changes no value.
        const float wd =
            w[d] - step_size * md / (std::sqrt(vd * inv_bias2) + eps) - decay_rate * w[d];
        if constexpr (decltype(commit)::value) {
          m[d] = md;
          v[d] = vd;
          w[d] = wd;
        }
        return AnyNonFinite(md, vd, wd);
      });
      if (updated) {
        update.meta->step = step;
      } else {
        ++rejected;
      }
    }
    return rejected;
  }

 private:
  const float learning_rate_;
  const float decay_rate_;  // learning_rate * weight_decay
  const GradientTerms terms_;
  const float beta1_;
  const float beta2_;
  const float epsilon_;
  const float one_minus_beta1_;
  const float one_minus_beta2_;
  const float log_beta1_;
  const float log_beta2_;
};

// FTRL-Proximal, McMahan et al. 2013, Algorithm 1, per coordinate:
//   sigma = (sqrt(n + g^2) - sqrt(n)) / alpha;  z += g - sigma w;  n += g^2;
//   w = 0 if |z| <= l1, else -(z - sgn(z) l1) / ((beta + sqrt(n)) / alpha + l2).
// Slot 0: z, slot 1: n. The stored values are always the weights the formula gives for the
// stored z and n, so Apply uses them as the paper's w_t without recomputing them.
//
// Initial state: the paper starts at z = n = 0, which encodes weight 0, not the initializer's
// w0 that pulls return before the first push; the first update would then land near 0 however
// small its gradient. InitSlots instead starts at n = 0 and the z whose weight is w0:
//   z = -(w0 (beta / alpha + l2)) - sgn(w0) l1 for w0 != 0, z = 0 for w0 = 0,
// so |z| > l1 and -(z - sgn(z) l1) / (beta / alpha + l2) = w0, up to the float rounding of
// z (absolute error about 6e-8 (|w0| + l1 / (beta / alpha + l2))). With beta = l2 = 0 no z
// gives w0 at n = 0, where the rate alpha / sqrt(n) is infinite: this z then gives |z| = l1
// and weight 0 while n = 0, but the first non-zero gradient still continues from w0,
// because sigma w carries w0 into z.
class Ftrl final : public Optimizer {
 public:
  Ftrl(const proto::FtrlConfig& config, const GradientTerms& terms)
      : terms_(terms),
        inv_alpha_(1.0f / config.alpha()),
        l1_(config.l1()),
        // The denominator at n = 0, (beta + 0) / alpha + l2.
        base_denominator_((config.has_beta() ? config.beta() : kDefaultFtrlBeta) / config.alpha() +
                          config.l2()) {}

  int num_slots() const override { return 2; }

  void InitSlots(const float* values, float* slots, int dim) const override {
    float* z = slots;
    float* n = slots + dim;
    for (int d = 0; d < dim; ++d) {
      const float w = values[d];
      z[d] = w == 0.0f ? 0.0f : -(w * base_denominator_) - std::copysign(l1_, w);
      n[d] = 0.0f;
    }
  }

  size_t Apply(absl::Span<const RowUpdate> updates, int dim) const override {
    const float inv_alpha = inv_alpha_, l1 = l1_, base = base_denominator_;
    const GradientTerms terms = terms_;
    size_t rejected = 0;
    for (const RowUpdate& update : updates) {
      float* w = update.values;
      float* z = update.slots;
      float* n = update.slots + dim;
      const float* g = update.grad;
      rejected += !UpdateRowIfFinite(dim, [&](int d, auto commit) {
        const float gd = Penalized(g[d], w[d], terms);
        const float nd = n[d] + gd * gd;
        const float sqrt_nd = std::sqrt(nd);
        const float sigma = (sqrt_nd - std::sqrt(n[d])) * inv_alpha;
        const float zd = z[d] + (gd - sigma * w[d]);
        // A select, not a branch, so the loop can vectorize. The quotient is 0 / 0 only when
        // beta = l2 = n = 0, and then |z| = l1 and the select discards it.
        const float shrunk = (std::copysign(l1, zd) - zd) / (sqrt_nd * inv_alpha + base);
        const float wd = std::abs(zd) <= l1 ? 0.0f : shrunk;
        if constexpr (decltype(commit)::value) {
          z[d] = zd;
          n[d] = nd;
          w[d] = wd;
        }
        return AnyNonFinite(zd, nd, wd);
      });
    }
    return rejected;
  }

 private:
  const GradientTerms terms_;
  const float inv_alpha_;
  const float l1_;
  const float base_denominator_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const proto::OptimizerConfig& config,
                                                         const GradientTerms& terms,
                                                         float weight_decay) {
  if (weight_decay != 0 && !config.has_adam()) {
    return absl::InvalidArgumentError(
        "weight_decay (decoupled, AdamW) is defined for the adam optimizer only");
  }
  switch (config.kind_case()) {
    case proto::OptimizerConfig::kSgd:
      return std::make_unique<Sgd>(config.sgd(), terms);
    case proto::OptimizerConfig::kAdagrad:
      return std::make_unique<Adagrad>(config.adagrad(), terms);
    case proto::OptimizerConfig::kAdam:
      return std::make_unique<Adam>(config.adam(), terms, weight_decay);
    case proto::OptimizerConfig::kFtrl:
      return std::make_unique<Ftrl>(config.ftrl(), terms);
    case proto::OptimizerConfig::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "optimizer config selects no optimizer: set one of sgd, adagrad, adam, ftrl");
}

absl::StatusOr<std::unique_ptr<Optimizer>> MakeTableOptimizer(const proto::TableConfig& config) {
  GradientTerms terms;
  if (config.has_clip_gradient_abs()) terms.clip = config.clip_gradient_abs();
  if (config.has_l2()) terms.l2 = config.l2();
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer =
      MakeOptimizer(config.optimizer(), terms, config.weight_decay());
  if (optimizer.ok()) return optimizer;
  return absl::InvalidArgumentError(
      absl::StrCat("table '", config.name(), "': ", optimizer.status().message()));
}

}  // namespace granary
