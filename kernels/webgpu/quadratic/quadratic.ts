/**
 * `quadratic` forward of la and softmax: the T×T score matrix materialized in an f32
 * workspace, in separate passes (scores, row normalization, outputs; la also its final state).
 * A baseline for small T: the workspace is 4·T² bytes per head and must fit one binding.
 */
import { Unsupported } from "../../../bench/backends/backend.ts";
import {
  compile,
  f32Source,
  ioSource,
  type KernelBuilder,
  layoutFor,
  type Plan,
  settled,
  type Step,
  type Storage,
  wgslFile,
} from "../kernel.ts";
import { paramsBlock } from "../la/chunk_fwd.ts";

const BIND = {
  params: 0,
  q: 1,
  k: 2,
  v: 3,
  o: 4,
  h0: 5,
  z0: 6,
  final_state: 7,
  final_z: 8,
  wsa: 9,
  wsd: 10,
} as const;

interface QuadPlan extends Plan {
  dtype: Storage;
}

function quadratic(variant: "la" | "softmax"): KernelBuilder<QuadPlan> {
  return {
    variant,
    impl: "quadratic",
    default: false,
    modes: ["fwd"],
    dtypes: ["f32", "f16", "bf16"],
    description: `${variant} forward with the T×T scores materialized, in separate passes`,
    plan(req, dtype, limits) {
      const { B, T, H, V } = req.shape;
      const grid = Math.ceil(T / 16);
      if (
        Math.max(grid, B * H, Math.ceil(T * Math.ceil(V / 2) / 64)) >
          limits.maxComputeWorkgroupsPerDimension
      ) {
        throw new Unsupported(
          `webgpu ${variant}/quadratic: T=${T} too long for one grid dimension`,
        );
      }
      return { dtype, workspace: { wsa: 4 * B * H * T * T, wsd: 4 * B * H * T } };
    },
    async build(device, plan, req, has) {
      const layout = layoutFor(device, `${variant}/quadratic`, BIND);
      const { B, T, H, K, V } = req.shape;
      const BH = B * H;
      const head = [
        ioSource(plan.dtype, (["q", "k", "v", "o"] as const).map((n) => [n, BIND[n]])),
        f32Source(
          (["h0", "z0", "final_state", "final_z", "wsa", "wsd"] as const).map((n) => [n, BIND[n]]),
        ),
        `const VARIANT: u32 = ${variant === "la" ? 0 : 1}u;`,
        await wgslFile(import.meta.url, "../common.wgsl"),
      ].join("\n");
      const make = async (pass: string, constants: Record<string, number> = {}) =>
        compile(
          device,
          `${variant}/quadratic_${pass}/${plan.dtype}`,
          layout,
          `${head}\n${await wgslFile(import.meta.url, `${pass}.wgsl`)}`,
          { K, V, ...constants },
        );
      const names = variant === "la"
        ? ["scores", "rows", "out", "state"]
        : ["scores", "rows", "out"];
      const pipes = await settled(names.map((n) => make(n)));
      const grid: Record<string, [number, number, number]> = {
        scores: [Math.ceil(T / 16), Math.ceil(T / 16), BH],
        rows: [Math.ceil(T / 64), BH, 1],
        out: [Math.ceil(T * Math.ceil(V / 2) / 64), BH, 1],
        state: [Math.ceil((K * V + K) / 64), BH, 1],
      };
      const flags = variant === "la" && req.params.normalize ? 2 : 0;
      return {
        layout,
        bindings: BIND,
        params: paramsBlock(req.shape, 1, req.params.scale, has, flags),
        passes: names.map((n, i) => ({
          label: n,
          steps: [{ pipeline: pipes[i], workgroups: grid[n] }] as Step[],
        })),
      };
    },
  };
}

export const laQuadratic = quadratic("la");
export const softmaxQuadratic = quadratic("softmax");
