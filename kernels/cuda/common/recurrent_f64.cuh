// The fp64 oracle: the `recurrent` impl's forward at dtype LAK_DTYPE_F64 for la, gla and
// deltanet, token by token in double. It shares nothing with the chunk kernels or the fp32/bf16
// recurrent kernels, so `deno task drift` has an independent fp64 reference at any T on a GPU
// (the CPU oracle stops being practical around 16K tokens).
//
// Grid (B·H, V/8) blocks of 128 threads: a block owns 8 state columns of one head; the 16 lanes
// of a column hold rows i = lane + 16r, so sums over K are 16-lane shuffles. One token ahead is
// loaded while the current one is computed, since each step waits on its loads otherwise.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "recurrent_kernels.cuh"

namespace lak {
namespace rec64 {

constexpr int kLanes = 16;
constexpr int kCols = 8;
constexpr int kThreads = kLanes * kCols;

__device__ __forceinline__ double sum16(double x) {
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
  return x;
}

__device__ __forceinline__ double phi(double x) { return x > 0.0 ? x + 1.0 : exp(x); }

template <int K>
struct Tok {
  static constexpr int R = K / kLanes;
  double q[R], k[R], g[R], v, beta;
};

template <int VAR, int K>
__device__ __forceinline__ void load(const rec::Args& a, int64_t bth, int lane, int64_t j,
                                     Tok<K>& x) {
  const double* q = static_cast<const double*>(a.q);
  const double* k = static_cast<const double*>(a.k);
#pragma unroll
  for (int r = 0; r < Tok<K>::R; ++r) {
    x.q[r] = q[bth * K + lane + kLanes * r];
    x.k[r] = k[bth * K + lane + kLanes * r];
    if (VAR == rec::kGla) x.g[r] = static_cast<const double*>(a.g)[bth * K + lane + kLanes * r];
  }
  x.v = static_cast<const double*>(a.v)[bth * a.V + j];
  if (VAR == rec::kDeltanet) x.beta = static_cast<const double*>(a.beta)[bth];
}

template <int VAR, int K>
__global__ void __launch_bounds__(kThreads) fwd_f64_kernel(const rec::Args a) {
  constexpr int R = K / kLanes;
  const int lane = threadIdx.x % kLanes;
  const int64_t bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int64_t j = blockIdx.y * kCols + threadIdx.x / kLanes;
  double S[R], z[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t i = lane + kLanes * r;
    S[r] = a.h0 ? a.h0[(bh * K + i) * a.V + j] : 0.0;
    z[r] = VAR == rec::kLa && a.z0 ? a.z0[bh * K + i] : 0.0;
  }
  Tok<K> next;
  if (a.T > 0) load<VAR, K>(a, (b * a.T) * a.H + h, lane, j, next);
  for (int64_t t = 0; t < a.T; ++t) {
    const int64_t bth = (b * a.T + t) * a.H + h;
    Tok<K> x = next;
    if (t + 1 < a.T) load<VAR, K>(a, bth + a.H, lane, j, next);
    if (VAR == rec::kDeltanet && a.l2norm) {
      double kk = 0.0, qq = 0.0;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        kk += x.k[r] * x.k[r];
        qq += x.q[r] * x.q[r];
      }
      const double ik = 1.0 / sqrt(sum16(kk) + 1e-6), iq = 1.0 / sqrt(sum16(qq) + 1e-6);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        x.k[r] *= ik;
        x.q[r] *= iq;
      }
    }
    if (VAR == rec::kLa) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        x.k[r] = phi(x.k[r]);
        x.q[r] = phi(x.q[r]);
        S[r] += x.k[r] * x.v;
        z[r] += x.k[r];
      }
    } else if (VAR == rec::kGla) {
#pragma unroll
      for (int r = 0; r < R; ++r) S[r] = exp(x.g[r]) * S[r] + x.k[r] * x.v;
    } else {
      double sk = 0.0;
#pragma unroll
      for (int r = 0; r < R; ++r) sk += S[r] * x.k[r];
      const double u = x.beta * (x.v - sum16(sk));
#pragma unroll
      for (int r = 0; r < R; ++r) S[r] += x.k[r] * u;
    }
    double num = 0.0, den = 0.0;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      num += x.q[r] * S[r];
      if (VAR == rec::kLa) den += x.q[r] * z[r];
    }
    num = sum16(num);
    double o = a.scale_f64 * num;
    if (VAR == rec::kLa && a.normalize) o = num / (sum16(den) + 1e-6);
    if (lane == 0) static_cast<double*>(a.o)[bth * a.V + j] = o;
  }
  // At dtype f64 final_state and final_z are fp64 too (lak.h).
  double* final_state = reinterpret_cast<double*>(a.final_state);
  double* final_z = reinterpret_cast<double*>(a.final_z);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t i = lane + kLanes * r;
    final_state[(bh * K + i) * a.V + j] = S[r];
    if (VAR == rec::kLa && final_z && j == 0) final_z[bh * K + i] = z[r];
  }
}

template <int VAR, int K>
int launch(const rec::Args& a, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(a.B * a.H), static_cast<unsigned>(a.V / kCols));
  fwd_f64_kernel<VAR, K><<<grid, kThreads, 0, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch recurrent fp64 forward kernel");
  return LAK_OK;
}

}  // namespace rec64
}  // namespace lak
