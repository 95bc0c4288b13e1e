/**
 * A thin owner of the liblak handle: finds and loads the library, checks its ABI version,
 * turns status codes into exceptions with the library's last-error text, and refuses every
 * call after close() (instead of calling into an unloaded library).
 */
import { BackendUnavailable, OutOfMemory, Unsupported } from "../bench/backends/backend.ts";
import {
  LAK_ABI_VERSION,
  type LakSymbols,
  PARAM_FIELDS,
  type ParamField,
  PARAMS_BYTES,
  Status,
  STATUS_NAMES,
  SYMBOLS,
} from "./symbols.ts";

const FIELD_INDEX = new Map<string, number>(PARAM_FIELDS.map(([n], i) => [n, i]));
const FIELD_KIND = PARAM_FIELDS.map(([, k]) => k);

/** Default location: build/liblak.so at the repository root. */
export const DEFAULT_LIBRARY = new URL("../build/liblak.so", import.meta.url);

/** A failing liblak call that is not one of the mapped kinds (unavailable, OOM, unsupported). */
export class LakError extends Error {
  override name = "LakError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface LakOpenOptions {
  /** Path of the shared library; else $LAK_LIBRARY; else build/liblak.so of this repo. */
  path?: string;
}

export function resolveLibraryPath(path?: string): string {
  if (path) return path;
  const env = Deno.env.get("LAK_LIBRARY");
  if (env) return env;
  return decodeURIComponent(DEFAULT_LIBRARY.pathname);
}

function firstLine(s: string): string {
  return s.split("\n")[0].trim();
}

export class LakLibrary implements Disposable {
  readonly path: string;
  #lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
  #sym: LakSymbols;

  private constructor(path: string, lib: Deno.DynamicLibrary<typeof SYMBOLS>) {
    this.path = path;
    this.#lib = lib;
    const raw = lib.symbols as unknown as Record<string, (...a: unknown[]) => unknown>;
    const guarded: Record<string, ((...a: unknown[]) => unknown) | null> = {};
    for (const name of Object.keys(SYMBOLS)) {
      const fn = raw[name];
      // An optional symbol the library lacks stays null, for the caller to test.
      if (fn === null) {
        guarded[name] = null;
        continue;
      }
      guarded[name] = (...a: unknown[]) => {
        if (this.#lib === undefined) {
          throw new Error(`liblak: ${name}() called after the library was closed`);
        }
        return fn(...a);
      };
    }
    this.#sym = guarded as unknown as LakSymbols;
  }

  /**
   * Loads the library. Throws BackendUnavailable("cuda", ...) with one line when it is missing,
   * fails to load, or has another ABI version.
   */
  static open(opts: LakOpenOptions = {}): LakLibrary {
    const path = resolveLibraryPath(opts.path);
    try {
      Deno.statSync(path);
    } catch {
      throw new BackendUnavailable("cuda", `library not found at ${path}; run 'deno task build'`);
    }
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      throw new BackendUnavailable(
        "cuda",
        `failed to load ${path}: ${firstLine(e instanceof Error ? e.message : String(e))}`,
      );
    }
    const me = new LakLibrary(path, lib);
    const v = new Int32Array(1);
    me.#sym.lak_abi_version(v);
    if (v[0] !== LAK_ABI_VERSION) {
      me.close();
      throw new BackendUnavailable(
        "cuda",
        `ABI version mismatch: ${path} has ${
          v[0]
        }, these bindings need ${LAK_ABI_VERSION}; rebuild with 'deno task build'`,
      );
    }
    const size = new BigUint64Array(1);
    me.#sym.lak_params_size(size);
    if (Number(size[0]) !== PARAMS_BYTES) {
      me.close();
      throw new BackendUnavailable(
        "cuda",
        `lak_op_params is ${size[0]} bytes in ${path}, bindings expect ${PARAMS_BYTES}`,
      );
    }
    return me;
  }

  /** The raw (guarded) symbols. */
  get symbols(): LakSymbols {
    return this.#sym;
  }

  get closed(): boolean {
    return this.#lib === undefined;
  }

  close(): void {
    this.#lib?.close();
    this.#lib = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The calling thread's last error text. */
  lastError(): string {
    const buf = new Uint8Array(1024);
    this.#sym.lak_last_error(buf, BigInt(buf.length));
    const end = buf.indexOf(0);
    return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
  }

  /** Throws the exception for a non-zero status, with the library's message. */
  check(status: number, what?: string): void {
    if (status === Status.OK) return;
    const text = this.lastError() || `${what ?? "liblak call"} failed`;
    const msg = firstLine(text);
    switch (status) {
      case Status.NO_DRIVER:
      case Status.NO_DEVICE:
        throw new BackendUnavailable("cuda", msg);
      case Status.OOM:
        throw new OutOfMemory(`cuda: ${msg}`);
      case Status.UNSUPPORTED:
        throw new Unsupported(`cuda: ${msg}`);
      default:
        throw new LakError(status, `liblak ${STATUS_NAMES[status] ?? `status ${status}`}: ${msg}`);
    }
  }

  abiVersion(): number {
    const v = new Int32Array(1);
    this.check(this.#sym.lak_abi_version(v));
    return v[0];
  }

  paramsSize(): number {
    const v = new BigUint64Array(1);
    this.check(this.#sym.lak_params_size(v));
    return Number(v[0]);
  }

  deviceCount(): number {
    const v = new Int32Array(1);
    this.check(this.#sym.lak_device_count(v), "lak_device_count");
    return v[0];
  }

  setDevice(device: number): void {
    this.check(this.#sym.lak_set_device(device), "lak_set_device");
  }

  deviceInfo(device: number): Record<string, unknown> {
    const buf = new Uint8Array(4096);
    this.check(
      this.#sym.lak_device_info_json(device, buf, BigInt(buf.length)),
      "lak_device_info_json",
    );
    const end = buf.indexOf(0);
    return JSON.parse(new TextDecoder().decode(buf.subarray(0, end)));
  }

  synchronize(): void {
    this.check(this.#sym.lak_synchronize(), "lak_synchronize");
  }

  malloc(bytes: number): bigint {
    const v = new BigUint64Array(1);
    this.check(this.#sym.lak_malloc(BigInt(bytes), v), "lak_malloc");
    return v[0];
  }

  free(ptr: bigint): void {
    this.check(this.#sym.lak_free(ptr), "lak_free");
  }

  htod(dst: bigint, src: ArrayBufferView<ArrayBuffer>): void {
    const bytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    this.check(this.#sym.lak_memcpy_htod(dst, bytes, BigInt(bytes.byteLength)), "lak_memcpy_htod");
  }

  dtoh(dst: ArrayBufferView<ArrayBuffer>, src: bigint): void {
    const bytes = new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength);
    this.check(this.#sym.lak_memcpy_dtoh(bytes, src, BigInt(bytes.byteLength)), "lak_memcpy_dtoh");
  }

  /** Asynchronous on the current stream. */
  dtod(dst: bigint, src: bigint, bytes: number): void {
    this.check(this.#sym.lak_memcpy_dtod(dst, src, BigInt(bytes)), "lak_memcpy_dtod");
  }

  memset(ptr: bigint, byte: number, bytes: number): void {
    this.check(this.#sym.lak_memset(ptr, byte, BigInt(bytes)), "lak_memset");
  }

  /** free/total as the driver sees them; in_use/peak as the library accounts them. */
  memoryInfo(): { free: number; total: number; inUse: number; peak: number } {
    const v = new BigUint64Array(4);
    this.check(this.#sym.lak_memory_info(v), "lak_memory_info");
    return { free: Number(v[0]), total: Number(v[1]), inUse: Number(v[2]), peak: Number(v[3]) };
  }

  resetPeak(): void {
    this.check(this.#sym.lak_reset_peak(), "lak_reset_peak");
  }

  /** Fills n elements at ptr on the device; element i depends only on (seed, i). */
  fillRandom(ptr: bigint, n: number, dtype: number, dist: number, seed: number): void {
    this.check(
      this.#sym.lak_fill_random(ptr, BigInt(n), BigInt(dtype), BigInt(dist), BigInt(seed)),
      "lak_fill_random",
    );
  }

  /** One n×n×n GEMM on the current stream; Unsupported when the library or cuBLAS lacks it. */
  matmul(a: bigint, b: bigint, c: bigint, n: number, dtype: number): void {
    const f = this.#sym.lak_matmul;
    if (f === null) throw new Unsupported(`${this.path} has no lak_matmul`);
    this.check(f(a, b, c, BigInt(n), BigInt(dtype)), "lak_matmul");
  }

  l2Flush(): void {
    this.check(this.#sym.lak_l2_flush(), "lak_l2_flush");
  }

  eventCreate(): bigint {
    const v = new BigUint64Array(1);
    this.check(this.#sym.lak_event_create(v), "lak_event_create");
    return v[0];
  }

  eventDestroy(e: bigint): void {
    this.check(this.#sym.lak_event_destroy(e), "lak_event_destroy");
  }

  eventRecord(e: bigint): void {
    this.check(this.#sym.lak_event_record(e), "lak_event_record");
  }

  elapsedMs(a: bigint, b: bigint): number {
    const v = new Float32Array(1);
    this.check(this.#sym.lak_event_elapsed_ms(a, b, v), "lak_event_elapsed_ms");
    return v[0];
  }

  opWorkspace(params: Uint8Array<ArrayBuffer>): number {
    const v = new BigUint64Array(1);
    this.check(this.#sym.lak_op_workspace(params, v), "lak_op_workspace");
    return Number(v[0]);
  }

  opForward(params: Uint8Array<ArrayBuffer>): void {
    this.check(this.#sym.lak_op_forward(params), "lak_op_forward");
  }

  opBackward(params: Uint8Array<ArrayBuffer>): void {
    this.check(this.#sym.lak_op_backward(params), "lak_op_backward");
  }
}

/** Builds a lak_op_params block: every field 8 bytes at offset 8·index, little-endian. */
export class OpParamsBlock {
  readonly bytes = new Uint8Array(PARAMS_BYTES);
  readonly #view = new DataView(this.bytes.buffer);

  set(field: ParamField, value: number | bigint | boolean): this {
    const i = FIELD_INDEX.get(field)!;
    const kind = FIELD_KIND[i];
    if (kind === "f64") this.#view.setFloat64(i * 8, Number(value), true);
    else if (kind === "ptr") this.#view.setBigUint64(i * 8, BigInt(value), true);
    else {this.#view.setBigInt64(
        i * 8,
        BigInt(typeof value === "boolean" ? Number(value) : value),
        true,
      );}
    return this;
  }

  get(field: ParamField): number | bigint {
    const i = FIELD_INDEX.get(field)!;
    const kind = FIELD_KIND[i];
    if (kind === "f64") return this.#view.getFloat64(i * 8, true);
    if (kind === "ptr") return this.#view.getBigUint64(i * 8, true);
    return Number(this.#view.getBigInt64(i * 8, true));
  }
}
