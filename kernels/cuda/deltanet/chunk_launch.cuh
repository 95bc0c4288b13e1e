// deltanet chunked forward / backward launchers (workspace layout, kernel sequences), shared
// by chunk.cu (sizes) and the per-dtype instantiation units chunk_f32.cu / chunk_bf16.cu.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "../runtime/runtime.h"
#include "chunk.h"
#include "chunk_grad.cuh"
#include "chunk_kernel.cuh"
#include "chunk_scan.cuh"

namespace lak {
namespace deltanet {

// Persistent blocks of the grad kernel; the workspace holds one scratch slot per block.
constexpr int64_t kGradBlocks = 264;
// Scan path (chunk size 64): aim for this many (segment, b·h) pairs.
constexpr int64_t kTargetSegs = 1024;

struct Plan {
  int64_t C, D, BH, NC;
  int64_t cd_floats;  // BH * NC * C * D (W, U)
  int64_t dd_floats;  // BH * NC * D * D (Hs, dHs)
  int64_t grad_floats;  // per grad block
  int64_t grad_blocks;
  bool scan;            // chunk size 64: the segment-scan state pass
  int64_t cps, nseg;    // chunks per segment, segments per b·h
  int64_t g_floats;     // BH * nseg * 2 * D * D (segment summaries)
  int64_t s_floats;     // BH * nseg * D * D (segment start states)
};

inline Plan plan(const lak_op_params& p) {
  Plan pl;
  pl.C = p.chunk_size;
  pl.D = p.K;
  pl.BH = p.B * p.H;
  pl.NC = (p.T + pl.C - 1) / pl.C;
  pl.cd_floats = pl.BH * pl.NC * pl.C * pl.D;
  pl.dd_floats = pl.BH * pl.NC * pl.D * pl.D;
  pl.grad_floats = (GradLayout::total(static_cast<int>(pl.C), static_cast<int>(pl.D)) + 3) / 4 * 4;
  const int64_t items = pl.BH * pl.NC;
  pl.grad_blocks = items < kGradBlocks ? items : kGradBlocks;
  // LAK_DN_SIMPLE=1: the simple path (sequential state per (b,h), naive products) at every
  // chunk size, for A/B checks of the scan path.
  const char* simple = std::getenv("LAK_DN_SIMPLE");
  pl.scan = pl.C == kSC && !(simple != nullptr && simple[0] == '1');
  int64_t cps = items / kTargetSegs;
  if (cps < 1) cps = 1;
  if (cps > pl.NC) cps = pl.NC;
  pl.cps = cps;
  pl.nseg = (pl.NC + cps - 1) / cps;
  pl.g_floats = pl.scan ? pl.BH * pl.nseg * 2 * pl.D * pl.D : 0;
  pl.s_floats = pl.scan ? pl.BH * pl.nseg * pl.D * pl.D : 0;
  return pl;
}

inline Args make_args(const lak_op_params& p, const Plan& pl) {
  Args a{};
  a.q = reinterpret_cast<const void*>(p.q);
  a.k = reinterpret_cast<const void*>(p.k);
  a.v = reinterpret_cast<const void*>(p.v);
  a.beta = reinterpret_cast<const void*>(p.beta);
  a.do_ = reinterpret_cast<const void*>(p.do_);
  a.h0 = reinterpret_cast<const float*>(p.h0);
  a.o = reinterpret_cast<void*>(p.o);
  a.final_state = reinterpret_cast<float*>(p.final_state);
  a.dq = reinterpret_cast<void*>(p.dq);
  a.dk = reinterpret_cast<void*>(p.dk);
  a.dv = reinterpret_cast<void*>(p.dv);
  a.dbeta = reinterpret_cast<void*>(p.dbeta);
  a.dh0 = reinterpret_cast<float*>(p.dh0);
  float* ws = reinterpret_cast<float*>(p.workspace);
  a.W = ws;
  a.U = a.W + pl.cd_floats;
  a.Hs = a.U + pl.cd_floats;
  a.dHs = a.Hs + pl.dd_floats;
  a.scratch = a.dHs + pl.dd_floats + pl.g_floats + pl.s_floats;
  a.scratch_per_block = pl.grad_floats;
  a.smem_floats = 0;
  a.B = p.B;
  a.T = p.T;
  a.H = p.H;
  a.NC = pl.NC;
  a.items = pl.BH * pl.NC;
  a.D = static_cast<int>(pl.D);
  a.C = static_cast<int>(pl.C);
  a.scale = static_cast<float>(p.scale);
  a.l2 = static_cast<int>(p.qk_l2norm);
  return a;
}

inline int smem_optin(int* out) {
  int dev = 0;
  LAK_CUDA(cudaGetDevice(&dev), "cudaGetDevice");
  LAK_CUDA(cudaDeviceGetAttribute(out, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
           "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  return LAK_OK;
}

// Sets the kernel's dynamic shared memory limit to `bytes`, failing when the device has less.
template <typename K>
int set_smem(K kernel, size_t bytes, int optin, const char* name) {
  if (bytes > static_cast<size_t>(optin)) {
    return fail(LAK_ERR_UNSUPPORTED,
                "deltanet %s kernel needs %zu bytes of shared memory per block; this device "
                "allows %d",
                name, bytes, optin);
  }
  LAK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(bytes)),
           name);
  return LAK_OK;
}

// LAK_DN_PROFILE=1 in the environment: synchronizes after every kernel and prints its time
// to stderr ("deltanet prof: <kernel> <ms>"). For tuning only; off by default.
struct Prof {
  bool on = false;
  cudaEvent_t last = nullptr;
  cudaStream_t stream = nullptr;
};
inline thread_local Prof g_prof;

inline int prof_begin(cudaStream_t stream) {
  const char* e = std::getenv("LAK_DN_PROFILE");
  g_prof.on = e != nullptr && e[0] == '1';
  if (!g_prof.on) return LAK_OK;
  g_prof.stream = stream;
  if (g_prof.last == nullptr) LAK_CUDA(cudaEventCreate(&g_prof.last), "cudaEventCreate");
  LAK_CUDA(cudaEventRecord(g_prof.last, stream), "cudaEventRecord");
  return LAK_OK;
}

inline int prof_mark(const char* name) {
  if (!g_prof.on) return LAK_OK;
  cudaEvent_t now = nullptr;
  LAK_CUDA(cudaEventCreate(&now), "cudaEventCreate");
  LAK_CUDA(cudaEventRecord(now, g_prof.stream), "cudaEventRecord");
  LAK_CUDA(cudaEventSynchronize(now), "cudaEventSynchronize");
  float ms = 0.f;
  LAK_CUDA(cudaEventElapsedTime(&ms, g_prof.last, now), "cudaEventElapsedTime");
  std::fprintf(stderr, "deltanet prof: %s %.3f\n", name, ms);
  LAK_CUDA(cudaEventDestroy(g_prof.last), "cudaEventDestroy");
  g_prof.last = now;
  return LAK_OK;
}

inline size_t prep_bytes(const Plan& pl) {
  return sizeof(float) * static_cast<size_t>(2 * pl.C * (pl.D + 1) + 2 * pl.C * (pl.C + 1) + pl.C);
}
inline size_t state_bytes(const Plan& pl) {
  return sizeof(float) * static_cast<size_t>(pl.D * kVT + 2 * pl.C * (pl.D + 1) + pl.C * kVT);
}
inline size_t output_bytes(const Plan& pl) {
  return sizeof(float) * static_cast<size_t>(3 * pl.C * (pl.D + 1) + pl.C * (pl.C + 1));
}
inline size_t dstate_bytes(const Plan& pl) {
  return sizeof(float) *
         static_cast<size_t>(pl.D * kVT + 3 * pl.C * (pl.D + 1) + pl.C * (pl.C + 1) + 2 * pl.C * kVT);
}

inline ScanArgs scan_args(const Args& a, const Plan& pl, bool store_hs) {
  ScanArgs s{};
  s.G = a.dHs + pl.dd_floats;
  s.Sseg = s.G + pl.g_floats;
  s.cps = pl.cps;
  s.nseg = pl.nseg;
  s.store_hs = store_hs ? 1 : 0;
  return s;
}

// The scan path: seg_sum, seg_scan, seg_out (outputs, or S_prev per chunk and V_new).
template <typename T, int D>
int run_scan(const Args& a, const Plan& pl, int optin, bool store_hs, cudaStream_t stream) {
  const ScanArgs s = scan_args(a, pl, store_hs);
  auto k1 = seg_sum_kernel<T, D>;
  auto k2 = seg_scan_kernel<D>;
  auto k3 = seg_out_kernel<T, D>;
  const size_t scan_bytes = sizeof(float) * static_cast<size_t>(2 * D * kVT + D * (D + 1));
  LAK_TRY(set_smem(k1, ScanSmem<D>::kSumBytes, optin, "seg_sum"));
  LAK_TRY(set_smem(k2, scan_bytes, optin, "seg_scan"));
  LAK_TRY(set_smem(k3, ScanSmem<D>::kOutBytes, optin, "seg_out"));
  const unsigned segs = static_cast<unsigned>(pl.BH * pl.nseg);
  k1<<<dim3(segs, 2 * D / kCT), kThreads, ScanSmem<D>::kSumBytes, stream>>>(a, s);
  LAK_CUDA(cudaGetLastError(), "launch deltanet seg_sum kernel");
  LAK_TRY(prof_mark("seg_sum kernel"));
  k2<<<dim3(static_cast<unsigned>(pl.BH), D / kVT), kThreads, scan_bytes, stream>>>(a, s);
  LAK_CUDA(cudaGetLastError(), "launch deltanet seg_scan kernel");
  LAK_TRY(prof_mark("seg_scan kernel"));
  k3<<<dim3(segs, D / kCT), kThreads, ScanSmem<D>::kOutBytes, stream>>>(a, s);
  LAK_CUDA(cudaGetLastError(), "launch deltanet seg_out kernel");
  LAK_TRY(prof_mark("seg_out kernel"));
  return LAK_OK;
}

// The backward's scan path: dS after every chunk (dHs) and dh0.
template <typename T, int D>
int run_bscan(const Args& a, const Plan& pl, int optin, cudaStream_t stream) {
  const ScanArgs sum = scan_args(a, pl, false), walk = scan_args(a, pl, true);
  auto k1 = bseg_kernel<T, D>;
  auto k2 = bscan_kernel<D>;
  const size_t scan_bytes = sizeof(float) * static_cast<size_t>(2 * D * kVT + D * (D + 1));
  LAK_TRY(set_smem(k1, BScanSmem<D>::kBytes, optin, "bseg"));
  LAK_TRY(set_smem(k2, scan_bytes, optin, "bscan"));
  const unsigned segs = static_cast<unsigned>(pl.BH * pl.nseg);
  k1<<<dim3(segs, 2 * D / kCT), kThreads, BScanSmem<D>::kBytes, stream>>>(a, sum);
  LAK_CUDA(cudaGetLastError(), "launch deltanet bseg kernel (sum)");
  LAK_TRY(prof_mark("bseg kernel (sum)"));
  k2<<<dim3(static_cast<unsigned>(pl.BH), D / kVT), kThreads, scan_bytes, stream>>>(a, sum);
  LAK_CUDA(cudaGetLastError(), "launch deltanet bscan kernel");
  LAK_TRY(prof_mark("bscan kernel"));
  k1<<<dim3(segs, D / kCT), kThreads, BScanSmem<D>::kBytes, stream>>>(a, walk);
  LAK_CUDA(cudaGetLastError(), "launch deltanet bseg kernel (walk)");
  LAK_TRY(prof_mark("bseg kernel (walk)"));
  return LAK_OK;
}

// prep + state: W, V_new, S_prev per chunk and (forward) the final state; with the scan path
// and `outputs`, the outputs too (and no S_prev).
template <typename T>
int run_state(const Args& a, const Plan& pl, int optin, bool outputs, cudaStream_t stream) {
  auto kp = prep_kernel<T>;
  auto ks = state_kernel<T>;
  if (pl.scan) {
    auto kf = pl.D == 64 ? prep_fast_kernel<T, 64> : prep_fast_kernel<T, 128>;
    LAK_TRY(set_smem(kf, prep_bytes(pl), optin, "prep_fast"));
    kf<<<dim3(static_cast<unsigned>(pl.NC), static_cast<unsigned>(pl.BH)), kThreads,
         prep_bytes(pl), stream>>>(a);
    LAK_CUDA(cudaGetLastError(), "launch deltanet prep_fast kernel");
    LAK_TRY(prof_mark("prep_fast kernel"));
    return pl.D == 64 ? run_scan<T, 64>(a, pl, optin, !outputs, stream)
                      : run_scan<T, 128>(a, pl, optin, !outputs, stream);
  }
  LAK_TRY(set_smem(kp, prep_bytes(pl), optin, "prep"));
  kp<<<dim3(static_cast<unsigned>(pl.NC), static_cast<unsigned>(pl.BH)), kThreads, prep_bytes(pl),
       stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch deltanet prep kernel");
  LAK_TRY(prof_mark("prep kernel"));
  LAK_TRY(set_smem(ks, state_bytes(pl), optin, "state"));
  ks<<<dim3(static_cast<unsigned>(pl.BH), static_cast<unsigned>(pl.D / kVT)), kThreads,
       state_bytes(pl), stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch deltanet state kernel");
  LAK_TRY(prof_mark("state kernel"));
  return LAK_OK;
}

template <typename T>
int forward(const lak_op_params& p, cudaStream_t stream) {
  const Plan pl = plan(p);
  const Args a = make_args(p, pl);
  int optin = 0;
  LAK_TRY(smem_optin(&optin));
  LAK_TRY(prof_begin(stream));
  LAK_TRY(run_state<T>(a, pl, optin, true, stream));
  if (pl.scan) return LAK_OK;
  auto ko = output_kernel<T>;
  LAK_TRY(set_smem(ko, output_bytes(pl), optin, "output"));
  ko<<<dim3(static_cast<unsigned>(pl.NC), static_cast<unsigned>(pl.BH)), kThreads,
       output_bytes(pl), stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch deltanet output kernel");
  LAK_TRY(prof_mark("output kernel"));
  return LAK_OK;
}

template <typename T>
int backward(const lak_op_params& p, cudaStream_t stream) {
  const Plan pl = plan(p);
  Args a = make_args(p, pl);
  a.final_state = nullptr;
  int optin = 0;
  LAK_TRY(smem_optin(&optin));
  LAK_TRY(prof_begin(stream));
  LAK_TRY(run_state<T>(a, pl, optin, false, stream));
  if (pl.scan) {
    const int st = pl.D == 64 ? run_bscan<T, 64>(a, pl, optin, stream)
                              : run_bscan<T, 128>(a, pl, optin, stream);
    if (st != LAK_OK) return st;
  } else {
    auto kd = dstate_kernel<T>;
    LAK_TRY(set_smem(kd, dstate_bytes(pl), optin, "dstate"));
    kd<<<dim3(static_cast<unsigned>(pl.BH), static_cast<unsigned>(pl.D / kVT)), kThreads,
         dstate_bytes(pl), stream>>>(a);
    LAK_CUDA(cudaGetLastError(), "launch deltanet dstate kernel");
    LAK_TRY(prof_mark("dstate kernel"));
  }
  const bool any = p.dq != 0 || p.dk != 0 || p.dv != 0 || p.dbeta != 0;
  if (!any) return LAK_OK;
  // The fast kernel needs fewer floats than the slot the workspace reserves (grad_floats).
  const int64_t need = pl.scan ? (pl.D == 64 ? GradFast<64>::kFloats : GradFast<128>::kFloats)
                               : pl.grad_floats;
  int64_t smem_floats = static_cast<int64_t>(optin) / 4;
  if (smem_floats > need) smem_floats = need;
  a.smem_floats = static_cast<int>(smem_floats);
  const size_t gbytes = sizeof(float) * static_cast<size_t>(smem_floats);
  auto kg = !pl.scan ? grad_kernel<T>
                     : (pl.D == 64 ? grad_fast_kernel<T, 64> : grad_fast_kernel<T, 128>);
  LAK_TRY(set_smem(kg, gbytes, optin, "grad"));
  int dev = 0, sms = 0, per_sm = 0;
  LAK_CUDA(cudaGetDevice(&dev), "cudaGetDevice");
  LAK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev),
           "cudaDeviceGetAttribute(MultiProcessorCount)");
  LAK_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kg, kThreads, gbytes),
           "cudaOccupancyMaxActiveBlocksPerMultiprocessor(deltanet grad)");
  int64_t blocks = static_cast<int64_t>(sms) * (per_sm > 0 ? per_sm : 1);
  if (blocks > pl.grad_blocks) blocks = pl.grad_blocks;
  kg<<<static_cast<unsigned>(blocks), kThreads, gbytes, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch deltanet grad kernel");
  LAK_TRY(prof_mark("grad kernel"));
  return LAK_OK;
}

}  // namespace deltanet
}  // namespace lak
