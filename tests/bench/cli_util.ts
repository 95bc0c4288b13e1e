/** Runs a project entry point in a subprocess, as a user would, and captures its output. */
export const ROOT = new URL("../../", import.meta.url).pathname;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a bash command line (a script path and its args, or -c CMD) from `cwd`. */
export async function runBash(
  args: string[],
  env: Record<string, string> = {},
  cwd = ROOT,
): Promise<Run> {
  const out = await new Deno.Command("bash", { args, env, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The contract for bad input: exactly one line on stderr, naming the problem, no stack. */
export function oneLineError(r: Run): string {
  const lines = r.stderr.trim().split("\n");
  if (lines.length !== 1) throw new Error(`expected one error line, got:\n${r.stderr}`);
  if (/^\s+at /m.test(r.stderr)) throw new Error(`stack trace printed:\n${r.stderr}`);
  return lines[0];
}

/**
 * Builds tests/fixtures/fake_lak.c, the host-memory stand-in for liblak, into dir with the system
 * C compiler; returns the library's path.
 */
export async function buildFakeLak(dir: string): Promise<string> {
  const lib = `${dir}/fake_lak.so`;
  const cc = await new Deno.Command("cc", {
    args: ["-shared", "-fPIC", "-O1", "-o", lib, `${ROOT}tests/fixtures/fake_lak.c`],
    stderr: "piped",
  }).output();
  if (!cc.success) throw new Error(new TextDecoder().decode(cc.stderr));
  return lib;
}
