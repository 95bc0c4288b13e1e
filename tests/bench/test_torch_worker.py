"""Unit tests of bench/backends/torch_worker.py that need no GPU (run by
tests/bench/torch_test.ts through `python3 -m unittest`). The torch-dependent cases run
only where torch imports, on the CPU."""

import math
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench", "backends"))
import torch_worker as w  # noqa: E402

try:
    import torch
except Exception:  # noqa: BLE001
    torch = None


def bf16(x):
    """Round-to-nearest-even bf16 bits of a float."""
    (b,) = struct.unpack("<I", struct.pack("<f", x))
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF


class SafetensorsTest(unittest.TestCase):
    def test_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.safetensors")
            a = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
            b = struct.pack("<3H", bf16(1.0), bf16(-2.5), bf16(0.0))
            w.write_safetensors(path, {"x": ("F32", [2, 3], a), "beta": ("BF16", [3], b)},
                                {"scale": "0.5"})
            with open(path, "rb") as f:
                raw = f.read()
            (n,) = struct.unpack("<Q", raw[:8])
            self.assertEqual(n % 8, 0, "data must start 8-byte aligned")
            tensors, meta = w.read_safetensors(path)
            self.assertEqual(meta, {"scale": "0.5"})
            self.assertEqual(tensors["x"], ("F32", [2, 3], a))
            self.assertEqual(tensors["beta"], ("BF16", [3], b))

    def test_rejects_bad_files(self):
        with tempfile.TemporaryDirectory() as d:
            short = os.path.join(d, "short")
            with open(short, "wb") as f:
                f.write(b"abc")
            with self.assertRaises(ValueError):
                w.read_safetensors(short)
            bad = os.path.join(d, "bad")
            header = b'{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}'
            with open(bad, "wb") as f:
                f.write(struct.pack("<Q", len(header)) + header + bytes(8))
            with self.assertRaisesRegex(ValueError, "8 bytes"):
                w.read_safetensors(bad)
            odd = os.path.join(d, "odd")
            header = b'{"x":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}}'
            with open(odd, "wb") as f:
                f.write(struct.pack("<Q", len(header)) + header + bytes(1))
            with self.assertRaisesRegex(ValueError, "unsupported dtype"):
                w.read_safetensors(odd)

    def test_reads_a_file_written_by_typescript(self):
        path = os.environ.get("LAK_TS_SAFETENSORS")
        if not path:
            self.skipTest("LAK_TS_SAFETENSORS not set (run through tests/bench/torch_test.ts)")
        tensors, meta = w.read_safetensors(path)
        self.assertEqual(meta.get("writer"), "bench/safetensors.ts")
        dtype, shape, data = tensors["q"]
        self.assertEqual((dtype, shape), ("F32", [1, 3, 1, 2]))
        self.assertEqual(list(struct.unpack("<6f", data)), [0, 1, 2, 3, 4, 5])
        dtype, shape, data = tensors["v"]
        self.assertEqual((dtype, shape), ("BF16", [1, 3, 1, 1]))
        self.assertEqual(list(struct.unpack("<3H", data)), [bf16(x) for x in (1.5, -2.0, 0.25)])


class FakeEngineTest(unittest.TestCase):
    def test_prefix_of_inputs(self):
        eng = w.FakeEngine()
        op = eng.prepare({"impl": "fake-echo", "shape": {"T": 5}, "outputs": {"o": [2, 5, 1, 1]},
                          "random": {"v": {"seed": 3, "shape": [2, 5, 1, 1]}}})
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "in.safetensors")
            op.read_inputs(2, path)
            tensors, _ = w.read_safetensors(path)
            full = struct.unpack("<10f", op.inputs["v"][2])
            got = struct.unpack("<4f", tensors["v"][2])
            self.assertEqual(tensors["v"][1], [2, 2, 1, 1])
            self.assertEqual(list(got), [full[0], full[1], full[5], full[6]])


def splitmix64(x):
    return w._splitmix64(x)


def fill_reference(n, dist, seed):
    """lak_fill_random element by element in float64 (kernels/cuda/runtime/random.cu)."""
    key = splitmix64(seed)
    out = []
    for i in range(n):
        h = splitmix64(key ^ i)
        u1 = ((h >> 40) + 1) / 16777216.0
        u2 = ((h >> 16) & 0xFFFFFF) / 16777216.0
        x = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
        if dist == "gate":
            x = -math.log1p(math.exp(-x)) / 16
        elif dist == "beta":
            x = 1 / (1 + math.exp(-x))
        out.append(x)
    return out


class GeneratorTest(unittest.TestCase):
    def test_splitmix64_known_value(self):
        # The first output of splitmix64 from state 0.
        self.assertEqual(splitmix64(0), 0xE220A8397B1DCDAF)

    @unittest.skipIf(torch is None, "torch is not importable here")
    def test_torch_draw_matches_the_cuda_generator(self):
        for dist in ("normal", "gate", "beta"):
            got = w.draw_random(torch, "cpu", [3, 7, 5], torch.float32, dist, 12345).flatten()
            ref = fill_reference(105, dist, 12345)
            for a, b in zip(got.tolist(), ref):
                self.assertAlmostEqual(a, b, delta=1e-6 * max(1, abs(b)))


class FakeTorchEngine:
    def __init__(self):
        self.torch = torch
        self.fla = None


def la_recurrent(q, k, v, h0, z0, normalize, scale):
    """docs/ops.md la forward, token by token, float64; [B,T,H,*] layout."""
    phi = lambda x: torch.nn.functional.elu(x) + 1  # noqa: E731
    B, T, H, K = q.shape
    V = v.shape[-1]
    o = torch.zeros(B, T, H, V, dtype=torch.float64)
    S = h0.clone() if h0 is not None else torch.zeros(B, H, K, V, dtype=torch.float64)
    z = z0.clone() if z0 is not None else torch.zeros(B, H, K, dtype=torch.float64)
    for t in range(T):
        fq, fk = phi(q[:, t]), phi(k[:, t])
        S = S + fk.unsqueeze(-1) * v[:, t].unsqueeze(-2)
        z = z + fk
        n = torch.einsum("bhk,bhkv->bhv", fq, S)
        if normalize:
            o[:, t] = n / ((fq * z).sum(-1, keepdim=True) + 1e-6)
        else:
            o[:, t] = scale * n
    return o, S, z


@unittest.skipIf(torch is None, "torch is not importable here")
class NaiveOpsTest(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(0)
        self.B, self.T, self.H, self.K, self.V = 2, 9, 3, 4, 5
        self.q = torch.randn(2, 9, 3, 4, generator=g, dtype=torch.float64)
        self.k = torch.randn(2, 9, 3, 4, generator=g, dtype=torch.float64)
        self.v = torch.randn(2, 9, 3, 5, generator=g, dtype=torch.float64)
        self.h0 = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
        self.z0 = 1 + torch.rand(2, 3, 4, generator=g, dtype=torch.float64)

    def run_la(self, normalize, state):
        p = {"scale": 0.3, "normalize": normalize}
        fn = w.build_op(FakeTorchEngine(), "la", "torch-naive", p, "f32")
        x = {"q": self.q.float(), "k": self.k.float(), "v": self.v.float()}
        if state:
            x["h0"], x["z0"] = self.h0.float(), self.z0.float()
        out = fn(x)
        o, S, z = la_recurrent(self.q, self.k, self.v, self.h0 if state else None,
                               self.z0 if state else None, normalize, 0.3)
        torch.testing.assert_close(out["o"].double(), o, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out["final_state"].double(), S, rtol=1e-5, atol=1e-5)
        if normalize:
            torch.testing.assert_close(out["final_z"].double(), z, rtol=1e-5, atol=1e-5)
        else:
            self.assertNotIn("final_z", out)

    def test_la_normalized(self):
        self.run_la(True, False)

    def test_la_normalized_with_state(self):
        self.run_la(True, True)

    def test_la_unnormalized_with_state(self):
        self.run_la(False, True)

    def test_softmax(self):
        fn = w.build_op(FakeTorchEngine(), "softmax", "torch-naive", {"scale": 0.5}, "f32")
        q, k, v = self.q.float(), self.k.float(), self.v[..., :4].float()
        out = fn({"q": q, "k": k, "v": v})["o"].double()
        for t in range(self.T):
            s = torch.einsum("bhd,bshd->bhs", self.q[:, t], self.k[:, :t + 1]) * 0.5
            ref = torch.einsum("bhs,bshd->bhd", torch.softmax(s, -1), self.v[:, :t + 1, :, :4])
            torch.testing.assert_close(out[:, t], ref, rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    unittest.main()
