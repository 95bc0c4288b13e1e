/**
 * Times deltanet/chunk on the CUDA backend at B1 H8 D64 for the given sequence lengths, whole
 * requests (hot L2, median of 5), and with LAK_DN_PROFILE=1 one run's per-kernel breakdown
 * (printed by liblak to stderr).
 *
 *   deno run -A kernels/cuda/deltanet/prof.ts [T ...]   (default 16384 65536 262144 1048576)
 */
import { openCuda } from "../../../bench/backends/cuda.ts";
import { defaultParams, type Mode, type OpRequest } from "../../../bench/ops.ts";
import type { Dtype } from "../../../bench/tensor.ts";

const Ts = Deno.args.length > 0 ? Deno.args.map(Number) : [16384, 65536, 262144, 1048576];
const backend = await openCuda();
for (const T of Ts) {
  for (const dtype of ["bf16", "f32"] as Dtype[]) {
    for (const mode of ["fwd", "fwdbwd"] as Mode[]) {
      const req: OpRequest = {
        variant: "deltanet",
        mode,
        params: defaultParams("deltanet", 64),
        shape: { B: 1, T, H: 8, K: 64, V: 64, M: 0 },
      };
      const op = await backend.prepare(req, { random: { seed: 1 } }, { impl: "chunk", dtype });
      try {
        if (Deno.env.get("LAK_DN_PROFILE") === "1") {
          console.error(`== ${dtype} ${mode} T=${T}`);
          await op.run();
          continue;
        }
        await op.run();
        const ms = (await op.time({ cold: false, samples: 5 })).sort((a, b) => a - b);
        backend.resetPeak();
        await op.run();
        const peak = backend.memory().peak_bytes / 2 ** 30;
        console.log(
          `deltanet/chunk ${dtype} ${mode} B1 H8 D64 T=${T}: ${ms[2].toFixed(3)} ms ` +
            `(min ${ms[0].toFixed(3)}), peak ${peak.toFixed(2)} GiB`,
        );
      } finally {
        op.dispose();
      }
    }
  }
}
backend.close();
