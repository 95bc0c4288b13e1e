/**
 * Per-pass device times of the WebGPU chunk kernels at B1 H8 D64 (hot, median of 5), to see
 * which pass a change should target. The bench times the same passes as one span.
 *
 *   deno run -A kernels/webgpu/prof.ts [--variant la,gla] [--dtype bf16,f32] [--mode fwd]
 *                                      [--chunk 64] [T ...]        (default T: 65536 1048576)
 */
import { parseArgs } from "node:util";
import { openWebGpu, passTimes } from "../../bench/backends/webgpu.ts";
import { defaultParams, type Mode, type OpRequest, type Variant } from "../../bench/ops.ts";
import type { Dtype } from "../../bench/tensor.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    variant: { type: "string", default: "la,gla,deltanet,rmt" },
    dtype: { type: "string", default: "bf16" },
    mode: { type: "string", default: "fwd" },
    chunk: { type: "string" },
  },
});
const Ts = positionals.length > 0 ? positionals.map(Number) : [65536, 1048576];
const backend = await openWebGpu();
for (const T of Ts) {
  for (const variant of values.variant.split(",") as Variant[]) {
    for (const dtype of values.dtype.split(",") as Dtype[]) {
      for (const mode of values.mode.split(",") as Mode[]) {
        if (mode === "fwdbwd" && variant === "rmt") continue;
        const params = defaultParams(variant, 64);
        if (values.chunk) params.chunk_size = Number(values.chunk);
        const req: OpRequest = {
          variant,
          mode,
          params,
          shape: { B: 1, T, H: 8, K: 64, V: 64, M: variant === "rmt" ? 16 : 0 },
        };
        const tag = `${variant} ${dtype} ${mode} T=${T}`;
        try {
          const op = await backend.prepare(req, { random: { seed: 1 } }, { impl: "chunk", dtype });
          try {
            await op.run();
            const passes = await passTimes(op, 5);
            const total = (await op.time({ cold: false, samples: 5 })).sort((a, b) => a - b)[2];
            const parts = passes.map((p) => `${p.label} ${p.ms.toFixed(3)}`).join(", ");
            console.log(`${tag}: ${total.toFixed(3)} ms (${parts})`);
          } finally {
            op.dispose();
          }
        } catch (e) {
          console.log(`${tag}: ${(e as Error).message.split("\n")[0]}`);
        }
      }
    }
  }
}
backend.close();
