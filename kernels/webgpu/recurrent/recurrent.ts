/**
 * `recurrent` forward of la, gla and deltanet: one WGSL pass walking the tokens in order, each
 * invocation holding two state columns of one head (recurrent.wgsl). The baseline the chunked
 * kernels are measured against; its parallelism is only B·H·V/2 invocations.
 */
import { Unsupported } from "../../../bench/backends/backend.ts";
import type { Variant } from "../../../bench/ops.ts";
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
  g: 4,
  beta: 5,
  o: 6,
  h0: 7,
  z0: 8,
  final_state: 9,
  final_z: 10,
} as const;

const WG = 32;
/**
 * Measured on lavapipe (Mesa 22.3): a single invocation walking T tokens with K-sized private
 * arrays stops writing o after about 2·10⁶ units of T·K² (K=32: token 1927; K=64: token 500),
 * silently. Refused below that with a margin rather than reported as a wrong answer.
 */
const LAVAPIPE_WORK = 1_500_000;

/** T·K², weighted by what was measured: deltanet's extra K loops, 16-bit unpacking. */
function lavapipeWork(variant: Variant, dtype: Storage, T: number, K: number): number {
  return T * K * K * (variant === "deltanet" ? 2 : 1) * (dtype === "f32" ? 1 : 1.5);
}
const CODE: Partial<Record<Variant, number>> = { la: 0, gla: 1, deltanet: 2 };

interface RecurrentPlan extends Plan {
  dtype: Storage;
}

function recurrent(variant: "la" | "gla" | "deltanet"): KernelBuilder<RecurrentPlan> {
  return {
    variant,
    impl: "recurrent",
    default: false,
    modes: ["fwd"],
    dtypes: ["f32", "f16", "bf16"],
    description: `${variant} forward token by token, two state columns per invocation`,
    plan(req, dtype, limits) {
      const { B, H, K, V } = req.shape;
      const why = dtype === "bf16" && V % 2 !== 0
        ? `bf16 needs an even V, got V=${V}`
        : K > 256
        ? `K=${K} above 256 (the state columns live in registers)`
        : B * H > limits.maxComputeWorkgroupsPerDimension
        ? `${B * H} heads exceed maxComputeWorkgroupsPerDimension`
        : limits.softwareAdapter && lavapipeWork(variant, dtype, req.shape.T, K) > LAVAPIPE_WORK
        ? `T=${req.shape.T}, K=${K} is beyond what lavapipe runs in one invocation (it stops ` +
          `after a fixed amount of loop work and leaves the rest of o unwritten)`
        : "";
      if (why) throw new Unsupported(`webgpu ${variant}/recurrent: ${why}`);
      return { dtype, workspace: {} };
    },
    async build(device, plan, req, has) {
      const layout = layoutFor(device, `${variant}/recurrent`, BIND);
      const { K, V } = req.shape;
      const code = [
        ioSource(
          plan.dtype,
          (["q", "k", "v", "g", "beta", "o"] as const).map((n) => [n, BIND[n]]),
        ),
        f32Source((["h0", "z0", "final_state", "final_z"] as const).map((n) => [n, BIND[n]])),
        `const VARIANT: u32 = ${CODE[variant]}u;`,
        await wgslFile(import.meta.url, "../common.wgsl"),
        await wgslFile(import.meta.url, "recurrent.wgsl"),
      ].join("\n");
      // common.wgsl's K and V are overrides, but private arrays need const sizes: K is both.
      const pipeline = await compile(
        device,
        `${variant}/recurrent/${plan.dtype}`,
        layout,
        code.replace("override K: u32 = 64;", `const K: u32 = ${K}u;`),
        { V, WG },
      );
      const flags = variant === "deltanet"
        ? (req.params.qk_l2norm ? 1 : 0)
        : variant === "la" && req.params.normalize
        ? 2
        : 0;
      return {
        layout,
        bindings: BIND,
        params: paramsBlock(req.shape, 1, req.params.scale, has, flags),
        passes: [{
          label: "tokens",
          steps: [{
            pipeline,
            workgroups: [Math.ceil(V / (2 * WG)), req.shape.B * req.shape.H, 1],
          }],
        }],
      };
    },
  };
}

export const laRecurrent = recurrent("la");
export const glaRecurrent = recurrent("gla");
export const deltanetRecurrent = recurrent("deltanet");
