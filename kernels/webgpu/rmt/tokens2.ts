/**
 * The second token kernel of rmt and softmax/flash (tokens2.wgsl, FlashAttention-2 style 4×4
 * register tiles), chosen by the knob `<variant>.tok` (`LAB_WEBGPU_TUNE`: 1 = segment.wgsl's
 * token branch, 2 = tokens2.wgsl; unset, 2 wherever it tiles the shape, else 1). `<variant>.tok_bq` (32 or 64, default 64) caps the queries per
 * workgroup; the planner halves it to 32 where the workgroup memory does not hold 64.
 */
import { Unsupported } from "../../../bench/backends/backend.ts";
import type { OpRequest } from "../../../bench/ops.ts";
import { compile, type DeviceLimits, planVersion, tuned, wgslFile } from "../kernel.ts";

/** Which token kernel a plan runs: 1 = segment.wgsl, 2 = tokens2.wgsl with BQ queries a block. */
export type TokPlan = { tok: 1 } | { tok: 2; BQ: number };

const BK = 32; // keys per tile, as tokens2.wgsl
const NC = BK / 4;

/** Workgroup memory of tokens2.wgsl in bytes: sQ, sKP (Kᵀ, then P), sV, sR, all vec4s. */
export function tokens2Bytes(BQ: number, D: number): number {
  const D4 = Math.ceil(D / 4);
  return 16 * (BQ * D4 + Math.max(4 * D4, BQ) * NC + BK * D4 + (BQ / 4) * NC);
}

/**
 * The token kernel for `req` under the `<variant>.tok` knob (planVersion): asked for, tokens2
 * throws Unsupported where it cannot tile the shape.
 */
export function planTokens(
  req: OpRequest,
  segLen: number,
  S: number,
  limits: DeviceLimits,
): TokPlan {
  return planVersion(
    `${req.variant}.tok`,
    2,
    (tok) => tok === 1 ? { tok: 1 } : planTokens2(req, segLen, S, limits),
  );
}

function planTokens2(req: OpRequest, segLen: number, S: number, limits: DeviceLimits): TokPlan {
  const v = req.variant;
  const want = tuned(`${v}.tok_bq`, 64);
  if (want !== 32 && want !== 64) {
    throw new Error(`LAB_WEBGPU_TUNE ${v}.tok_bq must be 32 or 64, got ${want}`);
  }
  const D = req.shape.K;
  const pre = `webgpu ${v} (${v}.tok 2)`;
  if (D > 64) {
    throw new Unsupported(`${pre}: D=${D} above 64 (two 4-column output tiles per invocation)`);
  }
  const room = limits.maxComputeWorkgroupStorageSize;
  let BQ = want;
  if (BQ === 64 && tokens2Bytes(64, D) > room) BQ = 32;
  if (tokens2Bytes(BQ, D) > room) {
    throw new Unsupported(
      `${pre}: D=${D} needs ${tokens2Bytes(BQ, D)} bytes of workgroup memory, the device ` +
        `allows ${room}`,
    );
  }
  if ((BQ / 4) * NC > limits.maxComputeInvocationsPerWorkgroup) {
    throw new Unsupported(`${pre}: ${(BQ / 4) * NC} invocations per workgroup not allowed`);
  }
  if (Math.ceil(segLen / BQ) * S > limits.maxComputeWorkgroupsPerDimension) {
    throw new Unsupported(`${pre}: too many query blocks for one grid dimension`);
  }
  return { tok: 2, BQ };
}

/** `ld4_<name>(rb, d4)`: elements rb + 4·d4 … + 3 of a storage tensor (zero past D). */
function ld4Source(names: string[]): string {
  return names.map((n) =>
    `fn ld4_${n}(rb: u32, d4: u32) -> vec4f {
  let d = 4u * d4;
  if (d + 3u < D) {
    return vec4f(ld_${n}(rb + d), ld_${n}(rb + d + 1u), ld_${n}(rb + d + 2u), ld_${n}(rb + d + 3u));
  }
  var x = vec4f(0.0);
  if (d < D) { x.x = ld_${n}(rb + d); }
  if (d + 1u < D) { x.y = ld_${n}(rb + d + 1u); }
  if (d + 2u < D) { x.z = ld_${n}(rb + d + 2u); }
  return x;
}`
  ).join("\n");
}

/**
 * tokens2.wgsl's pipeline. `header` is what every rmt pipeline starts with (storage
 * declarations, `const D`, rmt/common.wgsl), so that the bind group layout is shared.
 */
export async function buildTokens2(
  device: GPUDevice,
  layout: GPUBindGroupLayout,
  label: string,
  header: string,
  D: number,
  BQ: number,
): Promise<GPUComputePipeline> {
  const D4 = Math.ceil(D / 4);
  const code = [
    header,
    `const D4: u32 = ${D4}u;`,
    `const BQ: u32 = ${BQ}u;`,
    `const KP: u32 = ${Math.max(4 * D4, BQ)}u;`,
    ld4Source(["q", "v"]),
    await wgslFile(import.meta.url, "tokens2.wgsl"),
  ].join("\n");
  return await compile(device, label, layout, code, {});
}
