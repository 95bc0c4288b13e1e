/**
 * The `cpu` backend: the fp64 references behind the Backend interface. Always available;
 * its times are wall-clock times of single-threaded TypeScript, useful only as a sanity
 * scale, never as a kernel baseline.
 */
import type {
  Backend,
  DeviceInfo,
  ImplInfo,
  MemoryUse,
  PreparedOp,
  PrepareOptions,
} from "./backend.ts";
import { findImpl, isRandomSource, type RandomSource, Unsupported } from "./backend.ts";
import { prefixInputs, randomInputs } from "../inputs.ts";
import { type Inputs, type OpRequest, type Outputs, outputShapes, VARIANTS } from "../ops.ts";
import { tensor, toF64 } from "../tensor.ts";
import { REFERENCES } from "../../kernels/reference/index.ts";
import type { RefInputs, RefOutputs } from "../../kernels/reference/types.ts";

const DESCRIPTIONS: Record<string, string> = {
  recurrent: "fp64 recurrent form token by token (the oracle)",
  direct: "fp64 direct softmax attention row by row (the oracle)",
  chunk: "fp64 chunked form (the chunk algebra the GPU kernels use)",
};

export class CpuBackend implements Backend {
  readonly name = "cpu" as const;
  #live = 0;
  #peak = 0;

  info(): DeviceInfo {
    return {
      backend: "cpu",
      name: `${Deno.build.arch} ${Deno.build.os} (fp64 TypeScript references)`,
      cores: navigator.hardwareConcurrency,
      timer: "wall",
    };
  }

  impls(): ImplInfo[] {
    return VARIANTS.flatMap((variant) => {
      const entry = REFERENCES[variant];
      return Object.keys(entry.impls).map((impl) => ({
        variant,
        impl,
        default: impl === entry.oracle,
        dtypes: ["f64"] as const,
        modes: ["fwd", "fwdbwd"] as const,
        description: DESCRIPTIONS[impl] ?? impl,
      }));
    });
  }

  prepare(
    req: OpRequest,
    source: Inputs | RandomSource,
    opts: PrepareOptions,
  ): Promise<PreparedOp> {
    const info = findImpl(this, req.variant, opts.impl, opts.dtype, req.mode);
    const inputs = isRandomSource(source)
      ? randomInputs(req, opts.dtype, source.random.seed)
      : source;
    const ref = REFERENCES[req.variant].impls[info.impl];
    const x: RefInputs = {};
    let bytes = 0;
    for (const [name, t] of Object.entries(inputs)) {
      const d = toF64(t!);
      x[name as keyof RefInputs] = d;
      bytes += d.byteLength;
    }
    let out: RefOutputs | undefined;
    const track = (delta: number) => {
      this.#live += delta;
      this.#peak = Math.max(this.#peak, this.#live);
    };
    track(bytes);
    const runOnce = () => {
      const next = req.mode === "fwd"
        ? ref.forward(x, req.shape, req.params)
        : ref.backward(x, req.shape, req.params);
      track(byteSize(next) - byteSize(out));
      out = next;
    };
    const shapes = outputShapes(req, inputs);
    const op: PreparedOp = {
      workspaceBytes: 0,
      poison: () => {
        if (out) { for (const d of Object.values(out)) d?.fill(NaN); }
        return Promise.resolve();
      },
      run: () => {
        runOnce();
        return Promise.resolve();
      },
      read: () => {
        if (!out) throw new Error("read() before run()");
        const result: Outputs = {};
        for (const [name, d] of Object.entries(out)) {
          const shape = shapes[name as keyof typeof shapes];
          if (d && shape) result[name as keyof Outputs] = tensor("f64", shape, d.slice());
        }
        return Promise.resolve(result);
      },
      inputs: (tokens) => Promise.resolve(prefixInputs(inputs, tokens)),
      time: ({ samples, part }) => {
        if (part === "bwd") {
          throw new Unsupported(
            "cpu cannot time the backward alone: its references' backward recomputes the forward",
          );
        }
        const times: number[] = [];
        for (let i = 0; i < samples; i++) {
          const t0 = performance.now();
          runOnce();
          times.push(performance.now() - t0);
        }
        return Promise.resolve(times);
      },
      dispose: () => {
        track(-bytes - byteSize(out));
        out = undefined;
      },
    };
    return Promise.resolve(op);
  }

  memory(): MemoryUse {
    return { in_use_bytes: this.#live, peak_bytes: this.#peak };
  }

  resetPeak(): void {
    this.#peak = this.#live;
  }

  close(): void {}
}

function byteSize(o: RefOutputs | undefined): number {
  return o ? Object.values(o).reduce((a, d) => a + (d?.byteLength ?? 0), 0) : 0;
}
