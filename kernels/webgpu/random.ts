/**
 * Fills an input buffer on the device from a seed (random.wgsl), so the bench never draws a
 * 1M-token tensor on the host. Distributions by input name follow bench/inputs.ts; the values
 * are not the host generator's (a different generator), and PreparedOp.inputs reads them back.
 */
import { type Distribution, distributionOf, inputSeed } from "../../bench/inputs.ts";
import type { InputName } from "../../bench/ops.ts";
import { compile, ioSource, type Storage, wgslFile } from "./kernel.ts";

const DIST: Record<Distribution, number> = { normal: 0, gate: 1, beta: 2 };
const WG = 256;

/** Where a buffer's elements sit in the logical tensor: heads h_base..h_base+Hg of H. */
export interface FillTarget {
  buffer: GPUBuffer;
  /** Elements in the buffer. */
  n: number;
  H: number;
  Hg: number;
  hBase: number;
  /** Elements per (outer index, head): the product of the dims after the head axis. */
  inner: number;
}

export class RandomFill {
  readonly #pipelines = new Map<Storage, Promise<GPUComputePipeline>>();
  readonly #layout: GPUBindGroupLayout;

  constructor(readonly device: GPUDevice, readonly maxWorkgroups: number) {
    const S = GPUShaderStage.COMPUTE;
    this.#layout = device.createBindGroupLayout({
      label: "random fill",
      entries: [
        { binding: 0, visibility: S, buffer: { type: "uniform" } },
        { binding: 1, visibility: S, buffer: { type: "storage" } },
      ],
    });
  }

  #pipeline(dtype: Storage): Promise<GPUComputePipeline> {
    let p = this.#pipelines.get(dtype);
    if (!p) {
      p = wgslFile(import.meta.url, "random.wgsl").then((body) =>
        compile(
          this.device,
          `random fill/${dtype}`,
          this.#layout,
          `${ioSource(dtype, [["dst", 1]], () => true)}\n${body}`,
          { WG },
        )
      );
      this.#pipelines.set(dtype, p);
    }
    return p;
  }

  /** Encodes the fill of input `name` drawn from the request seed `seed` into `t.buffer`. */
  async fill(
    enc: GPUCommandEncoder,
    name: InputName,
    seed: number,
    dtype: Storage,
    t: FillTarget,
  ): Promise<GPUBuffer> {
    const pipeline = await this.#pipeline(dtype);
    const groups = Math.ceil(Math.ceil(t.n / 2) / WG);
    const nx = Math.min(groups, this.maxWorkgroups);
    const ny = Math.ceil(groups / nx);
    const block = new Uint32Array([
      t.n,
      inputSeed(seed, name),
      t.H,
      t.Hg,
      t.hBase,
      t.inner,
      DIST[distributionOf(name)],
      nx,
    ]);
    const uniform = this.device.createBuffer({
      label: `random fill ${name}`,
      size: block.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.device.queue.writeBuffer(uniform, 0, block);
    const pass = enc.beginComputePass({ label: `random fill ${name}` });
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      this.device.createBindGroup({
        layout: this.#layout,
        entries: [
          { binding: 0, resource: { buffer: uniform } },
          { binding: 1, resource: { buffer: t.buffer } },
        ],
      }),
    );
    pass.dispatchWorkgroups(nx, ny);
    pass.end();
    return uniform;
  }
}
