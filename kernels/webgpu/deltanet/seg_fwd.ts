/**
 * deltanet forward for mode "fwd", segmented. The chunk map is affine, S ↦ M_c S + B_c with
 * M_c = I − KᵀW and B_c = KᵀU, so chunks are grouped into segments of `cps` chunks whose maps are
 * composed in parallel, scanned over segments, and then every segment walks its own chunks:
 *   1. chunk_prep.wgsl — per (chunk, head), as in the sequential path: Q, K, W, U, P;
 *   2. seg_sum.wgsl    — per (segment, head, column tile of G = [M | B]): the segment's map;
 *   3. seg_scan.wgsl   — per (value-column block, head): S at each segment start from h0 (NSEG
 *                        steps, not NC), final_state at the end;
 *   4. seg_out.wgsl    — per (segment, head, value-column tile): O for the segment's chunks.
 * Only the workspace wsg [B·H, NSEG, K, K+V] f32 is added to the prep's. fwdbwd runs them too
 * under `deltanet.bwd_seg` 2 (chunk_fwd.ts planBwdSeg: the default wherever these tiles fit; 1,
 * or unset where they do not, keeps the sequential passes); then seg_out also writes the
 * per-chunk states and V_new the backward reads, and the backward's dS walk is segmented the same
 * way:
 *   5. bwd_seg.wgsl      — per (segment, head, value-column tile), chunks in reverse from dS = 0:
 *                          the segment's own term D_s of dS ↦ M_sᵀ dS + D_s, into wsg's B part;
 *   6. bwd_seg_scan.wgsl — per (value-column block, head): dS after each segment (NSEG steps in
 *                          reverse, M_s still in wsg), dh0 at the end;
 *   7. bwd_seg.wgsl (RECORD) — per (segment, head, tile) from that dS: wsds and wsdv per chunk.
 */
import type { OpRequest } from "../../../bench/ops.ts";
import { Unsupported } from "../../../bench/backends/backend.ts";
import { type DeviceLimits, type Pass, settled, tuned, vec4Accessors } from "../kernel.ts";

/** Pipeline constants of one walk (seg_sum without NA) and its grid's third dimension. */
interface Walk {
  consts: Record<string, number>;
  /** seg_sum2.wgsl's constants, when the sum walk takes it. */
  v2?: Record<string, number>;
  tiles: number;
  shared: number;
}

export interface DeltaSeg {
  NC: number;
  cps: number;
  NSEG: number;
  sum: Walk;
  out: Walk;
  /** bwd_seg.wgsl's walk (fwdbwd only). */
  bwd?: Walk;
  scan: { consts: Record<string, number>; blocks: number };
}

/** Workgroups a walk dispatch should have at least: ~15 per SM of an H100, as gla's. */
const TARGET_WORKGROUPS = 2048;

/**
 * lavapipe stops an invocation after a fixed amount of loop work (docs/webgpu.md, la): on a
 * software adapter segments stay as short as la's.
 */
const LAVAPIPE_SEGMENT_TOKENS = 8192;

/** The largest default column tile tried; halved until the workgroup memory fits. */
const MAX_COLS = 64;

/**
 * Tiles the segmented forward for chunk size C (NC chunks), and with `bwd` the segmented dS walk
 * too; throws Unsupported when a tile does not fit the device: mode fwd then keeps pass 2, and
 * fwdbwd passes 2 and 3 unless `deltanet.bwd_seg` 2 was asked for (planBwdSeg).
 */
export function planDeltaSeg(
  req: OpRequest,
  C: number,
  NC: number,
  limits: DeviceLimits,
  bwd = false,
): DeltaSeg {
  const { B, H, K, V } = req.shape;
  const BH = B * H;
  const name = "webgpu deltanet/chunk (segmented fwd)";
  const ceil = (a: number, b: number) => Math.ceil(a / b);
  const maxInv = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  const maxShared = limits.maxComputeWorkgroupStorageSize;
  const maxGrid = limits.maxComputeWorkgroupsPerDimension;
  const auto = Math.max(1, Math.min(64, Math.round(NC * BH / TARGET_WORKGROUPS)));
  const maxCps = limits.softwareAdapter ? Math.max(1, Math.floor(LAVAPIPE_SEGMENT_TOKENS / C)) : NC;
  const cps = Math.min(tuned("deltanet.cps", auto), NC, maxCps);
  const NSEG = ceil(NC, cps);
  const RK = ceil(K, 4), RT = ceil(C, 4);
  const R = Math.max(RK, RT);

  // A walk over `width` state columns, 4·RC per workgroup; an unset knob takes the widest tile
  // that fits, a set one must fit as given. seg_out and bwd_seg size their first array for P
  // rows too; bwd_seg adds a tile of dO rows.
  const walk = (knob: string, width: number, kind: "sum" | "out" | "bwd"): Walk => {
    const set = tuned(`deltanet.${knob}`, 0);
    const fit = (cols: number) => {
      const RC = Math.min(ceil(cols, 4), ceil(width, 4));
      const NA = 4 * RT * (kind === "sum" ? RK : R);
      const NS = 4 * R * RC;
      const NO = kind === "bwd" ? 4 * RT * RC : 0;
      const consts = { RK, RT, RC, WGN: R * RC, CPS: cps, NS, ...(kind === "sum" ? {} : { NA }) };
      return { consts, tiles: ceil(width, 4 * RC), shared: 16 * (NA + 4 * RT * RK + NS + NO) };
    };
    let w = fit(set || MAX_COLS);
    for (let cols = MAX_COLS / 2; !set && w.shared > maxShared && cols >= 4; cols /= 2) {
      w = fit(cols);
    }
    if (w.shared > maxShared || w.consts.WGN > maxInv) {
      throw new Unsupported(
        `${name}: ${knob} tile at C=${C}, K=${K}, V=${V} needs ${w.shared} bytes of workgroup ` +
          `memory and ${w.consts.WGN} invocations (limits ${maxShared}, ${maxInv})`,
      );
    }
    if (w.tiles > maxGrid) {
      throw new Unsupported(`${name}: ${w.tiles} ${knob} tiles exceed ${maxGrid} workgroups`);
    }
    return w;
  };
  const sum = walk("sum_cols", K + V, "sum");
  // seg_sum2.wgsl (deltanet.sum = 2) stages W and K rows through at most 4 vec4s per invocation.
  const sumVersion = tuned("deltanet.sum", 2);
  if (sumVersion !== 1 && sumVersion !== 2) {
    throw new Error(`LAB_WEBGPU_TUNE deltanet.sum must be 1 or 2, got ${sumVersion}`);
  }
  const PF = ceil(4 * RT * RK, sum.consts.WGN);
  if (sumVersion === 2 && PF <= 4) sum.v2 = { ...sum.consts, PF };
  const out = walk("out_cols", V, "out");
  const bwdWalk = bwd ? walk("bwd_cols", V, "bwd") : undefined;

  const RC = Math.min(ceil(tuned("deltanet.scan_cols", 16), 4), ceil(V, 4));
  // M streams in slices of 4·MS keys: all of them unless the slice must shrink to fit.
  const scanShared = (MS: number) => 16 * (K * MS + 4 * RK * RC);
  let MS = ceil(tuned("deltanet.scan_kt", 4 * RK), 4);
  while (MS > 1 && scanShared(MS) > maxShared) MS = ceil(MS, 2);
  if (K * RC > maxInv || scanShared(MS) > maxShared) {
    throw new Unsupported(
      `${name}: the scan at K=${K} needs ${K * RC} invocations and ${scanShared(MS)} bytes ` +
        `(limits ${maxInv}, ${maxShared})`,
    );
  }
  if (NSEG > maxGrid || BH > maxGrid) {
    throw new Unsupported(
      `${name}: ${NSEG} segments or ${BH} heads exceed ${maxGrid} workgroups; raise deltanet.cps`,
    );
  }
  return {
    NC,
    cps,
    NSEG,
    sum,
    out,
    bwd: bwdWalk,
    scan: {
      consts: { RK, RC, WGN: K * RC, CPS: cps, MS },
      blocks: ceil(V, 4 * RC),
    },
  };
}

/** Bytes of wsg: each segment's map [M | B], later B replaced by the segment's start state. */
export function segWorkspace(seg: DeltaSeg, req: OpRequest): number {
  const { B, H, K, V } = req.shape;
  return 4 * B * H * seg.NSEG * K * (K + V);
}

/**
 * The segmented forward's passes, `prep` (chunk_prep.wgsl) first, and where seg.bwd is planned
 * (fwdbwd) the segmented dS passes after them; `make(pass, constants, libs, prefix)` compiles a
 * WGSL file of this folder against the builder's layout, `prefix` and the named files before it.
 */
export async function segPasses(
  seg: DeltaSeg,
  BH: number,
  prep: GPUComputePipeline,
  make: (
    pass: string,
    constants: Record<string, number>,
    libs: string[],
    prefix: string,
  ) => Promise<GPUComputePipeline>,
): Promise<Pass[]> {
  const libs = ["seg_common.wgsl"];
  const access = vec4Accessors([
    "wsw",
    "wsk",
    "wsq",
    "wsp",
    "wsu",
    "wsg",
    "wss",
    "wsds",
    "wsdv",
    "dh0",
  ]);
  const bwd = seg.bwd;
  const [sum, scan, out, bwdSum, bwdScan, bwdOut] = await settled([
    seg.sum.v2
      ? make("seg_sum2", seg.sum.v2, libs, access)
      : make("seg_sum", seg.sum.consts, libs, access),
    make("seg_scan", seg.scan.consts, libs, access),
    // With the backward seg_out also leaves each chunk's start state and V_new (STATES).
    make("seg_out", { ...seg.out.consts, ...(bwd ? { STATES: 1 } : {}) }, libs, access),
    ...(bwd
      ? [
        make("bwd_seg", bwd.consts, libs, access),
        make("bwd_seg_scan", seg.scan.consts, libs, access),
        make("bwd_seg", { ...bwd.consts, RECORD: 1 }, libs, access),
      ]
      : []),
  ]);
  const pass = (label: string, pipeline: GPUComputePipeline, x: number, z: number): Pass => ({
    label,
    steps: [{ pipeline, workgroups: [x, BH, z] }],
  });
  // "seg" labels say in per-pass times which forward ran (a tile that does not fit falls back
  // to the sequential pass).
  return [
    pass("seg prep", prep, seg.NC, 1),
    pass("seg sum", sum, seg.NSEG, seg.sum.tiles),
    pass("seg scan", scan, seg.scan.blocks, 1),
    pass("seg out", out, seg.NSEG, seg.out.tiles),
    ...(bwd
      ? [
        pass("bwd seg sum", bwdSum, seg.NSEG, bwd.tiles),
        pass("bwd seg scan", bwdScan, seg.scan.blocks, 1),
        pass("bwd seg out", bwdOut, seg.NSEG, bwd.tiles),
      ]
      : []),
  ];
}
