/**
 * la forward (mode fwd), segmented: the sequence is cut into segments of `cps` chunks and one
 * workgroup walks each segment with its running state in workgroup memory, so the only
 * workspace is one state per segment (docs/webgpu.md):
 *   1. seg_state.wgsl  — per (segment, head): local φ(K)ᵀV and Σφ(K) into ws;
 *   2. chunk_scan.wgsl — per head: exclusive prefix over segments (h0/z0 first), totals out;
 *   3. seg_out.wgsl    — per (segment, head): o, L tokens per step, from the segment's prefix.
 * fwdbwd keeps the three-pass forward (chunk_fwd.ts): its backward reads per-chunk states.
 */
import type { InputName, OpRequest } from "../../../bench/ops.ts";
import { Unsupported } from "../../../bench/backends/backend.ts";
import {
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
import { BIND, paramsBlock } from "./chunk_fwd.ts";

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
  /** seg_state: tokens per workgroup-memory tile, invocations. */
  state: { TT: number; NT: number };
  /** seg_out: tokens per step, invocations. */
  out: { L: number; NT: number };
  /**
   * seg_out version (`la.out`): 1 = seg_out.wgsl, 2 = seg_out2.wgsl (K, V ≤ 64), with its tiles
   * (`out2`, present when version 2 is planned).
   */
  outVersion: 1 | 2;
  out2?: OutV2Tiles;
  /**
   * seg_state version (`la.state`): 1 = seg_state.wgsl, 2 = seg_state2.wgsl (K, V ≤ 64) with
   * its tiles (`state2`: TT tokens per tile, NT invocations, SR × SC4 state tiles, PF prefetch
   * vec4s per invocation per tensor).
   */
  stateVersion: 1 | 2;
  state2?: { TT: number; NT: number; SR: number; SC4: number; PF: number };
  scan: { WG: number };
  /** Workgroup-memory bytes of seg_state and seg_out. */
  shared: { state: number; out: number };
}

/** seg_out2.wgsl tiles: see that file's header. */
export interface OutV2Tiles {
  L: number;
  NT: number;
  SR: number;
  SC4: number;
  AR: number;
  AC4: number;
  OR: number;
  OC4: number;
  PF: number;
}

/** Vec4 columns K and V are padded to in seg_out2.wgsl's workgroup memory (K, V ≤ 64). */
const D4 = 16;

/** State tiles [SR rows, SC4 vec4 columns] of one invocation, by invocations (64 × 64 state). */
const STATE_TILES: Record<number, [number, number]> = { 64: [8, 2], 128: [8, 1], 256: [4, 1] };

/** Workgroup-memory bytes of seg_state2.wgsl at TT tokens per tile. */
export function stateV2Shared(TT: number): number {
  return 2 * 16 * TT * D4;
}

/** Workgroup-memory bytes of seg_out2.wgsl at L tokens per step. */
export function outV2Shared(L: number): number {
  return 16 * (3 * L * D4 + 4 * D4 * D4 + L * (L / 4) + D4) + 4 * L;
}

/**
 * seg_out2.wgsl register tiles for L tokens per step and NT invocations (64, 128 or 256), or
 * undefined when they do not tile: one S tile per invocation, O and A grids of at most NT.
 */
export function outV2Tiles(L: number, NT: number): OutV2Tiles | undefined {
  const S = STATE_TILES[NT];
  if (!S || L % 4 !== 0) return undefined;
  const OC4 = NT === 64 ? 2 : 1;
  const divisors = [1, 2, 4, 8, 16, 32, 64].filter((d) => L % d === 0);
  const OR = divisors.find((d) => (L / d) * (D4 / OC4) <= NT);
  const AR = divisors.find((d) => (L / d) * (L / 4) <= NT);
  if (OR === undefined || AR === undefined) return undefined;
  return {
    L,
    NT,
    SR: S[0],
    SC4: S[1],
    AR,
    AC4: 1,
    OR,
    OC4,
    PF: Math.ceil((L * D4) / NT),
  };
}

/** Workgroups the default segment length aims for (≥ 4 per SM on a 132-SM H100, whole waves). */
const TARGET_WORKGROUPS = 2048;
/**
 * lavapipe stops an invocation after a fixed amount of loop work and leaves the rest of its
 * output unwritten (docs/webgpu.md): seg_out at K=V=64 stopped 23,308 tokens into a segment.
 * On a software adapter segments are kept well below that.
 */
const LAVAPIPE_SEGMENT_TOKENS = 8192;

/**
 * Segments and tiles for one head group; throws Unsupported when the state does not fit one
 * workgroup (K, V too large for the invocation or workgroup-memory limits).
 */
export function planLaSeg(req: OpRequest, dtype: Storage, limits: DeviceLimits): LaSegPlan {
  const { shape, params } = req;
  const { B, T, H, K, V } = shape;
  const C = Math.min(params.chunk_size, T);
  const NC = Math.ceil(T / C);
  const BH = B * H;
  if (dtype === "bf16" && V % 2 !== 0) {
    throw new Unsupported(`webgpu la/chunk bf16 needs an even V (packed bf16 pairs), got V=${V}`);
  }
  const maxInv = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  const maxShared = limits.maxComputeWorkgroupStorageSize;
  const K4 = Math.ceil(K / 4);
  const V4 = Math.ceil(V / 4);
  // Largest power of two ≤ NC·BH / TARGET_WORKGROUPS (at least 1).
  const auto = 2 ** Math.max(0, Math.floor(Math.log2(NC * BH / TARGET_WORKGROUPS)));
  const maxCps = limits.softwareAdapter ? Math.max(1, Math.floor(LAVAPIPE_SEGMENT_TOKENS / C)) : NC;
  const cps = Math.min(tuned("la.cps", auto), NC, maxCps);
  const NSEG = Math.ceil(NC / cps);
  const SEGT = cps * C;
  const ceil4 = (n: number) => 4 * Math.ceil(n / 4);
  let L = Math.min(ceil4(tuned("la.sub", 32)), ceil4(Math.min(SEGT, T)));
  const outInv = (l: number) => Math.max(K4 * V4, (l / 4) * V4 + (l / 4) ** 2 + l);
  const outShared = (l: number) =>
    16 * (2 * l * K4 + l * V4 + 4 * K4 * V4 + l * (l / 4) + K4) + 4 * l;
  while (L > 4 && (outShared(L) > maxShared || outInv(L) > maxInv)) L = ceil4(L / 2);
  let TT = Math.min(tuned("la.tt", 32), SEGT);
  const stateShared = (tt: number) => 16 * tt * (K4 + V4);
  while (TT > 1 && stateShared(TT) > maxShared) TT = Math.ceil(TT / 2);
  if (
    outShared(L) > maxShared || outInv(L) > maxInv || stateShared(TT) > maxShared ||
    K4 * V4 > maxInv
  ) {
    throw new Unsupported(
      `webgpu la/chunk segmented forward: K=${K}, V=${V} need ${outShared(4)} bytes of ` +
        `workgroup memory and ${outInv(4)} invocations (limits ${maxShared}, ${maxInv})`,
    );
  }
  const KVZ = K * V + K;
  // seg_out2.wgsl where K, V ≤ 64 and its tiles fit; seg_out.wgsl otherwise.
  let out2: OutV2Tiles | undefined;
  if (tuned("la.out", 2) === 2 && K <= 4 * D4 && V <= 4 * D4) {
    const nt = tuned("la.out_nt", 128);
    let l = Math.min(ceil4(tuned("la.sub", 32)), ceil4(Math.min(SEGT, T)));
    while (l > 4 && outV2Shared(l) > maxShared) l = ceil4(l / 2);
    const tiles = outV2Tiles(l, nt);
    if (tiles && outV2Shared(l) <= maxShared && nt <= maxInv) out2 = tiles;
  }
  let state2: LaSegPlan["state2"];
  if (tuned("la.state", 2) === 2 && K <= 4 * D4 && V <= 4 * D4) {
    const nt = tuned("la.state_nt", 128);
    const S = STATE_TILES[nt];
    let tt = Math.min(tuned("la.tt", 32), SEGT);
    while (tt > 1 && stateV2Shared(tt) > maxShared) tt = Math.ceil(tt / 2);
    if (S && nt <= maxInv && stateV2Shared(tt) <= maxShared) {
      state2 = { TT: tt, NT: nt, SR: S[0], SC4: S[1], PF: Math.ceil((tt * D4) / nt) };
    }
  }
  return {
    seg: true,
    dtype,
    C,
    cps,
    NSEG,
    BH,
    KVZ,
    workspace: { ws: 4 * BH * NSEG * KVZ },
    normalize: params.normalize,
    scale: params.scale,
    state: { TT, NT: Math.max(K4 * V4, K4) },
    out: { L, NT: outInv(L) },
    outVersion: out2 ? 2 : 1,
    out2,
    stateVersion: state2 ? 2 : 1,
    state2,
    scan: { WG: Math.min(256, maxInv) },
    shared: {
      state: state2 ? stateV2Shared(state2.TT) : stateShared(TT),
      out: out2 ? outV2Shared(out2.L) : outShared(L),
    },
  };
}

export async function buildLaSeg(
  device: GPUDevice,
  plan: LaSegPlan,
  req: OpRequest,
  has: Set<InputName>,
): Promise<Kernel> {
  const layout = layoutFor(device, "la/chunk", BIND);
  const { K, V } = req.shape;
  const K4 = Math.ceil(K / 4);
  const V4 = Math.ceil(V / 4);
  const SEGT = plan.cps * plan.C;
  const head = [
    ioSource(plan.dtype, (["q", "k", "v", "o"] as const).map((n) => [n, BIND[n]])),
    f32Source((["ws", "h0", "z0", "final_state", "final_z"] as const).map((n) => [n, BIND[n]])),
    await wgslFile(import.meta.url, "../common.wgsl"),
  ].join("\n");
  const make = async (file: string, constants: Record<string, number>) =>
    compile(
      device,
      `la/${file}/${plan.dtype}`,
      layout,
      `${head}\n${await wgslFile(import.meta.url, `${file}.wgsl`)}`,
      { C: plan.C, K, V, ...constants },
    );
  const NORMALIZE = plan.normalize ? 1 : 0;
  const { L, NT } = plan.out;
  const out2 = plan.out2;
  const [state, scan, out] = await settled([
    plan.state2
      ? (async () =>
        compile(
          device,
          `la/seg_state2/${plan.dtype}`,
          layout,
          [
            outV2Source(plan.dtype, K, V, { ...plan.state2!, SEGT }),
            f32Source((["ws", "h0", "z0", "final_state", "final_z"] as const).map((n) => [
              n,
              BIND[n],
            ])),
            await wgslFile(import.meta.url, "../common.wgsl"),
            await wgslFile(import.meta.url, "seg_state2.wgsl"),
          ].join("\n"),
          { C: plan.C, K, V },
        ))()
      : make("seg_state", { SEGT, K4, V4, ...plan.state }),
    make("chunk_scan", { WG: plan.scan.WG, NORMALIZE }),
    out2
      ? (async () =>
        compile(
          device,
          `la/seg_out2/${plan.dtype}`,
          layout,
          [
            outV2Source(plan.dtype, K, V, {
              L: out2.L,
              NT: out2.NT,
              SR: out2.SR,
              SC4: out2.SC4,
              AR: out2.AR,
              AC4: out2.AC4,
              OR: out2.OR,
              OC4: out2.OC4,
              PF: out2.PF,
              SEGT,
              NORMALIZE: plan.normalize,
            }),
            f32Source((["ws", "h0", "z0", "final_state", "final_z"] as const).map((n) => [
              n,
              BIND[n],
            ])),
            await wgslFile(import.meta.url, "../common.wgsl"),
            await wgslFile(import.meta.url, "seg_out2.wgsl"),
          ].join("\n"),
          { C: plan.C, K, V },
        ))()
      : make("seg_out", { SEGT, K4, V4, L, L4: L / 4, NT, NORMALIZE }),
  ]);
  const grid: [number, number, number] = [plan.NSEG, plan.BH, 1];
  return {
    layout,
    bindings: BIND,
    // The scan walks Params.NC entries per state element: here, segments.
    params: paramsBlock(req.shape, plan.NSEG, plan.scale, has, plan.normalize ? 2 : 0),
    passes: [
      { label: "state", steps: [{ pipeline: state, workgroups: grid }] },
      {
        label: "scan",
        steps: [{ pipeline: scan, workgroups: [Math.ceil(plan.KVZ / plan.scan.WG), plan.BH, 1] }],
      },
      { label: "out", steps: [{ pipeline: out, workgroups: grid }] },
    ],
  };
}

/**
 * The head of seg_out2.wgsl and seg_state2.wgsl: `consts` (plus D4, KQ4 = ⌈K/4⌉, VQ4) as WGSL
 * constants, and q, k, v, o bound as vec4-wide arrays where rows
 * are whole vec4s (K, V multiples of 4: `vec4f`, `vec4<f16>`, or bf16 as `vec2<u32>` pairs of
 * packed words), else as scalars loaded element by element. `ldraw_x(row, d4)` returns columns
 * 4·d4 … 4·d4 + 3 of the row at element offset `row` in the storage type (`QRaw`, `VRaw`),
 * `cvt_x` widens them to f32, `st4_o(row, c4, x)` stores columns 4·c4 … (those inside V).
 */
export function outV2Source(
  dtype: Storage,
  K: number,
  V: number,
  consts: Record<string, number | boolean>,
): string {
  const lines: string[] = [];
  if (dtype === "f16") lines.push("enable f16;");
  const all = { D4, KQ4: Math.ceil(K / 4), VQ4: Math.ceil(V / 4), ...consts };
  for (const [name, value] of Object.entries(all)) {
    lines.push(
      typeof value === "boolean"
        ? `const ${name}: bool = ${value};`
        : `const ${name}: u32 = ${value}u;`,
    );
  }
  lines.push(
    "fn bf16_lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }",
    "fn bf16_hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }",
    "fn to_bf16(x: f32) -> u32 {",
    "  let b = bitcast<u32>(x);",
    "  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }",
    "  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;",
    "}",
  );
  const scalar = dtype === "f32" ? "f32" : dtype === "f16" ? "f16" : "u32";
  const vector = dtype === "f32" ? "vec4f" : dtype === "f16" ? "vec4<f16>" : "vec2<u32>";
  const widen = dtype === "bf16"
    ? "vec4f(bf16_lo(x.x), bf16_hi(x.x), bf16_lo(x.y), bf16_hi(x.y))"
    : dtype === "f16"
    ? "vec4f(x)"
    : "x";
  const ld1 = (v: string, i: string) =>
    dtype === "bf16"
      ? `select(bf16_lo(${v}[(${i}) >> 1u]), bf16_hi(${v}[(${i}) >> 1u]), ((${i}) & 1u) == 1u)`
      : dtype === "f16"
      ? `f32(${v}[${i}])`
      : `${v}[${i}]`;
  const input = (name: "q" | "k" | "v", D: number, alias: string | undefined) => {
    const v = `t_${name}`;
    const aligned = D % 4 === 0;
    lines.push(
      `@group(0) @binding(${BIND[name]}) var<storage, read> ${v}: array<${
        aligned ? vector : scalar
      }>;`,
    );
    if (alias) lines.push(`alias ${alias} = ${aligned ? vector : "vec4f"};`);
    const raw = name === "v" ? "VRaw" : "QRaw";
    if (aligned) {
      lines.push(
        `fn ldraw_${name}(row: u32, d4: u32) -> ${raw} { return ${v}[(row >> 2u) + d4]; }`,
        `fn cvt_${name}(x: ${raw}) -> vec4f { return ${widen}; }`,
      );
    } else {
      lines.push(
        `fn ldraw_${name}(row: u32, d4: u32) -> ${raw} {`,
        "  var x = vec4f(0.0);",
        "  for (var j = 0u; j < 4u; j++) {",
        `    if (4u * d4 + j < ${D}u) { x[j] = ${ld1(v, "row + 4u * d4 + j")}; }`,
        "  }",
        "  return x;",
        "}",
        `fn cvt_${name}(x: ${raw}) -> vec4f { return x; }`,
      );
    }
  };
  input("q", K, "QRaw");
  input("k", K, undefined);
  input("v", V, "VRaw");
  const oAligned = V % 4 === 0;
  lines.push(
    `@group(0) @binding(${BIND.o}) var<storage, read_write> t_o: array<${
      oAligned ? vector : scalar
    }>;`,
    "fn st4_o(row: u32, c4: u32, x: vec4f) {",
  );
  if (oAligned) {
    lines.push(
      dtype === "bf16"
        ? "  t_o[(row >> 2u) + c4] = vec2<u32>(to_bf16(x.x) | (to_bf16(x.y) << 16u), " +
          "to_bf16(x.z) | (to_bf16(x.w) << 16u));"
        : `  t_o[(row >> 2u) + c4] = ${vector}(x);`,
    );
  } else if (dtype === "bf16") {
    // V even (planLaSeg refuses odd V): pairs 4·c4, 4·c4 + 2 start whole words.
    lines.push(
      "  let w = (row + 4u * c4) >> 1u;",
      "  t_o[w] = to_bf16(x.x) | (to_bf16(x.y) << 16u);",
      `  if (4u * c4 + 2u < ${V}u) { t_o[w + 1u] = to_bf16(x.z) | (to_bf16(x.w) << 16u); }`,
    );
  } else {
    lines.push(
      "  for (var j = 0u; j < 4u; j++) {",
      `    if (4u * c4 + j < ${V}u) { t_o[row + 4u * c4 + j] = ${scalar}(x[j]); }`,
      "  }",
    );
  }
  lines.push("}");
  return lines.join("\n");
}
