// Host side of the `recurrent` baseline: request checks, workspace layout, launches. Each of
// la/gla/deltanet's recurrent.cu instantiates these for its variant and defines its OpEntry.
#pragma once

#include <cmath>

#include "../runtime/runtime.h"
#include "recurrent_f64.cuh"
#include "recurrent_kernels.cuh"

namespace lak {
namespace rec {

inline const char* var_name(int VAR) {
  return VAR == kLa ? "la" : VAR == kGla ? "gla" : "deltanet";
}

// Workspace of the backward, in floats, each region 64-float (256-byte) aligned.
struct Layout {
  size_t ckpt, scratch, dq, dk, dg, db, den, dn, total;
};

inline size_t align64(size_t n) { return (n + 63) / 64 * 64; }

template <int VAR>
Layout layout(const lak_op_params& p) {
  const size_t K = static_cast<size_t>(p.K);
  const size_t bh = static_cast<size_t>(p.B) * static_cast<size_t>(p.H);
  const size_t nv = static_cast<size_t>(p.V / kVT);
  const size_t ns = static_cast<size_t>((p.T + kStretch - 1) / kStretch);
  const size_t bth = bh * static_cast<size_t>(p.T);
  const size_t E = (K / kKS) * kC + (VAR == kLa ? K / kKS : 0);
  const size_t slot = E * kThreads;
  Layout l{};
  size_t off = 0;
  auto take = [&off](size_t n) {
    const size_t at = off;
    off += align64(n);
    return at;
  };
  l.ckpt = take(bh * nv * ns * slot);
  l.scratch = take(bh * nv * (kStretch + 1) * slot);
  l.dq = take(nv * bth * K);
  l.dk = take(nv * bth * K);
  l.dg = take(VAR == kGla ? nv * bth * K : 0);
  l.db = take(VAR == kDeltanet ? nv * bth : 0);
  l.den = take(VAR == kLa ? bth : 0);
  l.dn = take(VAR == kLa ? bth : 0);
  l.total = off;
  return l;
}

template <int VAR>
int check(const lak_op_params& p, bool backward) {
  const char* name = var_name(VAR);
  if ((p.K != 64 && p.K != 128) || p.V % kVT != 0) {
    return fail(LAK_ERR_UNSUPPORTED,
                "%s/recurrent supports K in {64, 128} and V a multiple of %d; got K=%lld V=%lld",
                name, kVT, static_cast<long long>(p.K), static_cast<long long>(p.V));
  }
  const double elems = static_cast<double>(p.B) * p.T * p.H * (p.K > p.V ? p.K : p.V);
  if (elems > 1.0e17) return fail(LAK_ERR_INVALID, "B*T*H*max(K,V) = %.3g is too large", elems);
  if (static_cast<double>(p.B) * p.H > 2147483647.0) {
    return fail(LAK_ERR_UNSUPPORTED, "B*H exceeds 2^31-1");
  }
  if (p.V / kVT > 65535) return fail(LAK_ERR_UNSUPPORTED, "V exceeds %d", 65535 * kVT);
  if (VAR == kLa && p.normalize != 0 && p.normalize != 1) {
    return fail(LAK_ERR_INVALID, "field 'normalize' is %lld; must be 0 or 1",
                static_cast<long long>(p.normalize));
  }
  if (VAR != kLa && p.normalize != 0 && p.normalize != 1) {
    return fail(LAK_ERR_INVALID, "field 'normalize' must be 0 or 1");
  }
  if (VAR == kDeltanet && p.qk_l2norm != 0 && p.qk_l2norm != 1) {
    return fail(LAK_ERR_INVALID, "field 'qk_l2norm' is %lld; must be 0 or 1",
                static_cast<long long>(p.qk_l2norm));
  }
  if (VAR != kDeltanet && p.qk_l2norm != 0) {
    return fail(LAK_ERR_INVALID, "field 'qk_l2norm' must be 0 for %s", name);
  }
  const uint64_t es = p.dtype == LAK_DTYPE_F64 ? 8 : p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  if (p.dtype == LAK_DTYPE_F64 && backward) {
    return fail(LAK_ERR_UNSUPPORTED, "%s/recurrent at dtype f64 (the fp64 oracle) is forward only",
                name);
  }
  const bool fz = VAR == kLa && p.normalize != 0;
  const struct {
    const char* name;
    uint64_t ptr;
    bool required;
    bool allowed;
    uint64_t align;
  } ptrs[] = {
      {"q", p.q, true, true, es},
      {"k", p.k, true, true, es},
      {"v", p.v, true, true, es},
      {"g", p.g, VAR == kGla, VAR == kGla, es},
      {"beta", p.beta, VAR == kDeltanet, VAR == kDeltanet, es},
      {"mem", p.mem, false, false, es},
      {"h0", p.h0, false, true, 4},
      {"z0", p.z0, false, VAR == kLa, 4},
      {"o", p.o, true, true, es},
      {"final_state", p.final_state, true, true, p.dtype == LAK_DTYPE_F64 ? 8u : 4u},
      {"final_z", p.final_z, fz, VAR == kLa, p.dtype == LAK_DTYPE_F64 ? 8u : 4u},
      {"do_", p.do_, backward, true, es},
      {"dq", p.dq, false, true, es},
      {"dk", p.dk, false, true, es},
      {"dv", p.dv, false, true, es},
      {"dg", p.dg, false, VAR == kGla, es},
      {"dbeta", p.dbeta, false, VAR == kDeltanet, es},
      {"dmem", p.dmem, false, false, es},
      {"dh0", p.dh0, false, true, 4},
      {"dz0", p.dz0, false, VAR == kLa, 4},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; %s/recurrent %s needs it",
                  x.name, name, backward ? "backward" : "forward");
    }
    if (!x.allowed && x.ptr != 0) {
      return fail(LAK_ERR_INVALID, "field '%s' must be 0 (absent) for %s", x.name, name);
    }
    if (x.ptr != 0 && x.ptr % x.align != 0) {
      return fail(LAK_ERR_INVALID, "field '%s' (0x%llx) is not %llu-byte aligned", x.name,
                  static_cast<unsigned long long>(x.ptr),
                  static_cast<unsigned long long>(x.align));
    }
  }
  return LAK_OK;
}

// Scratch of the backward. The forward needs none, so a request without do_ (which the
// backward requires) reports 0 and a forward-only caller allocates nothing.
template <int VAR>
size_t workspace(const lak_op_params& p) {
  if (p.do_ == 0) return 0;
  return layout<VAR>(p).total * sizeof(float);
}

template <int VAR>
Args make_args(const lak_op_params& p) {
  Args a{};
  a.q = reinterpret_cast<const void*>(p.q);
  a.k = reinterpret_cast<const void*>(p.k);
  a.v = reinterpret_cast<const void*>(p.v);
  a.g = reinterpret_cast<const void*>(p.g);
  a.beta = reinterpret_cast<const void*>(p.beta);
  a.dout = reinterpret_cast<const void*>(p.do_);
  a.h0 = reinterpret_cast<const float*>(p.h0);
  a.z0 = VAR == kLa ? reinterpret_cast<const float*>(p.z0) : nullptr;
  a.o = reinterpret_cast<void*>(p.o);
  a.final_state = reinterpret_cast<float*>(p.final_state);
  a.final_z = VAR == kLa && p.normalize ? reinterpret_cast<float*>(p.final_z) : nullptr;
  a.dq = reinterpret_cast<void*>(p.dq);
  a.dk = reinterpret_cast<void*>(p.dk);
  a.dv = reinterpret_cast<void*>(p.dv);
  a.dg = reinterpret_cast<void*>(p.dg);
  a.dbeta = reinterpret_cast<void*>(p.dbeta);
  a.dh0 = p.h0 ? reinterpret_cast<float*>(p.dh0) : nullptr;
  a.dz0 = VAR == kLa ? reinterpret_cast<float*>(p.dz0) : nullptr;
  a.B = p.B;
  a.T = p.T;
  a.H = p.H;
  a.V = p.V;
  a.NV = p.V / kVT;
  a.NS = (p.T + kStretch - 1) / kStretch;
  a.scale = static_cast<float>(p.scale);
  a.scale_f64 = p.scale;
  a.normalize = VAR == kLa ? static_cast<int>(p.normalize) : 0;
  a.l2norm = VAR == kDeltanet ? static_cast<int>(p.qk_l2norm) : 0;
  return a;
}

template <int VAR, typename T, int K>
int launch(const lak_op_params& p, bool backward, cudaStream_t stream) {
  Args a = make_args<VAR>(p);
  const dim3 grid(static_cast<unsigned>(p.B * p.H), static_cast<unsigned>(a.NV));
  if (!backward) {
    fwd_kernel<VAR, T, K><<<grid, kThreads, 0, stream>>>(a);
    LAK_CUDA(cudaGetLastError(), "launch recurrent forward kernel");
    return LAK_OK;
  }
  const Layout l = layout<VAR>(p);
  float* ws = reinterpret_cast<float*>(p.workspace);
  a.ckpt = ws + l.ckpt;
  a.scratch = ws + l.scratch;
  a.dq_part = ws + l.dq;
  a.dk_part = ws + l.dk;
  a.dg_part = VAR == kGla ? ws + l.dg : nullptr;
  a.db_part = VAR == kDeltanet ? ws + l.db : nullptr;
  a.den = VAR == kLa ? ws + l.den : nullptr;
  a.dn = VAR == kLa ? ws + l.dn : nullptr;
  if (VAR == kLa) {
    LAK_CUDA(cudaMemsetAsync(a.dn, 0, static_cast<size_t>(p.B * p.H * p.T) * sizeof(float),
                             stream),
             "cudaMemsetAsync(recurrent dn)");
  }
  fwd_kernel<VAR, T, K><<<grid, kThreads, 0, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch recurrent forward kernel (backward pass)");
  bwd_kernel<VAR, T, K><<<grid, kThreads, 0, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch recurrent backward kernel");
  const int64_t bth = p.B * p.T * p.H;
  const int64_t blocks = (bth + kWarps - 1) / kWarps;
  if (blocks > 2147483647LL) return fail(LAK_ERR_UNSUPPORTED, "B*T*H is too large");
  finalize_kernel<VAR, T, K><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch recurrent finalize kernel");
  return LAK_OK;
}

template <int VAR>
int run(const lak_op_params& p, bool backward, cudaStream_t stream) {
  if (p.dtype == LAK_DTYPE_F64) {
    const Args a = make_args<VAR>(p);
    return p.K == 64 ? rec64::launch<VAR, 64>(a, stream) : rec64::launch<VAR, 128>(a, stream);
  }
  const bool bf16 = p.dtype == LAK_DTYPE_BF16;
  if (p.K == 64) {
    return bf16 ? launch<VAR, __nv_bfloat16, 64>(p, backward, stream)
                : launch<VAR, float, 64>(p, backward, stream);
  }
  return bf16 ? launch<VAR, __nv_bfloat16, 128>(p, backward, stream)
              : launch<VAR, float, 128>(p, backward, stream);
}

template <int VAR>
int forward(const lak_op_params& p, cudaStream_t stream) {
  return run<VAR>(p, false, stream);
}

template <int VAR>
int backward(const lak_op_params& p, cudaStream_t stream) {
  return run<VAR>(p, true, stream);
}

}  // namespace rec
}  // namespace lak
