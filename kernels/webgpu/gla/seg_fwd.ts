/**
 * gla forward for mode "fwd", segmented: chunks are grouped into segments of `cps` chunks, and
 *   1. seg_state.wgsl — per (segment, head): the segment's decayed local state L and Γ into ws;
 *   2. seg_scan.wgsl  — per head and state element: S at each segment start from h0 (NSEG steps),
 *                       final_state at the end;
 *   3. seg_out.wgsl   — per (segment, head): the segment's chunks in order with S in registers.
 * The workspace is B·H·NSEG·(K·V + K) f32 (one state per segment, not per chunk), so the chunk
 * states never travel through memory and the scan is cps times shorter. fwdbwd keeps the
 * three-pass forward (its backward reads every chunk's state) unless `gla.fwd_seg` is 2: then
 * these passes run with `states` (the pipeline constant STATES): ws keeps the per-chunk layout
 * [B·H, NC, K·V + K], segment s in chunk s·cps's slot, and seg_out also writes every chunk's
 * starting S and Γ there, what chunk_state.wgsl and chunk_scan.wgsl leave for the backward.
 */
import type { InputName, OpRequest } from "../../../bench/ops.ts";
import { Unsupported } from "../../../bench/backends/backend.ts";
import {
  type BindName,
  compile,
  type DeviceLimits,
  f32Source,
  ioSource,
  type Kernel,
  layoutFor,
  type Plan,
  settled,
  type Storage,
  tuned,
  wgslFile,
} from "../kernel.ts";
import { paramsBlock } from "../la/chunk_fwd.ts";

export interface GlaSegPlan extends Plan {
  seg: true;
  dtype: Storage;
  C: number;
  NC: number;
  BH: number;
  /** Chunks per segment, and segments per sequence. */
  cps: number;
  NSEG: number;
  scale: number;
  state: { RK: number; RV: number; CT: number; WGN: number };
  scan: { WG: number };
  out: {
    RT: number;
    RV: number;
    RK: number;
    RW: number;
    KT: number;
    QS: number;
    WGN: number;
    NX: number;
    NY: number;
  };
  /** Workgroup-memory bytes of passes 1 and 3. */
  shared: { state: number; out: number };
}

/** Workgroups a dispatch should have at least: ~15 per SM of an H100, so tails stay short. */
const TARGET_WORKGROUPS = 2048;

/** Tiles the segmented forward; throws Unsupported when the shape does not fit the device. */
export function planGlaSeg(req: OpRequest, dtype: Storage, limits: DeviceLimits): GlaSegPlan {
  const { B, T, H, K, V } = req.shape;
  const C = Math.min(req.params.chunk_size, T);
  const NC = Math.ceil(T / C);
  const BH = B * H;
  const name = "webgpu gla/chunk (segmented fwd)";
  if (dtype === "bf16" && V % 2 !== 0) {
    throw new Unsupported(`${name}: bf16 needs an even V (packed bf16 pairs), got V=${V}`);
  }
  const ceil = (a: number, b: number) => Math.ceil(a / b);
  const auto = Math.max(1, Math.min(64, Math.round((NC * BH) / TARGET_WORKGROUPS)));
  const cps = Math.min(tuned("gla.cps", auto), NC);
  const NSEG = ceil(NC, cps);
  const RK = ceil(K, 4), RV = ceil(V, 4), RT = ceil(C, 4);
  const RW = Math.max(RT, RV);
  // A slice of keys must tile the padded key range 4·RK in whole 4-key groups.
  let KT = Math.max(4, 4 * Math.floor(Math.min(tuned("gla.kt", 16), 4 * RK) / 4));
  while ((4 * RK) % KT !== 0) KT -= 4;
  const QS = RT + 1;
  const ND = 10;
  const NX = Math.max(4 * RK * RV, ceil(ND * RT * KT, 4), 4 * RT * RV);
  const NY = Math.max(3 * KT * QS + ceil(2 * KT * RT, 4), 4 * RT * RT);
  const out = { RT, RV, RK, RW, KT, QS, WGN: Math.max(RT * RW, RK * RV, RT * KT), NX, NY };
  const sharedOut = 16 * (NX + 4 * RT * RK + NY);
  const CT = 4 * Math.max(1, Math.floor(tuned("gla.ct", 32) / 4));
  const state = { RK, RV, CT, WGN: Math.max(RK * RV, 64) };
  const sharedState = 16 * (CT * RK + CT * RV + RK) + 4 * (CT / 4) * K;
  const maxInv = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  const maxShared = limits.maxComputeWorkgroupStorageSize;
  if (out.WGN > maxInv || state.WGN > maxInv) {
    throw new Unsupported(
      `${name}: K=${K}, V=${V}, chunk_size=${C} need ${
        Math.max(out.WGN, state.WGN)
      } invocations per workgroup, limit ${maxInv}`,
    );
  }
  if (sharedOut > maxShared || sharedState > maxShared) {
    throw new Unsupported(
      `${name}: chunk_size=${C}, K=${K}, V=${V} need ${
        Math.max(sharedOut, sharedState)
      } bytes of workgroup memory, limit ${maxShared}`,
    );
  }
  if (NSEG > limits.maxComputeWorkgroupsPerDimension) {
    throw new Unsupported(
      `${name}: ${NSEG} segments exceed maxComputeWorkgroupsPerDimension ` +
        `${limits.maxComputeWorkgroupsPerDimension}; raise gla.cps`,
    );
  }
  return {
    seg: true,
    dtype,
    C,
    NC,
    BH,
    cps,
    NSEG,
    scale: req.params.scale,
    workspace: { ws: 4 * BH * NSEG * (K * V + K) },
    state,
    scan: { WG: Math.min(256, maxInv) },
    out,
    shared: { state: sharedState, out: sharedOut },
  };
}

/**
 * Compiles the three segmented passes against gla's binding table; with `states` (fwdbwd,
 * gla.fwd_seg = 2) in the per-chunk ws layout, seg_out leaving every chunk's state.
 */
export async function buildGlaSeg(
  device: GPUDevice,
  plan: GlaSegPlan,
  req: OpRequest,
  has: Set<InputName>,
  bind: Partial<Record<BindName, number>>,
  states = false,
): Promise<Kernel> {
  const label = "gla/chunk";
  const layout = layoutFor(device, label, bind);
  const { K, V } = req.shape;
  const dims = { C: plan.C, K, V, CPS: plan.cps };
  const head = [
    ioSource(plan.dtype, (["q", "k", "v", "g", "o"] as const).map((n) => [n, bind[n]!])),
    f32Source((["ws", "h0", "final_state"] as const).map((n) => [n, bind[n]!])),
    await wgslFile(import.meta.url, "../common.wgsl"),
  ].join("\n");
  const make = async (pass: "state" | "scan" | "out", constants: Record<string, number>) =>
    compile(
      device,
      `${label}_seg_${pass}/${plan.dtype}`,
      layout,
      `${head}\n${await wgslFile(import.meta.url, `seg_${pass}.wgsl`)}`,
      constants,
    );
  const st: Record<string, number> = states ? { STATES: 1 } : {};
  const [state, scan, out] = await settled([
    make("state", { ...dims, ...plan.state, ...st }),
    make("scan", { K, V, CPS: plan.cps, WG: plan.scan.WG, ...st }),
    make("out", { ...dims, ...plan.out, ...st }),
  ]);
  const grid: [number, number, number] = [plan.NSEG, plan.BH, 1];
  // "seg" labels say in per-pass times which forward ran (an override that does not fit falls
  // back to the three passes).
  return {
    layout,
    bindings: bind,
    params: paramsBlock(req.shape, plan.NC, plan.scale, has),
    passes: [
      { label: "seg state", steps: [{ pipeline: state, workgroups: grid }] },
      {
        label: "seg scan",
        steps: [{ pipeline: scan, workgroups: [Math.ceil(K * V / plan.scan.WG), plan.BH, 1] }],
      },
      { label: "seg out", steps: [{ pipeline: out, workgroups: grid }] },
    ],
  };
}
