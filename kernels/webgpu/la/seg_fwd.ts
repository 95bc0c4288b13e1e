/**
 * la forward (mode fwd), segmented: the sequence is cut into segments of `cps` chunks and one
 * workgroup walks each segment with its running state in workgroup memory, so the only
 * workspace is one state per segment (docs/webgpu.md):
 *   1. seg_state.wgsl  — per (segment, head): local φ(K)ᵀV and Σφ(K) into ws;
 *   2. chunk_scan.wgsl — per head: exclusive prefix over segments (h0/z0 first), totals out;
 *   3. seg_out.wgsl    — per (segment, head): o, L tokens per step, from the segment's prefix.
 * fwdbwd keeps the three-pass forward (chunk_fwd.ts), whose backward reads per-chunk states,
 * unless `la.fwd_seg` is 2: then the same three passes run with `states` (ws one slot per chunk,
 * segment s in chunk slot s·cps, Params.NC = chunks) and seg_out's STATES also writes every
 * chunk's starting state and key sum, what chunk_scan.wgsl leaves over the per-chunk passes.
 * Version knobs (`LAB_WEBGPU_TUNE`, planVersion): `la.out` picks pass 3: 1 seg_out.wgsl, 5
 * seg_out5.wgsl (whole-word loaders, bank-conflict padding, the next step's q, k, v prefetched
 * into registers, the state owned by its own invocations; see its header), 8 chunk_out8.wgsl.
 * `la.state` picks pass 1: 1 seg_state.wgsl, 3 seg_state3.wgsl (the same loaders, the next tile's
 * k, v prefetched; at least ⌈TT·max(K4, V4) / 2⌉ invocations), 4 seg_state3.wgsl with SUB. Asked for, a
 * version that cannot tile a shape throws Unsupported naming its knob. On an H100 (B1 H8 K=V=64,
 * T=1M bf16, prof.ts hot medians, session 6) each change won when timed alone: out 28.1 → 22.1 →
 * 20.5 → 16.3 → 15.8 ms (versions 1–5; 2–4 held one change each and were deleted after), state
 * 6.49 → 5.35 → 4.09 ms; the forward 34.8 → 20.1 ms. Version 6 of la.out (8×4 output tiles) lost
 * its A/B (session 7: out 17.3 against 15.8 ms) and was deleted.
 * `la.out` 8 with `la.state` 4 (the default in mode fwd; one without the other is Unsupported): no
 * walk. The state pass (seg_state3.wgsl with SUB) also stores the state at every sub-chunk start (L tokens, `la.cs_len`)
 * relative to its segment in a second workspace, wsc (bf16 for bf16 inputs unless `la.cs_f32` =
 * 1, else f32); after the scan, chunk_out8.wgsl computes `la.out_g` (G, default 16, at most NSUB)
 * consecutive sub-chunks of a segment a workgroup, each from the segment prefix (loaded once into
 * registers) plus its wsc tile, the next sub-chunk's q, k, v and wsc prefetched under the current
 * one's compute; grid (⌈NSUB / G⌉, NSEG, heads). With la.state 4 the state pass tiles TT = 16
 * tokens unless `la.tt` says otherwise. On the H100 (session 7, 1M bf16, prof.ts hot medians):
 * version 7 (one sub-chunk a workgroup, deleted once 8 subsumed it) took the forward from 20.1 to
 * 16.9 ms (out 15.8 → 12.5); 8 at G = 16 to 14.7 (out 10.17; G = 2, 4, 8, 32, 64: 11.43, 10.68,
 * 10.32, 10.15, 10.26); TT = 16 the state pass from 4.13 to 3.79 ms (cps 16).
 * fwdbwd's `states` path keeps 5 and 3, whose walk leaves the per-chunk states the backward reads.
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
  planVersion,
  settled,
  type Storage,
  tuned,
  vec4Accessors,
  wgslFile,
} from "../kernel.ts";
import { BIND, paramsBlock } from "./chunk_fwd.ts";
import { loadSource } from "./seg_load.ts";

export interface LaSegPlan extends Plan {
  seg: true;
  dtype: Storage;
  C: number;
  /** Chunks (of C tokens) per segment. */
  cps: number;
  NSEG: number;
  BH: number;
  /** f32 words per (head, segment) in the workspace: K·V state + K key sum. */
  KVZ: number;
  normalize: boolean;
  scale: number;
  /**
   * seg_state: tokens per workgroup-memory tile, invocations; from version 3 the row blocks each
   * state owner holds (`la.state_rb`, 1 or 2) and ZN, the key-sum slots in workgroup memory
   * (`la.state_zc` 2: NT, the key sum from the stagers' partial sums; 1: the staged rows summed).
   */
  state: { TT: number; NT: number; RB?: number; ZN?: number };
  /** seg_out: tokens per step, invocations. */
  out: { L: number; NT: number };
  /** chunk_scan: invocations, parts of each element's walk over the segments (`la.scan_q`). */
  scan: { WG: number; Q: number };
  /** Workgroup-memory bytes of seg_state and seg_out. */
  shared: { state: number; out: number };
  /** The `la.out` and `la.state` versions the passes were tiled for. */
  versions: { out: OutVersion; state: StateVersion };
  /**
   * la.out 8 / la.state 4: L (above) is the sub-chunk length; NSUB sub-chunks per segment, of
   * which 1…NSUB−1 have a state in wsc, SLOT vec4s each, stored as f32 or bf16; G sub-chunks a
   * workgroup (`la.out_g`, at most NSUB).
   */
  cs?: { NSUB: number; SLOT: number; f32: boolean; G: number };
}

export type OutVersion = 1 | 5 | 8 | 9;
export type StateVersion = 1 | 3 | 4;

/** wsc's binding number, past those of chunk_fwd.ts's BIND. */
const WSC = 18;

/**
 * WGSL of wsc, the per-sub-chunk states: ld_cs(i) and st_cs(i, x) move vec4 i, kept as f32 or
 * (`f32` false, bf16 inputs only: unpack2 and to_bf16 come with them) as four bf16 values rounded
 * to nearest even in two words, element 2w in the low half.
 */
function csSource(f32: boolean): string {
  const decl = `@group(0) @binding(${WSC}) var<storage, read_write> wsc`;
  return f32
    ? `${decl}: array<vec4f>;
fn ld_cs(i: u32) -> vec4f { return wsc[i]; }
fn st_cs(i: u32, x: vec4f) { wsc[i] = x; }`
    : `${decl}: array<vec2u>;
fn ld_cs(i: u32) -> vec4f {
  let w = wsc[i];
  return vec4f(unpack2(w.x), unpack2(w.y));
}
fn st_cs(i: u32, x: vec4f) {
  wsc[i] = vec2u(to_bf16(x.x) | (to_bf16(x.y) << 16u), to_bf16(x.z) | (to_bf16(x.w) << 16u));
}`;
}

/**
 * seg_out's invocations and workgroup-memory bytes at L tokens per step. From version 5 the rows
 * of φ(Q) and of the scores are padded to an odd number of vec4s, φ(K) has one vec4 of padding
 * after every 4 rows, there are at least L·max(K4, V4)/2 invocations (each prefetches at most two
 * vec4s of q, k and v), and the state owners follow the L4·V4 O invocations (L4·V4 + K4·V4 at
 * least). Version 8 (chunk_out8.wgsl, L the sub-chunk length) updates no state: its O, A and D
 * invocations follow one another, and the first K4·V4 own one state tile each (the segment
 * prefix's in registers). Version 9 (chunk_out9.wgsl) has two O groups of L4·V4, then L/2·L4 A
 * invocations (2×4 score tiles), then D; same workgroup memory as 8.
 */
function outTiles(l: number, K4: number, V4: number, version: OutVersion) {
  const l4 = l / 4;
  if (version === 1) {
    return {
      NT: Math.max(K4 * V4, l4 * V4 + l4 ** 2 + l),
      shared: 16 * (2 * l * K4 + l * V4 + 4 * K4 * V4 + l * l4 + K4) + 4 * l,
    };
  }
  const inv = version === 9
    ? Math.max(2 * l4 * V4 + (l / 2) * l4 + l, K4 * V4)
    : version === 8
    ? Math.max(l4 * V4 + l4 ** 2 + l, K4 * V4)
    : l4 * V4 + Math.max(K4 * V4, l4 ** 2 + l);
  const vec4s = l * (K4 | 1) + l * K4 + l4 + l * V4 + 4 * K4 * V4 + l * (l4 | 1) + K4;
  return {
    NT: Math.max(inv, Math.ceil(l * K4 / 2), Math.ceil(l * V4 / 2)),
    shared: 16 * vec4s + 4 * l,
  };
}

/**
 * chunk_scan's workgroup: WG invocations, WG / Q state elements, each walk cut into Q parts
 * (`la.scan_q`, a power of two dividing WG; default 8: at 1M bf16 on an H100 the scan over 512
 * segments took 0.317 ms in one walk, 0.21 in 4 parts, 0.19 in 8).
 */
function scanTiles(maxInv: number): { WG: number; Q: number } {
  const WG = Math.min(256, maxInv);
  const Q = tuned("la.scan_q", 8);
  if ((Q & (Q - 1)) !== 0 || WG % Q !== 0) {
    throw new Error(`LAB_WEBGPU_TUNE la.scan_q must be a power of two dividing ${WG}, got ${Q}`);
  }
  return { WG, Q };
}

/** " under la.out=…, la.state=…" for the candidate versions of a refused plan. */
function knobs(versions: { out: OutVersion; state: StateVersion }): string {
  const asked = [
    ...(versions.out === 1 ? [] : [`la.out=${versions.out}`]),
    ...(versions.state === 1 ? [] : [`la.state=${versions.state}`]),
  ];
  return asked.length ? ` under ${asked.join(", ")}` : "";
}

/**
 * State-pass workgroups the default segment length aims for: 2048 (≥ 4 per SM on a 132-SM H100,
 * whole waves), 1024 with la.out 8/9, whose out pass does not walk the segment: there the longer
 * segments cost the state pass less than they save in the scan over segments (H100, session 9,
 * bf16 la fwd: 16K 0.327 → 0.270 ms, 64K 0.909 → 0.871, 256K 3.342 → 3.325, 1M 12.92 → 12.89).
 */
const TARGET_WORKGROUPS = { walk: 2048, split: 1024 };
/**
 * lavapipe stops an invocation after a fixed amount of loop work and leaves the rest of its
 * output unwritten (docs/webgpu.md): seg_out at K=V=64 stopped 23,308 tokens into a segment.
 * On a software adapter segments are kept well below that.
 */
const LAVAPIPE_SEGMENT_TOKENS = 8192;

/**
 * Segments and tiles for one head group; throws Unsupported when the state does not fit one
 * workgroup (K, V too large for the invocation or workgroup-memory limits). With `states`
 * (fwdbwd, la.fwd_seg = 2) seg_out must stop at every chunk boundary, so L is lowered to a
 * multiple of 4 dividing C (refused where C, with more than one chunk, is not a multiple of 4).
 */
export function planLaSeg(
  req: OpRequest,
  dtype: Storage,
  limits: DeviceLimits,
  states = false,
): LaSegPlan {
  // Unset, 9 and 4 where they tile (mode fwd), else 5 and 3, else 1.
  return planVersion(
    "la.out",
    [1, 5, 8, 9],
    (out) =>
      planVersion("la.state", [1, 3, 4], (state) =>
        planLaSegAt(req, dtype, limits, states, {
          out: out as OutVersion,
          state: state as StateVersion,
        })),
  );
}

function planLaSegAt(
  req: OpRequest,
  dtype: Storage,
  limits: DeviceLimits,
  states: boolean,
  versions: { out: OutVersion; state: StateVersion },
): LaSegPlan {
  const { shape, params } = req;
  const { B, T, H, K, V } = shape;
  const C = Math.min(params.chunk_size, T);
  const NC = Math.ceil(T / C);
  const BH = B * H;
  if (dtype === "bf16" && V % 2 !== 0) {
    throw new Unsupported(`webgpu la/chunk bf16 needs an even V (packed bf16 pairs), got V=${V}`);
  }
  // la.out 8 and 9 read the sub-chunk states only la.state 4 stores.
  const split = versions.out >= 8;
  if (split !== (versions.state === 4)) {
    const set = (key: string) => `${key}=${tuned(key, 0) || "unset"}`;
    throw new Unsupported(
      `webgpu la/chunk segmented forward: la.out=8 or 9 and la.state=4 run only together ` +
        `(the state pass stores the sub-chunk states the out pass reads); LAB_WEBGPU_TUNE has ` +
        `${set("la.out")}, ${set("la.state")}`,
    );
  }
  if (split && states) {
    throw new Unsupported(
      `webgpu la/chunk: la.out=${versions.out}, la.state=4 run in mode fwd only (fwdbwd's ` +
        `backward reads the per-chunk states that seg_out's walk leaves)`,
    );
  }
  const maxInv = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  const maxShared = limits.maxComputeWorkgroupStorageSize;
  const K4 = Math.ceil(K / 4);
  const V4 = Math.ceil(V / 4);
  // Largest power of two ≤ NC·BH / TARGET_WORKGROUPS (at least 1).
  const target = TARGET_WORKGROUPS[split ? "split" : "walk"];
  const auto = 2 ** Math.max(0, Math.floor(Math.log2(NC * BH / target)));
  const maxCps = limits.softwareAdapter ? Math.max(1, Math.floor(LAVAPIPE_SEGMENT_TOKENS / C)) : NC;
  const cps = Math.min(tuned("la.cps", auto), NC, maxCps);
  const NSEG = Math.ceil(NC / cps);
  const SEGT = cps * C;
  const ceil4 = (n: number) => 4 * Math.ceil(n / 4);
  // L: seg_out's step, or version 8's sub-chunk (the state pass stores a state every L tokens).
  let L = Math.min(ceil4(tuned(split ? "la.cs_len" : "la.sub", 32)), ceil4(Math.min(SEGT, T)));
  const outInv = (l: number) => outTiles(l, K4, V4, versions.out).NT;
  const outShared = (l: number) => outTiles(l, K4, V4, versions.out).shared;
  while (L > 4 && (outShared(L) > maxShared || outInv(L) > maxInv)) L = ceil4(L / 2);
  if (versions.out === 9 && L / 4 > K4) {
    // Group 1 hands its partial sums to group-0 invocations that own state tiles (L4 ≤ K4).
    throw new Unsupported(
      `webgpu la/chunk: la.out=9 needs la.cs_len ≤ 4·⌈K/4⌉, got ${L} at K=${K}` + knobs(versions),
    );
  }
  if (states && NC > 1) {
    if (C % 4 !== 0) {
      throw new Unsupported(
        `webgpu la/chunk segmented forward with states: chunk_size=${C} is not a multiple of 4, ` +
          `so seg_out's steps (multiples of 4 tokens) cannot stop at every chunk boundary`,
      );
    }
    while (C % L !== 0) L -= 4;
  }
  let TT = Math.min(tuned("la.tt", versions.state === 4 ? 16 : 32), SEGT);
  // seg_state3.wgsl (versions 3 and 4) has the prefetch, RB and ZN; seg_state.wgsl none of them.
  const v3 = versions.state >= 3;
  // 8×4 state tiles won with la.state 4 (1M bf16 state pass 3.67 → 3.09 ms, f16 5.02 → 4.18, f32
  // 5.12 → 5.12; 16×4, removed, lost: 3.18 at la.tt 8, 3.64 at 16); la.state 3 was not timed
  // with them.
  const RB = v3 ? tuned("la.state_rb", split ? 2 : 1) : 1;
  if (RB > 2) throw new Error(`LAB_WEBGPU_TUNE la.state_rb must be 1 or 2, got ${RB}`);
  // Version 3 prefetches at most two vec4 blocks of k and of v per invocation.
  const stateInv = (tt: number) =>
    Math.max(Math.ceil(K4 / RB) * V4, K4, v3 ? Math.ceil(tt * Math.max(K4, V4) / 2) : 0);
  // The stagers' key sums won for f32 and f16 with la.state 4 (1M state pass 5.13 → 4.51 ms and
  // 4.33 → 4.11; 256K 1.34 → 1.19, 1.13 → 1.07) and lost for bf16 (3.26 → 3.49, 0.85 → 0.90):
  // its 2 KiB of sZ cost occupancy that the bf16 pass, with the least memory traffic, needs.
  const zc = v3 ? tuned("la.state_zc", split && dtype !== "bf16" ? 2 : 1) : 1;
  if (zc > 2) throw new Error(`LAB_WEBGPU_TUNE la.state_zc must be 1 or 2, got ${zc}`);
  // Key-sum slots (sZ, from version 3): the stagers' sums meet per row block, so invocation
  // lid + NT must stage the same row block as lid (K4 divides NT).
  const zn = (tt: number) => zc === 2 && stateInv(tt) % K4 === 0 ? stateInv(tt) : 1;
  const stateShared = (tt: number) => 16 * (tt * (K4 + V4) + (v3 ? zn(tt) : 0));
  const stateFits = (tt: number) => stateShared(tt) <= maxShared && stateInv(tt) <= maxInv;
  if (split) {
    // Every sub-chunk boundary must end a tile: the largest TT ≤ la.tt dividing L that fits.
    TT = Math.min(TT, L);
    while (TT > 1 && (L % TT !== 0 || !stateFits(TT))) TT--;
  } else {
    while (TT > 1 && !stateFits(TT)) TT = Math.ceil(TT / 2);
  }
  if (outShared(L) > maxShared || outInv(L) > maxInv || !stateFits(TT)) {
    throw new Unsupported(
      `webgpu la/chunk segmented forward: K=${K}, V=${V} need ${outShared(4)} bytes of ` +
        `workgroup memory and ${outInv(4)} invocations (limits ${maxShared}, ${maxInv})` +
        knobs(versions),
    );
  }
  const KVZ = K * V + K;
  const workspace: Record<string, number> = { ws: 4 * BH * NSEG * KVZ };
  let cs: LaSegPlan["cs"];
  if (split) {
    const NSUB = Math.ceil(SEGT / L);
    if (NSUB > limits.maxComputeWorkgroupsPerDimension) {
      throw new Unsupported(
        `webgpu la/chunk: ${NSUB} sub-chunks a segment exceed maxComputeWorkgroupsPerDimension ` +
          `${limits.maxComputeWorkgroupsPerDimension}; lower la.cps or raise la.cs_len` +
          knobs(versions),
      );
    }
    const asked = tuned("la.cs_f32", 0);
    if (asked > 1) {
      throw new Error(`LAB_WEBGPU_TUNE la.cs_f32 must be 1 (f32 states), got ${asked}`);
    }
    cs = {
      NSUB,
      SLOT: 4 * K4 * V4 + K4,
      f32: dtype !== "bf16" || asked === 1,
      G: Math.min(tuned("la.out_g", 16), NSUB),
    };
    // Bytes of a vec4: f32, or four bf16 in two words. A binding cannot be empty (NSUB = 1).
    workspace.wsc = Math.max(16, BH * NSEG * (NSUB - 1) * cs.SLOT * (cs.f32 ? 16 : 8));
  }
  return {
    seg: true,
    dtype,
    C,
    cps,
    NSEG,
    BH,
    KVZ,
    workspace,
    normalize: params.normalize,
    scale: params.scale,
    state: { TT, NT: stateInv(TT), ...(v3 ? { RB, ZN: zn(TT) } : {}) },
    out: { L, NT: outInv(L) },
    scan: scanTiles(maxInv),
    shared: { state: stateShared(TT), out: outShared(L) },
    versions,
    ...(cs ? { cs } : {}),
  };
}

/**
 * The three segmented passes. With `states` (fwdbwd, la.fwd_seg = 2) ws is the three-pass
 * path's [heads, NC, K·V + K] (Params.NC = chunks) and seg_out fills every chunk's slot; the
 * passes are labelled `seg state`, `seg scan`, `seg out` so per-pass times say which forward ran.
 * la.out 8 / la.state 4 (`plan.cs`) bind wsc too, and the out pass runs one workgroup per G
 * sub-chunks: grid (⌈NSUB / G⌉, NSEG, heads).
 */
export async function buildLaSeg(
  device: GPUDevice,
  plan: LaSegPlan,
  req: OpRequest,
  has: Set<InputName>,
  states = false,
): Promise<Kernel> {
  const cs = plan.cs;
  // la.out 8 / la.state 4: the forward's bindings and wsc, in a layout of their own.
  const fwd = ["params", "q", "k", "v", "o", "ws", "h0", "z0", "final_state", "final_z"] as const;
  const bindings: Partial<Record<BindName, number>> = cs
    ? { ...Object.fromEntries(fwd.map((n) => [n, BIND[n]])), wsc: WSC }
    : BIND;
  const layout = layoutFor(device, cs ? "la/chunk wsc" : "la/chunk", bindings);
  const { K, V } = req.shape;
  const K4 = Math.ceil(K / 4);
  const V4 = Math.ceil(V / 4);
  const SEGT = plan.cps * plan.C;
  const f32s = f32Source(
    (["ws", "h0", "z0", "final_state", "final_z"] as const).map((n) => [n, BIND[n]]),
  );
  const common = await wgslFile(import.meta.url, "../common.wgsl");
  const head = [
    ioSource(plan.dtype, (["q", "k", "v", "o"] as const).map((n) => [n, BIND[n]])),
    f32s,
    common,
  ].join("\n");
  // Versions above 1: q, k, v as storage words, seg_load.wgsl's loaders.
  const wordHead = [
    ioSource(plan.dtype, [["o", BIND.o]]),
    loadSource(plan.dtype, [["q", BIND.q, K], ["k", BIND.k, K], ["v", BIND.v, V]]),
    f32s,
    vec4Accessors(["ws"]),
    // seg_state3's SUB branch names st_cs; without wsc the branch is never taken.
    cs ? csSource(cs.f32) : "fn st_cs(i: u32, x: vec4f) {}",
    common,
    await wgslFile(import.meta.url, "seg_load.wgsl"),
  ].join("\n");
  // chunk_out8.wgsl and chunk_out9.wgsl share chunk_out_common.wgsl.
  const outCommon = cs ? await wgslFile(import.meta.url, "chunk_out_common.wgsl") : "";
  const make = async (file: string, version: number, constants: Record<string, number>) => {
    const name = version === 1 ? file : `${file}${version}`;
    const shared = file === "chunk_out" && version >= 8 ? `${outCommon}\n` : "";
    return compile(
      device,
      `la/${name}/${plan.dtype}`,
      layout,
      `${version === 1 ? head : wordHead}\n${shared}${await wgslFile(
        import.meta.url,
        `${name}.wgsl`,
      )}`,
      { C: plan.C, K, V, ...constants },
    );
  };
  const NORMALIZE = plan.normalize ? 1 : 0;
  const { L, NT } = plan.out;
  // ws slots per segment (Params.NC slots per head): one per segment, or one per chunk.
  const slots: Record<string, number> = states ? { CPS: plan.cps } : {};
  const sub: Record<string, number> = cs ? { L, NSUB: cs.NSUB, SLOT: cs.SLOT } : {};
  const group: Record<string, number> = cs ? { G: cs.G } : {};
  const [state, scan, out] = await settled([
    // la.state 4 is seg_state3.wgsl with SUB (the sub-chunk sums into wsc).
    make("seg_state", cs ? 3 : plan.versions.state, {
      SEGT,
      K4,
      V4,
      ...plan.state,
      ...slots,
      ...sub,
      ...(cs ? { SUB: 1 } : {}),
    }),
    make("chunk_scan", 1, { ...plan.scan, NORMALIZE, ...slots }),
    make(cs ? "chunk_out" : "seg_out", plan.versions.out, {
      SEGT,
      K4,
      V4,
      L,
      L4: L / 4,
      NT,
      NORMALIZE,
      ...slots,
      ...sub,
      ...group,
      ...(states ? { STATES: 1 } : {}),
    }),
  ]);
  const grid: [number, number, number] = [plan.NSEG, plan.BH, 1];
  const NC = Math.ceil(req.shape.T / plan.C);
  const label = (pass: string) => states ? `seg ${pass}` : pass;
  return {
    layout,
    bindings,
    // The scan walks ⌈Params.NC / CPS⌉ entries per state element: here, segments.
    params: paramsBlock(req.shape, states ? NC : plan.NSEG, plan.scale, has, NORMALIZE ? 2 : 0),
    passes: [
      { label: label("state"), steps: [{ pipeline: state, workgroups: grid }] },
      {
        label: label("scan"),
        steps: [{
          pipeline: scan,
          workgroups: [Math.ceil(plan.KVZ * plan.scan.Q / plan.scan.WG), plan.BH, 1],
        }],
      },
      {
        label: label("out"),
        steps: [{
          pipeline: out,
          workgroups: cs ? [Math.ceil(cs.NSUB / cs.G), plan.NSEG, plan.BH] : grid,
        }],
      },
    ],
  };
}
