/**
 * A backend in its own process. The bench talks to it in JSON lines on stdin/stdout, so a
 * kernel fault, a hang or an out-of-memory abort ends this process and only the cell it was
 * running; the parent records that cell and starts a fresh worker for the next.
 *
 * Protocol: the worker first writes {type:"hello", info, impls} or
 * {type:"unavailable", reason}; then for each {type:"cell", planned, spec, seed} line it
 * writes {type:"cell", cell}.
 */
import { parseArgs } from "node:util";
import { openBackend, parseBackendName } from "./backends/registry.ts";
import type { MatrixSpec, PlannedCell } from "./matrix.ts";
import { runCell } from "./runner.ts";
import { readLines } from "./lines.ts";

const enc = new TextEncoder();
const send = (msg: unknown) => Deno.stdout.writeSync(enc.encode(JSON.stringify(msg) + "\n"));

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: { backend: { type: "string" }, "cuda-library": { type: "string" } },
  });
  const name = parseBackendName(values.backend ?? "");
  let backend;
  try {
    backend = await openBackend(name, { cudaLibrary: values["cuda-library"] });
  } catch (e) {
    send({
      type: "unavailable",
      reason: e instanceof Error ? e.message.split("\n")[0] : String(e),
    });
    return;
  }
  send({ type: "hello", info: backend.info(), impls: backend.impls() });
  for await (const line of readLines(Deno.stdin.readable)) {
    const msg = JSON.parse(line) as {
      type: string;
      planned: PlannedCell;
      spec: MatrixSpec;
      seed: number;
    };
    if (msg.type !== "cell") continue;
    send({ type: "cell", cell: await runCell(backend, msg.planned, msg.spec, msg.seed) });
  }
  backend.close();
}

if (import.meta.main) await main();
