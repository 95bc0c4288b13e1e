/*
 * lak.h: the C ABI of the linear-attention kernel library (liblak.so).
 *
 * Plain C, no exceptions cross it. Every function returns an int status (LAK_OK = 0); on
 * failure the calling thread's last-error text says why (lak_last_error). Device pointers,
 * streams and events travel as uint64_t handles. docs/cuda-abi.md documents this header for
 * third-party libraries that want to be benchmarked through the same bindings.
 *
 * Bump LAK_ABI_VERSION on every incompatible change (function signatures, struct layout,
 * status codes, enum values).
 */
#ifndef LAK_H
#define LAK_H

#include <stddef.h>
#include <stdint.h>

#define LAK_ABI_VERSION 2

#if defined(_WIN32)
#define LAK_API __declspec(dllexport)
#else
#define LAK_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ---------------------------------------------------------------------- */
#define LAK_OK 0
#define LAK_ERR_INVALID 1     /* a bad argument or params field; the message names it */
#define LAK_ERR_UNSUPPORTED 2 /* valid, but not implemented (variant, impl, dims, backward) */
#define LAK_ERR_CUDA 3        /* any other CUDA runtime error, including kernel faults */
#define LAK_ERR_OOM 4         /* device memory allocation failed */
#define LAK_ERR_NO_DRIVER 5   /* no usable CUDA driver (libcuda.so.1 missing or too old) */
#define LAK_ERR_NO_DEVICE 6   /* a driver, but no CUDA device */

/* ---- enums of lak_op_params ------------------------------------------------------------ */
#define LAK_VARIANT_LA 0
#define LAK_VARIANT_GLA 1
#define LAK_VARIANT_DELTANET 2
#define LAK_VARIANT_RMT 3
#define LAK_VARIANT_SOFTMAX 4

#define LAK_DTYPE_F32 0  /* fp32 storage and math, no TF32 */
#define LAK_DTYPE_BF16 1 /* bf16 storage of q,k,v,g,beta,mem,do,o and gradients; fp32 math */
#define LAK_DTYPE_F64 2  /* fp64 storage and math: the recurrent forward of la, gla and deltanet
                            only, an fp64 oracle for drift checks at any T */

#define LAK_IMPL_CHUNK 0     /* chunk-wise kernels (the suite's main kernels) */
#define LAK_IMPL_RECURRENT 1 /* token by token, the state kept on chip (baseline) */
#define LAK_IMPL_QUADRATIC 2 /* materialized T×T scores, separate launches (naive baseline) */
#define LAK_IMPL_FLASH 3     /* tiled online-softmax attention (FlashAttention-class baseline) */

#define LAK_DIST_NORMAL 0 /* N(0, 1) */
#define LAK_DIST_GATE 1   /* logsigmoid(x) / 16, x ~ N(0, 1): GLA log decays */
#define LAK_DIST_BETA 2   /* sigmoid(x), x ~ N(0, 1): DeltaNet β */

/*
 * The one host/kernel boundary of every op. Every field is 8 bytes wide, so field i sits at
 * byte offset 8*i and a binding can fill the struct with a flat 64-bit view. A pointer of 0
 * means "absent". Layouts (row-major): q,k,g [B,T,H,K]; v,o,do [B,T,H,V]; beta [B,T,H];
 * mem [B,M,H,K]; h0, final_state [B,H,K,V]; z0, final_z [B,H,K]. h0, z0, dh0 and dz0 are
 * fp32 for every dtype; final_state and final_z are fp32, except fp64 at LAK_DTYPE_F64.
 */
typedef struct lak_op_params {
  int64_t variant;     /*  0: LAK_VARIANT_* */
  int64_t dtype;       /*  1: LAK_DTYPE_* */
  int64_t impl;        /*  2: LAK_IMPL_* */
  int64_t B;           /*  3 */
  int64_t T;           /*  4 */
  int64_t H;           /*  5 */
  int64_t K;           /*  6 */
  int64_t V;           /*  7 */
  int64_t M;           /*  8: rmt memory rows, 0 elsewhere */
  double scale;        /*  9 */
  int64_t normalize;   /* 10: la: 0 or 1 */
  int64_t qk_l2norm;   /* 11: deltanet: 0 or 1 */
  int64_t segment_len; /* 12: rmt */
  int64_t chunk_size;  /* 13 */
  uint64_t q;          /* 14 */
  uint64_t k;          /* 15 */
  uint64_t v;          /* 16 */
  uint64_t g;          /* 17 */
  uint64_t beta;       /* 18 */
  uint64_t mem;        /* 19 */
  uint64_t h0;         /* 20 */
  uint64_t z0;         /* 21 */
  uint64_t do_;        /* 22 */
  uint64_t o;          /* 23 */
  uint64_t final_state; /* 24 */
  uint64_t final_z;    /* 25 */
  uint64_t dq;         /* 26 */
  uint64_t dk;         /* 27 */
  uint64_t dv;         /* 28 */
  uint64_t dg;         /* 29 */
  uint64_t dbeta;      /* 30 */
  uint64_t dmem;       /* 31 */
  uint64_t dh0;        /* 32 */
  uint64_t dz0;        /* 33 */
  uint64_t workspace;  /* 34: device scratch of at least lak_op_workspace bytes */
  uint64_t workspace_bytes; /* 35 */
} lak_op_params;

#define LAK_OP_PARAMS_FIELDS 36

/* ---- library and errors ------------------------------------------------------------------ */
/* Writes LAK_ABI_VERSION of the built library. Never fails. */
LAK_API int lak_abi_version(int* out);
/* Copies the calling thread's last error text (NUL-terminated, truncated to n-1 bytes) into
 * buf and returns LAK_OK. Only failing calls change the text ("" before the first failure). */
LAK_API int lak_last_error(char* buf, size_t n);
/* sizeof(lak_op_params), so bindings can check the layout. */
LAK_API int lak_params_size(size_t* out);

/* ---- devices and streams --------------------------------------------------------------- */
LAK_API int lak_device_count(int* out);
/* Selects the device for every later call from any thread (default 0). */
LAK_API int lak_set_device(int device);
/* JSON object: name, sm_count, compute_capability, clock_khz, memory_clock_khz,
 * memory_bus_bits, memory_total_bytes, l2_bytes, shared_per_block_optin_bytes,
 * driver_version, runtime_version, abi_version. */
LAK_API int lak_device_info_json(int device, char* buf, size_t n);
LAK_API int lak_stream_create(uint64_t* out);
LAK_API int lak_stream_destroy(uint64_t stream);
/* 0 = the default (legacy) stream. All launches, copies, memsets and events use it. */
LAK_API int lak_set_stream(uint64_t stream);
/* Waits for the current stream. */
LAK_API int lak_synchronize(void);

/* ---- memory ---------------------------------------------------------------------------- */
LAK_API int lak_malloc(size_t bytes, uint64_t* out);
LAK_API int lak_free(uint64_t ptr);
/* Blocking copies: they return when the host buffer may be reused. */
LAK_API int lak_memcpy_htod(uint64_t dst, const void* src, size_t bytes);
LAK_API int lak_memcpy_dtoh(void* dst, uint64_t src, size_t bytes);
/* Asynchronous on the current stream. */
LAK_API int lak_memcpy_dtod(uint64_t dst, uint64_t src, size_t bytes);
LAK_API int lak_memset(uint64_t ptr, int byte, size_t bytes);
/* out[0] free bytes, out[1] total bytes (driver's view), out[2] bytes the library has
 * allocated now, out[3] the library's peak since the last lak_reset_peak. */
LAK_API int lak_memory_info(uint64_t* out4);
LAK_API int lak_reset_peak(void);
/* Writes a buffer larger than the L2 cache (on the current stream), evicting op data. */
LAK_API int lak_l2_flush(void);

/* Fills n elements of dtype (LAK_DTYPE_*) at ptr with draws of dist (LAK_DIST_*), element i
 * a function of (seed, i) alone, so the same seed gives the same tensor on any launch
 * configuration. Asynchronous on the current stream. */
LAK_API int lak_fill_random(uint64_t ptr, size_t n, int64_t dtype, int64_t dist, uint64_t seed);

/* C = A·B for n×n row-major matrices of dtype LAK_DTYPE_F32 (fp32 math, no TF32) or
 * LAK_DTYPE_BF16 (fp32 accumulation) through cuBLAS loaded at run time, on the current stream:
 * the suite times it to know this GPU's matmul rate. LAK_ERR_UNSUPPORTED without libcublas.
 * Optional for other implementations of this header (the suite then reports no matmul peak). */
LAK_API int lak_matmul(uint64_t a, uint64_t b, uint64_t c, int64_t n, int64_t dtype);

/* ---- timing ---------------------------------------------------------------------------- */
LAK_API int lak_event_create(uint64_t* out);
LAK_API int lak_event_destroy(uint64_t event);
/* Records on the current stream. */
LAK_API int lak_event_record(uint64_t event);
/* Waits for b, then writes the milliseconds between a and b. */
LAK_API int lak_event_elapsed_ms(uint64_t a, uint64_t b, float* out);

/* ---- ops ------------------------------------------------------------------------------- */
/* Device scratch an op needs (0 = none); depends only on the params' sizes and fields. */
LAK_API int lak_op_workspace(const lak_op_params* p, size_t* bytes);
/* Enqueues the forward on the current stream (asynchronous; check with lak_synchronize). */
LAK_API int lak_op_forward(const lak_op_params* p);
/* Enqueues the backward: reads the inputs and do_ (recomputing what the forward would have
 * saved) and writes every gradient whose pointer is set (dq, dk, dv, dg, dbeta, dmem, dh0,
 * dz0). LAK_ERR_UNSUPPORTED where an op has no backward yet. */
LAK_API int lak_op_backward(const lak_op_params* p);

#ifdef __cplusplus
}
#endif

#endif /* LAK_H */
