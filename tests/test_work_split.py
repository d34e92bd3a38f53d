"""forward and jvp split their work over (sample tiles x groups of particle tiles) (network.hpp,
TilePlan): the same numbers for any thread count, more threads than sample tiles included, and
numpy's within rounding, for networks of several groups in each half."""
import numpy as np
import pytest

import mfntk as mf
import reference as ref
from mfntk import _core

RTOL = {"float64": 1e-12, "float32": 2e-5}
N_GROUPED = 2 * 35 * 128 - 6   # halves of 35 tiles: groups of 16, 16 and 3 tiles in each
N_SAMPLES = 300                # two sample tiles: fewer than the threads below


def passes(activation, k, dtype, bias, threads, seed=0):
    rng = np.random.default_rng(seed)
    d, N, n = 5, N_GROUPED, N_SAMPLES
    X = rng.standard_normal((n, d)).astype(dtype)
    a = rng.standard_normal((N, k)).astype(dtype)
    W = (rng.standard_normal((N, d)) / np.sqrt(d)).astype(dtype)
    b = (0.5 * rng.standard_normal(N)).astype(dtype) if bias else None
    ta, tW = rng.standard_normal((N, k)).astype(dtype), rng.standard_normal((N, d)).astype(dtype)
    tb = rng.standard_normal(N).astype(dtype) if bias else None
    got = (_core.forward(activation, 0.0, a, W, b, X, threads), _core.jvp(activation, 0.0, a, W, b, X, ta, tW, tb,
                                                                           threads))
    f64 = [None if x is None else x.astype(np.float64) for x in (X, a, W, b, ta, tW, tb)]
    X, a, W, b, ta, tW, tb = f64
    Z = X @ W.T + (0.0 if b is None else b)
    S, D = ref.sigma(activation, Z), ref.dsigma(activation, Z)
    U = X @ tW.T + (0.0 if tb is None else tb)
    want = (S @ a, S @ ta + (D * U) @ a)
    return got, want


CASES = [("relu", 1, "float64", True), ("relu", 1, "float32", False), ("tanh", 1, "float64", True),
         ("relu", 3, "float64", False), ("erf", 2, "float32", True)]


@pytest.mark.parametrize("activation,k,dtype,bias", CASES)
def test_grouped_passes_give_the_same_numbers_for_any_thread_count(activation, k, dtype, bias):
    kernel_sets = ["portable"] + [s for s in ("avx2", "avx512") if _core.simd_supported(s)] if (
        activation == "relu" and k == 1) else [mf.get_simd()]
    previous = mf.get_simd()
    try:
        for simd in kernel_sets:
            mf.set_simd(simd)
            runs = {threads: passes(activation, k, dtype, bias, threads) for threads in (1, 2, 3, 8, 33)}
            got, want = runs[1]
            for g, w, what in zip(got, want, ("forward", "jvp")):
                err = np.abs(g - w).max() / np.abs(w).max()
                assert err <= RTOL[dtype], f"{simd} {what}: relative error {err:.3g}"
            for threads, (other, _) in runs.items():
                for g, o in zip(got, other):
                    np.testing.assert_array_equal(g, o, err_msg=f"{simd}: {threads} threads")
    finally:
        mf.set_simd(previous)


def test_symmetric_network_of_several_groups_is_exactly_zero():
    """The halves are grouped alike and summed apart: a symmetric initialisation still gives 0."""
    net = mf.TwoLayer(4, N_GROUPED, activation="relu", bias=True, b_std=0.5, symmetric=True, seed=1)
    X = np.random.default_rng(2).standard_normal((N_SAMPLES, 4))
    for simd in ["portable"] + [s for s in ("avx2", "avx512") if _core.simd_supported(s)]:
        previous = mf.set_simd(simd)
        try:
            np.testing.assert_array_equal(net.predict(X), 0.0)
        finally:
            mf.set_simd(previous)
