/**
 * The adapter policy of every WebGPU test file: open the backend once; without an adapter,
 * register one test that fails under CI=true (lavapipe must be there) and is skipped, with
 * the reason, elsewhere.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import { type Backend, BackendUnavailable } from "../../bench/backends/backend.ts";
import { openWebGpu } from "../../bench/backends/webgpu.ts";

if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");

/** The webgpu backend, or null after registering the no-adapter test named by `what`. */
export async function webgpuOrReport(what: string): Promise<Backend | null> {
  try {
    return await openWebGpu();
  } catch (e) {
    if (!(e instanceof BackendUnavailable)) throw e;
    if (Deno.env.get("CI") === "true") {
      it(`webgpu adapter is available (CI=true) for ${what}`, () => {
        assert.fail(`no WebGPU adapter in CI: ${e.message}`);
      });
    } else {
      it.skip(`${what} skipped: ${e.message}`, () => {});
    }
    return null;
  }
}
