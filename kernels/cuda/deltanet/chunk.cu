// deltanet chunked forward / backward: request checks, workspace layout, launches and the
// instantiations (fp32 / bf16 storage; chunk size and head dim are runtime values).
#include <cmath>

#include "../runtime/runtime.h"
#include "chunk.h"
#include "chunk_kernel.cuh"
#include "chunk_scan.cuh"

namespace lak {
namespace deltanet {
namespace {

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

Plan plan(const lak_op_params& p) {
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
  pl.scan = pl.C == kSC;
  int64_t cps = items / kTargetSegs;
  if (cps < 1) cps = 1;
  if (cps > pl.NC) cps = pl.NC;
  pl.cps = cps;
  pl.nseg = (pl.NC + cps - 1) / cps;
  pl.g_floats = pl.scan ? pl.BH * pl.nseg * 2 * pl.D * pl.D : 0;
  pl.s_floats = pl.scan ? pl.BH * pl.nseg * pl.D * pl.D : 0;
  return pl;
}

bool aligned(uint64_t ptr, uint64_t n) { return ptr % n == 0; }

Args make_args(const lak_op_params& p, const Plan& pl) {
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

int smem_optin(int* out) {
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

size_t prep_bytes(const Plan& pl) {
  return sizeof(float) * static_cast<size_t>(2 * pl.C * (pl.D + 1) + 2 * pl.C * (pl.C + 1) + pl.C);
}
size_t state_bytes(const Plan& pl) {
  return sizeof(float) * static_cast<size_t>(pl.D * kVT + 2 * pl.C * (pl.D + 1) + pl.C * kVT);
}
size_t output_bytes(const Plan& pl) {
  return sizeof(float) * static_cast<size_t>(3 * pl.C * (pl.D + 1) + pl.C * (pl.C + 1));
}
size_t dstate_bytes(const Plan& pl) {
  return sizeof(float) *
         static_cast<size_t>(pl.D * kVT + 3 * pl.C * (pl.D + 1) + pl.C * (pl.C + 1) + 2 * pl.C * kVT);
}

ScanArgs scan_args(const Args& a, const Plan& pl, bool store_hs) {
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
  k2<<<dim3(static_cast<unsigned>(pl.BH), D / kVT), kThreads, scan_bytes, stream>>>(a, s);
  LAK_CUDA(cudaGetLastError(), "launch deltanet seg_scan kernel");
  k3<<<dim3(segs, D / kCT), kThreads, ScanSmem<D>::kOutBytes, stream>>>(a, s);
  LAK_CUDA(cudaGetLastError(), "launch deltanet seg_out kernel");
  return LAK_OK;
}

// prep + state: W, V_new, S_prev per chunk and (forward) the final state; with the scan path
// and `outputs`, the outputs too (and no S_prev).
template <typename T>
int run_state(const Args& a, const Plan& pl, int optin, bool outputs, cudaStream_t stream) {
  auto kp = prep_kernel<T>;
  auto ks = state_kernel<T>;
  LAK_TRY(set_smem(kp, prep_bytes(pl), optin, "prep"));
  kp<<<dim3(static_cast<unsigned>(pl.NC), static_cast<unsigned>(pl.BH)), kThreads, prep_bytes(pl),
       stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch deltanet prep kernel");
  if (pl.scan) {
    return pl.D == 64 ? run_scan<T, 64>(a, pl, optin, !outputs, stream)
                      : run_scan<T, 128>(a, pl, optin, !outputs, stream);
  }
  LAK_TRY(set_smem(ks, state_bytes(pl), optin, "state"));
  ks<<<dim3(static_cast<unsigned>(pl.BH), static_cast<unsigned>(pl.D / kVT)), kThreads,
       state_bytes(pl), stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch deltanet state kernel");
  return LAK_OK;
}

template <typename T>
int forward(const lak_op_params& p, cudaStream_t stream) {
  const Plan pl = plan(p);
  const Args a = make_args(p, pl);
  int optin = 0;
  LAK_TRY(smem_optin(&optin));
  LAK_TRY(run_state<T>(a, pl, optin, true, stream));
  if (pl.scan) return LAK_OK;
  auto ko = output_kernel<T>;
  LAK_TRY(set_smem(ko, output_bytes(pl), optin, "output"));
  ko<<<dim3(static_cast<unsigned>(pl.NC), static_cast<unsigned>(pl.BH)), kThreads,
       output_bytes(pl), stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch deltanet output kernel");
  return LAK_OK;
}

template <typename T>
int backward(const lak_op_params& p, cudaStream_t stream) {
  const Plan pl = plan(p);
  Args a = make_args(p, pl);
  a.final_state = nullptr;
  int optin = 0;
  LAK_TRY(smem_optin(&optin));
  LAK_TRY(run_state<T>(a, pl, optin, false, stream));
  auto kd = dstate_kernel<T>;
  LAK_TRY(set_smem(kd, dstate_bytes(pl), optin, "dstate"));
  kd<<<dim3(static_cast<unsigned>(pl.BH), static_cast<unsigned>(pl.D / kVT)), kThreads,
       dstate_bytes(pl), stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch deltanet dstate kernel");
  const bool any = p.dq != 0 || p.dk != 0 || p.dv != 0 || p.dbeta != 0;
  if (!any) return LAK_OK;
  int64_t smem_floats = static_cast<int64_t>(optin) / 4;
  if (smem_floats > pl.grad_floats) smem_floats = pl.grad_floats;
  a.smem_floats = static_cast<int>(smem_floats);
  const size_t gbytes = sizeof(float) * static_cast<size_t>(smem_floats);
  auto kg = grad_kernel<T>;
  LAK_TRY(set_smem(kg, gbytes, optin, "grad"));
  kg<<<static_cast<unsigned>(pl.grad_blocks), kThreads, gbytes, stream>>>(a);
  LAK_CUDA(cudaGetLastError(), "launch deltanet grad kernel");
  return LAK_OK;
}

}  // namespace

int chunk_check(const lak_op_params& p, bool backward) {
  if (p.dtype != LAK_DTYPE_F32 && p.dtype != LAK_DTYPE_BF16) {
    return fail(LAK_ERR_INVALID, "field 'dtype' is %lld; expected 0 (f32) or 1 (bf16)",
                static_cast<long long>(p.dtype));
  }
  const struct {
    const char* name;
    int64_t value;
  } dims[] = {{"B", p.B}, {"T", p.T}, {"H", p.H}, {"K", p.K}, {"V", p.V}};
  for (const auto& d : dims) {
    if (d.value < 1) {
      return fail(LAK_ERR_INVALID, "field '%s' is %lld; must be >= 1", d.name,
                  static_cast<long long>(d.value));
    }
  }
  if (p.M != 0) {
    return fail(LAK_ERR_INVALID, "field 'M' is %lld; must be 0 for deltanet",
                static_cast<long long>(p.M));
  }
  if (p.K != p.V || (p.K != 64 && p.K != 128)) {
    return fail(LAK_ERR_UNSUPPORTED,
                "deltanet chunk supports K = V in {64, 128}; got K=%lld V=%lld",
                static_cast<long long>(p.K), static_cast<long long>(p.V));
  }
  if (p.chunk_size != 16 && p.chunk_size != 32 && p.chunk_size != 64) {
    return fail(LAK_ERR_UNSUPPORTED,
                "field 'chunk_size' is %lld; deltanet chunk supports 16, 32 and 64",
                static_cast<long long>(p.chunk_size));
  }
  const double elems = static_cast<double>(p.B) * static_cast<double>(p.T) *
                       static_cast<double>(p.H) * static_cast<double>(p.K);
  if (elems > 1.0e15) return fail(LAK_ERR_INVALID, "B*T*H*K = %.3g is too large", elems);
  if (p.B * p.H > 65535) {
    return fail(LAK_ERR_UNSUPPORTED, "deltanet chunk supports B*H <= 65535; got %lld",
                static_cast<long long>(p.B * p.H));
  }
  if ((p.T + p.chunk_size - 1) / p.chunk_size > 2147483647LL) {
    return fail(LAK_ERR_UNSUPPORTED, "T / chunk_size exceeds 2^31-1 chunks");
  }
  if (!std::isfinite(p.scale)) return fail(LAK_ERR_INVALID, "field 'scale' is not finite");
  if (p.qk_l2norm != 0 && p.qk_l2norm != 1) {
    return fail(LAK_ERR_INVALID, "field 'qk_l2norm' is %lld; must be 0 or 1",
                static_cast<long long>(p.qk_l2norm));
  }
  if (p.normalize != 0) return fail(LAK_ERR_INVALID, "field 'normalize' must be 0 for deltanet");
  const uint64_t es = p.dtype == LAK_DTYPE_F32 ? 4 : 2;
  const struct {
    const char* name;
    uint64_t ptr;
    bool required;
    uint64_t align;
  } ptrs[] = {
      {"q", p.q, true, es},
      {"k", p.k, true, es},
      {"v", p.v, true, es},
      {"beta", p.beta, true, es},
      {"o", p.o, !backward, es},
      {"final_state", p.final_state, false, 4},
      {"h0", p.h0, false, 4},
      {"do_", p.do_, backward, es},
      {"dq", p.dq, false, es},
      {"dk", p.dk, false, es},
      {"dv", p.dv, false, es},
      {"dbeta", p.dbeta, false, es},
      {"dh0", p.dh0, false, 4},
  };
  for (const auto& x : ptrs) {
    if (x.required && x.ptr == 0) {
      return fail(LAK_ERR_INVALID, "field '%s' is a null pointer; deltanet %s needs it", x.name,
                  backward ? "backward" : "forward");
    }
    if (x.ptr != 0 && !aligned(x.ptr, x.align)) {
      return fail(LAK_ERR_INVALID, "field '%s' (0x%llx) is not %llu-byte aligned", x.name,
                  static_cast<unsigned long long>(x.ptr), static_cast<unsigned long long>(x.align));
    }
  }
  const struct {
    const char* name;
    uint64_t ptr;
  } unused[] = {{"g", p.g},   {"mem", p.mem}, {"z0", p.z0},
                {"dg", p.dg}, {"dmem", p.dmem}, {"dz0", p.dz0}};
  for (const auto& x : unused) {
    if (x.ptr != 0) return fail(LAK_ERR_INVALID, "field '%s' must be 0 (absent) for deltanet", x.name);
  }
  return LAK_OK;
}

size_t chunk_workspace(const lak_op_params& p) {
  const Plan pl = plan(p);
  const int64_t floats = 2 * pl.cd_floats + 2 * pl.dd_floats + pl.g_floats + pl.s_floats +
                         pl.grad_blocks * pl.grad_floats;
  return static_cast<size_t>(floats) * sizeof(float);
}

int chunk_fwd(const lak_op_params& p, cudaStream_t stream) {
  return p.dtype == LAK_DTYPE_BF16 ? forward<__nv_bfloat16>(p, stream) : forward<float>(p, stream);
}

int chunk_bwd(const lak_op_params& p, cudaStream_t stream) {
  return p.dtype == LAK_DTYPE_BF16 ? backward<__nv_bfloat16>(p, stream)
                                   : backward<float>(p, stream);
}

}  // namespace deltanet
}  // namespace lak
