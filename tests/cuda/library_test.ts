/**
 * CPU-runnable checks of liblak and its bindings: build, load, ABI, params layout, request
 * validation (which needs no GPU), clean failure without a driver or device, use after close,
 * a missing library, and an incremental rebuild that rebuilds nothing.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LakError, LakLibrary, OpParamsBlock } from "../../ffi/library.ts";
import { LAK_ABI_VERSION, PARAM_FIELDS, PARAMS_BYTES } from "../../ffi/symbols.ts";
import { openCuda } from "../../bench/backends/cuda.ts";
import { BackendUnavailable, Unsupported } from "../../bench/backends/backend.ts";

const ROOT = new URL("../../", import.meta.url);
const LIB = decodeURIComponent(new URL("build/liblak.so", ROOT).pathname);
const BUILD = decodeURIComponent(new URL("kernels/cuda/build.ts", ROOT).pathname);

async function nvccAvailable(): Promise<boolean> {
  for (
    const path of Deno.env.get("NVCC")
      ? [Deno.env.get("NVCC")!]
      : ["nvcc", "/usr/local/cuda/bin/nvcc"]
  ) {
    try {
      if (
        (await new Deno.Command(path, { args: ["--version"], stdout: "null", stderr: "null" })
          .output()).success
      ) {
        return true;
      }
    } catch { /* not there */ }
  }
  return false;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const HAS_NVCC = await nvccAvailable();
const HAS_LIB = exists(LIB);
const skipNoLib = HAS_LIB ? false : `no ${LIB} (nvcc ${HAS_NVCC ? "present" : "absent"})`;

/** Is there a usable CUDA driver and device here? (decides the no-GPU expectations) */
function gpuHere(): boolean {
  if (!HAS_LIB) return false;
  using lib = LakLibrary.open({ path: LIB });
  try {
    return lib.deviceCount() > 0;
  } catch {
    return false;
  }
}
const GPU = gpuHere();

function laParams(over: Partial<Record<string, number | bigint | boolean>> = {}): OpParamsBlock {
  const p = new OpParamsBlock()
    .set("variant", 0).set("dtype", 1).set("impl", 0)
    .set("B", 1).set("T", 100).set("H", 8).set("K", 64).set("V", 64).set("M", 0)
    .set("scale", 0.125).set("normalize", 1).set("chunk_size", 64)
    .set("q", 0x1000n).set("k", 0x2000n).set("v", 0x3000n).set("o", 0x4000n)
    .set("final_state", 0x5000n).set("final_z", 0x6000n);
  for (const [k, v] of Object.entries(over)) p.set(k as never, v!);
  return p;
}

describe("liblak build", () => {
  it("build/liblak.so exists when nvcc does", {
    skip: HAS_NVCC ? false : "nvcc absent: liblak is not built here",
  }, () => {
    assert.ok(
      HAS_LIB,
      `nvcc is present but ${LIB} is missing: run 'deno task build' (the test task does)`,
    );
  });

  it("a second build rebuilds nothing", { skip: HAS_NVCC ? false : "nvcc absent" }, async () => {
    const build = async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", BUILD],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text);
      return text;
    };
    await build();
    const second = await build();
    assert.match(second, /0 to compile/);
    assert.match(second, /nothing rebuilt/);
    assert.doesNotMatch(second, /compiled kernels|linked /);
  });

  it("build --help exits 0 and documents --if-available", async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", BUILD, "--help"],
      stdout: "piped",
    })
      .output();
    assert.equal(out.code, 0);
    assert.match(new TextDecoder().decode(out.stdout), /--if-available/);
  });

  it("build with a missing NVCC: exit 1, or 0 with --if-available, one line", async () => {
    const run = async (args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", BUILD, ...args],
        env: { NVCC: "/nonexistent/nvcc" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = (new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr))
        .trim();
      return { code: out.code, text };
    };
    const strict = await run([]);
    assert.equal(strict.code, 1);
    assert.equal(strict.text.split("\n").length, 1, strict.text);
    assert.match(strict.text, /nvcc/);
    const lenient = await run(["--if-available"]);
    assert.equal(lenient.code, 0);
    assert.equal(lenient.text.split("\n").length, 1, lenient.text);
  });
});

describe("liblak bindings", { skip: skipNoLib }, () => {
  it("loads, with the expected ABI version and params layout", () => {
    using lib = LakLibrary.open({ path: LIB });
    assert.equal(lib.abiVersion(), LAK_ABI_VERSION);
    assert.equal(lib.paramsSize(), 8 * PARAM_FIELDS.length);
    assert.equal(PARAMS_BYTES, 288);
  });

  it("workspace size needs no GPU and grows with T", () => {
    using lib = LakLibrary.open({ path: LIB });
    const small = lib.opWorkspace(laParams().bytes);
    assert.ok(small > 0 && small % 16 === 0, `workspace ${small}`);
    const big = lib.opWorkspace(laParams({ T: 1 << 20 }).bytes);
    assert.ok(big > small && big < 64 << 20, `workspace ${big}`);
  });

  it("rejects bad fields naming them", () => {
    using lib = LakLibrary.open({ path: LIB });
    assert.throws(() => lib.opWorkspace(laParams({ K: 96, V: 96 }).bytes), (e: Error) => {
      return e instanceof Unsupported && /K=96 V=96/.test(e.message);
    });
    assert.throws(() => lib.opForward(laParams({ q: 0n }).bytes), (e: Error) => {
      return e instanceof LakError && /'q'/.test(e.message);
    });
    assert.throws(() => lib.opForward(laParams({ T: 0 }).bytes), /'T'/);
    assert.throws(() => lib.opForward(laParams({ chunk_size: 48 }).bytes), (e: Error) => {
      return e instanceof Unsupported && /field 'chunk_size' is 48/.test(e.message);
    });
    assert.throws(() => lib.opForward(laParams({ final_z: 0n }).bytes), /'final_z'/);
    assert.throws(() => lib.opForward(laParams({ variant: 9 }).bytes), /'variant'/);
    // rmt has no recurrent impl: a valid request the library does not implement.
    assert.throws(() => lib.opForward(laParams({ variant: 3, impl: 1 }).bytes), (e: Error) => {
      return e instanceof Unsupported && /rmt\/recurrent is not implemented/.test(e.message);
    });
    assert.throws(() => lib.opBackward(laParams({ variant: 3, impl: 1 }).bytes), Unsupported);
    assert.throws(() => lib.opForward(laParams().bytes), /'workspace'/);
  });

  it("la, gla and deltanet chunk take chunk_size 16, 32 and 64 and refuse others by name", () => {
    using lib = LakLibrary.open({ path: LIB });
    // Per variant, the fields its chunk check needs on top of laParams (which is la's).
    const variants = {
      la: {},
      gla: { variant: 1, final_z: 0, g: 0x7000 },
      deltanet: { variant: 2, final_z: 0, normalize: 0, qk_l2norm: 1, beta: 0x7000 },
    };
    for (const [name, over] of Object.entries(variants)) {
      const p = (more: Record<string, number | bigint>) => laParams({ ...over, ...more }).bytes;
      for (const chunk_size of [48, 8, 128, 0, -16]) {
        const re = new RegExp(
          `field 'chunk_size' is ${chunk_size}; ${name} chunk supports 16, 32 and 64`,
        );
        for (
          const call of [
            () => lib.opWorkspace(p({ chunk_size })),
            () => lib.opForward(p({ chunk_size })),
            () => lib.opBackward(p({ chunk_size, do: 0x8000 })),
          ]
        ) {
          assert.throws(call, (e: Error) => e instanceof Unsupported && re.test(e.message));
        }
      }
      // The checks (forward and backward) pass; only the missing workspace is left to refuse.
      for (const chunk_size of [16, 32, 64]) {
        assert.ok(lib.opWorkspace(p({ chunk_size })) > 0, `${name} chunk_size ${chunk_size}`);
        assert.throws(() => lib.opForward(p({ chunk_size })), /'workspace'/);
        assert.throws(() => lib.opBackward(p({ chunk_size, do: 0x8000 })), /'workspace'/);
      }
    }
    // The workspace follows the chunk size: la and gla's backward keep a state for each of the
    // ceil(T / C) chunks (B=1, T=100, H=8, K=V=64), la also two fp32 stats per row of them.
    const BH = 8, K = 64;
    for (const C of [16, 32, 64]) {
      const nc = Math.ceil(100 / C);
      assert.equal(
        lib.opWorkspace(laParams({ chunk_size: C, do: 0x8000 }).bytes),
        4 * (2 * BH * nc * K * (K + 1) + BH * nc * C * 2),
        `la C=${C}`,
      );
      assert.equal(
        lib.opWorkspace(
          laParams({ variant: 1, final_z: 0, g: 0x7000, chunk_size: C, do: 0x8000 })
            .bytes,
        ),
        4 * (BH * nc * (K * K + K) + BH * nc * K * K),
        `gla C=${C}`,
      );
    }
  });

  it("checks the op contract before any op's own checks, for every variant", () => {
    using lib = LakLibrary.open({ path: LIB });
    const ws = (over: Record<string, number>) => () => lib.opWorkspace(laParams(over).bytes);
    assert.throws(ws({ variant: 1, dtype: 5 }), /field 'dtype' is 5/);
    assert.throws(ws({ variant: 2, T: 0 }), /field 'T' is 0; must be >= 1/);
    // f64 is the recurrent impl's fp64 oracle, and forward only.
    assert.throws(ws({ variant: 0, dtype: 2 }), /dtype f64 is the fp64 oracle .* not la\/chunk/);
    assert.throws(
      () => lib.opBackward(laParams({ variant: 0, impl: 1, dtype: 2 }).bytes),
      /la\/recurrent at dtype f64 \(the fp64 oracle\) is forward only/,
    );
    assert.throws(ws({ variant: 3, M: 0, segment_len: 64 }), /rmt needs M >= 1/);
    assert.throws(ws({ variant: 4, impl: 3, M: 3 }), /field 'M' is 3; must be 0 for softmax/);
    assert.throws(ws({ variant: 0, impl: 1, scale: NaN }), /field 'scale' is not finite/);
    assert.throws(
      ws({ variant: 1, final_z: 0, beta: 0x7000 }),
      /field 'beta' must be 0 \(absent\) for gla/,
    );
    assert.throws(
      ws({ variant: 4, impl: 3, final_z: 0, h0: 0x7000 }),
      /field 'h0' must be 0 \(absent\) for softmax/,
    );
  });

  it("throws a clear error on use after close", () => {
    const lib = LakLibrary.open({ path: LIB });
    lib.close();
    assert.throws(
      () => lib.abiVersion(),
      /lak_abi_version\(\) called after the library was closed/,
    );
    lib.close(); // idempotent
  });

  it("without a GPU, openCuda rejects with a one-line BackendUnavailable", {
    skip: GPU ? "a GPU is here" : false,
  }, async () => {
    await assert.rejects(openCuda({ library: LIB }), (e: Error) => {
      assert.ok(e instanceof BackendUnavailable, `${e.name}: ${e.message}`);
      assert.equal(e.message.split("\n").length, 1);
      assert.match(e.message, /driver|device/i);
      return true;
    });
  });
});

describe("liblak location", () => {
  it("a missing library says to run deno task build", async () => {
    await assert.rejects(openCuda({ library: "/nonexistent/liblak.so" }), (e: Error) => {
      assert.ok(e instanceof BackendUnavailable);
      assert.match(
        e.message,
        /library not found at \/nonexistent\/liblak\.so; run 'deno task build'/,
      );
      assert.equal(e.message.split("\n").length, 1);
      return true;
    });
  });

  it("LAK_LIBRARY is honoured", () => {
    const old = Deno.env.get("LAK_LIBRARY");
    Deno.env.set("LAK_LIBRARY", "/nonexistent/from-env.so");
    try {
      assert.throws(() => LakLibrary.open(), /from-env\.so/);
    } finally {
      if (old === undefined) Deno.env.delete("LAK_LIBRARY");
      else Deno.env.set("LAK_LIBRARY", old);
    }
  });
});
