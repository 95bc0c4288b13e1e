"""The python side of the `torch` backend (bench/backends/torch.ts).

Runs external reference implementations on the GPU: PyTorch SDPA (flash, cuDNN, memory-
efficient), naive PyTorch ops, and FLA's Triton ops. Speaks JSON lines: on start it writes
one line, {"type":"hello", info, impls, missing} or {"type":"unavailable", reason}; then
for each request line {"id", "cmd", ...} it writes one reply line {"id", "ok": true, ...}
or {"id", "ok": false, "kind": "oom"|"unsupported"|"error", "message"}. Bulk tensors
travel through safetensors files (read and written here with struct + json, no
`safetensors` package). Everything else (logs, warnings) goes to stderr.

--fake replaces the GPU engine with a tiny pure-python one (no torch), so the protocol can
be tested on a machine without torch.
"""

import json
import math
import os
import re
import struct
import sys
import threading
import time
import traceback

# ---------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, a JSON header, then raw bytes.

ELEMENT_SIZE = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2}


def read_safetensors(path):
    """{name: (dtype, shape, bytes)} and the metadata dict of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} is out of range")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    start = 8 + n
    tensors, metadata = {}, {}
    for name, entry in header.items():
        if name == "__metadata__":
            metadata = entry
            continue
        dtype, shape = entry["dtype"], [int(d) for d in entry["shape"]]
        if dtype not in ELEMENT_SIZE:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {dtype}")
        b, e = entry["data_offsets"]
        count = 1
        for d in shape:
            count *= d
        if e - b != count * ELEMENT_SIZE[dtype] or start + e > len(raw) or b < 0:
            raise ValueError(f"{path}: tensor '{name}' has {e - b} bytes for {dtype}{shape}")
        tensors[name] = (dtype, shape, raw[start + b:start + e])
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: (dtype, shape, bytes-like)}; names are written sorted."""
    header, offset, names = {}, 0, sorted(tensors)
    if metadata:
        header["__metadata__"] = metadata
    for name in names:
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode("utf-8"))
        for name in names:
            f.write(tensors[name][2])


# ---------------------------------------------------------------------------------------
# Requests shared by both engines.

class Unsupported(Exception):
    pass


STORAGE = {"f32": "F32", "bf16": "BF16", "f16": "F16", "f64": "F64"}
GRAD_OF = {"q": "dq", "k": "dk", "v": "dv", "g": "dg", "beta": "dbeta", "h0": "dh0",
           "z0": "dz0", "mem": "dmem"}
PER_TOKEN = {"q", "k", "v", "g", "beta", "do"}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


# ---------------------------------------------------------------------------------------
# The fake engine: no torch. It echoes inputs so the protocol and the files can be tested.

class FakeEngine:
    """impl `fake-echo` of la: o = v, final_state = zeros; inputs drawn by `random`."""

    def info(self):
        return {"name": "fake device (protocol test)", "torch": None, "fake": True}

    def impls(self):
        return ["fake-echo"], {"fake-missing": "not built in this engine"}

    def memory(self):
        return {"in_use": 0, "peak": 0}

    def reset_peak(self):
        pass

    def prepare(self, msg):
        import random
        if msg["impl"] != "fake-echo":
            raise Unsupported(f"fake engine has no impl {msg['impl']}")
        if msg.get("shape", {}).get("T") == 13:
            raise MemoryError("fake: out of memory for T=13")
        inputs = {}
        if msg.get("file"):
            tensors, _ = read_safetensors(msg["file"])
            inputs = dict(tensors)
        for name, spec in (msg.get("random") or {}).items():
            rng = random.Random(spec["seed"])
            n = numel(spec["shape"])
            vals = [rng.gauss(0, 1) for _ in range(n)]
            inputs[name] = ("F32", spec["shape"], struct.pack(f"<{n}f", *vals))
        return FakeOp(inputs, msg["outputs"])


class FakeOp:
    def __init__(self, inputs, outputs):
        self.inputs, self.shapes, self.out = inputs, outputs, {}

    def poison(self):
        self.out = {n: ("F32", s, struct.pack("<f", math.nan) * numel(s))
                    for n, s in self.shapes.items()}

    def run(self):
        for n, s in self.shapes.items():
            if n == "o" and "v" in self.inputs:
                self.out[n] = self.inputs["v"]
            else:
                self.out[n] = ("F32", s, bytes(4 * numel(s)))

    def read(self, files):
        for n, t in self.out.items():
            write_safetensors(files[n], {n: t})

    def read_inputs(self, tokens, path):
        out = {}
        for name, (dtype, shape, data) in self.inputs.items():
            if name in PER_TOKEN and tokens < shape[1]:
                row = numel(shape[2:]) * ELEMENT_SIZE[dtype]
                T = shape[1]
                parts = [data[b * T * row:(b * T + tokens) * row] for b in range(shape[0])]
                out[name] = (dtype, [shape[0], tokens] + shape[2:], b"".join(parts))
            else:
                out[name] = (dtype, shape, data)
        write_safetensors(path, out)

    def time(self, cold, samples, part="all"):
        return [0.001 * (i + 1) for i in range(samples)]

    def dispose(self):
        self.inputs, self.out = {}, {}


# ---------------------------------------------------------------------------------------
# The torch engine.

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SDPA = {"sdpa-flash": "FLASH_ATTENTION", "sdpa-cudnn": "CUDNN_ATTENTION",
        "sdpa-efficient": "EFFICIENT_ATTENTION"}


def import_fla():
    """Imports FLA's linear_attn, gla and delta_rule op packages, or says why not.

    A copy in <repo>/.ext/fla wins over an installed one. The parent packages fla, fla.ops
    and fla.modules are entered as bare namespace modules so that only the op modules and
    what they import load (fla/__init__ would import every layer and model and transformers;
    fla/ops/__init__ every op). FLA's own code is not changed.
    """
    import importlib
    import importlib.util
    import types
    ext = os.path.join(REPO, ".ext")
    if os.path.isdir(os.path.join(ext, "fla")) and ext not in sys.path:
        sys.path.insert(0, ext)
    spec = importlib.util.find_spec("fla")
    if spec is None or not spec.submodule_search_locations:
        return None, "the fla package is not importable (not installed and no .ext/fla)"
    root = list(spec.submodule_search_locations)[0]
    version = None
    try:
        with open(os.path.join(root, "__init__.py")) as f:
            m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
            version = m.group(1) if m else None
    except OSError:
        pass
    try:
        for name, sub in (("fla", ""), ("fla.ops", "ops"), ("fla.modules", "modules")):
            if name in sys.modules:
                continue
            mod = types.ModuleType(name)
            mod.__path__ = [os.path.join(root, sub) if sub else root]
            mod.__package__ = name
            if name == "fla":
                mod.__version__ = version or "unknown"
            sys.modules[name] = mod
        la = importlib.import_module("fla.ops.linear_attn")
        gla = importlib.import_module("fla.ops.gla")
        dr = importlib.import_module("fla.ops.delta_rule")
    except Exception as e:  # noqa: BLE001 - any import failure makes FLA unavailable
        return None, f"importing FLA ops failed: {type(e).__name__}: {str(e).splitlines()[0]}"
    commit = None
    try:
        with open(os.path.join(os.path.dirname(root), "FLA_COMMIT")) as f:
            commit = f.read().strip()
    except OSError:
        pass
    return {"version": version, "path": root, "commit": commit,
            "chunk_linear_attn": la.chunk_linear_attn,
            "fused_recurrent_linear_attn": la.fused_recurrent_linear_attn,
            "chunk_gla": gla.chunk_gla, "fused_recurrent_gla": gla.fused_recurrent_gla,
            "chunk_delta_rule": dr.chunk_delta_rule,
            "fused_recurrent_delta_rule": dr.fused_recurrent_delta_rule}, None


class TorchEngine:
    def __init__(self):
        import torch
        self.torch = torch
        if not torch.cuda.is_available():
            raise RuntimeError(f"torch {torch.__version__} sees no CUDA device")
        self.dev = torch.device("cuda", torch.cuda.current_device())
        self.flush_buf = None
        self.fla, self.fla_reason = import_fla()
        self.missing = {}
        self.available = []
        self._probe()

    # -- catalog -------------------------------------------------------------------------
    def _probe(self):
        torch = self.torch
        from torch.nn.attention import SDPBackend, sdpa_kernel
        import torch.nn.functional as F
        q = torch.randn(1, 2, 128, 64, device=self.dev, dtype=torch.bfloat16)
        for impl, backend in SDPA.items():
            try:
                with sdpa_kernel(getattr(SDPBackend, backend)):
                    F.scaled_dot_product_attention(q, q, q, is_causal=True)
                torch.cuda.synchronize()
                self.available.append(impl)
            except Exception as e:  # noqa: BLE001
                self.missing[impl] = f"SDPA {backend} did not run here: " + \
                    str(e).strip().splitlines()[0][:200]
        self.available.append("torch-naive")
        for impl in ("fla-chunk", "fla-fused-recurrent"):
            if self.fla:
                self.available.append(impl)
            else:
                self.missing[impl] = self.fla_reason

    def impls(self):
        return self.available, self.missing

    def info(self):
        torch = self.torch
        p = torch.cuda.get_device_properties(self.dev)
        try:
            import triton
            triton_version = triton.__version__
        except Exception:  # noqa: BLE001
            triton_version = None
        info = {"name": p.name, "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(), "triton": triton_version,
                "fla": self.fla["version"] if self.fla else None,
                "fla_commit": self.fla["commit"] if self.fla else None,
                "fla_path": self.fla["path"] if self.fla else None,
                "fla_unavailable": self.fla_reason, "sm_count": p.multi_processor_count,
                "memory_bytes": p.total_memory, "python": sys.version.split()[0],
                "timer": "cuda events"}
        return info

    def memory(self):
        t = self.torch
        return {"in_use": t.cuda.memory_allocated(self.dev),
                "peak": t.cuda.max_memory_allocated(self.dev)}

    def reset_peak(self):
        self.torch.cuda.reset_peak_memory_stats(self.dev)

    # -- inputs --------------------------------------------------------------------------
    def dtype_of(self, name):
        t = self.torch
        return {"f32": t.float32, "bf16": t.bfloat16, "f16": t.float16, "f64": t.float64}[name]

    def from_file(self, entry, dtype):
        t = self.torch
        st, shape, data = entry
        src = {"F32": t.float32, "BF16": t.bfloat16, "F16": t.float16, "F64": t.float64}[st]
        host = t.frombuffer(bytearray(data), dtype=src).reshape(shape) if data else \
            t.empty(shape, dtype=src)
        return host.to(self.dev).to(dtype).contiguous()

    def draw(self, shape, dtype, dist, seed):
        return draw_random(self.torch, self.dev, shape, dtype, dist, seed)

    def prepare(self, msg):
        torch = self.torch
        dtype = self.dtype_of(msg["dtype"])
        x = {}
        if msg.get("file"):
            tensors, _ = read_safetensors(msg["file"])
            for name, entry in tensors.items():
                d = torch.float32 if name in ("h0", "z0") else dtype
                x[name] = self.from_file(entry, d)
        for name, spec in (msg.get("random") or {}).items():
            x[name] = self.draw(spec["shape"], dtype, spec["dist"], spec["seed"])
        fn = build_op(self, msg["variant"], msg["impl"], msg["params"], msg["dtype"])
        return TorchOp(self, fn, x, msg["mode"], msg["outputs"])

    def flush_l2(self):
        if self.flush_buf is None:
            self.flush_buf = self.torch.empty(64 << 20, dtype=self.torch.float32,
                                              device=self.dev)
        self.flush_buf.zero_()


M64 = (1 << 64) - 1


def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _signed(x):
    return x - (1 << 64) if x >= 1 << 63 else x


def _srl(h, s):
    """Logical right shift of int64 tensors holding uint64 bit patterns."""
    return (h >> s) & ((1 << (64 - s)) - 1)


def _splitmix_t(x):
    # int64 add and multiply wrap modulo 2^64 in torch, as uint64 arithmetic does.
    x = x + _signed(0x9E3779B97F4A7C15)
    x = (x ^ _srl(x, 30)) * _signed(0xBF58476D1CE4E5B9)
    x = (x ^ _srl(x, 27)) * _signed(0x94D049BB133111EB)
    return x ^ _srl(x, 31)


def draw_random(torch, device, shape, dtype, dist, seed):
    """Same generator as lak_fill_random (kernels/cuda/runtime/random.cu): element i of a
    tensor is a splitmix64 hash of (seed, i) turned into a Box–Muller normal, so a given
    seed draws the inputs our cuda backend draws (to float32 rounding of the math)."""
    t = torch
    n = numel(shape)
    out = t.empty(n, dtype=dtype, device=device)
    key = _signed(_splitmix64(seed & M64))
    step = 1 << 24
    for start in range(0, n, step):
        i = t.arange(start, min(n, start + step), dtype=t.int64, device=device)
        h = _splitmix_t(t.bitwise_xor(i, key))
        u1 = (_srl(h, 40).to(t.float64) + 1.0) * (1.0 / 16777216.0)
        u2 = t.bitwise_and(_srl(h, 16), 0xFFFFFF).to(t.float64) * (1.0 / 16777216.0)
        x = (t.sqrt(-2.0 * t.log(u1)) * t.cos(2.0 * math.pi * u2)).to(t.float32)
        if dist == "gate":
            x = -t.log1p(t.exp(-x)) * (1.0 / 16.0)
        elif dist == "beta":
            x = 1.0 / (1.0 + t.exp(-x))
        out[start:start + x.numel()] = x.to(dtype)
    return out.reshape(shape)


def build_op(engine, variant, impl, p, dtype):
    """fn(x) -> {"o", "final_state"?, "final_z"?} computing docs/ops.md's function exactly."""
    torch = engine.torch
    import torch.nn.functional as F
    fla = engine.fla

    def phi(t):
        return F.elu(t) + 1

    if variant == "softmax":
        if impl in SDPA:
            from torch.nn.attention import SDPBackend, sdpa_kernel
            backend = getattr(SDPBackend, SDPA[impl])

            def sdpa(x):
                q, k, v = (x[n].transpose(1, 2) for n in ("q", "k", "v"))
                with sdpa_kernel(backend):
                    o = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                       scale=p["scale"])
                return {"o": o.transpose(1, 2)}
            return sdpa
        if impl == "torch-naive":
            def naive_softmax(x):
                q, k, v = (x[n].transpose(1, 2) for n in ("q", "k", "v"))
                T = q.shape[2]
                s = (q @ k.transpose(-1, -2)) * p["scale"]
                mask = torch.ones(T, T, dtype=torch.bool, device=s.device).triu(1)
                s = s.masked_fill(mask, float("-inf"))
                a = torch.softmax(s, dim=-1, dtype=torch.float32).to(v.dtype)
                return {"o": (a @ v).transpose(1, 2)}
            return naive_softmax

    if variant == "la":
        if impl == "torch-naive":
            def naive_la(x):
                fq, fk = phi(x["q"]).transpose(1, 2), phi(x["k"]).transpose(1, 2)
                v = x["v"].transpose(1, 2)
                a = (fq @ fk.transpose(-1, -2)).tril()  # [B,H,T,T], diagonal included
                num = (a @ v).float()
                h0, z0 = x.get("h0"), x.get("z0")
                if h0 is not None:
                    num = num + fq.float() @ h0
                state = fk.float().transpose(-1, -2) @ v.float()
                out = {"final_state": state + h0 if h0 is not None else state}
                if p["normalize"]:
                    den = a.sum(-1, dtype=torch.float32)
                    if z0 is not None:
                        den = den + (fq.float() @ z0.unsqueeze(-1)).squeeze(-1)
                    o = num / (den + 1e-6).unsqueeze(-1)
                    z = fk.float().sum(2)
                    out["final_z"] = z + z0 if z0 is not None else z
                else:
                    o = num * p["scale"]
                out["o"] = o.to(x["v"].dtype).transpose(1, 2)
                return out
            return naive_la
        if impl in ("fla-chunk", "fla-fused-recurrent"):
            op = fla["chunk_linear_attn" if impl == "fla-chunk"
                     else "fused_recurrent_linear_attn"]

            def fla_la(x):
                fq, fk = phi(x["q"]), phi(x["k"])
                h0, z0 = x.get("h0"), x.get("z0")
                if p["normalize"]:
                    # FLA divides scale·Sᵀq by scale·q·z + 1e-10; with scale = 1e-4 that
                    # is exactly Sᵀφq / (φq·z + 1e-6), ours.
                    init = (h0, z0.unsqueeze(1) if z0 is not None else None)
                    o, (s, z) = op(fq, fk, x["v"], scale=1e-4, initial_state=init,
                                   output_final_state=True, normalize=True)
                    return {"o": o, "final_state": s, "final_z": z.squeeze(1)}
                o, s = op(fq, fk, x["v"], scale=p["scale"], initial_state=h0,
                          output_final_state=True, normalize=False)
                return {"o": o, "final_state": s}
            return fla_la

    if variant == "gla" and impl in ("fla-chunk", "fla-fused-recurrent"):
        def fla_gla(x):
            if impl == "fla-chunk":
                o, s = fla["chunk_gla"](x["q"], x["k"], x["v"], x["g"], scale=p["scale"],
                                        initial_state=x.get("h0"), output_final_state=True)
            else:
                o, s = fla["fused_recurrent_gla"](x["q"], x["k"], x["v"], gk=x["g"],
                                                  scale=p["scale"], initial_state=x.get("h0"),
                                                  output_final_state=True)
            return {"o": o, "final_state": s}
        return fla_gla

    if variant == "deltanet" and impl in ("fla-chunk", "fla-fused-recurrent"):
        if impl == "fla-chunk" and dtype == "f32":
            raise Unsupported("FLA chunk_delta_rule does not support float32")
        op = fla["chunk_delta_rule" if impl == "fla-chunk" else "fused_recurrent_delta_rule"]

        def fla_delta(x):
            o, s = op(x["q"], x["k"], x["v"], x["beta"], scale=p["scale"],
                      initial_state=x.get("h0"), output_final_state=True,
                      use_qk_l2norm_in_kernel=bool(p["qk_l2norm"]))
            return {"o": o, "final_state": s}
        return fla_delta

    raise Unsupported(f"torch backend has no impl '{impl}' of {variant}")


class TorchOp:
    def __init__(self, engine, fn, x, mode, outputs):
        self.e, self.fn, self.x, self.mode, self.shapes = engine, fn, x, mode, outputs
        self.out = {}
        self.leaves = []
        if mode == "fwdbwd":
            for name in list(x):
                if name != "do":
                    x[name] = x[name].detach().requires_grad_(True)
                    self.leaves.append((name, x[name]))

    def _step(self):
        torch = self.e.torch
        if self.mode == "fwd":
            with torch.no_grad():
                return self.fn(self.x)
        out = self.fn(self.x)
        out["o"].backward(self.x["do"])
        return out

    def poison(self):
        torch = self.e.torch
        self.out = {n: torch.full(s, math.nan, dtype=torch.float32, device=self.e.dev)
                    for n, s in self.shapes.items()}
        torch.cuda.synchronize()

    def run(self):
        torch = self.e.torch
        for _, t in self.leaves:
            t.grad = None
        out = self._step()
        res = {}
        for n, t in out.items():
            res[n] = t.detach()
        for name, t in self.leaves:
            # An input the function does not use (z0 without normalization) has zero gradient.
            res[GRAD_OF[name]] = t.grad if t.grad is not None else torch.zeros_like(t)
        torch.cuda.synchronize()
        for n in self.shapes:
            if n in res:
                self.out[n] = res[n].contiguous()  # storage dtype; states fp32

    def _bytes(self, t):
        torch = self.e.torch
        t = t.detach().contiguous()
        if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
            t = t.view(torch.int16)
        return t.cpu().numpy().tobytes()

    def read(self, files):
        """One file per output ({name: path}), each at its stored dtype, so no file holds
        more than one tensor of a 1M-token run."""
        for n, s in self.shapes.items():
            t = self.out.get(n)
            if t is None:
                raise RuntimeError(f"output '{n}' was not produced (read before run?)")
            write_safetensors(files[n], {n: (self._name(t), list(s), self._bytes(t.reshape(s)))})

    def _name(self, t):
        torch = self.e.torch
        return {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16",
                torch.float64: "F64"}[t.dtype]

    def read_inputs(self, tokens, path):
        tensors = {}
        for n, t in self.x.items():
            if n in PER_TOKEN:
                t = t[:, :tokens]
            tensors[n] = (self._name(t), list(t.shape), self._bytes(t))
        write_safetensors(path, tensors)

    def time(self, cold, samples, part="all"):
        """CUDA-event times of `samples` runs. part "bwd" (a fwdbwd op): the forward runs
        untimed before each sample and only o.backward(do) is timed."""
        torch = self.e.torch
        if part == "bwd" and self.mode != "fwdbwd":
            raise Unsupported("the backward alone can be timed only for a fwdbwd request")
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(samples)]
        for s, e in ev:
            for _, t in self.leaves:
                t.grad = None
            if part == "bwd":
                o = self.fn(self.x)["o"]
                if cold:
                    self.e.flush_l2()
                s.record()
                o.backward(self.x["do"])
                e.record()
                del o
                continue
            if cold:
                self.e.flush_l2()
            s.record()
            self._step()
            e.record()
        torch.cuda.synchronize()
        return [s.elapsed_time(e) for s, e in ev]

    def dispose(self):
        self.x, self.out, self.leaves = {}, {}, []
        self.e.torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------
# The loop.

def is_oom(e):
    if isinstance(e, MemoryError):
        return True
    name = type(e).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(e).lower()


def watch_parent():
    """Exit when the process that started us is gone (a killed bench worker)."""
    parent = os.getppid()
    while True:
        time.sleep(2)
        if os.getppid() != parent:
            os._exit(3)


def main(argv):
    out = sys.stdout
    sys.stdout = sys.stderr  # anything printed by libraries goes to stderr

    def send(msg):
        out.write(json.dumps(msg, allow_nan=False) + "\n")
        out.flush()

    threading.Thread(target=watch_parent, daemon=True).start()
    if "--fake" in argv:
        engine = FakeEngine()
    else:
        try:
            import torch  # noqa: F401
        except Exception as e:  # noqa: BLE001
            send({"type": "unavailable",
                  "reason": f"python3 cannot import torch ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''})"})
            return 0
        try:
            engine = TorchEngine()
        except Exception as e:  # noqa: BLE001
            send({"type": "unavailable", "reason": str(e).splitlines()[0]})
            return 0
    avail, missing = engine.impls()
    send({"type": "hello", "info": engine.info(), "impls": avail, "missing": missing})
    ops, next_handle = {}, 1
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        rid, cmd = msg.get("id"), msg.get("cmd")
        try:
            reply = {}
            if cmd == "prepare":
                ops[next_handle] = engine.prepare(msg)
                reply["handle"] = next_handle
                next_handle += 1
            elif cmd == "poison":
                ops[msg["handle"]].poison()
            elif cmd == "run":
                ops[msg["handle"]].run()
            elif cmd == "read":
                ops[msg["handle"]].read(msg["files"])
            elif cmd == "inputs":
                ops[msg["handle"]].read_inputs(int(msg["tokens"]), msg["file"])
            elif cmd == "time":
                reply["ms"] = ops[msg["handle"]].time(bool(msg["cold"]), int(msg["samples"]),
                                                      msg.get("part") or "all")
            elif cmd == "dispose":
                op = ops.pop(msg["handle"], None)
                if op:
                    op.dispose()
            elif cmd == "reset_peak":
                engine.reset_peak()
            elif cmd == "memory":
                pass
            elif cmd == "close":
                send({"id": rid, "ok": True})
                break
            else:
                raise ValueError(f"unknown command '{cmd}'")
            reply.update({"id": rid, "ok": True, "mem": engine.memory()})
            send(reply)
        except Exception as e:  # noqa: BLE001
            kind = "oom" if is_oom(e) else "unsupported" if isinstance(e, Unsupported) \
                else "error"
            if kind == "oom" and not isinstance(engine, FakeEngine):
                engine.torch.cuda.empty_cache()
            if kind == "error":
                traceback.print_exc(file=sys.stderr)
            text = str(e).strip().splitlines()
            send({"id": rid, "ok": False, "kind": kind,
                  "message": f"{type(e).__name__}: {text[0] if text else ''}"[:500]})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
