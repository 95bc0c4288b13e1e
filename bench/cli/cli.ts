/**
 * What every command-line entry point shares: one-line errors with meaningful exit codes
 * (1 bad input or unsupported request, 2 backend unavailable, 3 anything unexpected) and
 * strict flag parsing that names the offending flag.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { BackendUnavailable, OutOfMemory, Unsupported } from "../backends/backend.ts";
import { InputError } from "../ops.ts";

export const EXIT_BAD_INPUT = 1;
export const EXIT_UNAVAILABLE = 2;
export const EXIT_INTERNAL = 3;

export async function runCli(name: string, main: () => Promise<number | void>): Promise<never> {
  let code = 0;
  try {
    code = (await main()) ?? 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    if (e instanceof BackendUnavailable) code = EXIT_UNAVAILABLE;
    else if (e instanceof InputError || e instanceof Unsupported || e instanceof OutOfMemory) {
      code = EXIT_BAD_INPUT;
    } else code = EXIT_INTERNAL;
    console.error(`${name}: error: ${msg}`);
    if (code === EXIT_INTERNAL && Deno.env.get("LAB_DEBUG")) console.error(e);
  }
  Deno.exit(code);
}

export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new InputError(e instanceof Error ? e.message : String(e));
  }
}

export function parseChoice<T extends string>(
  flag: string,
  value: string,
  choices: readonly T[],
): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new InputError(`unknown ${flag} '${value}' (choose from ${choices.join(", ")})`);
  }
  return value as T;
}

export function parseNumber(flag: string, value: string, integer = false): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new InputError(`${flag} must be ${integer ? "an integer" : "a number"}, got '${value}'`);
  }
  return n;
}

export function parseBool(flag: string, value: string): boolean {
  const v = value.toLowerCase();
  if (["true", "1", "yes"].includes(v)) return true;
  if (["false", "0", "no"].includes(v)) return false;
  throw new InputError(`${flag} must be true or false, got '${value}'`);
}
