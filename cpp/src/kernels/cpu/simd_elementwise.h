// Row-wise ops (rms_norm, layer_norm, add, silu_mul, gelu_tanh_mul, gelu_tanh, relu, rope_neox,
// softcap) and a vectorized exp, written once against a SIMD traits type V and instantiated per
// ISA. Each row is processed by the same instruction sequence whatever the row count, so per-row
// results do not depend on the batch.
#pragma once

#include <cstdint>

namespace cadence::kernels::cpu::simd {

// exp(x) for every lane, relative error about 2 ulp (< 3e-7) over the whole float range;
// overflows to +inf above ~88.72, underflows through denormals to 0 below ~-103.9, NaN in NaN
// out. exp(x) = 2^n * exp(r) with n = round(x / ln 2) and r = x - n ln 2 in [-ln2/2, ln2/2]
// (ln 2 split in two for an exact first step), exp(r) by its degree-7 Taylor polynomial
// (truncation error < 6e-9).
template <class V>
typename V::Reg exp(typename V::Reg x) {
  using Reg = typename V::Reg;
  // Clamp so that n stays in [-150, 128]; constants first so NaN passes through max/min.
  x = V::min(V::set1(88.8f), V::max(V::set1(-104.0f), x));
  const Reg n = V::round_nearest(V::mul(x, V::set1(1.44269504088896341f)));
  Reg r = V::fmadd(n, V::set1(-0.693359375f), x);
  r = V::fmadd(n, V::set1(2.12194440e-4f), r);
  Reg p = V::set1(1.0f / 5040.0f);
  p = V::fmadd(p, r, V::set1(1.0f / 720.0f));
  p = V::fmadd(p, r, V::set1(1.0f / 120.0f));
  p = V::fmadd(p, r, V::set1(1.0f / 24.0f));
  p = V::fmadd(p, r, V::set1(1.0f / 6.0f));
  p = V::fmadd(p, r, V::set1(0.5f));
  p = V::fmadd(p, r, V::set1(1.0f));
  p = V::fmadd(p, r, V::set1(1.0f));
  return V::ldexp(p, n);
}

// Fixed-order sum of squares of one row: kW-lane partial sums in 4 interleaved registers
// (for ILP), combined as (s0 + s1) + (s2 + s3), reduced by V::reduce_add, then the scalar
// tail in ascending order. The order depends only on dim.
template <class V>
float sum_squares(const float* x, int64_t dim) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  Reg s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
  int64_t i = 0;
  for (; i + 4 * kW <= dim; i += 4 * kW) {
    const Reg x0 = V::load(x + i), x1 = V::load(x + i + kW);
    const Reg x2 = V::load(x + i + 2 * kW), x3 = V::load(x + i + 3 * kW);
    s0 = V::fmadd(x0, x0, s0);
    s1 = V::fmadd(x1, x1, s1);
    s2 = V::fmadd(x2, x2, s2);
    s3 = V::fmadd(x3, x3, s3);
  }
  for (; i + kW <= dim; i += kW) {
    const Reg x0 = V::load(x + i);
    s0 = V::fmadd(x0, x0, s0);
  }
  float sum = V::reduce_add(V::add(V::add(s0, s1), V::add(s2, s3)));
  for (; i < dim; ++i) sum += x[i] * x[i];
  return sum;
}

template <class V>
void rms_norm_rows(const float* x, int64_t dim, int64_t ld_x, const float* weight, float eps,
                   float* out, int64_t ld_out, int64_t row_begin, int64_t row_end) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* xr = x + r * ld_x;
    float* orow = out + r * ld_out;
    const float mean = sum_squares<V>(xr, dim) / static_cast<float>(dim);
    // Same order as HF: (x * rsqrt(mean + eps)) * weight, all fp32.
    const float inv = 1.0f / __builtin_sqrtf(mean + eps);
    const Reg inv_v = V::set1(inv);
    int64_t i = 0;
    for (; i + kW <= dim; i += kW) {
      V::store(orow + i, V::mul(V::mul(V::load(xr + i), inv_v), V::load(weight + i)));
    }
    for (; i < dim; ++i) orow[i] = (xr[i] * inv) * weight[i];
  }
}

// Fixed-order sum of one row, and of its squared deviations from `mean`: kW-lane partial sums in
// 2 interleaved registers, reduced by V::reduce_add, then the scalar tail in ascending order.
template <class V>
float row_sum(const float* x, int64_t dim) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  Reg s0 = V::zero(), s1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * kW <= dim; i += 2 * kW) {
    s0 = V::add(s0, V::load(x + i));
    s1 = V::add(s1, V::load(x + i + kW));
  }
  for (; i + kW <= dim; i += kW) s0 = V::add(s0, V::load(x + i));
  float sum = V::reduce_add(V::add(s0, s1));
  for (; i < dim; ++i) sum += x[i];
  return sum;
}

template <class V>
float row_sum_squared_deviations(const float* x, float mean, int64_t dim) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  const Reg mean_v = V::set1(mean);
  Reg s0 = V::zero(), s1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * kW <= dim; i += 2 * kW) {
    const Reg d0 = V::sub(V::load(x + i), mean_v), d1 = V::sub(V::load(x + i + kW), mean_v);
    s0 = V::fmadd(d0, d0, s0);
    s1 = V::fmadd(d1, d1, s1);
  }
  for (; i + kW <= dim; i += kW) {
    const Reg d0 = V::sub(V::load(x + i), mean_v);
    s0 = V::fmadd(d0, d0, s0);
  }
  float sum = V::reduce_add(V::add(s0, s1));
  for (; i < dim; ++i) sum += (x[i] - mean) * (x[i] - mean);
  return sum;
}

// LayerNorm, two passes in fp32: mean, then the biased variance around it (no E[x^2] - mean^2
// cancellation), then ((x - mean) * inv_std) * weight + bias.
template <class V>
void layer_norm_rows(const float* x, int64_t dim, int64_t ld_x, const float* weight,
                     const float* bias, float eps, float* out, int64_t ld_out, int64_t row_begin,
                     int64_t row_end) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* xr = x + r * ld_x;
    float* orow = out + r * ld_out;
    const float mean = row_sum<V>(xr, dim) / static_cast<float>(dim);
    const float var = row_sum_squared_deviations<V>(xr, mean, dim) / static_cast<float>(dim);
    const float inv = 1.0f / __builtin_sqrtf(var + eps);
    const Reg mean_v = V::set1(mean), inv_v = V::set1(inv);
    int64_t i = 0;
    for (; i + kW <= dim; i += kW) {
      const Reg n = V::mul(V::sub(V::load(xr + i), mean_v), inv_v);
      V::store(orow + i, V::add(V::mul(n, V::load(weight + i)), V::load(bias + i)));
    }
    for (; i < dim; ++i) orow[i] = ((xr[i] - mean) * inv) * weight[i] + bias[i];
  }
}

// gelu_tanh of one register: 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)),
// u = sqrt(2/pi) (x + 0.044715 x^3).
template <class V>
typename V::Reg gelu_tanh_reg(typename V::Reg x) {
  using Reg = typename V::Reg;
  const Reg x3 = V::mul(V::mul(x, x), x);
  const Reg u = V::mul(V::set1(0.7978845608028654f), V::fmadd(V::set1(0.044715f), x3, x));
  const Reg e = exp<V>(V::mul(V::set1(-2.0f), u));
  return V::div(x, V::add(V::set1(1.0f), e));
}

// The tail goes through a padded vector so every element uses the same instructions, wherever
// a thread's range starts or ends.
template <class V>
void gelu_tanh(const float* x, int64_t num_elements, float* out) {
  constexpr int kW = V::kWidth;
  int64_t i = 0;
  for (; i + kW <= num_elements; i += kW) V::store(out + i, gelu_tanh_reg<V>(V::load(x + i)));
  if (i < num_elements) {
    float tail[kW] = {};
    for (int64_t t = 0; i + t < num_elements; ++t) tail[t] = x[i + t];
    V::store(tail, gelu_tanh_reg<V>(V::load(tail)));
    for (int64_t t = 0; i + t < num_elements; ++t) out[i + t] = tail[t];
  }
}

// max(0, x) as the SIMD max computes it: 0 > x ? 0 : x, so a NaN x passes through (as in torch).
template <class V>
void relu(const float* x, int64_t num_elements, float* out) {
  constexpr int kW = V::kWidth;
  int64_t i = 0;
  for (; i + kW <= num_elements; i += kW) V::store(out + i, V::max(V::zero(), V::load(x + i)));
  for (; i < num_elements; ++i) out[i] = 0.0f > x[i] ? 0.0f : x[i];
}

template <class V>
void add(float* x, const float* y, int64_t num_elements) {
  constexpr int kW = V::kWidth;
  int64_t i = 0;
  for (; i + 2 * kW <= num_elements; i += 2 * kW) {
    V::store(x + i, V::add(V::load(x + i), V::load(y + i)));
    V::store(x + i + kW, V::add(V::load(x + i + kW), V::load(y + i + kW)));
  }
  for (; i + kW <= num_elements; i += kW) V::store(x + i, V::add(V::load(x + i), V::load(y + i)));
  for (; i < num_elements; ++i) x[i] += y[i];
}

// act(g) * u over rows of [gate | up]; the tail goes through a padded vector so every element
// uses the same instructions. Gate::apply is the activation of one register.
template <class V, class Gate>
void gated_mul_rows(const float* gate_up, int64_t inter, int64_t ld_gate_up, float* out,
                    int64_t ld_out, int64_t row_begin, int64_t row_end) {
  constexpr int kW = V::kWidth;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* gate = gate_up + r * ld_gate_up;
    const float* up = gate + inter;
    float* o = out + r * ld_out;
    int64_t j = 0;
    for (; j + kW <= inter; j += kW) {
      V::store(o + j, V::mul(Gate::apply(V::load(gate + j)), V::load(up + j)));
    }
    if (j < inter) {
      float g_tail[kW] = {}, u_tail[kW] = {};
      for (int64_t t = 0; j + t < inter; ++t) {
        g_tail[t] = gate[j + t];
        u_tail[t] = up[j + t];
      }
      V::store(g_tail, V::mul(Gate::apply(V::load(g_tail)), V::load(u_tail)));
      for (int64_t t = 0; j + t < inter; ++t) o[j + t] = g_tail[t];
    }
  }
}

// silu(g) = g / (1 + exp(-g)).
template <class V>
struct SiluGate {
  static typename V::Reg apply(typename V::Reg g) {
    return V::div(g, V::add(V::set1(1.0f), exp<V>(V::sub(V::zero(), g))));
  }
};

template <class V>
struct GeluTanhGate {
  static typename V::Reg apply(typename V::Reg g) { return gelu_tanh_reg<V>(g); }
};

template <class V>
void silu_mul_rows(const float* gate_up, int64_t inter, int64_t ld_gate_up, float* out,
                   int64_t ld_out, int64_t row_begin, int64_t row_end) {
  gated_mul_rows<V, SiluGate<V>>(gate_up, inter, ld_gate_up, out, ld_out, row_begin, row_end);
}

template <class V>
void gelu_tanh_mul_rows(const float* gate_up, int64_t inter, int64_t ld_gate_up, float* out,
                        int64_t ld_out, int64_t row_begin, int64_t row_end) {
  gated_mul_rows<V, GeluTanhGate<V>>(gate_up, inter, ld_gate_up, out, ld_out, row_begin, row_end);
}

// cap * tanh(s / cap) for `count` scores (a multiple of V::kWidth), with
// tanh(y) = 2 / (1 + exp(-2y)) - 1 (saturates to +-1 without overflow).
template <class V>
void softcap(float* s, int64_t count, float cap) {
  using Reg = typename V::Reg;
  const Reg cap_v = V::set1(cap), inv_cap = V::set1(1.0f / cap);
  const Reg one = V::set1(1.0f), two = V::set1(2.0f), minus_two = V::set1(-2.0f);
  for (int64_t j = 0; j < count; j += V::kWidth) {
    const Reg e = exp<V>(V::mul(minus_two, V::mul(V::load(s + j), inv_cap)));
    V::store(s + j, V::mul(cap_v, V::sub(V::div(two, V::add(one, e)), one)));
  }
}

// NeoX rotation of one head's first rot_dim elements, as HF computes it:
//   out[i]        = x[i] * cos[i] - x[i + half] * sin[i]
//   out[i + half] = x[i + half] * cos[i] + x[i] * sin[i]       (i < half = rot_dim / 2)
// products rounded separately (no FMA) to match x * cos + rotate_half(x) * sin.
template <class V>
void rope_rows(float* x, int64_t num_heads, int64_t head_dim, int64_t rot_dim, int64_t ld_x,
               const int32_t* positions, const float* cos_sin, int64_t row_begin, int64_t row_end) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  const int64_t half = rot_dim / 2;
  for (int64_t t = row_begin; t < row_end; ++t) {
    const float* cs = cos_sin + static_cast<int64_t>(positions[t]) * rot_dim;
    for (int64_t h = 0; h < num_heads; ++h) {
      float* xh = x + t * ld_x + h * head_dim;
      int64_t i = 0;
      for (; i + kW <= half; i += kW) {
        const Reg x1 = V::load(xh + i), x2 = V::load(xh + half + i);
        const Reg c = V::load(cs + i), s = V::load(cs + half + i);
        V::store(xh + i, V::sub(V::mul(x1, c), V::mul(x2, s)));
        V::store(xh + half + i, V::add(V::mul(x2, c), V::mul(x1, s)));
      }
      for (; i < half; ++i) {
        const float x1 = xh[i], x2 = xh[half + i], c = cs[i], s = cs[half + i];
        xh[i] = x1 * c - x2 * s;
        xh[half + i] = x2 * c + x1 * s;
      }
    }
  }
}

}  // namespace cadence::kernels::cpu::simd
