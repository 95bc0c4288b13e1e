/**
 * Opens backends by name. GPU backends are imported lazily so that a machine without them
 * never loads their code, and an open failure becomes a BackendUnavailable with one line.
 */
import { type Backend, type BackendName, BACKENDS, BackendUnavailable } from "./backend.ts";
import { CpuBackend } from "./cpu.ts";
import { InputError } from "../ops.ts";

export interface OpenOptions {
  /** Path of the CUDA kernel library (else $LAK_LIBRARY, else build/liblak.so). */
  cudaLibrary?: string;
  cudaDevice?: number;
}

export function parseBackendName(name: string): BackendName {
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new InputError(`unknown backend '${name}' (available: ${BACKENDS.join(", ")})`);
  }
  return name as BackendName;
}

export async function openBackend(name: BackendName, opts: OpenOptions = {}): Promise<Backend> {
  try {
    switch (name) {
      case "cpu":
        return new CpuBackend();
      case "cuda": {
        const { openCuda } = await import("./cuda.ts");
        return await openCuda({ library: opts.cudaLibrary, device: opts.cudaDevice });
      }
      case "webgpu": {
        const { openWebGpu } = await import("./webgpu.ts");
        return await openWebGpu();
      }
      case "torch": {
        const { openTorch } = await import("./torch.ts");
        return await openTorch();
      }
    }
  } catch (e) {
    if (e instanceof BackendUnavailable || e instanceof InputError) throw e;
    throw new BackendUnavailable(name, firstLine(e));
  }
}

export function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0];
}
