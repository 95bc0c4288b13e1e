/**
 * Builds build/liblak.so from every .cu under kernels/cuda with nvcc, incrementally: each
 * object is rebuilt only when the hash of its source, the headers it includes (transitively,
 * quoted includes), the flags and the compiler's version changes; the library is relinked only
 * when an object's hash or the link flags change.
 *
 *   deno run -A kernels/cuda/build.ts [--if-available] [--force] [--jobs N] [--help]
 *
 * NVCC overrides the compiler path.
 */
import { parseArgs } from "node:util";

const HELP = `Build the CUDA kernel library build/liblak.so with nvcc (incremental).

Usage: deno run -A kernels/cuda/build.ts [options]

Options:
  --if-available  exit 0 (after one line saying so) when nvcc is not installed
  --force         rebuild every object and relink
  --jobs N        parallel nvcc processes (default 2)
  --help          this text

Environment:
  NVCC            the nvcc to use (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc)`;

const ROOT = new URL("../../", import.meta.url);
const SRC_DIR = new URL("kernels/cuda/", ROOT);
const OUT_DIR = new URL("build/", ROOT);
const OBJ_DIR = new URL("build/obj/", ROOT);
const LIB = new URL("build/liblak.so", ROOT);

const ARCH = [
  "-gencode=arch=compute_80,code=sm_80",
  "-gencode=arch=compute_90a,code=sm_90a",
];
const COMPILE_FLAGS = [
  "-O3",
  "-std=c++17",
  "-Xcompiler",
  "-fPIC,-Wall,-Wextra,-fvisibility=hidden,-fvisibility-inlines-hidden",
  "-cudart",
  "static",
  ...ARCH,
];
const LINK_FLAGS = [
  "-shared",
  "-cudart",
  "static",
  ...ARCH,
  // Keep cudart's own symbols out of the library's exports; only lak_* are public.
  "-Xlinker",
  "--exclude-libs,ALL",
];

function log(line: string): void {
  console.log(`lak build: ${line}`);
}

function rel(u: URL): string {
  return u.pathname.slice(ROOT.pathname.length);
}

async function findNvcc(): Promise<{ path: string; version: string } | undefined> {
  const candidates = Deno.env.get("NVCC")
    ? [Deno.env.get("NVCC")!]
    : ["nvcc", "/usr/local/cuda/bin/nvcc"];
  for (const path of candidates) {
    try {
      const out = await new Deno.Command(path, {
        args: ["--version"],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      if (out.success) {
        const text = new TextDecoder().decode(out.stdout).trim().split("\n");
        return { path, version: text.find((l) => l.includes("release")) ?? text.at(-1) ?? "" };
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied)) {
        throw e;
      }
    }
  }
  return undefined;
}

async function listSources(dir: URL): Promise<URL[]> {
  const out: URL[] = [];
  for await (const e of Deno.readDir(dir)) {
    const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) out.push(...await listSources(u));
    else if (e.isFile && e.name.endsWith(".cu")) out.push(u);
  }
  return out.sort((a, b) => a.href.localeCompare(b.href));
}

const INCLUDE = /^\s*#\s*include\s+"([^"]+)"/gm;

/** The file and every file it includes with quotes, transitively (relative to the includer). */
async function dependencies(
  file: URL,
  seen = new Map<string, string>(),
): Promise<Map<string, string>> {
  if (seen.has(file.href)) return seen;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch {
    return seen; // a missing header: nvcc reports it
  }
  seen.set(file.href, text);
  for (const m of text.matchAll(INCLUDE)) await dependencies(new URL(m[1], file), seen);
  return seen;
}

async function sha256(parts: string[]): Promise<string> {
  const data = new TextEncoder().encode(parts.join("\0"));
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readStamp(u: URL): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(u)).trim();
  } catch {
    return undefined;
  }
}

async function exists(u: URL): Promise<boolean> {
  try {
    await Deno.stat(u);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; text: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { ok: out.success, text: (dec.decode(out.stdout) + dec.decode(out.stderr)).trim() };
}

async function pool<T>(items: T[], jobs: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "if-available": { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      jobs: { type: "string", default: "2" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) {
    console.error(`lak build: --jobs must be a positive integer, got '${values.jobs}'`);
    return 1;
  }
  const nvcc = await findNvcc();
  if (!nvcc) {
    const where = Deno.env.get("NVCC")
      ? `NVCC=${Deno.env.get("NVCC")} does not run`
      : "nvcc not found on PATH";
    const line = `${where}; skipping the CUDA library (install the CUDA toolkit or set NVCC)`;
    if (values["if-available"]) {
      log(line);
      return 0;
    }
    console.error(`lak build: ${line}`);
    return 1;
  }
  const t0 = performance.now();
  await Deno.mkdir(OBJ_DIR, { recursive: true });
  const sources = await listSources(SRC_DIR);
  const plans = await Promise.all(sources.map(async (src) => {
    const deps = await dependencies(src);
    const files = [...deps.entries()].sort(([a], [b]) => a.localeCompare(b));
    const hash = await sha256([
      nvcc.version,
      ...COMPILE_FLAGS,
      ...files.flatMap(([u, text]) => [u.slice(SRC_DIR.href.length), text]),
    ]);
    const name = rel(src).slice("kernels/cuda/".length).replaceAll("/", "__").replace(
      /\.cu$/,
      ".o",
    );
    const obj = new URL(name, OBJ_DIR);
    const stamp = new URL(name + ".stamp", OBJ_DIR);
    const fresh = !values.force && (await readStamp(stamp)) === hash && (await exists(obj));
    return { src, obj, stamp, hash, fresh };
  }));
  const stale = plans.filter((p) => !p.fresh);
  log(
    `${nvcc.path} (${nvcc.version.trim()}); ${plans.length} sources, ${stale.length} to compile` +
      (stale.length ? ` with ${Math.min(jobs, stale.length)} jobs` : ""),
  );
  let failed = false;
  await pool(stale, jobs, async (p) => {
    if (failed) return;
    const s = performance.now();
    await Deno.remove(p.stamp).catch(() => {});
    const r = await run(nvcc.path, [...COMPILE_FLAGS, "-c", p.src.pathname, "-o", p.obj.pathname]);
    if (!r.ok) {
      failed = true;
      console.error(r.text);
      console.error(`lak build: FAILED compiling ${rel(p.src)}`);
      return;
    }
    if (r.text) console.log(r.text);
    await Deno.writeTextFile(p.stamp, p.hash + "\n");
    log(`compiled ${rel(p.src)} (${((performance.now() - s) / 1000).toFixed(1)}s)`);
  });
  if (failed) return 1;

  const linkHash = await sha256([nvcc.version, ...LINK_FLAGS, ...plans.map((p) => p.hash)]);
  const linkStamp = new URL("liblak.so.stamp", OUT_DIR);
  if (
    !values.force && stale.length === 0 && (await readStamp(linkStamp)) === linkHash &&
    (await exists(LIB))
  ) {
    log(`${rel(LIB)} is up to date (nothing rebuilt)`);
    return 0;
  }
  await Deno.remove(linkStamp).catch(() => {});
  const tmp = new URL(`liblak.so.tmp${Deno.pid}`, OUT_DIR);
  const r = await run(nvcc.path, [
    ...LINK_FLAGS,
    "-o",
    tmp.pathname,
    ...plans.map((p) => p.obj.pathname),
  ]);
  if (!r.ok) {
    console.error(r.text);
    console.error(`lak build: FAILED linking ${rel(LIB)}`);
    await Deno.remove(tmp).catch(() => {});
    return 1;
  }
  if (r.text) console.log(r.text);
  await Deno.rename(tmp, LIB); // atomic: a reader never sees a half-written library
  await Deno.writeTextFile(linkStamp, linkHash + "\n");
  log(
    `linked ${rel(LIB)}; compiled ${stale.length} of ${plans.length} in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    }s`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
