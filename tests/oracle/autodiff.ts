/**
 * A scalar reverse-mode autodiff tape: every operation records a node (value plus a closure
 * that pushes its gradient to its operands), and `backward` replays the closures newest
 * first. Slow and simple on purpose: it shares nothing with kernels/reference, so a gradient
 * it agrees with was not derived by hand.
 */

export interface Node {
  readonly value: number;
  grad: number;
}

interface Entry extends Node {
  back(): void;
}

export class Tape {
  #nodes: Entry[] = [];

  #push(value: number, back: (n: Node) => void): Node {
    const n: Entry = { value, grad: 0, back: () => back(n) };
    this.#nodes.push(n);
    return n;
  }

  leaf(value: number): Node {
    return this.#push(value, () => {});
  }

  add(a: Node, b: Node): Node {
    return this.#push(a.value + b.value, (n) => {
      a.grad += n.grad;
      b.grad += n.grad;
    });
  }

  sub(a: Node, b: Node): Node {
    return this.#push(a.value - b.value, (n) => {
      a.grad += n.grad;
      b.grad -= n.grad;
    });
  }

  mul(a: Node, b: Node): Node {
    return this.#push(a.value * b.value, (n) => {
      a.grad += n.grad * b.value;
      b.grad += n.grad * a.value;
    });
  }

  div(a: Node, b: Node): Node {
    return this.#push(a.value / b.value, (n) => {
      a.grad += n.grad / b.value;
      b.grad -= (n.grad * a.value) / (b.value * b.value);
    });
  }

  /** a · c for a plain number c. */
  scale(a: Node, c: number): Node {
    return this.#push(a.value * c, (n) => {
      a.grad += n.grad * c;
    });
  }

  /** a + c for a plain number c. */
  shift(a: Node, c: number): Node {
    return this.#push(a.value + c, (n) => {
      a.grad += n.grad;
    });
  }

  exp(a: Node): Node {
    const e = Math.exp(a.value);
    return this.#push(e, (n) => {
      a.grad += n.grad * e;
    });
  }

  log(a: Node): Node {
    return this.#push(Math.log(a.value), (n) => {
      a.grad += n.grad / a.value;
    });
  }

  sqrt(a: Node): Node {
    const r = Math.sqrt(a.value);
    return this.#push(r, (n) => {
      a.grad += n.grad / (2 * r);
    });
  }

  /** φ(x) = elu(x) + 1: x + 1 for x > 0, eˣ otherwise. */
  elu1(a: Node): Node {
    return a.value > 0 ? this.shift(a, 1) : this.exp(a);
  }

  sum(xs: readonly Node[]): Node {
    return xs.reduce((acc, x) => this.add(acc, x), this.leaf(0));
  }

  dot(a: readonly Node[], b: readonly Node[]): Node {
    return this.sum(a.map((x, i) => this.mul(x, b[i])));
  }

  /** exp / Σexp with no max subtraction: the oracle runs on small logits only. */
  softmax(xs: readonly Node[]): Node[] {
    const e = xs.map((x) => this.exp(x));
    const z = this.sum(e);
    return e.map((x) => this.div(x, z));
  }

  /** Gradients of `out` into every node's `grad` (call once per tape). */
  backward(out: Node): void {
    out.grad = 1;
    for (let i = this.#nodes.length - 1; i >= 0; i--) this.#nodes[i].back();
  }
}
