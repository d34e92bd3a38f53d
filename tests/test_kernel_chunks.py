"""Empirical kernels computed in units of work: any grouping of the units into calls gives the
bits of one call, and Ctrl-C interrupts a long computation between calls."""
import math
import threading

import numpy as np
import pytest

import mfntk as mf
from mfntk import _backend, _core
from conftest import CTRL_C_LATENCY, CountingPlan, interrupted_after


def net_and_points(k, dtype, bias=True, N=600, n=600, d=7, seed=0):
    net = mf.TwoLayer(d, N, activation="tanh", outputs=k, bias=bias, b_std=0.3 if bias else 0.0, seed=seed,
                      dtype=np.dtype(dtype).name)
    rng = np.random.default_rng(seed + 1)
    return net, rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((70, d)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("output,k", [("mean", 1), ("mean", 3), ("matrix", 3)])
def test_gram_in_single_units_equals_one_call(output, k, dtype):
    net, X, X2 = net_and_points(k, dtype)
    args = (net.activation, net.c0, net.a, net.W, net.b)
    cls = _core.EmpiricalGram64 if dtype == np.float64 else _core.EmpiricalGram32
    for Xb in (None, X2):
        one = _core.empirical_gram(*args, X, Xb, "ntk", 2, output)
        plan = CountingPlan(cls(*args, X, Xb, "ntk", output, 2))
        chunked = _backend._drive(plan, 0.0)  # one unit per call
        assert plan.calls == plan.units > 4
        np.testing.assert_array_equal(chunked, one)
        np.testing.assert_array_equal(_backend._drive(cls(*args, X, Xb, "ntk", output, 1), math.inf), one)
    # the public entry points drive the same computation
    np.testing.assert_array_equal(mf.kernels.empirical(net, X, output=output), _core.empirical_gram(*args, X, None,
                                                                                                     "ntk", 2, output))


@pytest.mark.parametrize("output,k", [("mean", 2), ("matrix", 2)])
def test_matvec_in_single_units_equals_one_call(output, k):
    net, X, X2 = net_and_points(k, np.float64)
    args = (net.activation, net.c0, net.a, net.W, net.b)
    rows = X.shape[0] * (k if output == "matrix" else 1)
    V = np.random.default_rng(3).standard_normal((rows, 3))
    for Xr in (None, X2):
        one = _core.empirical_matvec(*args, X, V, "ntk", 2, output, Xr)
        plan = CountingPlan(_core.EmpiricalMatvec64(*args, X, V, "ntk", output, 2, Xr))
        chunked = _backend._drive(plan, 0.0)
        assert plan.calls == plan.units > 10
        np.testing.assert_array_equal(chunked, one)
        np.testing.assert_array_equal(_backend._drive(_core.EmpiricalMatvec64(*args, X, V, "ntk", output, 1, Xr),
                                                      math.inf), one)


def test_plans_refuse_an_early_result():
    net, X, _ = net_and_points(1, np.float64, n=300)
    plan = _core.EmpiricalGram64(net.activation, net.c0, net.a, net.W, net.b, X, None, "ntk", "mean", 1)
    plan.advance(1)
    with pytest.raises(ValueError, match=r"result: \d+ unit\(s\) of work left; advance first"):
        plan.result()
    with pytest.raises(ValueError, match="count: must be >= 0"):
        plan.advance(-1)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_ctrl_c_interrupts_a_long_gram_matrix():
    # about 7e10 flops: tens of seconds in one call on two cores
    net = mf.TwoLayer(32, 8192, activation="relu", seed=0)
    X = np.random.default_rng(0).standard_normal((3000, 32))
    latency = interrupted_after(lambda: mf.kernels.empirical(net, X), delay=0.5)
    assert latency < CTRL_C_LATENCY


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_ctrl_c_interrupts_a_long_matrix_free_product():
    # 60 columns of 4 n N d flops each, about 2e11 flops
    net = mf.TwoLayer(64, 16384, activation="tanh", outputs=3, seed=0)
    X = np.random.default_rng(1).standard_normal((3000, 64))
    V = np.ones((3000 * 3, 60))
    kern = mf.kernels.Empirical(net, output="matrix")
    latency = interrupted_after(lambda: kern.matvec(X, V), delay=0.5)
    assert latency < CTRL_C_LATENCY
