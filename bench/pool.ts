/**
 * The parent side of bench/worker.ts: one worker process per backend, restarted after a
 * crash or a timeout, so a failing cell never takes the run down with it.
 */
import type { BackendName, DeviceInfo, ImplInfo } from "./backends/backend.ts";
import { readLines } from "./lines.ts";
import type { MatrixSpec, PlannedCell } from "./matrix.ts";
import type { Cell } from "./results.ts";
import { finish, newCell } from "./runner.ts";

const WORKER = new URL("./worker.ts", import.meta.url).pathname;
const STARTUP_TIMEOUT_MS = 180_000;

type Message =
  | { type: "hello"; info: DeviceInfo; impls: ImplInfo[] }
  | { type: "unavailable"; reason: string }
  | { type: "cell"; cell: Cell };

class Connection {
  readonly #child: Deno.ChildProcess;
  readonly #lines: AsyncGenerator<string>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(name: BackendName, cudaLibrary: string | undefined, env: Record<string, string>) {
    const args = ["run", "-A", WORKER, `--backend=${name}`];
    if (cudaLibrary) args.push(`--cuda-library=${cudaLibrary}`);
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#lines = readLines(this.#child.stdout);
    this.#writer = this.#child.stdin.getWriter();
  }

  async send(msg: unknown): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(msg) + "\n"));
  }

  /** The next message, or why none came: the process ended or the time ran out. */
  async receive(
    timeoutMs: number,
  ): Promise<Message | { type: "exit" | "timeout"; reason: string }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      const next = await Promise.race([this.#lines.next(), timeout]);
      if (next === "timeout") {
        this.kill();
        return {
          type: "timeout",
          reason: `no answer within ${Math.round(timeoutMs / 1000)} s; worker killed`,
        };
      }
      if (next.done) {
        const st = await this.#child.status;
        const how = st.signal ? `signal ${st.signal}` : `exit code ${st.code}`;
        return { type: "exit", reason: `worker process died (${how})` };
      }
      return JSON.parse(next.value) as Message;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }

  async close(): Promise<void> {
    try {
      await this.#writer.close();
    } catch {
      // the process is already gone
    }
    const done = await Promise.race([
      this.#child.status,
      new Promise((r) => setTimeout(r, 10_000)),
    ]);
    if (!done) this.kill();
    await this.#child.status;
  }
}

export class BackendWorker {
  #conn: Connection | undefined;
  /** Why a restart failed (the device is gone, say); the worker takes no more cells then. */
  lost = "";

  private constructor(
    readonly name: BackendName,
    readonly info: DeviceInfo,
    readonly impls: ImplInfo[],
    readonly cudaLibrary: string | undefined,
    /** Added to the worker's environment: the GPU pinning of a --gpus lane (bench/gpus.ts). */
    readonly env: Record<string, string>,
    conn: Connection,
  ) {
    this.#conn = conn;
  }

  /** Starts a worker; resolves to the reason instead when the backend cannot open here. */
  static async start(
    name: BackendName,
    cudaLibrary?: string,
    env: Record<string, string> = {},
  ): Promise<BackendWorker | string> {
    const conn = new Connection(name, cudaLibrary, env);
    const hello = await conn.receive(STARTUP_TIMEOUT_MS);
    if (hello.type === "hello") {
      return new BackendWorker(name, hello.info, hello.impls, cudaLibrary, env, conn);
    }
    await conn.close();
    return "reason" in hello ? hello.reason : `unexpected message from the ${name} worker`;
  }

  async run(
    planned: PlannedCell,
    spec: MatrixSpec,
    seed: number,
    timeoutMs: number,
  ): Promise<Cell> {
    if (!this.#conn) {
      const conn = new Connection(this.name, this.cudaLibrary, this.env);
      const hello = await conn.receive(STARTUP_TIMEOUT_MS);
      if (hello.type !== "hello") {
        await conn.close();
        this.lost = "reason" in hello ? hello.reason : "no hello";
        return finish(newCell(planned, spec).cell, "error", `worker restart failed: ${this.lost}`);
      }
      this.#conn = conn;
    }
    await this.#conn.send({ type: "cell", planned, spec, seed });
    const reply = await this.#conn.receive(timeoutMs);
    if (reply.type === "cell") return reply.cell;
    this.#conn.kill();
    this.#conn = undefined;
    const status = reply.type === "timeout" ? "timeout" : "error";
    return finish(
      newCell(planned, spec).cell,
      status,
      "reason" in reply ? reply.reason : "bad reply",
    );
  }

  async close(): Promise<void> {
    await this.#conn?.close();
    this.#conn = undefined;
  }
}
