/**
 * The external reference implementations the `torch` backend can run (docs/external.md),
 * whether or not this machine has them. The backend lists the subset its python worker
 * reports importable; the bench plans the whole list as `skipped` cells, with the reason,
 * when the backend is unavailable. Kept apart from torch.ts so planning needs no process.
 */
import type { ImplInfo } from "./backend.ts";

const BOTH = ["fwd", "fwdbwd"] as const;

export const TORCH_IMPLS: readonly ImplInfo[] = [
  {
    variant: "softmax",
    impl: "sdpa-flash",
    default: true,
    dtypes: ["bf16"],
    modes: BOTH,
    description: "torch SDPA, FlashAttention-2 backend (is_causal=True); no fp32 kernel",
  },
  {
    variant: "softmax",
    impl: "sdpa-cudnn",
    default: false,
    dtypes: ["bf16"],
    modes: BOTH,
    description: "torch SDPA, cuDNN fused attention backend (is_causal=True)",
  },
  {
    variant: "softmax",
    impl: "sdpa-efficient",
    default: false,
    dtypes: ["bf16", "f32"],
    modes: BOTH,
    description: "torch SDPA, memory-efficient backend (the xFormers cutlass kernel)",
  },
  {
    variant: "softmax",
    impl: "torch-naive",
    default: false,
    dtypes: ["bf16", "f32"],
    modes: BOTH,
    description:
      "naive PyTorch: materialized T×T scores in the storage dtype, causal mask, fp32 softmax",
  },
  {
    variant: "la",
    impl: "fla-chunk",
    default: true,
    dtypes: ["bf16", "f32"],
    modes: BOTH,
    description: "FLA chunk_linear_attn (Triton) on φ(q), φ(k) = elu+1 applied in torch; " +
      "normalize via FLA's k-cumsum divide with scale 1e-4, which makes its " +
      "scale·φq·z + 1e-10 denominator exactly ours (φq·z + 1e-6)",
  },
  {
    variant: "la",
    impl: "fla-fused-recurrent",
    default: false,
    dtypes: ["bf16", "f32"],
    modes: BOTH,
    description: "FLA fused_recurrent_linear_attn (Triton), φ and normalization as fla-chunk",
  },
  {
    variant: "la",
    impl: "torch-naive",
    default: false,
    dtypes: ["bf16", "f32"],
    modes: BOTH,
    description: "naive PyTorch: materialized T×T masked φ(q)φ(k)ᵀ in the storage dtype, " +
      "state, sums and division in fp32",
  },
  {
    variant: "gla",
    impl: "fla-chunk",
    default: true,
    dtypes: ["bf16", "f32"],
    modes: BOTH,
    description: "FLA chunk_gla (Triton); g is the per-key log decay, as ours",
  },
  {
    variant: "gla",
    impl: "fla-fused-recurrent",
    default: false,
    dtypes: ["bf16", "f32"],
    modes: BOTH,
    description: "FLA fused_recurrent_gla (Triton), gk = g",
  },
  {
    variant: "deltanet",
    impl: "fla-chunk",
    default: true,
    dtypes: ["bf16"],
    modes: BOTH,
    description: "FLA chunk_delta_rule (Triton, WY form; no fp32), " +
      "use_qk_l2norm_in_kernel = qk_l2norm (eps 1e-6 under the root, as ours)",
  },
  {
    variant: "deltanet",
    impl: "fla-fused-recurrent",
    default: false,
    dtypes: ["bf16", "f32"],
    modes: BOTH,
    description: "FLA fused_recurrent_delta_rule (Triton), use_qk_l2norm_in_kernel = qk_l2norm",
  },
];
