/**
 * Runs every op the cuda backend lists once, forward and forward+backward, in every dtype, on
 * a small shape (chunk impls at every chunk size they instantiate), so
 * `compute-sanitizer --tool memcheck|racecheck` can watch each kernel:
 *
 *   compute-sanitizer --tool memcheck --error-exitcode 1 deno run -A tests/gpu/sanitize.ts
 *
 * Exits 1 if any op throws.
 */
import { openCuda } from "../../bench/backends/cuda.ts";
import { caseInputs, caseName, type OpCase, params } from "./harness.ts";

/** GPU_TEST_OPS=la/chunk,gla/chunk narrows the run to those ops (as in cuda_ops_test.ts). */
const only = Deno.env.get("GPU_TEST_OPS")?.split(",").map((x) => x.trim());
const backend = await openCuda();
let failed = 0;
for (const info of backend.impls()) {
  if (only && !only.includes(`${info.variant}/${info.impl}`)) continue;
  // Every chunk size the chunk kernels instantiate (64 is the default).
  const chunks = info.impl === "chunk" && info.variant !== "rmt" ? [64, 32, 16] : [0];
  for (const dtype of info.dtypes) {
    for (const mode of info.modes) {
      for (const chunk of chunks) {
        const c: OpCase = {
          variant: info.variant,
          impl: info.impl,
          dtype,
          mode,
          shape: { B: 1, T: 100, H: 2, K: 64, V: 64, M: info.variant === "rmt" ? 4 : 0 },
          params: info.variant === "rmt" ? { segment_len: 64 } : chunk ? { chunk_size: chunk } : {},
          withState: true,
        };
        const req = { variant: c.variant, mode, shape: c.shape, params: params(c) };
        try {
          const op = await backend.prepare(req, caseInputs(c, 7), { impl: c.impl, dtype });
          await op.poison();
          await op.run();
          await op.read();
          op.dispose();
          console.log(`ran ${caseName(c)}`);
        } catch (e) {
          failed++;
          console.log(`ERR ${caseName(c)}: ${(e as Error).message}`);
        }
      }
    }
  }
}
backend.close();
Deno.exit(failed ? 1 : 0);
