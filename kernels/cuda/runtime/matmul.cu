// lak_matmul: one n×n×n GEMM through cuBLAS (loaded at run time, common/cublas_rt.h) on the
// current stream, so the suite can measure this GPU's matmul rate once per run and report each
// op's TFLOP/s as a fraction of it. bf16: tensor cores with fp32 accumulation; f32: fp32 math
// under cuBLAS's default math mode (no TF32), the ceiling of the fp32 fallback kernels.
#include "../common/cublas_rt.h"
#include "runtime.h"

extern "C" LAK_API int lak_matmul(uint64_t a, uint64_t b, uint64_t c, int64_t n, int64_t dtype) {
  LAK_GUARD_BEGIN
  if (a == 0 || b == 0 || c == 0) return lak::fail(LAK_ERR_INVALID, "lak_matmul: a null pointer");
  if (n < 1 || n > 65536) {
    return lak::fail(LAK_ERR_INVALID, "lak_matmul: n is %lld; must be in 1..65536",
                     static_cast<long long>(n));
  }
  if (dtype != LAK_DTYPE_F32 && dtype != LAK_DTYPE_BF16) {
    return lak::fail(LAK_ERR_INVALID, "lak_matmul: dtype %lld; expected 0 (f32) or 1 (bf16)",
                     static_cast<long long>(dtype));
  }
  LAK_TRY(lak::enter());
  LAK_TRY(lak::blas::available());
  const int type = dtype == LAK_DTYPE_BF16 ? lak::blas::kR16BF : lak::blas::kR32F;
  lak::blas::Gemm g{};
  g.ta = g.tb = false;
  g.M = g.N = g.Kd = n;
  g.A = reinterpret_cast<const void*>(a);
  g.B = reinterpret_cast<const void*>(b);
  g.C = reinterpret_cast<void*>(c);
  g.lda = g.ldb = g.ldc = n;
  g.sA = g.sB = g.sC = n * n;
  g.batch = 1;
  g.alpha = 1.0f;
  g.beta = 0.0f;
  g.ab_type = g.c_type = type;
  return lak::blas::gemm(g, lak::current_stream());
  LAK_GUARD_END
}
