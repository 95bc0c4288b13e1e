/**
 * The second memory-update kernel of rmt (memory2.wgsl: one workgroup of 256 per 16 memory rows
 * of a head, key tiles in workgroup memory, named vec4 accumulators), chosen by the knob
 * `rmt.mem` (`LAB_WEBGPU_TUNE`, 1 or 2, default 1 = segment.wgsl's memory rows); `rmt.mem_tk`
 * sets its key tile.
 */
import { Unsupported } from "../../../bench/backends/backend.ts";
import type { OpRequest } from "../../../bench/ops.ts";
import { compile, type DeviceLimits, planVersion, tuned, wgslFile } from "../kernel.ts";

/** memory2.wgsl's memory rows per workgroup (16 rows × 16 invocations). */
export const MEM2_ROWS = 16;

/** Workgroup bytes of memory2.wgsl at key tile TK: sQ, sK (odd vec4 stride), sV, sP, sRed, sSeg. */
export function memory2Bytes(D: number, TK: number): number {
  const D4 = Math.ceil(D / 4);
  const KS = D4 % 2 === 1 ? D4 : D4 + 1;
  return 16 * (MEM2_ROWS * D4 + TK * KS + TK * D4) + 4 * (MEM2_ROWS * TK + 256) + 4;
}

/**
 * The memory pass's kernel (`rmt.mem`, planVersion: unset, 2 wherever it tiles the shape):
 * undefined for 1 (segment.wgsl's memory rows), else memory2.wgsl's key tile TK (`rmt.mem_tk`:
 * 16, 32 or 64, default 64, halved until the workgroup memory fits). Mode 2 holds at most two
 * vec4 output columns per invocation, so asked for, it refuses D > 128.
 */
export function planMemory2(req: OpRequest, limits: DeviceLimits): { TK: number } | undefined {
  return planVersion("rmt.mem", 2, (mode) => mode === 1 ? undefined : planTiles(req, limits));
}

function planTiles(req: OpRequest, limits: DeviceLimits): { TK: number } {
  const { B, H, K: D, M } = req.shape;
  let TK = tuned("rmt.mem_tk", 64);
  if (TK !== 16 && TK !== 32 && TK !== 64) {
    throw new Error(`LAB_WEBGPU_TUNE rmt.mem_tk must be 16, 32 or 64, got ${TK}`);
  }
  while (TK > 16 && memory2Bytes(D, TK) > limits.maxComputeWorkgroupStorageSize) TK >>= 1;
  const why = D > 128
    ? `D=${D} above 128 (two vec4 output columns per invocation)`
    : memory2Bytes(D, TK) > limits.maxComputeWorkgroupStorageSize
    ? `D=${D} needs more workgroup memory than ${limits.maxComputeWorkgroupStorageSize}`
    : limits.maxComputeInvocationsPerWorkgroup < 256 || limits.maxComputeWorkgroupSizeX < 256
    ? "needs workgroups of 256 invocations"
    : Math.max(B * H, Math.ceil(M / MEM2_ROWS)) > limits.maxComputeWorkgroupsPerDimension
    ? "too many heads or memory-row blocks for one grid dimension"
    : "";
  if (why) throw new Unsupported(`webgpu rmt, rmt.mem 2: ${why}; rmt.mem 1 takes it`);
  return { TK };
}

/** Compiles memory2.wgsl after `head` (the bindings' load/store helpers and rmt's constants). */
export async function buildMemory2(
  device: GPUDevice,
  layout: GPUBindGroupLayout,
  label: string,
  head: string,
  TK: number,
): Promise<GPUComputePipeline> {
  return compile(
    device,
    label,
    layout,
    [head, `const TK: u32 = ${TK}u;`, await wgslFile(import.meta.url, "memory2.wgsl")].join("\n"),
    {},
  );
}
