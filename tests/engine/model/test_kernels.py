"""The native kernels (engine/model/kernels): exact GGUF dequantization, matmul against two
references, bit-for-bit batch invariance (rows, passes, threads), the AVX2 path against the
portable scalar one, and clean errors.

The library is compiled on first use into the user cache (SPECEDIT_CACHE), so the first run
of this file on a machine also pays for two compilations.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from gguf import GGML_QUANT_SIZES
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

from engine.model.kernels import KernelsUnavailable, build, ops
from engine.model.kernels.ops import GGUFMatrix

pytestmark = pytest.mark.needs("c-compiler")


@pytest.fixture(scope="module", autouse=True)
def native() -> None:
    try:
        build.load()
    except KernelsUnavailable as exc:
        pytest.skip(f"native kernels unavailable: {exc}")


QUANTIZED = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]
DENSE = [T.F32, T.F16, T.BF16]
ALL_TYPES = DENSE + QUANTIZED
K_QUANTS = {T.Q4_K, T.Q5_K, T.Q6_K}
N = 37  # odd: partial register tiles and column tiles


def k_for(t: T) -> int:
    # 32-block types: 73 blocks = 9 groups of 8 and a partial one, 2 K-chunks; k-quants: 9
    # super-blocks (2 K-chunks of 8 groups).
    return 2304 if t in K_QUANTS else 2336


def random_weight(t: T, n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(raw GGUF bytes [n, row_bytes], gguf's own dequantization [n, k])."""
    rng = np.random.default_rng(seed)
    if t in K_QUANTS:  # gguf cannot quantize these: random valid blocks
        block, size = GGML_QUANT_SIZES[t]
        raw = rng.integers(0, 256, size=(n, k // block, size), dtype=np.uint8)

        def f16(lo: float, hi: float, sign: bool = False) -> np.ndarray:
            v = rng.uniform(lo, hi, size=(n, k // block))
            if sign:
                v *= rng.choice([-1.0, 1.0], size=v.shape)
            return v.astype(np.float16).view(np.uint8).reshape(n, k // block, 2)

        if t == T.Q6_K:
            raw[..., 208:210] = f16(1e-3, 1e-2, sign=True)
        else:
            raw[..., 0:2] = f16(1e-3, 1e-2)
            raw[..., 2:4] = f16(1e-3, 1e-2)
        raw = raw.reshape(n, -1)
    else:
        w = rng.standard_normal((n, k)).astype(np.float32)
        w[0, :32] = 0.0  # an all-zero block
        if t == T.F32:
            raw = w.view(np.uint8)
        elif t == T.F16:
            raw = w.astype(np.float16).view(np.uint8)
        else:
            raw = np.ascontiguousarray(quantize(w, t)).view(np.uint8)
        raw = raw.reshape(n, -1)
    if t == T.F32:
        deq = raw.view(np.float32).reshape(n, k)
    elif t == T.F16:
        deq = raw.view(np.float16).astype(np.float32).reshape(n, k)
    else:
        deq = dequantize(raw, t).reshape(n, k)
    return raw, deq


def matrix(t: T, n: int = N, k: int | None = None, seed: int = 0) -> tuple[GGUFMatrix, np.ndarray]:
    k = k_for(t) if k is None else k
    raw, deq = random_weight(t, n, k, seed)
    return GGUFMatrix.from_bytes(raw, t, n, k), deq


def activations(m: int, k: int, seed: int = 1) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(np.float32)
    x[0, 32:64] = 0.0  # an all-zero activation block
    x[1, :32] *= 1e3   # blocks of very different scales
    return torch.from_numpy(x)


def quantize_like_spec(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, blocks of 32: d = max|x| / 127, q = round(x / d) (half to even), in float32."""
    m, k = x.shape
    xb = x.reshape(m, k // 32, 32)
    d = np.abs(xb).max(-1) / np.float32(127)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(d[..., None] == 0, 0, np.rint(xb / d[..., None]))
    return d.astype(np.float32), q.astype(np.int8)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a.contiguous().view(torch.int32),
                                              b.contiguous().view(torch.int32))


# --- dequantization -----------------------------------------------------------------------


@pytest.mark.parametrize("t", ALL_TYPES, ids=lambda t: t.name)
def test_get_rows_is_gguf_dequantize_exactly(t: T) -> None:
    w, deq = matrix(t)
    ids = torch.tensor([[3, 0, 36], [3, 17, 5]])
    got = ops.get_rows(w, ids)
    assert got.shape == (2, 3, w.cols)
    expected = torch.from_numpy(deq[ids.numpy()])
    assert same_bits(got, expected)


def test_get_rows_f16_every_half_value() -> None:
    halves = np.arange(65536, dtype=np.uint16)
    finite = np.isfinite(halves.view(np.float16))
    raw = halves[finite][: (finite.sum() // 32) * 32].reshape(-1, 32)
    w = GGUFMatrix.from_bytes(raw, T.F16, raw.shape[0], 32)
    got = ops.get_rows(w, torch.arange(raw.shape[0]))
    assert same_bits(got, torch.from_numpy(raw.view(np.float16).astype(np.float32)))


# --- matmul against references -------------------------------------------------------------


@pytest.mark.parametrize("t", ALL_TYPES, ids=lambda t: t.name)
def test_matmul_matches_float_and_spec_references(t: T) -> None:
    w, deq = matrix(t)
    x = activations(9, w.cols)
    bias = torch.randn(N)
    y = ops.matmul(x, w, bias).numpy().astype(np.float64)
    xn, wd, b = x.numpy().astype(np.float64), deq.astype(np.float64), bias.numpy()
    magnitude = np.abs(xn) @ np.abs(wd).T + np.abs(b)
    if t in DENSE:
        assert np.all(np.abs(y - (xn @ wd.T + b)) <= 1e-6 * magnitude)
        return
    # Against float math: within what quantizing x to int8 (|error| <= d/2 per value) allows.
    xb = np.abs(x.numpy()).reshape(9, -1, 32).max(-1).astype(np.float64) / 254
    bound = np.einsum("mb,nb->mn", xb, np.abs(wd).reshape(N, -1, 32).sum(-1))
    assert np.all(np.abs(y - (xn @ wd.T + b)) <= bound * 1.0001 + 1e-6 * magnitude)
    # Against the activations quantized as specified, in float64: only rounding differs.
    d, q = quantize_like_spec(x.numpy())
    xq = (q.astype(np.float64) * d[..., None].astype(np.float64)).reshape(9, -1)
    reference = xq @ wd.T + b
    assert np.all(np.abs(y - reference) <= 2e-6 * (np.abs(xq) @ np.abs(wd).T + np.abs(b)))


def test_quantize_rows_layout_is_the_specified_quantization() -> None:
    k = 320  # 10 blocks: a full group of 8 and a partial one
    x = activations(5, k)
    xq = ops.quantize_rows(x)
    d, q = quantize_like_spec(x.numpy())
    groups = xq.data.numpy().reshape(5, -1, 384)
    assert groups.shape[1] == 2
    gq = groups[..., :256].view(np.int8).reshape(5, 2, 8, 8, 4)  # [row, group, t, block, e]
    values = gq.transpose(0, 1, 3, 2, 4).reshape(5, 16, 32)       # [row, block, 4t+e]
    gd = groups[..., 256:288].view(np.float32).reshape(5, 16)
    gsf = groups[..., 288:320].view(np.float32).reshape(5, 16)
    gs = groups[..., 320:352].view(np.int32).reshape(5, 16)
    gsh = groups[..., 352:384].view(np.int16).reshape(5, 16, 2)
    assert np.array_equal(values[:, :10], q) and not values[:, 10:].any()
    assert np.array_equal(gd[:, :10].view(np.int32), d.view(np.int32)) and not gd[:, 10:].any()
    sums = q.astype(np.int32).sum(-1)
    assert np.array_equal(gs[:, :10], sums) and np.array_equal(gsf[:, :10], sums.astype(np.float32))
    assert np.array_equal(gsh[:, :10, 0], q[..., :16].astype(np.int32).sum(-1))
    assert np.array_equal(gsh[:, :10, 1], q[..., 16:].astype(np.int32).sum(-1))


@pytest.mark.parametrize("t", QUANTIZED, ids=lambda t: t.name)
def test_matmul_of_quantized_rows_is_matmul_of_floats(t: T) -> None:
    w, _ = matrix(t)
    x = activations(6, w.cols).reshape(2, 3, w.cols)
    xq = ops.quantize_rows(x)
    assert same_bits(ops.matmul(xq, w), ops.matmul(x, w))
    assert ops.matmul(xq, w).shape == (2, 3, N)


def test_dense_matmul_with_k_not_a_multiple_of_8() -> None:
    rng = np.random.default_rng(3)
    wf = rng.standard_normal((5, 83)).astype(np.float32)
    x = torch.from_numpy(rng.standard_normal((4, 83)).astype(np.float32))
    w = GGUFMatrix.from_bytes(wf, T.F32, 5, 83)
    y = ops.matmul(x, w)
    torch.testing.assert_close(y, x @ torch.from_numpy(wf).T, rtol=1e-5, atol=1e-5)
    assert same_bits(ops.matmul(x[2:3], w)[0], y[2])


# --- batch invariance -----------------------------------------------------------------------


@pytest.mark.parametrize("t", ALL_TYPES, ids=lambda t: t.name)
def test_matmul_rows_do_not_depend_on_the_pass(t: T) -> None:
    w, _ = matrix(t)
    x = activations(200, w.cols)
    bias = torch.randn(N)
    with threads(1):
        single = torch.cat([ops.matmul(x[i:i + 1], w, bias) for i in range(200)])
    for n_threads in (1, 2):
        with threads(n_threads):
            # 1-5 rows: the direct kernel (each weight group unpacked once for all the rows);
            # from 6: the panel kernel
            for m in (1, 2, 3, 4, 5, 6, 7, 8, 16, 64, 200):
                assert same_bits(ops.matmul(x[:m], w, bias), single[:m]), (m, n_threads)
            # rows taken from the middle of a pass, not only its head
            assert same_bits(ops.matmul(x[50:57], w, bias), single[50:57])
            for m in (2, 3, 4, 5):
                assert same_bits(ops.matmul(x[50:50 + m], w, bias), single[50:50 + m]), m


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: int,
                        scale: float) -> torch.Tensor:
    m, hq, _ = q.shape
    group = hq // k.shape[0]
    out = torch.empty_like(q, dtype=torch.float64)
    for i in range(m):
        keys = start + i + 1
        for h in range(hq):
            s = (k[h // group, :keys].double() @ q[i, h].double()) * scale
            out[i, h] = torch.softmax(s, 0) @ v[h // group, :keys].double()
    return out.float()


@pytest.mark.parametrize("d", [64, 72, 68])
def test_attention_positions_do_not_depend_on_the_pass(d: int) -> None:
    torch.manual_seed(0)
    hkv, hq, capacity, total = 2, 6, 110, 100
    # The cache as a view of a longer one (its row stride is not capacity * D).
    k_cache = torch.randn(hkv, capacity + 10, d)[:, :capacity]
    v_cache = torch.randn(hkv, capacity + 10, d)[:, :capacity]
    q = torch.randn(total, hq, d) * 3
    scale = d ** -0.5
    with threads(1):
        full = ops.attention(q, k_cache, v_cache, 0, scale)
    torch.testing.assert_close(full, attention_reference(q, k_cache, v_cache, 0, scale),
                               rtol=2e-5, atol=2e-5)
    passes = [(0, 1), (1, 7), (8, 64), (72, 28), (40, 1), (30, 64), (99, 1)]
    for n_threads in (1, 2):
        with threads(n_threads):
            for start, m in passes:
                got = ops.attention(q[start:start + m].contiguous(), k_cache, v_cache, start, scale)
                assert same_bits(got, full[start:start + m]), (start, m, n_threads)
    assert same_bits(ops.attention(q, k_cache.contiguous(), v_cache.contiguous(), 0, scale), full)


@pytest.mark.parametrize("h", [896, 83])
def test_rms_norm_and_silu_mul_rows_do_not_depend_on_the_pass(h: int) -> None:
    torch.manual_seed(1)
    x, g, u = torch.randn(64, h), torch.randn(64, h) * 4, torch.randn(64, h)
    weight = torch.randn(h)
    with threads(1):
        norm1 = torch.cat([ops.rms_norm(x[i:i + 1], weight, 1e-6) for i in range(64)])
        act1 = torch.cat([ops.silu_mul(g[i:i + 1], u[i:i + 1]) for i in range(64)])
    for n_threads in (1, 2):
        with threads(n_threads):
            for m in (1, 3, 16, 64):
                assert same_bits(ops.rms_norm(x[:m], weight, 1e-6), norm1[:m])
                assert same_bits(ops.silu_mul(g[:m], u[:m]), act1[:m])
    expected = x.double() * torch.rsqrt(x.double().pow(2).mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(norm1, (expected * weight.double()).float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(act1, (torch.nn.functional.silu(g.double()) * u.double()).float(),
                               rtol=1e-5, atol=1e-6)


def test_exp_is_accurate_to_a_few_ulp() -> None:
    x = torch.cat([torch.linspace(-87, 88, 200001), torch.tensor([0.0, -0.0, 1e-30, -1e-8])])
    got = ops.exp(x).double()
    exact = torch.exp(x.double())
    ulp = torch.from_numpy(np.spacing(exact.float().numpy()).astype(np.float64))
    assert ((got - exact).abs() / ulp).max() <= 2.0
    assert ops.exp(torch.tensor([-87.5, -1000.0])).tolist() == [0.0, 0.0]


# --- the AVX2 path against the scalar one -----------------------------------------------------


@pytest.mark.needs("avx2")
def test_avx2_and_scalar_paths_give_the_same_bits() -> None:
    if not build.load().sek_simd():
        pytest.skip("this CPU (or compiler) has no AVX2+FMA+F16C: only the scalar path exists")
    try:
        build.load("scalar")
    except KernelsUnavailable as exc:
        pytest.skip(f"the scalar variant does not build: {exc}")

    def run() -> list[torch.Tensor]:
        results = []
        for t in ALL_TYPES:
            w, _ = matrix(t, n=9)
            x = activations(7, w.cols)
            bias = torch.randn(9, generator=torch.Generator().manual_seed(0))
            results += [ops.matmul(x, w, bias), ops.get_rows(w, torch.tensor([0, 8, 3]))]
            results += [ops.matmul(x[:m].contiguous(), w, bias) for m in (1, 2, 3, 4, 5, 6)]
        for t in (T.Q5_0, T.Q8_0):  # K = 896 (the 0.5B's): a last group of 4 of 8 blocks
            w, _ = matrix(t, n=9, k=896)
            results.append(ops.matmul(activations(7, 896), w))
        gen = torch.Generator().manual_seed(2)
        q, k, v = (torch.randn(s, generator=gen) for s in ((12, 4, 68), (2, 20, 68), (2, 20, 68)))
        results.append(ops.attention(q, k, v, 8, 68 ** -0.5))
        # D % 8 == 0 takes the eight-keys-at-a-time scores; 31-42 keys end blocks of 32
        # in every remainder the four-key and single-key tails handle.
        q, k, v = (torch.randn(s, generator=gen) for s in ((12, 4, 64), (2, 45, 64), (2, 45, 64)))
        results.append(ops.attention(q, k, v, 30, 64 ** -0.5))
        x, g, u = (torch.randn(5, 83, generator=gen) * 5 for _ in range(3))
        results += [ops.rms_norm(x, g[0], 1e-5), ops.silu_mul(g, u),
                    ops.exp(torch.linspace(-90, 90, 1001))]
        return results

    native_results = run()
    with ops.variant("scalar"):
        assert not ops._k().lib.sek_simd()
        scalar_results = run()
    for i, (a, b) in enumerate(zip(native_results, scalar_results, strict=True)):
        assert same_bits(a, b), i


# --- errors -----------------------------------------------------------------------------------


def test_bad_inputs_raise_clean_exceptions() -> None:
    w, _ = matrix(T.Q4_0)
    with pytest.raises(ValueError, match="not supported"):
        GGUFMatrix.from_bytes(np.zeros((4, 84), np.uint8), T.Q2_K, 4, 256)
    with pytest.raises(ValueError, match="multiple of 32"):
        GGUFMatrix.from_bytes(np.zeros((4, 18 * 3), np.uint8), T.Q4_0, 4, 100)
    with pytest.raises(ValueError, match="multiple of 256"):
        GGUFMatrix.from_bytes(np.zeros((4, 144 * 3), np.uint8), T.Q4_K, 4, 896)
    with pytest.raises(ValueError, match="bytes"):
        GGUFMatrix(torch.zeros(10, dtype=torch.uint8), T.Q8_0, 4, 32)
    with pytest.raises(ValueError, match="float32"):
        ops.matmul(activations(2, w.cols).double(), w)
    with pytest.raises(ValueError, match="contiguous"):
        ops.matmul(activations(2, 2 * w.cols)[:, ::2], w)
    with pytest.raises(ValueError, match="columns"):
        ops.matmul(torch.zeros(2, 64), w)
    with pytest.raises(ValueError, match="multiple"):
        ops.quantize_rows(torch.zeros(2, 100))
    with pytest.raises(IndexError):
        ops.get_rows(w, torch.tensor([N]))
    with pytest.raises(ValueError, match="fit"):
        ops.attention(torch.zeros(4, 2, 8), torch.zeros(1, 4, 8), torch.zeros(1, 4, 8), 1, 1.0)
    # The C functions themselves return error codes rather than crashing.
    lib = build.load()
    y = torch.empty(2, N)
    x = torch.zeros(2, 100)
    assert lib.sek_matmul(x.data_ptr(), 2, 100, 100, w.data.data_ptr(), int(T.Q2_K), N, None,
                          y.data_ptr(), N, 1) == -1
    assert lib.sek_matmul(x.data_ptr(), 2, 100, 100, w.data.data_ptr(), int(T.Q4_0), N, None,
                          y.data_ptr(), N, 1) == -2
    ids = torch.tensor([N])
    assert lib.sek_get_rows(w.data.data_ptr(), int(T.Q4_0), N, w.cols, ids.data_ptr(), 1,
                            torch.empty(1, w.cols).data_ptr(), 1) == -4


def test_no_compiler_raises_kernels_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SPECEDIT_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(KernelsUnavailable, match="install") as info:
        build.build()
    assert "\n" not in str(info.value)
    monkeypatch.setenv("CC", "false")  # runs, but compiles nothing
    with pytest.raises(KernelsUnavailable, match="install"):
        build.build()


def test_library_name_carries_source_compiler_and_flags() -> None:
    base = build.library_name(b"src", "gcc 12", ["cc"], ["-O3"])
    assert base == build.library_name(b"src", "gcc 12", ["cc"], ["-O3"])
    assert len({base, build.library_name(b"src2", "gcc 12", ["cc"], ["-O3"]),
                build.library_name(b"src", "gcc 13", ["cc"], ["-O3"]),
                build.library_name(b"src", "gcc 12", ["cc"], ["-O2"])}) == 4


@pytest.mark.needs("openmp")
def test_one_openmp_runtime_is_mapped() -> None:
    lib = build.load()
    if not lib.sek_openmp():
        pytest.skip("built without OpenMP")
    runtimes = build.mapped_openmp_runtimes()
    assert len([p for p in runtimes if "gomp" in p]) <= 1, runtimes
