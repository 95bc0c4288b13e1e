/**
 * The `torch` backend: external reference implementations (PyTorch SDPA, naive PyTorch,
 * FLA's Triton ops; docs/external.md) run by a python subprocess, bench/backends/
 * torch_worker.py, that speaks JSON lines on stdin/stdout. Bulk tensors travel through
 * safetensors files in a temp folder; inputs drawn from a seed are drawn on the device by
 * python with the same generator as the cuda backend. Times are CUDA events taken in python.
 */
import {
  type Backend,
  BackendUnavailable,
  type DeviceInfo,
  findImpl,
  type ImplInfo,
  isRandomSource,
  type MemoryUse,
  OutOfMemory,
  type PreparedOp,
  type PrepareOptions,
  type RandomSource,
  type TimingOptions,
  Unsupported,
} from "./backend.ts";
import { TORCH_IMPLS } from "./torch_impls.ts";
import {
  type InputName,
  type Inputs,
  inputShape,
  type OpRequest,
  type OutputName,
  type Outputs,
  outputShapes,
  requiredInputs,
} from "../ops.ts";
import { distributionOf, inputSeed, prefixInputs } from "../inputs.ts";
import { parseSafetensors, serializeSafetensors } from "../safetensors.ts";
import { cast, type Dtype, type Tensor } from "../tensor.ts";
import { readLines } from "../lines.ts";

export const WORKER_SCRIPT = new URL("./torch_worker.py", import.meta.url).pathname;

export interface TorchOptions {
  /** Python interpreter (else $LAK_PYTHON, else python3). */
  python?: string;
  /** Extra worker arguments (tests pass --fake). */
  args?: string[];
  /** How long to wait for the worker's first line (importing torch and FLA). */
  startupTimeoutMs?: number;
  /** The catalog to filter by what the worker reports (tests pass their own). */
  catalog?: readonly ImplInfo[];
}

type Hello =
  | {
    type: "hello";
    info: Record<string, unknown>;
    impls: string[];
    missing: Record<string, string>;
  }
  | { type: "unavailable"; reason: string };

interface Reply {
  id: number;
  ok: boolean;
  kind?: "oom" | "unsupported" | "error";
  message?: string;
  handle?: number;
  ms?: number[];
  mem?: { in_use: number; peak: number };
}

/** Storage inputs kept in fp32 whatever the op dtype (states), as on the cuda backend. */
const FP32_INPUTS: ReadonlySet<InputName> = new Set(["h0", "z0"]);

/** Starts the python worker; BackendUnavailable with one line when it cannot run here. */
export async function openTorch(opts: TorchOptions = {}): Promise<Backend> {
  const python = opts.python ?? Deno.env.get("LAK_PYTHON") ?? "python3";
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(python, {
      args: [WORKER_SCRIPT, ...(opts.args ?? [])],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      env: { PYTHONUNBUFFERED: "1" },
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new BackendUnavailable("torch", `${python} is not installed (not found on PATH)`);
    }
    throw new BackendUnavailable("torch", `cannot start ${python}: ${(e as Error).message}`);
  }
  const lines = readLines(child.stdout);
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  };
  const timeoutMs = opts.startupTimeoutMs ?? 170_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const first = await Promise.race([
    lines.next(),
    new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs))),
  ]);
  clearTimeout(timer);
  let hello: Hello | undefined;
  if (first !== "timeout" && !first.done) {
    try {
      hello = JSON.parse(first.value);
    } catch { /* reported below */ }
  }
  if (!hello || hello.type !== "hello") {
    const why = first === "timeout"
      ? `the python worker did not answer within ${Math.round(timeoutMs / 1000)} s`
      : hello?.type === "unavailable"
      ? hello.reason
      : first.done
      ? `the python worker exited before saying hello (exit code ${(await child.status).code})`
      : `the python worker said something unexpected: ${first.value.slice(0, 120)}`;
    kill();
    await child.status.catch(() => {});
    throw new BackendUnavailable("torch", why);
  }
  const dir = await Deno.makeTempDir({ prefix: "lak-torch-" });
  return new TorchBackend(child, lines, hello, dir, opts.catalog ?? TORCH_IMPLS);
}

class TorchBackend implements Backend {
  readonly name = "torch" as const;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, (r: Reply) => void>();
  readonly #info: DeviceInfo;
  readonly #impls: ImplInfo[];
  readonly #dir: string;
  #nextId = 1;
  #files = 0;
  #mem: MemoryUse = { in_use_bytes: 0, peak_bytes: 0 };
  #dead: string | undefined;
  #closed = false;

  constructor(
    child: Deno.ChildProcess,
    lines: AsyncGenerator<string>,
    hello: Extract<Hello, { type: "hello" }>,
    dir: string,
    catalog: readonly ImplInfo[],
  ) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#dir = dir;
    const have = new Set(hello.impls);
    this.#impls = catalog.filter((i) => have.has(i.impl)).map((i) => ({ ...i }));
    this.#info = {
      ...hello.info,
      backend: "torch",
      name: String(hello.info.name ?? "unknown"),
      impls_missing: hello.missing,
    };
    this.#readLoop(lines);
  }

  async #readLoop(lines: AsyncGenerator<string>): Promise<void> {
    try {
      for await (const line of lines) {
        let r: Reply;
        try {
          r = JSON.parse(line);
        } catch {
          continue;
        }
        if (r.mem) this.#mem = { in_use_bytes: r.mem.in_use, peak_bytes: r.mem.peak };
        const resolve = this.#pending.get(r.id);
        this.#pending.delete(r.id);
        resolve?.(r);
      }
    } catch { /* the pipe broke: the process is gone */ }
    const st = await this.#child.status;
    this.#dead = st.signal
      ? `the torch worker was killed (${st.signal})`
      : `the torch worker exited (code ${st.code})`;
    for (const [id, resolve] of this.#pending) {
      resolve({ id, ok: false, kind: "error", message: this.#dead });
    }
    this.#pending.clear();
  }

  /** Sends one command and waits for its reply; failures become the matching error. */
  async #call(cmd: string, body: Record<string, unknown> = {}): Promise<Reply> {
    if (this.#dead) throw new Error(this.#dead);
    if (this.#closed) throw new Error("torch backend used after close()");
    const id = this.#nextId++;
    const reply = new Promise<Reply>((resolve) => this.#pending.set(id, resolve));
    const line = JSON.stringify({ id, cmd, ...body }) + "\n";
    try {
      await this.#writer.write(new TextEncoder().encode(line));
    } catch (e) {
      this.#pending.delete(id);
      throw new Error(`torch worker is gone: ${(e as Error).message}`);
    }
    const r = await reply;
    if (r.ok) return r;
    const msg = `torch ${cmd}: ${r.message ?? "failed"}`;
    if (r.kind === "oom") throw new OutOfMemory(msg);
    if (r.kind === "unsupported") throw new Unsupported(msg);
    throw new Error(msg);
  }

  #file(): string {
    return `${this.#dir}/${this.#files++}.safetensors`;
  }

  async #readFile(path: string): Promise<Record<string, Tensor>> {
    try {
      return parseSafetensors(await Deno.readFile(path), path).tensors;
    } finally {
      await Deno.remove(path).catch(() => {});
    }
  }

  info(): DeviceInfo {
    return { ...this.#info };
  }

  impls(): ImplInfo[] {
    return this.#impls.map((i) => ({ ...i }));
  }

  async prepare(
    req: OpRequest,
    source: Inputs | RandomSource,
    opts: PrepareOptions,
  ): Promise<PreparedOp> {
    const info = findImpl(this, req.variant, opts.impl, opts.dtype, req.mode);
    const dtype: Dtype = opts.dtype;
    let stored: Inputs | undefined;
    let file: string | undefined;
    let random: Record<string, { seed: number; dist: string; shape: number[] }> | undefined;
    let present: Inputs;
    if (isRandomSource(source)) {
      random = {};
      present = {};
      for (const name of requiredInputs(req.variant, req.mode)) {
        const shape = inputShape(name, req.shape);
        random[name] = {
          seed: inputSeed(source.random.seed, name),
          dist: distributionOf(name),
          shape,
        };
        present[name] = { dtype, shape, data: new Float32Array(0) };
      }
    } else {
      stored = {};
      for (const [name, t] of Object.entries(source) as [InputName, Tensor][]) {
        if (t) stored[name] = cast(t, FP32_INPUTS.has(name) ? "f32" : dtype);
      }
      present = stored;
      file = this.#file();
      await Deno.writeFile(file, serializeSafetensors(stored as Record<string, Tensor>));
    }
    const outputs = outputShapes(req, present);
    let handle: number;
    try {
      const r = await this.#call("prepare", {
        variant: req.variant,
        mode: req.mode,
        impl: info.impl,
        dtype,
        params: req.params,
        shape: req.shape,
        file,
        random,
        outputs,
      });
      handle = r.handle!;
    } finally {
      if (file) await Deno.remove(file).catch(() => {});
    }
    let disposed = false;
    const live = () => {
      if (disposed) throw new Error("torch: PreparedOp used after dispose()");
    };
    return {
      workspaceBytes: 0,
      poison: async () => {
        live();
        await this.#call("poison", { handle });
      },
      run: async () => {
        live();
        await this.#call("run", { handle });
      },
      read: async () => {
        live();
        // One file per output, at its stored dtype; returned as f32 like the cuda backend's.
        const names = Object.keys(outputs) as OutputName[];
        const files = Object.fromEntries(names.map((n) => [n, this.#file()]));
        try {
          await this.#call("read", { handle, files });
        } catch (e) {
          await Promise.all(names.map((n) => Deno.remove(files[n]).catch(() => {})));
          throw e;
        }
        const out: Outputs = {};
        for (const name of names) {
          const t = (await this.#readFile(files[name]))[name];
          if (t) out[name] = t.dtype === "f32" ? t : cast(t, "f32");
        }
        return out;
      },
      inputs: async (tokens: number) => {
        live();
        if (stored) return prefixInputs(stored, tokens);
        const path = this.#file();
        await this.#call("inputs", { handle, tokens, file: path });
        return await this.#readFile(path) as Inputs;
      },
      time: async (t: TimingOptions) => {
        live();
        const r = await this.#call("time", {
          handle,
          cold: t.cold,
          samples: t.samples,
          part: t.part ?? "all",
        });
        return r.ms ?? [];
      },
      dispose: () => {
        if (disposed || this.#dead || this.#closed) return;
        disposed = true;
        this.#call("dispose", { handle }).catch(() => {});
      },
    };
  }

  memory(): MemoryUse {
    return { ...this.#mem };
  }

  resetPeak(): void {
    this.#mem = { ...this.#mem, peak_bytes: this.#mem.in_use_bytes };
    if (!this.#dead && !this.#closed) this.#call("reset_peak").catch(() => {});
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#writer.close().catch(() => {});
    const child = this.#child;
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 5000);
    Deno.unrefTimer(timer);
    child.status.finally(() => clearTimeout(timer));
    try {
      Deno.removeSync(this.#dir, { recursive: true });
    } catch { /* already gone */ }
  }
}
