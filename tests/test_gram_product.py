"""The empirical Gram's products by the packed SIMD kernel (simd_product_kernels.inc; the mean
output) against the numpy reference on every instruction set this CPU runs (the portable Eigen
path too): symmetric and cross, points not a whole number of panels or output blocks, particles
not a whole particle tile, with a bias, k = 3 outputs, float32, another activation; the same
numbers for any thread count; the AVX2 and AVX-512 kernels bit for bit."""
import numpy as np
import pytest

import mfntk as mf
import mfntk.kernels  # noqa: F401  (mf.kernels)
import reference as ref
from conftest import close
from mfntk import _core

N_POINTS = 601   # output blocks of 256, 256, 89: 89 is no whole number of panels (8 or 16 points)
N_CROSS = 37


def make_problem(activation="relu", k=1, bias=False, dtype="float64", N=302, d=7, seed=0):
    rng = np.random.default_rng(seed)
    net = mf.TwoLayer(d, N, activation=activation, bias=bias, b_std=0.5 if bias else 0.0, outputs=k, dtype=dtype,
                      seed=seed + 1)
    X = rng.standard_normal((N_POINTS, d)).astype(dtype)
    X2 = rng.standard_normal((N_CROSS, d)).astype(dtype)
    return net, X, X2


CASES = [dict(), dict(bias=True), dict(k=3), dict(dtype="float32"), dict(activation="tanh", bias=True),
         dict(N=256 * 2 + 1)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "relu")
@pytest.mark.parametrize("kind", ["rf", "nt", "ntk"])
def test_gram_matches_numpy_on_every_instruction_set(kind, case, simd):
    net, X, X2 = make_problem(**case)
    dtype = case.get("dtype", "float64")
    like = ref.as_tuple(net)
    X64, X264 = X.astype(np.float64), X2.astype(np.float64)
    K = mf.kernels.empirical(net, X, kind=kind, threads=2)
    close(K, ref.ntk(like, X64, kind=kind), dtype)
    close(mf.kernels.empirical(net, X2, X, kind=kind, threads=2), ref.ntk(like, X264, X64, kind=kind), dtype)
    close(mf.kernels.empirical(net, X, X2, kind=kind, threads=2), ref.ntk(like, X64, X264, kind=kind), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gram_is_the_same_for_any_thread_count(dtype, simd):
    net, X, X2 = make_problem(bias=True, dtype=dtype, N=600)
    for X_, X2_ in ((X, None), (X, X2)):
        one = mf.kernels.empirical(net, X_, X2_, threads=1)
        for threads in (2, 3, 5):
            np.testing.assert_array_equal(mf.kernels.empirical(net, X_, X2_, threads=threads), one)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_avx2_and_avx512_grams_are_the_same(dtype):
    """Every entry is the same fma sequence over the particles in both kernels (panel widths and
    row blocks differ, the order of the sums does not)."""
    if not (_core.simd_supported("avx2") and _core.simd_supported("avx512")):
        pytest.skip("this CPU or build does not run both the avx2 and the avx512 kernels")
    net, X, X2 = make_problem(bias=True, dtype=dtype)
    previous = mf.get_simd()
    results = {}
    try:
        for name in ("avx2", "avx512"):
            mf.set_simd(name)
            results[name] = [mf.kernels.empirical(net, X, kind="ntk", threads=2),
                             mf.kernels.empirical(net, X, X2, kind="ntk", threads=2)]
    finally:
        mf.set_simd(previous)
    for a, b in zip(results["avx2"], results["avx512"]):
        np.testing.assert_array_equal(a, b)


def test_simd_products_are_taken():
    """The SIMD kernels sum each entry in particle order, Eigen's GEMM in its own blocking: on a
    601 x 601 Gram some entries differ in the last bits, the witness that the SIMD path ran."""
    if mf.get_simd() == "portable":
        pytest.skip("this CPU or build runs no SIMD kernels")
    net, X, _ = make_problem(bias=True)
    simd = mf.kernels.empirical(net, X, threads=2)
    previous = mf.set_simd("portable")
    try:
        portable = mf.kernels.empirical(net, X, threads=2)
    finally:
        mf.set_simd(previous)
    assert not np.array_equal(simd, portable)
    close(simd, portable, "float64")
