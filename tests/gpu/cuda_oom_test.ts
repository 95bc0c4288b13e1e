/**
 * The quadratic baselines materialize B·H·T×T scores. Where those cannot fit (la at B1 H8
 * T=131072: 512 GiB of fp32 scores) the cuda backend must end in OutOfMemory, never a crash,
 * and a bench cell must end with status `oom`. Runs only with LAB_GPU_TESTS=1.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { openCuda } from "../../bench/backends/cuda.ts";
import { type Backend, OutOfMemory } from "../../bench/backends/backend.ts";
import { profileSpec } from "../../bench/matrix.ts";
import { defaultParams, type OpRequest } from "../../bench/ops.ts";
import { runCell } from "../../bench/runner.ts";
import { GPU_TESTS } from "./harness.ts";

const T = 131072;

if (GPU_TESTS) {
  let backend: Backend;
  before(async () => {
    backend = await openCuda();
  });
  after(() => backend?.close());

  describe("quadratic baselines past device memory", () => {
    for (const variant of ["la", "softmax"] as const) {
      it(`${variant}/quadratic prepare at B1 H8 T${T} D64 throws OutOfMemory`, async () => {
        const req: OpRequest = {
          variant,
          mode: "fwd",
          params: defaultParams(variant, 64),
          shape: { B: 1, T, H: 8, K: 64, V: 64, M: 0 },
        };
        const before = backend.memory().in_use_bytes;
        await assert.rejects(
          () => backend.prepare(req, { random: { seed: 1 } }, { impl: "quadratic", dtype: "f32" }),
          (e: unknown) => {
            assert.ok(e instanceof OutOfMemory, `expected OutOfMemory, got ${e}`);
            return true;
          },
        );
        // The failed prepare frees what it had allocated.
        assert.equal(backend.memory().in_use_bytes, before);
      });
    }

    it(`a la/quadratic bench cell at T${T} ends as oom`, async () => {
      const spec = { ...profileSpec("smoke", true), B: 1, H: 8, K: 64, V: 64 };
      for (const mode of ["fwd", "fwdbwd"] as const) {
        const cell = await runCell(
          backend,
          {
            id: `la-cuda-quadratic-bf16-${mode}-oom`,
            backend: "cuda",
            variant: "la",
            impl: "quadratic",
            dtype: "bf16",
            mode,
            T,
          },
          spec,
          7,
        );
        assert.equal(cell.status, "oom", `${mode}: ${cell.status}: ${cell.message}`);
        console.log(`la/quadratic bf16 ${mode} T${T}: ${cell.status} (${cell.message})`);
      }
      // The device is still usable afterwards.
      const small: OpRequest = {
        variant: "la",
        mode: "fwd",
        params: defaultParams("la", 64),
        shape: { B: 1, T: 256, H: 8, K: 64, V: 64, M: 0 },
      };
      const op = await backend.prepare(small, { random: { seed: 3 } }, {
        impl: "quadratic",
        dtype: "bf16",
      });
      try {
        await op.run();
      } finally {
        op.dispose();
      }
    });
  });
}
