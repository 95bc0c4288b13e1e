/**
 * Forward-then-reverse sweeps over a recurrence with bounded memory. Storing every state would
 * take T·K·V doubles per head (gigabytes at the bench's longest sequences), and running the
 * recurrence backwards by inverting a step is unstable for decays and delta rules, so the
 * forward sweep keeps a checkpoint every ⌈√n⌉ steps and the reverse sweep recomputes the states
 * of one stretch at a time from its checkpoint: O(√n) states held, one extra forward pass.
 */

/**
 * Advances `state` in place over step i (a token or a chunk). `emit` is false while a stretch
 * is being recomputed, when the step's outputs are already written.
 */
export type StepFn = (i: number, state: Float64Array, emit: boolean) => void;

/** Backward of step i given the states before (`prev`) and after (`cur`) it. */
export type BackFn = (i: number, prev: Float64Array, cur: Float64Array) => void;

/**
 * Runs steps 0…n−1 on `state` (left holding the final state), then, when `back` is given,
 * calls it for steps n−1…0.
 */
export function sweep(n: number, state: Float64Array, step: StepFn, back?: BackFn): void {
  if (!back) {
    for (let i = 0; i < n; i++) step(i, state, true);
    return;
  }
  const size = state.length;
  const stride = Math.max(1, Math.ceil(Math.sqrt(n)));
  const checkpoints: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    if (i % stride === 0) checkpoints.push(state.slice());
    step(i, state, true);
  }
  const buf = new Float64Array((stride + 1) * size);
  for (let c = checkpoints.length - 1; c >= 0; c--) {
    const start = c * stride;
    const end = Math.min(n, start + stride);
    buf.set(checkpoints.pop()!);
    for (let i = start; i < end; i++) {
      const o = (i - start) * size;
      buf.copyWithin(o + size, o, o + size);
      step(i, buf.subarray(o + size, o + 2 * size), false);
    }
    for (let i = end - 1; i >= start; i--) {
      const o = (i - start) * size;
      back(i, buf.subarray(o, o + size), buf.subarray(o + size, o + 2 * size));
    }
  }
}
