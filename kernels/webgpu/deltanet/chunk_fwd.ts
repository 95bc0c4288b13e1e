/**
 * deltanet forward, chunked (WY/UT form of docs/ops.md, kernels/reference/deltanet/chunk.ts),
 * in two WGSL passes:
 *   1. chunk_prep.wgsl — per (chunk, head), all chunks in parallel: normalized Q, K, and
 *      W = T K, U = T V, P = tril(Q Kᵀ) with T = (I + tril(diag(β)KKᵀ, −1))⁻¹ diag(β);
 *   2. chunk_rec.wgsl  — per (head, 16 state columns): the chunks in order,
 *      V_new = U − W S, O = scale·(Q S + P V_new), S ← S + Kᵀ V_new.
 */
import { Unsupported } from "../../../bench/backends/backend.ts";
import {
  compile,
  f32Source,
  ioSource,
  type KernelBuilder,
  layoutFor,
  type Plan,
  type Storage,
  wgslFile,
} from "../kernel.ts";
import { paramsBlock } from "../la/chunk_fwd.ts";

const BIND = {
  params: 0,
  q: 1,
  k: 2,
  v: 3,
  beta: 4,
  o: 5,
  h0: 6,
  final_state: 7,
  wsq: 8,
  wsk: 9,
  wsw: 10,
  wsu: 11,
  wsp: 12,
} as const;

const VS = 16; // state columns per pass-2 workgroup, as in chunk_rec.wgsl

interface DeltaPlan extends Plan {
  dtype: Storage;
  C: number;
  NC: number;
  prepWG: number;
  recWG: number;
}

export const deltanetChunk: KernelBuilder<DeltaPlan> = {
  variant: "deltanet",
  impl: "chunk",
  default: true,
  modes: ["fwd"],
  dtypes: ["f32", "f16", "bf16"],
  description:
    "chunked deltanet forward: WY/UT transform per chunk in parallel, then a state pass per 16 columns",
  plan(req, dtype, limits) {
    const { B, T, H, K, V } = req.shape;
    const C = Math.min(req.params.chunk_size, T);
    const NC = Math.ceil(T / C);
    const maxInv = Math.min(
      limits.maxComputeInvocationsPerWorkgroup,
      limits.maxComputeWorkgroupSizeX,
    );
    const recWG = 4 * Math.max(C, K);
    const prepWG = Math.min(256, maxInv);
    const shared = 4 * C * (K + Math.max(K, V) + C);
    const why = dtype === "bf16" && V % 2 !== 0
      ? `bf16 needs an even V (packed bf16 pairs), got V=${V}`
      : recWG > maxInv || C > prepWG
      ? `chunk_size=${C}, K=${K} need ${recWG} invocations per workgroup (limit ${maxInv})`
      : shared > limits.maxComputeWorkgroupStorageSize
      ? `chunk_size=${C}, K=${K}, V=${V} need ${shared} bytes of workgroup memory, limit ${limits.maxComputeWorkgroupStorageSize}`
      : Math.max(NC, B * H) > limits.maxComputeWorkgroupsPerDimension
      ? `${NC} chunks or ${B * H} heads exceed maxComputeWorkgroupsPerDimension`
      : "";
    if (why) throw new Unsupported(`webgpu deltanet/chunk: ${why}`);
    const rows = 4 * B * H * NC * C;
    return {
      dtype,
      C,
      NC,
      prepWG,
      recWG,
      workspace: { wsq: rows * K, wsk: rows * K, wsw: rows * K, wsu: rows * V, wsp: rows * C },
    };
  },
  async build(device, plan, req, has) {
    const layout = layoutFor(device, "deltanet/chunk", BIND);
    const { K, V } = req.shape;
    const head = [
      ioSource(plan.dtype, [["q", BIND.q], ["k", BIND.k], ["v", BIND.v], ["beta", BIND.beta], [
        "o",
        BIND.o,
      ]]),
      f32Source(
        (["h0", "final_state", "wsq", "wsk", "wsw", "wsu", "wsp"] as const).map((n) => [
          n,
          BIND[n],
        ]),
      ),
      await wgslFile(import.meta.url, "../common.wgsl"),
    ].join("\n");
    const make = async (pass: string, constants: Record<string, number>) =>
      compile(
        device,
        `deltanet/chunk_${pass}/${plan.dtype}`,
        layout,
        `${head}\n${await wgslFile(import.meta.url, `chunk_${pass}.wgsl`)}`,
        { C: plan.C, K, V, ...constants },
      );
    const [prep, rec] = await Promise.all([
      make("prep", { WG: plan.prepWG, DM: Math.max(K, V) }),
      make("rec", { WG: plan.recWG }),
    ]);
    const BH = req.shape.B * req.shape.H;
    return {
      layout,
      bindings: BIND,
      params: paramsBlock(req.shape, plan.NC, req.params.scale, has, req.params.qk_l2norm ? 1 : 0),
      passes: [
        { label: "prep", pipeline: prep, workgroups: [plan.NC, BH, 1] },
        { label: "rec", pipeline: rec, workgroups: [Math.ceil(V / VS), BH, 1] },
      ],
    };
  },
};
