/**
 * deltanet, chunked (WY/UT form of docs/ops.md, kernels/reference/deltanet/chunk.ts). Forward
 * in two WGSL passes:
 *   1. chunk_prep.wgsl — per (chunk, head), all chunks in parallel: normalized Q, K, and
 *      W = T K, U = T V, P = tril(Q Kᵀ) with T = (I + tril(diag(β)KKᵀ, −1))⁻¹ diag(β);
 *   2. chunk_rec.wgsl  — per (head, 16 state columns): the chunks in order,
 *      V_new = U − W S, O = scale·(Q S + P V_new), S ← S + Kᵀ V_new.
 * Mode "fwd" replaces pass 2 by the segmented passes of seg_fwd.ts (segments of chunks composed
 * in parallel, a scan over segments, then every segment's outputs), unless their tiles do not fit
 * the device.
 * Backward in two more (the forward keeps N and each chunk's starting S for it):
 *   3. bwd_rec.wgsl  — per (head, 16 columns), chunks in reverse: dS after each chunk, dV_new;
 *   4. bwd_grad2.wgsl — per (chunk, head) in parallel: dq, dk, dv, dβ as tiled products in
 *      workgroup memory (`deltanet.grad` 2, the default where C, K, V ≤ 64; 1: bwd_grad.wgsl,
 *      the same math through global scratch; see planGrad).
 * Version knobs (`LAB_WEBGPU_TUNE`, planVersion: unset, the preferred version that tiles the
 * request; set, that version or Unsupported naming the knob): `deltanet.bwd_seg` 2 (the default where its tiles fit) runs fwdbwd segmented too:
 * pass 2 as mode fwd's segment passes, whose seg_out also writes the per-chunk states and V_new,
 * and pass 3 as segment passes over dS (seg_fwd.ts), leaving pass 4 the same workspace; 1 (and
 * unset, where the segmented tiles do not fit) passes 2 and 3. On an H100 (B1 H8 K=V=64 bf16
 * fwdbwd, prof.ts hot medians, session 6): bwd_seg 2 vs 1 392.4 vs 1,061.5 ms at 256K, and
 * bwd_seg 2 1,591 ms at 1M (the old default path's full-run cell at 1M: 12,590 ms); with
 * deltanet.grad 2 as well (session 7) 461.2 ms at 1M.
 */
import { Unsupported } from "../../../bench/backends/backend.ts";
import type { OpRequest } from "../../../bench/ops.ts";
import {
  compile,
  type DeviceLimits,
  f32Source,
  ioSource,
  type KernelBuilder,
  layoutFor,
  type Pass,
  type Plan,
  planVersion,
  settled,
  type Storage,
  tuned,
  vec4Accessors,
  wgslFile,
} from "../kernel.ts";
import { paramsBlock } from "../la/chunk_fwd.ts";
import { type DeltaSeg, planDeltaSeg, segPasses, segWorkspace } from "./seg_fwd.ts";

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
  do: 13,
  dq: 14,
  dk: 15,
  dv: 16,
  dbeta: 17,
  dh0: 18,
  wsn: 19,
  wss: 20,
  wsds: 21,
  wsdv: 22,
  wsx: 23,
  wsy: 24,
  wsg: 25,
} as const;

const VS = 16; // state columns per pass-2 workgroup, as in chunk_rec.wgsl

/** chunk_prep2.wgsl's invocations and the rows per block of its inverse. */
const PREP2_WG = 256;
const PREP2_BS = 16;

/**
 * chunk_prep2.wgsl's constants for the segmented forward, or undefined when `deltanet.prep` is 1
 * or its workgroup does not fit the device (chunk_prep.wgsl then runs, as before).
 */
export function planPrep2(
  req: OpRequest,
  C: number,
  limits: DeviceLimits,
): Record<string, number> | undefined {
  const version = tuned("deltanet.prep", 2);
  if (version !== 1 && version !== 2) {
    throw new Error(`LAB_WEBGPU_TUNE deltanet.prep must be 1 or 2, got ${version}`);
  }
  if (version === 1) return undefined;
  const { K, V } = req.shape;
  const WG = Math.min(
    PREP2_WG,
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  const RK = Math.ceil(K / 4), RV = Math.ceil(V / 4), RT = Math.ceil(C / 4);
  const RX = Math.max(RK, RV);
  const NB = Math.ceil(C / PREP2_BS);
  const XS = Math.max(4 * RT * RX, Math.ceil((NB - 1) * PREP2_BS * PREP2_BS / 4));
  const pow2 = (x: number) => (x & (x - 1)) === 0;
  const shared = 16 * (4 * RT * RK + XS) + 4 * C * C;
  if (C > WG || shared > limits.maxComputeWorkgroupStorageSize) return undefined;
  return {
    WG,
    RK,
    RV,
    RT,
    RX,
    XS,
    KSW: pow2(RK) ? RK - 1 : 0,
    XSW: pow2(RX) ? RX - 1 : 0,
  };
}

/**
 * fwdbwd's state passes under the `deltanet.bwd_seg` knob (planVersion): 1 the sequential passes
 * 2 and 3 (undefined), 2 the segmented ones (seg_fwd.ts with the dS walk), `planDeltaSeg` tiling
 * them. Unset, 2 wherever those tiles fit the device, else 1. Asked for, 2 rethrows the segmented
 * planner's Unsupported with the knob named, so that an A/B never times passes 2 and 3 under the
 * name 2. Read in every mode, so that a bad value always throws; mode fwd gets undefined (its
 * segmented forward is planned without the knob).
 */
export function planBwdSeg(
  req: OpRequest,
  C: number,
  NC: number,
  limits: DeviceLimits,
): DeltaSeg | undefined {
  return planVersion(
    "deltanet.bwd_seg",
    2,
    (v) => v === 1 || req.mode !== "fwdbwd" ? undefined : planDeltaSeg(req, C, NC, limits, true),
  );
}

/** bwd_grad2.wgsl's invocations: one 4×4 tile of every C×C, C×K and C×V output each. */
const GRAD2_WG = 256;

/**
 * `bwd grad`'s version (`deltanet.grad`, planVersion): 2 (the default) bwd_grad2.wgsl, its
 * override constants; 1 (and unset where 2 does not tile) bwd_grad.wgsl, undefined. On an H100
 * (B1 H8 K=V=64 bf16 fwdbwd, prof.ts hot medians, session 7) the pass took 80.8 ms under 2 against
 * 1,183.7 under 1 at 1M (20.6 against 296.6 at 256K). Version 2 needs one tile per invocation (⌈C/4⌉·max(⌈C/4⌉, ⌈K/4⌉, ⌈V/4⌉) ≤ 256, so
 * C, K, V ≤ 64) and two slots of SL vec4s of workgroup memory (32 KiB at C = K = V = 64); asked
 * for where that does not fit it throws Unsupported naming the knob. Read in every mode, so that
 * a bad value always throws; mode fwd gets undefined (no backward).
 */
export function planGrad(
  req: OpRequest,
  C: number,
  limits: DeviceLimits,
): Record<string, number> | undefined {
  return planVersion("deltanet.grad", 2, (v) => {
    if (v === 1 || req.mode !== "fwdbwd") return undefined;
    const { K, V } = req.shape;
    const RT = Math.ceil(C / 4), RK = Math.ceil(K / 4), RV = Math.ceil(V / 4);
    const R = Math.max(RT, RK, RV);
    // Operands of up to 4R rows of R vec4s; after the products, the row sums (5 vec4s per C×K
    // tile, one per C×C tile, four per row group) span both slots.
    const SL = Math.max(4 * R * R, Math.ceil((5 * RT * RK + RT * RT + 4 * RT) / 2));
    const WG = GRAD2_WG;
    const maxInv = Math.min(
      limits.maxComputeInvocationsPerWorkgroup,
      limits.maxComputeWorkgroupSizeX,
    );
    const shared = 2 * 16 * SL;
    const why = RT * R > WG
      ? `chunk_size=${C}, K=${K}, V=${V} need ${RT * R} tiles per workgroup of ${WG} (C, K, V ≤ 64)`
      : WG > maxInv
      ? `needs ${WG} invocations per workgroup (limit ${maxInv})`
      : shared > limits.maxComputeWorkgroupStorageSize
      ? `chunk_size=${C}, K=${K}, V=${V} need ${shared} bytes of workgroup memory, limit ${limits.maxComputeWorkgroupStorageSize}`
      : "";
    if (why) {
      throw new Unsupported(
        `webgpu deltanet/chunk: deltanet.grad=2 (bwd_grad2.wgsl) ${why}; it does not fall back ` +
          `(deltanet.grad=1 runs bwd_grad.wgsl)`,
      );
    }
    return { WG, RT, RK, RV, SL };
  });
}

interface DeltaPlan extends Plan {
  dtype: Storage;
  C: number;
  NC: number;
  prepWG: number;
  recWG: number;
  /** The segmented passes' tiles (mode fwd where they fit, fwdbwd with bwd_seg 2). */
  seg?: DeltaSeg;
  /** chunk_prep2.wgsl's constants when the segmented forward takes it (deltanet.prep = 2). */
  prep2?: Record<string, number>;
  /** bwd_grad2.wgsl's constants when `bwd grad` takes it (deltanet.grad = 2). */
  grad2?: Record<string, number>;
}

export const deltanetChunk: KernelBuilder<DeltaPlan> = {
  variant: "deltanet",
  impl: "chunk",
  default: true,
  modes: ["fwd", "fwdbwd"],
  dtypes: ["f32", "f16", "bf16"],
  description: "chunked deltanet: WY/UT transform per chunk in parallel; fwd: segment maps, a " +
    "scan over segments, outputs per segment; fwdbwd: a state pass per 16 columns, a reverse " +
    "state-gradient pass, then per-chunk gradients",
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
    const workspace: Record<string, number> = {
      wsq: rows * K,
      wsk: rows * K,
      wsw: rows * K,
      wsu: rows * V,
      wsp: rows * C,
    };
    const grad2 = planGrad(req, C, limits);
    if (req.mode === "fwdbwd") {
      Object.assign(workspace, {
        wsn: rows * C,
        wss: 4 * B * H * NC * K * V,
        wsds: 4 * B * H * NC * K * V,
        wsdv: rows * V,
      });
      // bwd_grad.wgsl's per-chunk scratch; bwd_grad2.wgsl keeps its intermediates on chip.
      if (!grad2) Object.assign(workspace, { wsx: 3 * rows * C, wsy: 3 * rows * K });
    }
    const bwd = req.mode === "fwdbwd";
    let seg = planBwdSeg(req, C, NC, limits);
    if (!bwd) {
      try {
        seg = planDeltaSeg(req, C, NC, limits);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
      }
    }
    if (seg) workspace.wsg = segWorkspace(seg, req);
    // fwdbwd keeps chunk_prep.wgsl, the only prep that leaves N for the backward.
    const prep2 = seg && !bwd ? planPrep2(req, C, limits) : undefined;
    return { dtype, C, NC, prepWG, recWG, workspace, seg, prep2, grad2 };
  },
  async build(device, plan, req, has) {
    const layout = layoutFor(device, "deltanet/chunk", BIND);
    const { K, V } = req.shape;
    const head = [
      ioSource(
        plan.dtype,
        (["q", "k", "v", "beta", "o", "do", "dq", "dk", "dv"] as const).map((n) => [n, BIND[n]]),
      ),
      f32Source(
        ([
          "h0",
          "final_state",
          "wsq",
          "wsk",
          "wsw",
          "wsu",
          "wsp",
          "dbeta",
          "dh0",
          "wsn",
          "wss",
          "wsds",
          "wsdv",
          "wsx",
          "wsy",
          "wsg",
        ] as const).map((n) => [n, BIND[n]]),
      ),
      await wgslFile(import.meta.url, "../common.wgsl"),
    ].join("\n");
    const make = async (
      pass: string,
      constants: Record<string, number>,
      libs: string[] = [],
      prefix = "",
    ) =>
      compile(
        device,
        `deltanet/${pass}/${plan.dtype}`,
        layout,
        [
          head,
          prefix,
          ...await Promise.all([...libs, `${pass}.wgsl`].map((f) => wgslFile(import.meta.url, f))),
        ]
          .join("\n"),
        { C: plan.C, K, V, ...constants },
      );
    const BH = req.shape.B * req.shape.H;
    const prepConsts = { WG: plan.prepWG, DM: Math.max(K, V) };
    const bwd = req.mode === "fwdbwd";
    const gradPass = () =>
      plan.grad2 ? make("bwd_grad2", plan.grad2) : make("bwd_grad", { WG: 256 });
    // flags: bit 0 l2-normalize q, k; bit 2 keep N and the chunk states for the backward.
    const flags = (req.params.qk_l2norm ? 1 : 0) | (bwd ? 4 : 0);
    if (plan.seg) {
      const prep = plan.prep2
        ? await make(
          "chunk_prep2",
          plan.prep2,
          [],
          vec4Accessors(["wsq", "wsk", "wsw", "wsu", "wsp"]),
        )
        : await make("chunk_prep", prepConsts);
      const passes = await segPasses(plan.seg, BH, prep, make);
      const grad = bwd ? await gradPass() : undefined;
      return {
        layout,
        bindings: BIND,
        params: paramsBlock(req.shape, plan.NC, req.params.scale, has, flags),
        // The forward is prep, seg sum, seg scan, seg out.
        bwdFrom: grad ? 4 : undefined,
        passes: grad
          ? [...passes, {
            label: "bwd grad",
            steps: [{ pipeline: grad, workgroups: [plan.NC, BH, 1] }],
          }]
          : passes,
      };
    }
    // The sequential passes store their vec4s through st4_<buffer> (and load wsu through ld4_wsu).
    const sequential = (pass: string, stored: string[]) =>
      make(pass, { WG: plan.recWG }, [], vec4Accessors(stored));
    const [prep, rec, bwdRec, bwdGrad] = await settled([
      make("chunk_prep", prepConsts),
      sequential("chunk_rec", ["wsu", "wss", "final_state"]),
      ...(bwd ? [sequential("bwd_rec", ["wsds", "wsdv", "dh0"]), gradPass()] : []),
    ]);
    const backward = bwd
      ? [
        { label: "bwd rec", steps: [{ pipeline: bwdRec, workgroups: [Math.ceil(V / VS), BH, 1] }] },
        { label: "bwd grad", steps: [{ pipeline: bwdGrad, workgroups: [plan.NC, BH, 1] }] },
      ] as Pass[]
      : [];
    return {
      layout,
      bindings: BIND,
      params: paramsBlock(req.shape, plan.NC, req.params.scale, has, flags),
      bwdFrom: bwd ? 2 : undefined,
      passes: [
        { label: "prep", steps: [{ pipeline: prep, workgroups: [plan.NC, BH, 1] }] },
        { label: "rec", steps: [{ pipeline: rec, workgroups: [Math.ceil(V / VS), BH, 1] }] },
        ...backward,
      ],
    };
  },
};
