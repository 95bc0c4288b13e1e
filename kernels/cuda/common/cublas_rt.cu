// cuBLAS through dlopen (see cublas_rt.h).
#include "cublas_rt.h"

#include <dlfcn.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "../runtime/runtime.h"

namespace lak {
namespace blas {
namespace {

constexpr const char* kLib = "libcublas.so.13";

using Handle = void*;
using CreateFn = int (*)(Handle*);
using SetStreamFn = int (*)(Handle, cudaStream_t);
using GemmFn = int (*)(Handle, int, int, int, int, int, const void*, const void*, int, int,
                       long long, const void*, int, int, long long, const void*, void*, int, int,
                       long long, int, int, int);

struct Api {
  bool tried = false;
  bool ok = false;
  char why[512] = {0};
  CreateFn create = nullptr;
  SetStreamFn set_stream = nullptr;
  GemmFn gemm = nullptr;
};

std::mutex g_mu;
Api g_api;
std::unordered_map<int, Handle> g_handles;  // per device, never destroyed

// Under g_mu.
bool load_locked() {
  if (g_api.tried) return g_api.ok;
  g_api.tried = true;
  // The loader's search path first, then the toolkit's usual homes.
  void* lib = dlopen(kLib, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* e = dlerror();
    snprintf(g_api.why, sizeof g_api.why, "%s", e ? e : "dlopen failed");
    char path[1024];
    const char* homes[] = {getenv("CUDA_HOME"), getenv("CUDA_PATH"), "/usr/local/cuda"};
    for (const char* home : homes) {
      if (home == nullptr || *home == 0) continue;
      snprintf(path, sizeof path, "%s/lib64/%s", home, kLib);
      lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
      if (lib != nullptr) break;
    }
    if (lib == nullptr) return false;
  }
  g_api.create = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
  g_api.set_stream = reinterpret_cast<SetStreamFn>(dlsym(lib, "cublasSetStream_v2"));
  g_api.gemm = reinterpret_cast<GemmFn>(dlsym(lib, "cublasGemmStridedBatchedEx"));
  if (!g_api.create || !g_api.set_stream || !g_api.gemm) {
    snprintf(g_api.why, sizeof g_api.why,
             "it lacks cublasCreate_v2, cublasSetStream_v2 or cublasGemmStridedBatchedEx");
    return false;
  }
  g_api.ok = true;
  return true;
}

int unavailable() {
  return fail(LAK_ERR_UNSUPPORTED,
              "the quadratic baselines need cuBLAS, loaded at run time: cannot load %s (%s); "
              "put the CUDA 13 libraries (e.g. /usr/local/cuda/lib64) on LD_LIBRARY_PATH",
              kLib, g_api.why);
}

}  // namespace

int available() {
  std::lock_guard<std::mutex> lock(g_mu);
  return load_locked() ? LAK_OK : unavailable();
}

int gemm(const Gemm& g, cudaStream_t stream) {
  Handle h = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (!load_locked()) return unavailable();
    int dev = 0;
    LAK_CUDA(cudaGetDevice(&dev), "cudaGetDevice");
    auto it = g_handles.find(dev);
    if (it == g_handles.end()) {
      const int st = g_api.create(&h);
      if (st != 0) {
        return fail(st == 3 ? LAK_ERR_OOM : LAK_ERR_CUDA, "cublasCreate_v2 failed with status %d",
                    st);
      }
      g_handles[dev] = h;
    } else {
      h = it->second;
    }
  }
  const int64_t dims[] = {g.M, g.N, g.Kd, g.lda, g.ldb, g.ldc, g.batch};
  for (int64_t d : dims) {
    if (d < 0 || d > INT_MAX) return fail(LAK_ERR_UNSUPPORTED, "a GEMM dimension exceeds 2^31-1");
  }
  if (g.M == 0 || g.N == 0 || g.batch == 0) return LAK_OK;
  // The handle is shared by every thread of the process on this device: set its stream and
  // enqueue under the lock.
  std::lock_guard<std::mutex> lock(g_mu);
  int st = g_api.set_stream(h, stream);
  if (st != 0) return fail(LAK_ERR_CUDA, "cublasSetStream_v2 failed with status %d", st);
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands.
  st = g_api.gemm(h, g.tb ? kOpT : kOpN, g.ta ? kOpT : kOpN, static_cast<int>(g.N),
                  static_cast<int>(g.M), static_cast<int>(g.Kd), &g.alpha, g.B, g.ab_type,
                  static_cast<int>(g.ldb), g.sB, g.A, g.ab_type, static_cast<int>(g.lda), g.sA,
                  &g.beta, g.C, g.c_type, static_cast<int>(g.ldc), g.sC,
                  static_cast<int>(g.batch), kCompute32F, kGemmDefault);
  if (st != 0) {
    return fail(st == 3 ? LAK_ERR_OOM : LAK_ERR_CUDA,
                "cublasGemmStridedBatchedEx failed with status %d (M=%lld N=%lld K=%lld batch=%lld)",
                st, static_cast<long long>(g.M), static_cast<long long>(g.N),
                static_cast<long long>(g.Kd), static_cast<long long>(g.batch));
  }
  return LAK_OK;
}

}  // namespace blas
}  // namespace lak
