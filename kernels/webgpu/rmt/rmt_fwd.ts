/**
 * rmt forward (docs/ops.md, kernels/reference/rmt/recurrent.ts) in two compute passes:
 *   1. memory: init.wgsl copies mem into slot 0 of the f32 memory slots, then per segment one
 *      dispatch of segment.wgsl's memory-row queries (writing the next slot) and a
 *      one-invocation dispatch advancing the segment counter (bump.wgsl): the only sequential
 *      part, M queries per head and segment;
 *   2. tokens: one dispatch of segment.wgsl's token queries for every segment at once, each
 *      reading its segment's memory slot (tokens2.wgsl instead under the knob `<variant>.tok` = 2,
 *      rmt/tokens2.ts).
 * The same token kernel with one segment and no memory is causal softmax attention
 * (softmax/flash).
 */
import { Unsupported } from "../../../bench/backends/backend.ts";
import type { OpRequest } from "../../../bench/ops.ts";
import {
  compile,
  type DeviceLimits,
  f32Source,
  ioSource,
  type Kernel,
  type KernelBuilder,
  layoutFor,
  type Pass,
  type Plan,
  settled,
  type Step,
  type Storage,
  wgslFile,
} from "../kernel.ts";
import { buildMemory2, MEM2_ROWS, planMemory2 } from "./memory2.ts";
import { buildTokens2, planTokens, type TokPlan } from "./tokens2.ts";

const BIND = {
  params: 0,
  q: 1,
  k: 2,
  v: 3,
  mem: 4,
  o: 5,
  wsmem: 6,
  final_state: 7,
  wsctr: 8,
} as const;

const QB = 64; // query rows per workgroup, as segment.wgsl's default

export interface RmtPlan extends Plan {
  dtype: Storage;
  L: number;
  S: number;
  KB: number;
  /** The token pass's kernel (`<variant>.tok`): 1 = segment.wgsl, 2 = tokens2.wgsl. */
  tokens: TokPlan;
  /** The memory pass's kernel (`rmt.mem`): 2 = memory2.wgsl with its key tile TK; else 1. */
  mem2?: { TK: number };
}

/**
 * rmt's segment kernel also serves causal softmax attention (softmax/flash): one segment of
 * all T tokens and no memory rows.
 */
function segments(req: OpRequest): number {
  return req.variant === "rmt" ? Math.min(req.params.segment_len, req.shape.T) : req.shape.T;
}

export function planSegments(req: OpRequest, dtype: Storage, limits: DeviceLimits): RmtPlan {
  const { B, T, H, K: D, M } = req.shape;
  const L = segments(req);
  const S = Math.ceil(T / L);
  let KB = 32;
  while (KB > 1 && 8 * KB * D + 4 > limits.maxComputeWorkgroupStorageSize) KB >>= 1;
  const why = dtype === "bf16" && D % 2 !== 0
    ? `bf16 needs an even D (packed bf16 pairs), got D=${D}`
    : 8 * KB * D + 4 > limits.maxComputeWorkgroupStorageSize
    ? `D=${D} needs more workgroup memory than ${limits.maxComputeWorkgroupStorageSize}`
    : D > 256
    ? `D=${D} above 256 (one query row's registers)`
    : Math.max(B * H, Math.ceil(L / QB) * S, Math.ceil(M / QB)) >
        limits.maxComputeWorkgroupsPerDimension
    ? `too many heads or query blocks for one grid dimension`
    : "";
  if (why) throw new Unsupported(`webgpu ${req.variant}: ${why}`);
  const mem2 = req.variant === "rmt" && M > 0 ? planMemory2(req, limits) : undefined;
  const tokens = planTokens(req, L, S, limits);
  return {
    dtype,
    L,
    S,
    KB,
    mem2,
    tokens,
    workspace: { wsmem: 4 * (S + 1) * B * H * M * D, wsctr: 4 },
  };
}

export async function buildSegments(
  device: GPUDevice,
  plan: RmtPlan,
  req: OpRequest,
): Promise<Kernel> {
  const layout = layoutFor(device, "rmt/chunk", BIND);
  const { B, H, K: D, M, T } = req.shape;
  const BH = B * H;
  const head = (tokens: boolean) => [
    ioSource(plan.dtype, (["q", "k", "v", "mem", "o"] as const).map((n) => [n, BIND[n]])),
    f32Source([["wsmem", BIND.wsmem], ["final_state", BIND.final_state]]),
    `const D: u32 = ${D}u;`,
    `const KB: u32 = ${plan.KB}u;`,
    `const TOKENS: bool = ${tokens};`,
    wgslFile(import.meta.url, "common.wgsl"),
  ];
  const make = async (name: string, tokens: boolean, constants: Record<string, number>) =>
    compile(
      device,
      `rmt/${name}${tokens ? "" : "_memory"}/${plan.dtype}`,
      layout,
      [...await Promise.all(head(tokens)), await wgslFile(import.meta.url, `${name}.wgsl`)].join(
        "\n",
      ),
      constants,
    );
  const memory = M > 0;
  const tokRows = plan.tokens.tok === 2 ? plan.tokens.BQ : QB; // query rows per workgroup
  const [tokens, init, update, bump] = await settled([
    plan.tokens.tok === 2
      ? Promise.all(head(true)).then((h) =>
        buildTokens2(device, layout, `rmt/tokens2/${plan.dtype}`, h.join("\n"), D, tokRows)
      )
      : make("segment", true, { QB }),
    ...(memory
      ? [
        make("init", false, {}),
        plan.mem2
          ? Promise.all(head(false)).then((h) =>
            buildMemory2(device, layout, `rmt/memory2/${plan.dtype}`, h.join("\n"), plan.mem2!.TK)
          )
          : make("segment", false, { QB }),
        make("bump", false, {}),
      ]
      : []),
  ]);
  const passes: Pass[] = [];
  if (memory) {
    const steps: Step[] = [
      { pipeline: init, workgroups: [Math.ceil(BH * M * D / 256), 1, 1] },
    ];
    for (let s = 0; s < plan.S; s++) {
      if (s > 0) steps.push({ pipeline: bump, workgroups: [1, 1, 1] });
      const rows = plan.mem2 ? MEM2_ROWS : QB;
      steps.push({ pipeline: update, workgroups: [Math.ceil(M / rows), BH, 1] });
    }
    passes.push({ label: "memory", steps });
  }
  passes.push({
    label: "tokens",
    steps: [{ pipeline: tokens, workgroups: [Math.ceil(plan.L / tokRows) * plan.S, BH, 1] }],
  });
  const params = new ArrayBuffer(32);
  const dv = new DataView(params);
  [T, H, plan.L, plan.S, M, BH].forEach((x, i) => dv.setUint32(4 * i, x, true));
  dv.setFloat32(24, req.params.scale, true);
  return { layout, bindings: BIND, params, passes };
}

export const rmtSegment: KernelBuilder<RmtPlan> = {
  variant: "rmt",
  impl: "chunk",
  default: true,
  modes: ["fwd"],
  dtypes: ["f32", "f16", "bf16"],
  description:
    "rmt forward: the memory chain one segment per dispatch, then every segment's tokens in " +
    "one dispatch (online softmax)",
  plan: planSegments,
  build: (device, plan, req) => buildSegments(device, plan, req),
};
