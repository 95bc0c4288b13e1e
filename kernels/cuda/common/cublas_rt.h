// cuBLAS loaded at run time (dlopen "libcublas.so.13"): no build-time dependency. Only the few
// functions, enums and types the quadratic baselines call are declared here.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lak {
namespace blas {

// Values of cuBLAS / CUDA library enums (cublas_api.h, library_types.h).
constexpr int kOpN = 0;           // CUBLAS_OP_N
constexpr int kOpT = 1;           // CUBLAS_OP_T
constexpr int kR32F = 0;          // CUDA_R_32F
constexpr int kR16BF = 14;        // CUDA_R_16BF
constexpr int kCompute32F = 68;   // CUBLAS_COMPUTE_32F (no TF32 under the default math mode)
constexpr int kGemmDefault = -1;  // CUBLAS_GEMM_DEFAULT

// Loads libcublas.so.13 once per process and a handle once per device. LAK_OK, or
// LAK_ERR_UNSUPPORTED naming the library when it cannot be loaded, or a CUDA/cuBLAS error.
int available();

// Row-major, batched over `batch` matrices at fixed strides (in elements):
//   C[i] = alpha · op(A[i]) · op(B[i]) + beta · C[i], op(A) M×Kd, op(B) Kd×N, C M×N,
// ta/tb = true for the transpose of the stored matrix. ab_type is the type of A and B
// (kR32F or kR16BF), c_type that of C; fp32 accumulation (CUBLAS_COMPUTE_32F).
struct Gemm {
  bool ta, tb;
  int64_t M, N, Kd;
  const void* A;
  int64_t lda, sA;
  const void* B;
  int64_t ldb, sB;
  void* C;
  int64_t ldc, sC;
  int64_t batch;
  float alpha, beta;
  int ab_type, c_type;
};
int gemm(const Gemm& g, cudaStream_t stream);

}  // namespace blas
}  // namespace lak
