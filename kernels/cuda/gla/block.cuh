// Block-level helpers shared by the gla and la chunk kernels: typed loads/stores of the storage
// dtype and a register-tiled shared-memory matmul for a 256-thread block seen as a 16 x 16 grid
// (thread (ty, tx) owns output rows ty + 16r and columns tx + 16c). Plain fp32 FMA.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

namespace lak {
namespace blk {

constexpr int kThreads = 256;

template <typename T>
struct Io;
template <>
struct Io<float> {
  static __device__ __forceinline__ float load(const void* p, int64_t i) {
    return __ldg(static_cast<const float*>(p) + i);
  }
  static __device__ __forceinline__ void store(void* p, int64_t i, float x) {
    static_cast<float*>(p)[i] = x;
  }
};
template <>
struct Io<__nv_bfloat16> {
  static __device__ __forceinline__ float load(const void* p, int64_t i) {
    return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  }
  static __device__ __forceinline__ void store(void* p, int64_t i, float x) {
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(x);
  }
};

__device__ __forceinline__ int tx() { return threadIdx.x & 15; }
__device__ __forceinline__ int ty() { return threadIdx.x >> 4; }

template <int RM, int RN>
__device__ __forceinline__ void zero(float (&acc)[RM][RN]) {
#pragma unroll
  for (int r = 0; r < RM; ++r)
#pragma unroll
    for (int c = 0; c < RN; ++c) acc[r][c] = 0.f;
}

// acc[r][c] += Σ_{k < KD} a(ty + 16r, k) · b(k, tx + 16c).
template <int RM, int RN, int KD, class FA, class FB>
__device__ __forceinline__ void mm(float (&acc)[RM][RN], FA a, FB b) {
  const int x = tx(), y = ty();
#pragma unroll 4
  for (int k = 0; k < KD; ++k) {
    float ar[RM], br[RN];
#pragma unroll
    for (int r = 0; r < RM; ++r) ar[r] = a(y + 16 * r, k);
#pragma unroll
    for (int c = 0; c < RN; ++c) br[c] = b(k, x + 16 * c);
#pragma unroll
    for (int r = 0; r < RM; ++r)
#pragma unroll
      for (int c = 0; c < RN; ++c) acc[r][c] = fmaf(ar[r], br[c], acc[r][c]);
  }
}

// 16 bytes of storage as floats.
template <typename T>
struct Vec;
template <>
struct Vec<float> {
  static constexpr int kN = 4;
  static __device__ __forceinline__ void unpack(const uint4& r, float* x) {
    x[0] = __uint_as_float(r.x);
    x[1] = __uint_as_float(r.y);
    x[2] = __uint_as_float(r.z);
    x[3] = __uint_as_float(r.w);
  }
};
template <>
struct Vec<__nv_bfloat16> {
  static constexpr int kN = 8;
  static __device__ __forceinline__ void unpack(const uint4& r, float* x) {
    // bf16 is the upper half of an fp32: the element at the lower address is the low half.
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      x[2 * i] = __uint_as_float(w[i] << 16);
      x[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};

// Rows [t0, t0 + C) of a [B,T,H,D] tensor for (b,h) into smem (row stride ld), 16-byte loads
// (rows are D contiguous elements, 16-byte aligned for D in {64, 128}); rows at or past T are
// zero. F maps each loaded value.
template <typename T, int D, int C, class F>
__device__ __forceinline__ void load_rows(float* s, int ld, const void* g, int64_t b, int64_t h,
                                          int64_t t0, int64_t Tn, int64_t Hn, F f) {
  constexpr int N = Vec<T>::kN;
  constexpr int VPR = D / N;
  constexpr int kPer = (C * VPR + kThreads - 1) / kThreads;  // vectors per thread
  static_assert(D % N == 0, "row of whole 16-byte vectors");
  // All of this thread's loads first (kPer in flight), then unpack and store.
  uint4 raw[kPer];
#pragma unroll
  for (int u = 0; u < kPer; ++u) {
    const int idx = threadIdx.x + u * kThreads;
    const int row = idx / VPR, col = (idx % VPR) * N;
    const int64_t t = t0 + row;
    raw[u] = make_uint4(0u, 0u, 0u, 0u);
    if (idx < C * VPR && t < Tn) {
      const T* p = static_cast<const T*>(g) + ((b * Tn + t) * Hn + h) * D + col;
      raw[u] = __ldg(reinterpret_cast<const uint4*>(p));
    }
  }
#pragma unroll
  for (int u = 0; u < kPer; ++u) {
    const int idx = threadIdx.x + u * kThreads;
    if (idx >= C * VPR) continue;
    const int row = idx / VPR, col = (idx % VPR) * N;
    float x[N];
    Vec<T>::unpack(raw[u], x);
    const bool live = t0 + row < Tn;
#pragma unroll
    for (int e = 0; e < N; ++e) s[row * ld + col + e] = live ? f(x[e]) : 0.f;
  }
}

// load_rows split in two, so a chunk's rows can be in flight while the previous chunk is being
// computed: fetch() issues this thread's 16-byte loads into registers, commit() stores them.
template <typename T, int D, int C>
struct RowLoader {
  static constexpr int kN = Vec<T>::kN;
  static constexpr int kVpr = D / kN;
  static constexpr int kPer = (C * kVpr + kThreads - 1) / kThreads;
  uint4 raw[kPer];
  int64_t t0, Tn;
  __device__ __forceinline__ void fetch(const void* g, int64_t b, int64_t h, int64_t t0_,
                                        int64_t Tn_, int64_t Hn) {
    t0 = t0_;
    Tn = Tn_;
#pragma unroll
    for (int u = 0; u < kPer; ++u) {
      const int idx = threadIdx.x + u * kThreads;
      const int row = idx / kVpr, col = (idx % kVpr) * kN;
      const int64_t t = t0 + row;
      raw[u] = make_uint4(0u, 0u, 0u, 0u);
      if (idx < C * kVpr && t < Tn) {
        const T* p = static_cast<const T*>(g) + ((b * Tn + t) * Hn + h) * D + col;
        raw[u] = __ldg(reinterpret_cast<const uint4*>(p));
      }
    }
  }
  template <class F>
  __device__ __forceinline__ void commit(float* s, int ld, F f) const {
#pragma unroll
    for (int u = 0; u < kPer; ++u) {
      const int idx = threadIdx.x + u * kThreads;
      if (idx >= C * kVpr) continue;
      const int row = idx / kVpr, col = (idx % kVpr) * kN;
      float x[kN];
      Vec<T>::unpack(raw[u], x);
      const bool live = t0 + row < Tn;
#pragma unroll
      for (int e = 0; e < kN; ++e) s[row * ld + col + e] = live ? f(x[e]) : 0.f;
    }
  }
};

// n floats (a multiple of 4, 16-byte aligned source) from global into smem rows of `cols`
// floats with row stride ld.
__device__ __forceinline__ void copy_rows_f32(float* s, int ld, const float* g, int n, int cols) {
  for (int i = threadIdx.x * 4; i < n; i += kThreads * 4) {
    const float4 x = __ldg(reinterpret_cast<const float4*>(g + i));
    const int row = i / cols, col = i % cols;
    s[row * ld + col] = x.x;
    s[row * ld + col + 1] = x.y;
    s[row * ld + col + 2] = x.z;
    s[row * ld + col + 3] = x.w;
  }
}

struct Ident {
  __device__ __forceinline__ float operator()(float x) const { return x; }
};

// The rows of N tensors (f applied where mapped[i]): every load in flight before the first
// store when that costs few registers (bf16 at D = 64), else one tensor at a time.
template <typename T, int D, int C, int N, class F>
__device__ __forceinline__ void load_rows_n(float* const (&s)[N], int ld,
                                            const void* const (&g)[N], const bool (&mapped)[N],
                                            int64_t b, int64_t h, int64_t t0, int64_t Tn,
                                            int64_t Hn, F f) {
  if constexpr (RowLoader<T, D, C>::kPer <= 2) {
    RowLoader<T, D, C> l[N];
#pragma unroll
    for (int i = 0; i < N; ++i) l[i].fetch(g[i], b, h, t0, Tn, Hn);
#pragma unroll
    for (int i = 0; i < N; ++i) {
      if (mapped[i]) {
        l[i].commit(s[i], ld, f);
      } else {
        l[i].commit(s[i], ld, Ident());
      }
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) {
      if (mapped[i]) {
        load_rows<T, D, C>(s[i], ld, g[i], b, h, t0, Tn, Hn, f);
      } else {
        load_rows<T, D, C>(s[i], ld, g[i], b, h, t0, Tn, Hn, Ident());
      }
    }
  }
}

// Inclusive cumsum down the rows of a C x D smem tile (row stride ld), one thread per column.
template <int D, int C>
__device__ __forceinline__ void cumsum_rows(float* s, int ld) {
  for (int col = threadIdx.x; col < D; col += kThreads) {
    float acc = 0.f;
    for (int r = 0; r < C; ++r) {
      acc += s[r * ld + col];
      s[r * ld + col] = acc;
    }
  }
}

// ---- block products behind one interface -------------------------------------------------
// Acc<M, N> holds this thread's share of an M x N fp32 product; mm<KD>(a, b) adds
// Σ_{k<KD} a(i, k) b(k, j) (accessors read fp32 shared memory), each(f) calls f(i, j, x&) for
// every owned element. FmaAcc: the 16 x 16 thread grid, plain fp32 FMA. TcAcc: 8 warps of
// mma.sync m16n8k16 (operands rounded to bf16, fp32 accumulation), used only for bf16 storage,
// where q, k, v, do are exact in bf16.

template <int M, int N>
struct FmaAcc {
  static_assert(M % 16 == 0 && N % 16 == 0, "whole 16 x 16 thread-grid tiles");
  float v[M / 16][N / 16];
  __device__ __forceinline__ void zero() { blk::zero(v); }
  template <int KD, class FA, class FB>
  __device__ __forceinline__ void mm(FA a, FB b) {
    blk::mm<M / 16, N / 16, KD>(v, a, b);
  }
  template <class F>
  __device__ __forceinline__ void each(F f) {
#pragma unroll
    for (int r = 0; r < M / 16; ++r)
#pragma unroll
      for (int c = 0; c < N / 16; ++c) f(ty() + 16 * r, tx() + 16 * c, v[r][c]);
  }
};

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 x = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&x);
}

template <int M, int N>
struct TcAcc {
  static constexpr int kRT = M / 16, kCT = N / 8;
  static constexpr int kWM = kRT < 8 ? kRT : 8;  // warps along M
  static constexpr int kWN = 8 / kWM;
  static constexpr int kMT = kRT / kWM, kNT = kCT / kWN;
  static_assert(kWM * kWN == 8 && kMT * kWM == kRT && kNT * kWN == kCT, "tile split");
  float v[kMT][kNT][4];
  __device__ __forceinline__ int row0() const { return ((threadIdx.x >> 5) % kWM) * kMT * 16; }
  __device__ __forceinline__ int col0() const { return ((threadIdx.x >> 5) / kWM) * kNT * 8; }
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int m = 0; m < kMT; ++m)
#pragma unroll
      for (int n = 0; n < kNT; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) v[m][n][e] = 0.f;
  }
  template <int KD, class FA, class FB>
  __device__ __forceinline__ void mm(FA a, FB b) {
    static_assert(KD % 16 == 0, "K must be a multiple of 16");
    const int lane = threadIdx.x & 31, g = lane >> 2, t2 = (lane & 3) * 2;
    const int r0 = row0(), c0 = col0();
#pragma unroll 2
    for (int k0 = 0; k0 < KD; k0 += 16) {
      uint32_t af[kMT][4], bf[kNT][2];
#pragma unroll
      for (int m = 0; m < kMT; ++m) {
        const int i = r0 + 16 * m + g;
        af[m][0] = pack_bf16(a(i, k0 + t2), a(i, k0 + t2 + 1));
        af[m][1] = pack_bf16(a(i + 8, k0 + t2), a(i + 8, k0 + t2 + 1));
        af[m][2] = pack_bf16(a(i, k0 + t2 + 8), a(i, k0 + t2 + 9));
        af[m][3] = pack_bf16(a(i + 8, k0 + t2 + 8), a(i + 8, k0 + t2 + 9));
      }
#pragma unroll
      for (int n = 0; n < kNT; ++n) {
        const int j = c0 + 8 * n + g;
        bf[n][0] = pack_bf16(b(k0 + t2, j), b(k0 + t2 + 1, j));
        bf[n][1] = pack_bf16(b(k0 + t2 + 8, j), b(k0 + t2 + 9, j));
      }
#pragma unroll
      for (int m = 0; m < kMT; ++m)
#pragma unroll
        for (int n = 0; n < kNT; ++n) {
          asm volatile(
              "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
              "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
              : "+f"(v[m][n][0]), "+f"(v[m][n][1]), "+f"(v[m][n][2]), "+f"(v[m][n][3])
              : "r"(af[m][0]), "r"(af[m][1]), "r"(af[m][2]), "r"(af[m][3]), "r"(bf[n][0]),
                "r"(bf[n][1]));
        }
    }
  }
  template <class F>
  __device__ __forceinline__ void each(F f) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t2 = (lane & 3) * 2;
#pragma unroll
    for (int m = 0; m < kMT; ++m)
#pragma unroll
      for (int n = 0; n < kNT; ++n) {
        const int i = row0() + 16 * m + g, j = col0() + 8 * n + t2;
        f(i, j, v[m][n][0]);
        f(i, j + 1, v[m][n][1]);
        f(i + 8, j, v[m][n][2]);
        f(i + 8, j + 1, v[m][n][3]);
      }
  }
};

// Whether an M x N product splits into whole m16n8 tiles over TcAcc's 8 warps (its static_assert):
// 16 x 16 (chunk size 16, the C x C scores) has only 2 tiles, so it runs on FmaAcc instead.
template <int M, int N>
constexpr bool tc_fits() {
  if (M % 16 != 0 || N % 8 != 0) return false;
  const int rt = M / 16, ct = N / 8;
  const int wm = rt < 8 ? rt : 8;
  const int wn = 8 / wm;
  return wm * wn == 8 && rt % wm == 0 && ct % wn == 0;
}

// Tensor cores for bf16 storage at head dim 64 (where the shared-memory tiles fit with the
// tensor-core padding); FMA elsewhere, and for products too small for the 8-warp split (tc_fits).
// kPad: row padding of fp32 tiles (4 keeps the mma fragment loads conflict-light, 1 the FMA
// grid's).
template <typename T, int D>
struct Tc {
  static constexpr bool kOn = sizeof(T) == 2 && D == 64;
  static constexpr int kPad = kOn ? 4 : 1;
  template <int M, int N>
  using Acc = typename std::conditional<kOn && tc_fits<M, N>(), TcAcc<M, N>, FmaAcc<M, N>>::type;
};

}  // namespace blk
}  // namespace lak
