// deltanet backward, chunk size 64: every gradient of one chunk from S_prev (Hs), dS after the
// chunk (dHs) and V_new (U), with register-tiled fp32 or (bf16) tensor-core products. Same
// algebra as grad_kernel (kernels/reference/deltanet/chunk.ts), phased so that buffers are
// reused: V lives in Q's slot once Q is dead, dW in dQ's, dV in dO's, dT in S's, dA in dS's.
// Buffers go to shared memory in order while they fit and spill to the block's global scratch.
#pragma once

#include "chunk_scan.cuh"

namespace lak {
namespace deltanet {

template <int D>
struct GradFast {
  static constexpr int C = kSC, kLd = D + 1, kLdc = C + 1;
  static constexpr int64_t kFloats = 4 * C + 5 * C * kLdc + 7 * C * kLd + 2 * D * kLd;
};

// Warp per row r < c: l2n backward of g (in place) against the normalized rows y and norms n,
// then the store of g to out (bf16/fp32) when out is set.
template <typename T>
__device__ __forceinline__ void finish_rows(float* g, const float* y, const float* n, int ld,
                                           int c, int D, bool l2, void* out, const Args& a,
                                           int64_t b, int64_t h, int64_t t0) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int r = warp; r < c; r += kThreads / 32) {
    float dot = 0.f;
    if (l2) {
      for (int j = lane; j < D; j += 32) dot = fmaf(y[r * ld + j], g[r * ld + j], dot);
      dot = warp_sum(dot);
    }
    const int64_t base = ((b * a.T + t0 + r) * a.H + h) * D;
    for (int j = lane; j < D; j += 32) {
      float x = g[r * ld + j];
      if (l2) x = (x - y[r * ld + j] * dot) / n[r];
      if (out != nullptr) Io<T>::store(out, base + j, x);
    }
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) grad_fast_kernel(Args a) {
  constexpr bool TC = UseTC<T>::value;
  constexpr int C = kSC, ld = D + 1, ldc = C + 1;
  extern __shared__ float sm[];
  Arena ar{sm, a.smem_floats, 0, a.scratch + static_cast<int64_t>(blockIdx.x) * a.scratch_per_block,
           0};
  float* bet = ar.take(C);
  float* qn = ar.take(C);
  float* kn = ar.take(C);
  float* dbet = ar.take(C);
  float* N = ar.take(C * ldc);
  float* Tm = ar.take(C * ldc);
  float* P = ar.take(C * ldc);
  float* X = ar.take(C * ldc);
  float* KKt = ar.take(C * ldc);
  float* K = ar.take(C * ld);
  float* dK = ar.take(C * ld);
  float* dVn = ar.take(C * ld);
  float* Q = ar.take(C * ld);    // later V
  float* dO = ar.take(C * ld);   // later dV
  float* dQ = ar.take(C * ld);   // later dW
  float* Vn = ar.take(C * ld);
  float* S = ar.take(D * ld);    // later dT
  float* dS = ar.take(D * ld);   // later dA
  float* V = Q;
  float* dV = dO;
  float* dW = dQ;
  float* dT = S;
  float* dA = dS;
  const bool l2 = a.l2 != 0;
  const int64_t DD = static_cast<int64_t>(D) * D;

  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t ch = item % a.NC, bh = item / a.NC;
    const int64_t b = bh / a.H, h = bh % a.H, t0 = ch * C;
    const int c = static_cast<int>(a.T - t0 < C ? a.T - t0 : C);
    const int64_t offc = (bh * a.NC + ch) * static_cast<int64_t>(C) * D;
    const int64_t offd = (bh * a.NC + ch) * DD;
    load_rows<T>(Q, ld, a.q, b, h, t0, 0, D, a, l2, qn);
    load_rows<T>(K, ld, a.k, b, h, t0, 0, D, a, l2, kn);
    load_rows<T>(dO, ld, a.do_, b, h, t0, 0, D, a, false, nullptr);
    load_beta<T>(bet, a, b, h, t0);
    copy_mat(S, ld, a.Hs + offd, D, D, D);
    copy_mat(dS, ld, a.dHs + offd, D, D, D);
    copy_mat(Vn, ld, a.U + offc, D, C, D);
    __syncthreads();
    xgemm<TC, C, C, false, true>(D, 1.f, K, ld, K, ld, KKt, ldc, false);
    xgemm<TC, C, C, false, true>(D, 1.f, Q, ld, K, ld, P, ldc, false);
    __syncthreads();
    for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
      const int i = idx / C, j = idx - i * C;
      X[i * ldc + j] = j < i ? bet[i] * KKt[i * ldc + j] : 0.f;
      if (j > i) P[i * ldc + j] = 0.f;
    }
    __syncthreads();
    unit_lower_inverse64(X, N, ldc);
    // dV_new = scale·Pᵀ dO + K dS
    xgemm<TC, C, D, true, false>(C, a.scale, P, ldc, dO, ld, dVn, ld, false);
    xgemm<TC, C, D, false, false>(D, 1.f, K, ld, dS, ld, dVn, ld, true);
    __syncthreads();
    for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
      const int i = idx / C, j = idx - i * C;
      Tm[i * ldc + j] = N[i * ldc + j] * bet[j];
    }
    // dP = scale·tril(dO V_newᵀ), into P
    xgemm<TC, C, C, false, true>(D, a.scale, dO, ld, Vn, ld, P, ldc, false);
    __syncthreads();
    mask_tril(P, ldc, C, true);
    __syncthreads();
    // dQ = scale·dO Sᵀ + dP K; dK = dPᵀ Q + V_new dSᵀ
    xgemm<TC, C, D, false, true>(D, a.scale, dO, ld, S, ld, dQ, ld, false);
    xgemm<TC, C, D, false, false>(C, 1.f, P, ldc, K, ld, dQ, ld, true);
    xgemm<TC, C, D, true, false>(C, 1.f, P, ldc, Q, ld, dK, ld, false);
    xgemm<TC, C, D, false, true>(D, 1.f, Vn, ld, dS, ld, dK, ld, true);
    __syncthreads();
    finish_rows<T>(dQ, Q, qn, ld, c, D, l2, a.dq, a, b, h, t0);
    __syncthreads();
    // dW = −dV_new Sᵀ (into dQ); V into Q's slot
    xgemm<TC, C, D, false, true>(D, -1.f, dVn, ld, S, ld, dW, ld, false);
    load_rows<T>(V, ld, a.v, b, h, t0, 0, D, a, false, nullptr);
    __syncthreads();
    // dT = dV_new Vᵀ + dW Kᵀ (into S); dV = Tᵀ dV_new (into dO); dK += Tᵀ dW
    xgemm<TC, C, C, false, true>(D, 1.f, dVn, ld, V, ld, dT, ldc, false);
    xgemm<TC, C, C, false, true>(D, 1.f, dW, ld, K, ld, dT, ldc, true);
    xgemm<TC, C, D, true, false>(C, 1.f, Tm, ldc, dVn, ld, dV, ld, false);
    xgemm<TC, C, D, true, false>(C, 1.f, Tm, ldc, dW, ld, dK, ld, true);
    __syncthreads();
    if (a.dv != nullptr) {
      for (int idx = threadIdx.x; idx < c * D; idx += kThreads) {
        const int i = idx / D, j = idx - i * D;
        Io<T>::store(a.dv, ((b * a.T + t0 + i) * a.H + h) * D + j, dV[i * ld + j]);
      }
    }
    // X = Nᵀ dT; dβ_j = Σ_r N_rj dT_rj
    xgemm<TC, C, C, true, false>(C, 1.f, N, ldc, dT, ldc, X, ldc, false);
    for (int j = threadIdx.x; j < C; j += kThreads) {
      float s = 0.f;
      for (int r = 0; r < C; ++r) s = fmaf(N[r * ldc + j], dT[r * ldc + j], s);
      dbet[j] = s;
    }
    __syncthreads();
    // dA = −X Tᵀ (into dS)
    xgemm<TC, C, C, false, true>(C, -1.f, X, ldc, Tm, ldc, dA, ldc, false);
    __syncthreads();
    for (int i = threadIdx.x; i < C; i += kThreads) {
      float s = 0.f;
      for (int j = 0; j < i; ++j) s = fmaf(dA[i * ldc + j], KKt[i * ldc + j], s);
      dbet[i] += s;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
      const int i = idx / C, j = idx - i * C;
      dA[i * ldc + j] = j < i ? dA[i * ldc + j] * bet[i] : 0.f;
    }
    __syncthreads();
    // dK += dA K + dAᵀ K
    xgemm<TC, C, D, false, false>(C, 1.f, dA, ldc, K, ld, dK, ld, true);
    xgemm<TC, C, D, true, false>(C, 1.f, dA, ldc, K, ld, dK, ld, true);
    __syncthreads();
    finish_rows<T>(dK, K, kn, ld, c, D, l2, a.dk, a, b, h, t0);
    if (a.dbeta != nullptr) {
      for (int r = threadIdx.x; r < c; r += kThreads) {
        Io<T>::store(a.dbeta, (b * a.T + t0 + r) * a.H + h, dbet[r]);
      }
    }
    __syncthreads();
  }
}

}  // namespace deltanet
}  // namespace lak
