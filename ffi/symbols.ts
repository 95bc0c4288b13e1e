/**
 * The FFI symbol table of liblak (kernels/cuda/include/lak.h, LAK_ABI_VERSION 2): one entry
 * per exported function, each parameter annotated with its C type. Every function returns an
 * int status (0 = ok). Device pointers, streams and events are uint64_t handles (bigint).
 */

/** The ABI version these bindings were written against. */
export const LAK_ABI_VERSION = 2;

/** Status codes of lak.h. */
export const Status = {
  OK: 0,
  INVALID: 1,
  UNSUPPORTED: 2,
  CUDA: 3,
  OOM: 4,
  NO_DRIVER: 5,
  NO_DEVICE: 6,
} as const;

export const STATUS_NAMES: Record<number, string> = {
  0: "LAK_OK",
  1: "LAK_ERR_INVALID",
  2: "LAK_ERR_UNSUPPORTED",
  3: "LAK_ERR_CUDA",
  4: "LAK_ERR_OOM",
  5: "LAK_ERR_NO_DRIVER",
  6: "LAK_ERR_NO_DEVICE",
};

export const VARIANT_CODES = { la: 0, gla: 1, deltanet: 2, rmt: 3, softmax: 4 } as const;
export const DTYPE_CODES = { f32: 0, bf16: 1, f64: 2 } as const;
export const IMPL_CODES = { chunk: 0, recurrent: 1, quadratic: 2, flash: 3 } as const;
/** LAK_DIST_*: the distributions lak_fill_random draws from. */
export const DIST_CODES = { normal: 0, gate: 1, beta: 2 } as const;

/**
 * Fields of lak_op_params in order; field i is 8 bytes at offset 8·i. Kinds: i64, f64
 * (double) or ptr (uint64_t device pointer, 0 = absent).
 */
export const PARAM_FIELDS = [
  ["variant", "i64"],
  ["dtype", "i64"],
  ["impl", "i64"],
  ["B", "i64"],
  ["T", "i64"],
  ["H", "i64"],
  ["K", "i64"],
  ["V", "i64"],
  ["M", "i64"],
  ["scale", "f64"],
  ["normalize", "i64"],
  ["qk_l2norm", "i64"],
  ["segment_len", "i64"],
  ["chunk_size", "i64"],
  ["q", "ptr"],
  ["k", "ptr"],
  ["v", "ptr"],
  ["g", "ptr"],
  ["beta", "ptr"],
  ["mem", "ptr"],
  ["h0", "ptr"],
  ["z0", "ptr"],
  ["do", "ptr"],
  ["o", "ptr"],
  ["final_state", "ptr"],
  ["final_z", "ptr"],
  ["dq", "ptr"],
  ["dk", "ptr"],
  ["dv", "ptr"],
  ["dg", "ptr"],
  ["dbeta", "ptr"],
  ["dmem", "ptr"],
  ["dh0", "ptr"],
  ["dz0", "ptr"],
  ["workspace", "ptr"],
  ["workspace_bytes", "ptr"],
] as const;

export type ParamField = (typeof PARAM_FIELDS)[number][0];
export const PARAMS_BYTES = PARAM_FIELDS.length * 8;

export const SYMBOLS = {
  // int lak_abi_version(int* out)
  lak_abi_version: { parameters: ["buffer" /* int* out */], result: "i32" },
  // int lak_last_error(char* buf, size_t n)
  lak_last_error: { parameters: ["buffer", /* char* buf */ "usize" /* size_t n */], result: "i32" },
  // int lak_params_size(size_t* out)
  lak_params_size: { parameters: ["buffer" /* size_t* out */], result: "i32" },

  // int lak_device_count(int* out)
  lak_device_count: { parameters: ["buffer" /* int* out */], result: "i32" },
  // int lak_set_device(int device)
  lak_set_device: { parameters: ["i32" /* int device */], result: "i32" },
  // int lak_device_info_json(int device, char* buf, size_t n)
  lak_device_info_json: {
    parameters: ["i32", /* int device */ "buffer", /* char* buf */ "usize" /* size_t n */],
    result: "i32",
  },
  // int lak_stream_create(uint64_t* out)
  lak_stream_create: { parameters: ["buffer" /* uint64_t* out */], result: "i32" },
  // int lak_stream_destroy(uint64_t stream)
  lak_stream_destroy: { parameters: ["u64" /* uint64_t stream */], result: "i32" },
  // int lak_set_stream(uint64_t stream)
  lak_set_stream: { parameters: ["u64" /* uint64_t stream */], result: "i32" },
  // int lak_synchronize(void)
  lak_synchronize: { parameters: [], result: "i32" },

  // int lak_malloc(size_t bytes, uint64_t* out)
  lak_malloc: {
    parameters: ["usize", /* size_t bytes */ "buffer" /* uint64_t* out */],
    result: "i32",
  },
  // int lak_free(uint64_t ptr)
  lak_free: { parameters: ["u64" /* uint64_t ptr */], result: "i32" },
  // int lak_memcpy_htod(uint64_t dst, const void* src, size_t bytes)
  lak_memcpy_htod: {
    parameters: [
      "u64", /* uint64_t dst */
      "buffer", /* const void* src */
      "usize", /* size_t bytes */
    ],
    result: "i32",
  },
  // int lak_memcpy_dtoh(void* dst, uint64_t src, size_t bytes)
  lak_memcpy_dtoh: {
    parameters: ["buffer", /* void* dst */ "u64", /* uint64_t src */ "usize" /* size_t bytes */],
    result: "i32",
  },
  // int lak_memcpy_dtod(uint64_t dst, uint64_t src, size_t bytes)
  lak_memcpy_dtod: {
    parameters: ["u64", /* uint64_t dst */ "u64", /* uint64_t src */ "usize" /* size_t bytes */],
    result: "i32",
  },
  // int lak_memset(uint64_t ptr, int byte, size_t bytes)
  lak_memset: {
    parameters: ["u64", /* uint64_t ptr */ "i32", /* int byte */ "usize" /* size_t bytes */],
    result: "i32",
  },
  // int lak_memory_info(uint64_t* out4)
  lak_memory_info: { parameters: ["buffer" /* uint64_t out4[4] */], result: "i32" },
  // int lak_reset_peak(void)
  lak_reset_peak: { parameters: [], result: "i32" },
  // int lak_fill_random(uint64_t ptr, size_t n, int64_t dtype, int64_t dist, uint64_t seed)
  lak_fill_random: {
    parameters: [
      "u64", /* uint64_t ptr */
      "usize", /* size_t n */
      "i64", /* int64_t dtype (LAK_DTYPE_*) */
      "i64", /* int64_t dist (LAK_DIST_*) */
      "u64", /* uint64_t seed */
    ],
    result: "i32",
  },
  // int lak_matmul(uint64_t a, uint64_t b, uint64_t c, int64_t n, int64_t dtype)
  // Optional: a library without it still loads; the bench then records no matmul peak.
  lak_matmul: {
    parameters: [
      "u64", /* uint64_t a */
      "u64", /* uint64_t b */
      "u64", /* uint64_t c */
      "i64", /* int64_t n */
      "i64", /* int64_t dtype (LAK_DTYPE_F32 or LAK_DTYPE_BF16) */
    ],
    result: "i32",
    optional: true,
  },
  // int lak_l2_flush(void)
  lak_l2_flush: { parameters: [], result: "i32" },

  // int lak_event_create(uint64_t* out)
  lak_event_create: { parameters: ["buffer" /* uint64_t* out */], result: "i32" },
  // int lak_event_destroy(uint64_t event)
  lak_event_destroy: { parameters: ["u64" /* uint64_t event */], result: "i32" },
  // int lak_event_record(uint64_t event)
  lak_event_record: { parameters: ["u64" /* uint64_t event */], result: "i32" },
  // int lak_event_elapsed_ms(uint64_t a, uint64_t b, float* out)
  lak_event_elapsed_ms: {
    parameters: ["u64", /* uint64_t a */ "u64", /* uint64_t b */ "buffer" /* float* out */],
    result: "i32",
  },

  // int lak_op_workspace(const lak_op_params* p, size_t* bytes)
  lak_op_workspace: {
    parameters: ["buffer", /* const lak_op_params* p */ "buffer" /* size_t* bytes */],
    result: "i32",
  },
  // int lak_op_forward(const lak_op_params* p)
  lak_op_forward: { parameters: ["buffer" /* const lak_op_params* p */], result: "i32" },
  // int lak_op_backward(const lak_op_params* p)
  lak_op_backward: { parameters: ["buffer" /* const lak_op_params* p */], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

export type LakSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
