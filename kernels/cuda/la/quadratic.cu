// la's `quadratic` baseline (LAK_IMPL_QUADRATIC), as PyTorch users write it, each step its
// own launch (see common/quadratic.cuh):
//   Φq = φ(q), Φk = φ(k); A = Φq Φkᵀ (cuBLAS) into a B·H·T×T buffer; tril mask (zeros);
//   normalize: r_i = Σ_j A_ij; N = A V (cuBLAS) + Φq h0; o = N / (r + Φq·z0 + 1e-6) or scale·N;
//   final_state = h0 + Φkᵀ V (cuBLAS), final_z = z0 + Σ_t Φk_t.
// Backward (autograd style, recomputing the forward): ∂N = do/den (or scale·do), ∂den_i =
// −do_i·N_i/den_i²; dA = tril(∂N Vᵀ + ∂den 1ᵀ) (∂N Vᵀ into an fp32 T×T buffer, the sum rounded
// once into A's buffer after dV and dh0 have used A); dΦq = dA Φk + ∂N h0ᵀ +
// ∂den z0ᵀ; dΦk = dAᵀ Φq; dV = Aᵀ ∂N; dh0 = Φqᵀ ∂N; dz0 = Φqᵀ ∂den; dq, dk through φ′.
#include "../common/quadratic.cuh"
#include "../runtime/op_registry.h"

namespace lak {
namespace {

using quad::Mat;

// Workspace regions (bytes, 256-aligned). Forward: fq, fk, sc, rs, num, den. Backward adds
// dn, dsc, dden, dfq, dfk.
struct Layout {
  size_t fq, fk, sc, rs, num, den, dn, dsc, dden, dfq, dfk, fwd_total, bwd_total;
};

Layout layout(const lak_op_params& p) {
  const size_t es = p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  const size_t bth = static_cast<size_t>(p.B * p.H) * static_cast<size_t>(p.T);
  const size_t K = static_cast<size_t>(p.K), V = static_cast<size_t>(p.V);
  const size_t scores = bth * static_cast<size_t>(p.T) * es;  // checked for overflow in check
  Layout l{};
  size_t off = 0;
  auto take = [&off](size_t n) {
    const size_t at = off;
    off += quad::align256(n);
    return at;
  };
  l.fq = take(bth * K * es);
  l.fk = take(bth * K * es);
  l.sc = take(scores);
  l.rs = take(bth * 4);
  l.num = take(bth * V * 4);
  l.den = take(bth * 4);
  l.fwd_total = off;
  l.dn = take(bth * V * es);
  l.dsc = take(bth * static_cast<size_t>(p.T) * 4);  // fp32 dA (see run)
  l.dden = take(bth * 4);
  l.dfq = take(bth * K * 4);
  l.dfk = take(bth * K * 4);
  l.bwd_total = off;
  return l;
}

int check(const lak_op_params& p, bool backward) {
  LAK_TRY(quad::check_common(p, "la"));
  if (p.normalize != 0 && p.normalize != 1) {
    return fail(LAK_ERR_INVALID, "field 'normalize' is %lld; must be 0 or 1",
                static_cast<long long>(p.normalize));
  }
  if (p.qk_l2norm != 0) return fail(LAK_ERR_INVALID, "field 'qk_l2norm' must be 0 for la");
  const uint64_t es = p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  const struct {
    const char* name;
    uint64_t ptr;
    bool required, allowed;
    uint64_t align;
  } ptrs[] = {
      {"q", p.q, true, true, es},
      {"k", p.k, true, true, es},
      {"v", p.v, true, true, es},
      {"o", p.o, true, true, es},
      {"final_state", p.final_state, true, true, 4},
      {"final_z", p.final_z, p.normalize != 0, true, 4},
      {"h0", p.h0, false, true, 4},
      {"z0", p.z0, false, true, 4},
      {"do_", p.do_, backward, true, es},
      {"dq", p.dq, false, true, es},
      {"dk", p.dk, false, true, es},
      {"dv", p.dv, false, true, es},
      {"dh0", p.dh0, false, true, 4},
      {"dz0", p.dz0, false, true, 4},
      {"g", p.g, false, false, es},
      {"beta", p.beta, false, false, es},
      {"mem", p.mem, false, false, es},
      {"dg", p.dg, false, false, es},
      {"dbeta", p.dbeta, false, false, es},
      {"dmem", p.dmem, false, false, es},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; la/quadratic %s needs it",
                  x.name, backward ? "backward" : "forward");
    }
    if (!x.allowed && x.ptr != 0) {
      return fail(LAK_ERR_INVALID, "field '%s' must be 0 (absent) for la", x.name);
    }
    LAK_TRY(quad::check_ptrs_aligned(x.name, x.ptr, x.align));
  }
  return LAK_OK;
}

// A request with do_ set is sized for the backward (two T×T buffers), else the forward's.
size_t workspace(const lak_op_params& p) {
  const Layout l = layout(p);
  return p.do_ ? l.bwd_total : l.fwd_total;
}

struct RowArgs {
  const void* q;
  const void* k;
  const void* dout;
  const float* h0;
  const float* z0;
  const float* rs;   // [B,H,T] row sums of the masked scores
  float* num;        // [B,T,H,V] A·V in, N = A·V + φ(q)h0 out
  float* den;        // [B,T,H]
  void* o;
  void* dn;          // [B,T,H,V] ∂N at the storage dtype
  float* dden;       // [B,T,H]
  const float* dfq;  // [B,T,H,K]
  const float* dfk;
  void* dq;
  void* dk;
  int64_t B, T, H, K, V;
  float scale;
  int normalize;
};

// Per token row (b,t,h): N = num + φ(q)ᵀh0, den = r + φ(q)·z0 + ε, o = N/den or scale·N.
template <typename Dt>
__global__ void out_kernel(const RowArgs a) {
  extern __shared__ float sfq[];  // K
  __shared__ float sh[32];
  const int64_t rows = a.B * a.T * a.H;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t h = row % a.H, bt = row / a.H, t = bt % a.T, b = bt / a.T;
    const int64_t bh = b * a.H + h;
    float zpart = 0.f;
    for (int64_t i = threadIdx.x; i < a.K; i += blockDim.x) {
      const float f = quad::phi(quad::Io<Dt>::load(a.q, row * a.K + i));
      sfq[i] = f;
      if (a.z0) zpart = fmaf(f, a.z0[bh * a.K + i], zpart);
    }
    const float zdot = quad::block_sum(zpart, sh);  // also a barrier for sfq
    const float den = a.rs[bh * a.T + t] + zdot + rec::kLaEps;
    for (int64_t j = threadIdx.x; j < a.V; j += blockDim.x) {
      float n = a.num[row * a.V + j];
      if (a.h0) {
        for (int64_t i = 0; i < a.K; ++i) n = fmaf(sfq[i], a.h0[(bh * a.K + i) * a.V + j], n);
      }
      a.num[row * a.V + j] = n;
      quad::Io<Dt>::store(a.o, row * a.V + j, a.normalize ? n / den : a.scale * n);
    }
    if (threadIdx.x == 0) a.den[row] = den;
    __syncthreads();  // sfq is rewritten by the next row
  }
}

// Per token row: ∂N = do/den (or scale·do) at the storage dtype; ∂den = −do·N/den².
template <typename Dt>
__global__ void dn_kernel(const RowArgs a) {
  __shared__ float sh[32];
  const int64_t rows = a.B * a.T * a.H;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float den = a.den[row];
    float part = 0.f;
    for (int64_t j = threadIdx.x; j < a.V; j += blockDim.x) {
      const float d = quad::Io<Dt>::load(a.dout, row * a.V + j);
      part = fmaf(d, a.num[row * a.V + j], part);
      quad::Io<Dt>::store(a.dn, row * a.V + j, a.normalize ? d / den : a.scale * d);
    }
    const float tot = quad::block_sum(part, sh);
    if (threadIdx.x == 0) a.dden[row] = a.normalize ? -tot / (den * den) : 0.f;
  }
}

// dA = tril(∂N Vᵀ + ∂den 1ᵀ): reads the fp32 product, writes the storage dtype; score row
// r = (b·H + h)·T + t. The two terms nearly cancel (∂N·v_j + ∂den = (do·(v_j − o))/den), so
// the sum is formed in fp32 and rounded once.
template <typename Dt>
__global__ void dscore_kernel(const float* src, void* dst, const float* dden, int64_t B,
                              int64_t H, int64_t T) {
  const int64_t rows = B * H * T;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t t = r % T, bh = r / T, h = bh % H, b = bh / H;
    const float dd = dden[(b * T + t) * H + h];
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) {
      const int64_t e = r * T + j;
      quad::Io<Dt>::store(dst, e, j <= t ? src[e] + dd : 0.f);
    }
  }
}

// Per token row: dφ(q) = dfq + ∂N h0ᵀ + ∂den z0 (∂N recomputed in fp32), dq, dk through φ′.
template <typename Dt>
__global__ void dqk_kernel(const RowArgs a) {
  extern __shared__ float sdn[];  // V
  const int64_t rows = a.B * a.T * a.H;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t h = row % a.H, b = row / a.H / a.T;
    const int64_t bh = b * a.H + h;
    const float den = a.den[row];
    if (a.h0) {
      for (int64_t j = threadIdx.x; j < a.V; j += blockDim.x) {
        const float d = quad::Io<Dt>::load(a.dout, row * a.V + j);
        sdn[j] = a.normalize ? d / den : a.scale * d;
      }
      __syncthreads();
    }
    const float dd = a.dden[row];
    for (int64_t i = threadIdx.x; i < a.K; i += blockDim.x) {
      float g = a.dfq[row * a.K + i];
      if (a.h0) {
        const float* hr = a.h0 + (bh * a.K + i) * a.V;
        for (int64_t j = 0; j < a.V; ++j) g = fmaf(sdn[j], hr[j], g);
      }
      if (a.z0) g = fmaf(dd, a.z0[bh * a.K + i], g);
      const int64_t e = row * a.K + i;
      if (a.dq) quad::Io<Dt>::store(a.dq, e, g * quad::dphi(quad::Io<Dt>::load(a.q, e)));
      if (a.dk) {
        quad::Io<Dt>::store(a.dk, e, a.dfk[e] * quad::dphi(quad::Io<Dt>::load(a.k, e)));
      }
    }
    __syncthreads();
  }
}

// out[b·H + h, i] += Σ_t w_t · φ(x[b,t,h,i]) (w = 1 when null): final_z (out preset to z0)
// and dz0 (w = ∂den, out preset to 0). Grid (B·H, slices of T), block 32 × 8; each block adds
// its slice's column sums atomically.
template <typename Dt>
__global__ void colsum_kernel(const void* x, const float* w, float* out, int64_t T, int64_t H,
                              int64_t K) {
  __shared__ float part[8][33];
  const int64_t bh = blockIdx.x, b = bh / H, h = bh % H;
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int64_t i0 = 0; i0 < K; i0 += 32) {
    const int64_t i = i0 + tx;
    float acc = 0.f;
    if (i < K) {
      for (int64_t t = static_cast<int64_t>(blockIdx.y) * 8 + ty; t < T;
           t += static_cast<int64_t>(gridDim.y) * 8) {
        const int64_t row = (b * T + t) * H + h;
        acc = fmaf(quad::phi(quad::Io<Dt>::load(x, row * K + i)), w ? w[row] : 1.f, acc);
      }
    }
    part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && i < K) {
      float sum = 0.f;
#pragma unroll
      for (int y = 0; y < 8; ++y) sum += part[y][tx];
      atomicAdd(out + bh * K + i, sum);
    }
    __syncthreads();
  }
}

int colsum(const void* x, const float* w, float* out, const lak_op_params& p, cudaStream_t s,
           const char* what) {
  int64_t slices = (p.T + 63) / 64;
  if (slices > 128) slices = 128;
  const dim3 grid(static_cast<unsigned>(p.B * p.H), static_cast<unsigned>(slices));
  if (p.dtype == LAK_DTYPE_BF16) {
    colsum_kernel<__nv_bfloat16><<<grid, dim3(32, 8), 0, s>>>(x, w, out, p.T, p.H, p.K);
  } else {
    colsum_kernel<float><<<grid, dim3(32, 8), 0, s>>>(x, w, out, p.T, p.H, p.K);
  }
  LAK_CUDA(cudaGetLastError(), what);
  return LAK_OK;
}

template <typename Dt>
int run(const lak_op_params& p, bool backward, cudaStream_t s) {
  const int ty = p.dtype == LAK_DTYPE_F32 ? blas::kR32F : blas::kR16BF;
  const int f32 = blas::kR32F;
  const int64_t B = p.B, T = p.T, H = p.H, K = p.K, V = p.V;
  const Layout l = layout(p);
  char* ws = reinterpret_cast<char*>(p.workspace);
  void* fq = ws + l.fq;
  void* fk = ws + l.fk;
  void* sc = ws + l.sc;
  float* rs = reinterpret_cast<float*>(ws + l.rs);
  float* num = reinterpret_cast<float*>(ws + l.num);
  float* den = reinterpret_cast<float*>(ws + l.den);
  const int64_t bth = B * T * H;
  const int64_t rows = B * H * T;  // score rows
  const unsigned tpb = quad::kThreads;

  const Mat FQ{fq, H * K, K, T * H * K};
  const Mat FK{fk, H * K, K, T * H * K};
  const Mat Sm{sc, T, T * T, H * T * T};
  const Mat Vm{reinterpret_cast<const void*>(p.v), H * V, V, T * H * V};
  const Mat NUM{num, H * V, V, T * H * V};
  const Mat FS{reinterpret_cast<const void*>(p.final_state), V, K * V, H * K * V};

  quad::phi_kernel<Dt><<<quad::grid_for(bth * K), tpb, 0, s>>>(reinterpret_cast<const void*>(p.q),
                                                                fq, bth * K);
  LAK_CUDA(cudaGetLastError(), "launch la quadratic phi(q)");
  quad::phi_kernel<Dt><<<quad::grid_for(bth * K), tpb, 0, s>>>(reinterpret_cast<const void*>(p.k),
                                                                fk, bth * K);
  LAK_CUDA(cudaGetLastError(), "launch la quadratic phi(k)");
  LAK_TRY(quad::gemm_bh(s, B, H, false, true, T, T, K, FQ, FK, Sm, 1.f, 0.f, ty, ty));
  quad::mask_kernel<Dt><<<quad::grid_for(rows, 1), tpb, 0, s>>>(sc, rows, T, 0.f);
  LAK_CUDA(cudaGetLastError(), "launch la quadratic mask");
  if (p.normalize) {
    quad::rowsum_kernel<Dt><<<quad::grid_for(rows, 1), tpb, 0, s>>>(sc, rs, rows, T);
    LAK_CUDA(cudaGetLastError(), "launch la quadratic row sums");
  } else {
    LAK_CUDA(cudaMemsetAsync(rs, 0, static_cast<size_t>(rows) * 4, s), "cudaMemsetAsync(rs)");
  }
  LAK_TRY(quad::gemm_bh(s, B, H, false, false, T, V, T, Sm, Vm, NUM, 1.f, 0.f, ty, f32));

  RowArgs a{};
  a.q = reinterpret_cast<const void*>(p.q);
  a.k = reinterpret_cast<const void*>(p.k);
  a.dout = reinterpret_cast<const void*>(p.do_);
  a.h0 = reinterpret_cast<const float*>(p.h0);
  a.z0 = reinterpret_cast<const float*>(p.z0);
  a.rs = rs;
  a.num = num;
  a.den = den;
  a.o = reinterpret_cast<void*>(p.o);
  a.B = B;
  a.T = T;
  a.H = H;
  a.K = K;
  a.V = V;
  a.scale = static_cast<float>(p.scale);
  a.normalize = static_cast<int>(p.normalize);
  const unsigned row_blocks = quad::grid_for(bth, 1);
  out_kernel<Dt><<<row_blocks, 128, static_cast<size_t>(K) * 4, s>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch la quadratic output");

  // final_state = h0 + Φkᵀ V; final_z = z0 + Σ_t Φk.
  const size_t state_bytes = static_cast<size_t>(B * H * K * V) * 4;
  if (p.h0) {
    LAK_CUDA(cudaMemcpyAsync(reinterpret_cast<void*>(p.final_state),
                             reinterpret_cast<const void*>(p.h0), state_bytes,
                             cudaMemcpyDeviceToDevice, s),
             "cudaMemcpyAsync(final_state)");
  }
  LAK_TRY(quad::gemm_bh(s, B, H, true, false, K, V, T, FK, Vm, FS, 1.f, p.h0 ? 1.f : 0.f, ty,
                        f32));
  const size_t z_bytes = static_cast<size_t>(B * H * K) * 4;
  if (p.normalize && p.final_z) {
    float* fz = reinterpret_cast<float*>(p.final_z);
    if (p.z0) {
      LAK_CUDA(cudaMemcpyAsync(fz, reinterpret_cast<const void*>(p.z0), z_bytes,
                               cudaMemcpyDeviceToDevice, s),
               "cudaMemcpyAsync(final_z)");
    } else {
      LAK_CUDA(cudaMemsetAsync(fz, 0, z_bytes, s), "cudaMemsetAsync(final_z)");
    }
    LAK_TRY(colsum(reinterpret_cast<const void*>(p.k), nullptr, fz, p, s,
                   "launch la quadratic final_z"));
  }
  if (!backward) return LAK_OK;

  void* dn = ws + l.dn;
  float* dsc32 = reinterpret_cast<float*>(ws + l.dsc);
  float* dden = reinterpret_cast<float*>(ws + l.dden);
  float* dfq = reinterpret_cast<float*>(ws + l.dfq);
  float* dfk = reinterpret_cast<float*>(ws + l.dfk);
  a.dn = dn;
  a.dden = dden;
  a.dfq = dfq;
  a.dfk = dfk;
  a.dq = reinterpret_cast<void*>(p.dq);
  a.dk = reinterpret_cast<void*>(p.dk);
  const Mat DN{dn, H * V, V, T * H * V};
  const Mat dSm{dsc32, T, T * T, H * T * T};  // fp32 ∂N Vᵀ
  const Mat DFQ{dfq, H * K, K, T * H * K};
  const Mat DFK{dfk, H * K, K, T * H * K};

  dn_kernel<Dt><<<row_blocks, 128, 0, s>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch la quadratic dN");
  // dV = Aᵀ ∂N and dh0 = Φqᵀ ∂N first: then A's buffer is free to hold dA.
  if (p.dv) {
    const Mat dVm{reinterpret_cast<const void*>(p.dv), H * V, V, T * H * V};
    LAK_TRY(quad::gemm_bh(s, B, H, true, false, T, V, T, Sm, DN, dVm, 1.f, 0.f, ty, ty));
  }
  if (p.dh0 && p.h0) {
    const Mat DH{reinterpret_cast<const void*>(p.dh0), V, K * V, H * K * V};
    LAK_TRY(quad::gemm_bh(s, B, H, true, false, K, V, T, FQ, DN, DH, 1.f, 0.f, ty, f32));
  }
  LAK_TRY(quad::gemm_bh(s, B, H, false, true, T, T, V, DN, Vm, dSm, 1.f, 0.f, ty, f32));
  dscore_kernel<Dt><<<quad::grid_for(rows, 1), tpb, 0, s>>>(dsc32, sc, dden, B, H, T);
  LAK_CUDA(cudaGetLastError(), "launch la quadratic dA");
  LAK_TRY(quad::gemm_bh(s, B, H, false, false, T, K, T, Sm, FK, DFQ, 1.f, 0.f, ty, f32));
  LAK_TRY(quad::gemm_bh(s, B, H, true, false, T, K, T, Sm, FQ, DFK, 1.f, 0.f, ty, f32));
  dqk_kernel<Dt><<<row_blocks, 128, static_cast<size_t>(V) * 4, s>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch la quadratic dq/dk");
  if (p.dz0 && p.z0) {
    float* dz0 = reinterpret_cast<float*>(p.dz0);
    LAK_CUDA(cudaMemsetAsync(dz0, 0, z_bytes, s), "cudaMemsetAsync(dz0)");
    if (p.normalize) {
      LAK_TRY(colsum(reinterpret_cast<const void*>(p.q), dden, dz0, p, s,
                     "launch la quadratic dz0"));
    }
  }
  return LAK_OK;
}

int forward(const lak_op_params& p, cudaStream_t s) {
  return p.dtype == LAK_DTYPE_BF16 ? run<__nv_bfloat16>(p, false, s) : run<float>(p, false, s);
}

int backward(const lak_op_params& p, cudaStream_t s) {
  return p.dtype == LAK_DTYPE_BF16 ? run<__nv_bfloat16>(p, true, s) : run<float>(p, true, s);
}

}  // namespace

extern const OpEntry kLaQuadratic = {LAK_VARIANT_LA, LAK_IMPL_QUADRATIC, check, workspace,
                                     forward, backward};

}  // namespace lak
