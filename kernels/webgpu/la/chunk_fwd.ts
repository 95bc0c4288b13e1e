/**
 * la forward, chunked, in three WGSL passes (see docs/webgpu.md):
 *   1. chunk_state.wgsl — per (chunk, head): local φ(K)ᵀV and Σφ(K) into an f32 workspace;
 *   2. chunk_scan.wgsl  — per head: exclusive prefix over chunks (h0/z0 first), totals out;
 *   3. chunk_out.wgsl   — per (chunk, head): o from the prefix state and the causal block.
 * This module plans the tiling for one head group and builds the pipelines; buffers, head
 * groups and timing belong to the backend (bench/backends/webgpu.ts).
 */
import type { InputName, OpRequest, Shape } from "../../../bench/ops.ts";
import { Unsupported } from "../../../bench/backends/backend.ts";
import {
  type BindName,
  compile,
  type DeviceLimits,
  f32Source,
  ioSource,
  type Kernel,
  type KernelBuilder,
  layoutFor,
  type Plan,
  planVersion,
  settled,
  type Storage,
  tuned,
  wgslFile,
} from "../kernel.ts";
import { buildLaSeg, type LaSegPlan, planLaSeg } from "./seg_fwd.ts";

/** Binding numbers shared by the three passes (one bind group layout for all). */
export const BIND = {
  params: 0,
  q: 1,
  k: 2,
  v: 3,
  o: 4,
  ws: 5,
  h0: 6,
  z0: 7,
  final_state: 8,
  final_z: 9,
  do: 10,
  dq: 11,
  dk: 12,
  dv: 13,
  dh0: 14,
  dz0: 15,
  wsd: 16,
  wsn: 17,
} as const;

export interface LaChunkPlan extends Plan {
  dtype: Storage;
  C: number;
  /** Chunks per sequence. */
  NC: number;
  BH: number;
  /** f32 words per (head, chunk) in the workspace: K·V state + K key sum. */
  KVZ: number;
  normalize: boolean;
  scale: number;
  state: { RK: number; RV: number; TT: number };
  scan: { WG: number };
  out: { RT: number; RV: number; KT: number };
  /** Workgroup-memory bytes each pass needs. */
  shared: { state: number; out: number };
  /** fwdbwd: tiles of the per-chunk backward passes. */
  bwd?: LaBackwardPlan;
}

export interface LaBackwardPlan {
  /** Slab depth (a multiple of 4). */
  D: number;
  /** Per pass: its override constants (tile grids, NT invocations, NX slab vec4s), and the
   * workgroup-memory bytes they give. */
  local: Record<string, number>;
  grad: Record<string, number>;
  shared: { local: number; grad: number };
}

const MT = 4; // per-invocation register tile, as in common.wgsl

/** Chooses tile shapes for a problem; throws Unsupported when the shape cannot be tiled. */
export function planLaChunk(req: OpRequest, dtype: Storage, limits: DeviceLimits): LaChunkPlan {
  return planChunk(req, dtype, limits, false);
}

/**
 * The tiling shared by la and gla (same three passes; gla's keep the cumulative gates in
 * workgroup memory too, `gated`).
 */
export function planChunk(
  req: OpRequest,
  dtype: Storage,
  limits: DeviceLimits,
  gated: boolean,
): LaChunkPlan {
  const { shape, params } = req;
  const name = `${req.variant}/chunk`;
  const { B, T, H, K, V } = shape;
  const C = Math.min(params.chunk_size, T);
  const NC = Math.ceil(T / C);
  const BH = B * H;
  const maxInv = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  const maxShared = limits.maxComputeWorkgroupStorageSize;
  if (dtype === "bf16" && V % 2 !== 0) {
    throw new Unsupported(`webgpu ${name} bf16 needs an even V (packed bf16 pairs), got V=${V}`);
  }
  if (
    NC > limits.maxComputeWorkgroupsPerDimension
  ) {
    throw new Unsupported(
      `webgpu ${name}: ${NC} chunks exceed maxComputeWorkgroupsPerDimension ` +
        `${limits.maxComputeWorkgroupsPerDimension}; use a larger chunk_size`,
    );
  }
  const ceil = (a: number, b: number) => Math.ceil(a / b);
  const state = { RK: ceil(K, MT), RV: ceil(V, MT), TT: 16 };
  const out = { RT: ceil(C, MT), RV: ceil(Math.max(V, C), MT), KT: 16 };
  if (state.RK * state.RV > maxInv || out.RT * out.RV > maxInv) {
    throw new Unsupported(
      `webgpu ${name}: K=${K}, V=${V}, chunk_size=${C} need ${
        Math.max(state.RK * state.RV, out.RT * out.RV)
      } invocations per workgroup (limit ${maxInv}); at most ${MT}·sqrt(limit) per dimension`,
    );
  }
  const sharedState = (t: number) => 4 * (t * (K + V) + (gated ? 2 * K : 0));
  const sharedOut = (kt: number) => 4 * (C * C + (gated ? 3 : 2) * kt * C + kt * V);
  while (state.TT > 1 && sharedState(state.TT) > maxShared) state.TT >>= 1;
  while (out.KT > 1 && sharedOut(out.KT) > maxShared) out.KT >>= 1;
  if (sharedState(state.TT) > maxShared || sharedOut(out.KT) > maxShared) {
    throw new Unsupported(
      `webgpu ${name}: chunk_size=${C}, K=${K}, V=${V} need ${sharedOut(1)} bytes of workgroup ` +
        `memory, limit ${maxShared}`,
    );
  }
  const KVZ = K * V + K;
  const wsBytes = 4 * BH * NC * KVZ;
  const workspace: Record<string, number> = { ws: wsBytes };
  if (req.mode === "fwdbwd") {
    workspace.wsd = wsBytes;
    workspace.wsn = 4 * BH * NC * C * (V + 1);
  }
  return {
    dtype,
    C,
    NC,
    BH,
    KVZ,
    workspace,
    normalize: params.normalize,
    scale: params.scale,
    state,
    scan: { WG: Math.min(256, maxInv) },
    out,
    shared: { state: sharedState(state.TT), out: sharedOut(out.KT) },
    ...(req.mode === "fwdbwd" ? { bwd: planBackward(req, limits, gated) } : {}),
  };
}

/**
 * Tiles of the per-chunk backward passes (bwd_common.wgsl): 4×4 register tiles over ⌈·/4⌉
 * grids of C, K, V, one invocation per tile of a pass's largest grid, and products streamed over
 * slabs of depth D, halved from the `<variant>.bwd_d` knob (la 8, gla 16) until workgroup memory fits.
 */
function planBackward(req: OpRequest, limits: DeviceLimits, gated: boolean): LaBackwardPlan {
  const { K, V } = req.shape;
  const C = Math.min(req.params.chunk_size, req.shape.T);
  const name = `${req.variant}/chunk backward`;
  const [C4, K4, V4] = [C, K, V].map((n) => Math.ceil(n / 4));
  const [CP, KP] = [4 * C4, 4 * K4];
  const maxInv = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  // Invocations per pass: one per tile of its largest grid (bwd_local: P or N, and Φqᵀ∂N; gla
  // only the latter; bwd_grad: P, dV, dq/dk).
  const NTl = gated ? K4 * V4 : Math.max(C4 * C4, C4 * V4, K4 * V4);
  const NTg = Math.max(C4 * C4, C4 * V4, C4 * K4);
  const NT = Math.max(NTl, NTg);
  if (NT > maxInv) {
    throw new Unsupported(
      `webgpu ${name}: chunk_size=${C}, K=${K}, V=${V} need ${NT} invocations per workgroup ` +
        `(one per 4×4 tile), limit ${maxInv}`,
    );
  }
  // vec4s of the slab array per pass (its largest phase; see the bwd_*.wgsl headers), beside
  // the score matrix sP (la: ∂N too, so max(C4, V4) wide) and small per-row arrays.
  const sizes = (D: number) => {
    const D4 = D / 4;
    const base = { C4, K4, V4, D, D4 };
    if (gated) {
      const local = D * (K4 + V4);
      const grad = Math.max(
        6 * CP * D4 + D * V4,
        2 * CP * D4 + 3 * KP * D4,
        4 * D * K4 + (D + 1) * K4,
      );
      return {
        local: { ...base, NT: NTl, NX: local },
        grad: { ...base, NT: NTg, NX: grad },
        shared: { local: 16 * local, grad: 16 * (CP * C4 + grad + K4) },
      };
    }
    const PW = Math.max(C4, V4);
    const local = Math.max(2 * CP * D4 + D * V4 + D4, D * V4, C4 * V4, D * K4);
    const grad = Math.max(2 * CP * D4 + D * V4, 2 * CP * D4 + 2 * KP * D4, 2 * D * K4);
    return {
      local: { ...base, NT: NTl, NX: local, PW },
      grad: { ...base, NT: NTg, NX: grad, PW: C4 },
      shared: { local: 16 * (CP * PW + local) + 4 * CP, grad: 16 * (CP * C4 + grad) },
    };
  };
  const maxShared = limits.maxComputeWorkgroupStorageSize;
  const fits = (D: number) => Math.max(...Object.values(sizes(D).shared)) <= maxShared;
  // Defaults from the H100 sweep at 1M bf16 (docs/perf-notes.md): la 8 (182 vs 198 ms fwd+bwd),
  // gla 16 (293 vs 334 ms).
  const bwdD = tuned(`${req.variant}.bwd_d`, req.variant === "la" ? 8 : 16);
  let D = 4 * Math.max(1, Math.floor(bwdD / 4));
  while (D > 4 && !fits(D)) D = 4 * Math.ceil(D / 8);
  if (!fits(D)) {
    throw new Unsupported(
      `webgpu ${name}: chunk_size=${C}, K=${K}, V=${V} need ${
        Math.max(...Object.values(sizes(D).shared))
      } bytes of workgroup memory, limit ${maxShared}`,
    );
  }
  return { D, ...sizes(D) };
}

/** The uniform block of common.wgsl (`Params`). */
export function paramsBlock(
  shape: Shape,
  NC: number,
  scale: number,
  has: Set<InputName>,
  flags = 0,
): ArrayBuffer {
  const buf = new ArrayBuffer(32);
  const dv = new DataView(buf);
  dv.setUint32(0, shape.T, true);
  dv.setUint32(4, shape.H, true);
  dv.setUint32(8, NC, true);
  dv.setUint32(12, shape.B * shape.H, true);
  dv.setFloat32(16, scale, true);
  dv.setUint32(20, has.has("h0") ? 1 : 0, true);
  dv.setUint32(24, has.has("z0") ? 1 : 0, true);
  dv.setUint32(28, flags, true);
  return buf;
}

/**
 * Compiles the three passes (chunk_{state,scan,out}.wgsl next to `base`) of la or gla: `io`
 * are the storage-dtype tensors, `f32` the f32 buffers, both with their binding numbers.
 */
export async function buildThreePass(
  device: GPUDevice,
  plan: LaChunkPlan,
  req: OpRequest,
  has: Set<InputName>,
  base: string,
  bind: Partial<Record<BindName, number>>,
  io: BindName[],
  f32: BindName[],
): Promise<Kernel> {
  const label = `${req.variant}/chunk`;
  const layout = layoutFor(device, label, bind);
  const { K, V } = req.shape;
  const dims = { C: plan.C, K, V };
  const head = [
    ioSource(plan.dtype, io.map((n) => [n, bind[n]!])),
    f32Source(f32.map((n) => [n, bind[n]!])),
    await wgslFile(import.meta.url, "../common.wgsl"),
  ].join("\n");
  const make = async (pass: "state" | "scan" | "out", constants: Record<string, number>) =>
    compile(
      device,
      `${label}_${pass}/${plan.dtype}`,
      layout,
      `${head}\n${await wgslFile(base, `chunk_${pass}.wgsl`)}`,
      constants,
    );
  const norm: Record<string, number> = req.variant === "la"
    ? { NORMALIZE: plan.normalize ? 1 : 0 }
    : {};
  const [state, scan, out] = await settled([
    make("state", { ...dims, ...plan.state }),
    make("scan", { K, V, WG: plan.scan.WG, ...norm }),
    make("out", { ...dims, ...plan.out, ...norm }),
  ]);
  return {
    layout,
    bindings: bind,
    params: paramsBlock(req.shape, plan.NC, plan.scale, has, plan.normalize ? 2 : 0),
    passes: [
      { label: "state", steps: [{ pipeline: state, workgroups: [plan.NC, plan.BH, 1] }] },
      {
        label: "scan",
        steps: [{ pipeline: scan, workgroups: [Math.ceil(plan.KVZ / plan.scan.WG), plan.BH, 1] }],
      },
      { label: "out", steps: [{ pipeline: out, workgroups: [plan.NC, plan.BH, 1] }] },
    ],
  };
}

/**
 * Appends the three backward passes (bwd_local, bwd_scan, bwd_grad.wgsl next to `base`, the
 * per-chunk ones with bwd_common.wgsl's helpers) to a forward built by buildThreePass;
 * `scanElems` state elements per head are walked by the suffix pass.
 */
export async function addThreePassBackward(
  device: GPUDevice,
  fwd: Kernel,
  plan: LaChunkPlan,
  req: OpRequest,
  base: string,
  bind: Partial<Record<BindName, number>>,
  io: BindName[],
  f32: BindName[],
  scanElems: number,
): Promise<Kernel> {
  const { K, V } = req.shape;
  const head = [
    ioSource(plan.dtype, io.map((n) => [n, bind[n]!])),
    f32Source(f32.map((n) => [n, bind[n]!])),
    await wgslFile(import.meta.url, "../common.wgsl"),
  ].join("\n");
  // bwd_common.wgsl's helpers use the workgroup arrays of the per-chunk passes only.
  const helpers = await wgslFile(base, "bwd_common.wgsl");
  const WG = 256;
  const make = async (pass: string, constants: Record<string, number>) =>
    compile(
      device,
      `${req.variant}/chunk_${pass}/${plan.dtype}`,
      fwd.layout,
      [head, pass === "bwd_scan" ? "" : helpers, await wgslFile(base, `${pass}.wgsl`)].join("\n"),
      { C: plan.C, K, V, ...constants },
    );
  const bwd = plan.bwd;
  if (!bwd) throw new Error(`${req.variant}/chunk: the backward needs a plan made for fwdbwd`);
  const [local, scan, grad] = await settled([
    make("bwd_local", bwd.local),
    make("bwd_scan", { WG }),
    make("bwd_grad", bwd.grad),
  ]);
  const grid: [number, number, number] = [plan.NC, plan.BH, 1];
  return {
    ...fwd,
    bwdFrom: fwd.passes.length,
    passes: [
      ...fwd.passes,
      { label: "bwd local", steps: [{ pipeline: local, workgroups: grid }] },
      {
        label: "bwd scan",
        steps: [{ pipeline: scan, workgroups: [Math.ceil(scanElems / WG), plan.BH, 1] }],
      },
      { label: "bwd grad", steps: [{ pipeline: grad, workgroups: grid }] },
    ],
  };
}

/**
 * fwdbwd's forward under the `<variant>.fwd_seg` knob (planVersion): 1 the three per-chunk
 * passes (`plan` as it is), 2 the segmented ones with STATES (seg_out also leaves every chunk's
 * starting state in ws for the backward), `seg` planning them. Unset, 2 wherever `seg` tiles the
 * shape. Asked for, 2 rethrows the segmented planner's Unsupported with the knob named, so that
 * an A/B never times the three passes under the name 2. Read in every mode, so that a bad value
 * always throws; other modes keep `plan`.
 */
export function planFwdSeg<P extends LaChunkPlan, S>(
  variant: "la" | "gla",
  mode: OpRequest["mode"],
  plan: P,
  seg: () => S,
): P | (P & { fwdSeg: S }) {
  return planVersion(
    `${variant}.fwd_seg`,
    2,
    (v) => v === 1 || mode !== "fwdbwd" ? plan : { ...plan, fwdSeg: seg() },
  );
}

/** fwdbwd with `la.fwd_seg` = 2: the per-chunk plan (workspaces, backward) and the segmented
 * forward that replaces its three forward passes. */
export interface LaFwdSegPlan extends LaChunkPlan {
  fwdSeg: LaSegPlan;
}

/**
 * fwd runs the segmented forward (seg_fwd.ts), or the three passes where its state does not fit
 * one workgroup. fwdbwd runs the segmented forward too (`la.fwd_seg`, planFwdSeg): seg_out's
 * STATES leaves every chunk's starting state in ws, NC·(K·V + K) f32 per head, where the
 * backward reads it; the three per-chunk passes where the segmented tiles do not fit.
 * Measured on an H100 (B1 H8 K=V=64, T=1M bf16, prof.ts hot medians, session 6): fwdbwd 181.1 ms
 * with the three passes (state 10.1, scan 8.9, out 50.3), 148.3 ms segmented (state 6.5, scan
 * 0.25, out 30.0); the backward's passes are the same.
 */
function planLa(
  req: OpRequest,
  dtype: Storage,
  limits: DeviceLimits,
): LaChunkPlan | LaSegPlan | LaFwdSegPlan {
  if (req.mode === "fwd") {
    try {
      return planLaSeg(req, dtype, limits);
    } catch (e) {
      // A version asked for refuses rather than hands its name to the three passes.
      const asked = tuned("la.out", 0) !== 0 || tuned("la.state", 0) !== 0;
      if (!(e instanceof Unsupported) || asked) throw e;
    }
  }
  return planFwdSeg(
    "la",
    req.mode,
    planLaChunk(req, dtype, limits),
    () => planLaSeg(req, dtype, limits, true),
  );
}

export const laChunk: KernelBuilder<LaChunkPlan | LaSegPlan | LaFwdSegPlan> = {
  variant: "la",
  impl: "chunk",
  default: true,
  modes: ["fwd", "fwdbwd"],
  dtypes: ["f32", "f16", "bf16"],
  description: "chunked la: forward (fwd) in 3 WGSL passes over segments of chunks (segment " +
    "states, prefix, outputs walking each segment); fwdbwd: forward in 3 passes over chunks, " +
    "backward in 3 more (local state gradients, suffix over chunks, input gradients)",
  plan: planLa,
  async build(device, plan, req, has) {
    if ("seg" in plan) return await buildLaSeg(device, plan, req, has);
    const fwd = "fwdSeg" in plan
      ? await buildLaSeg(device, plan.fwdSeg, req, has, true)
      : await buildThreePass(device, plan, req, has, import.meta.url, BIND, [
        "q",
        "k",
        "v",
        "o",
      ], ["ws", "h0", "z0", "final_state", "final_z"]);
    if (req.mode === "fwd") return fwd;
    return await addThreePassBackward(
      device,
      fwd,
      plan,
      req,
      import.meta.url,
      BIND,
      [
        "q",
        "k",
        "v",
        "do",
        "dq",
        "dk",
        "dv",
      ],
      ["ws", "wsd", "wsn", "dh0", "dz0"],
      plan.KVZ,
    );
  },
};
