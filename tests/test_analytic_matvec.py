"""The matrix-free product of the infinite-width kernel, K(X2, X) V without forming K: the dense
kernel times V, the same bits for any thread count and grouping of its units of work, Ctrl-C
between them, and the conjugate-gradient regression it drives."""
import math
import threading
import warnings

import numpy as np
import pytest

import mfntk as mf
from mfntk import _backend, _core
from conftest import CTRL_C_LATENCY, CountingPlan, interrupted_after

# Relative to max (|K| |V|), the scale of the rounding of a sum of products.
PRODUCT_RTOL = {np.float64: 1e-12, np.float32: 1e-5}
N_POINTS, N_CROSS, D = 300, 70, 6   # 300: one full block of 256 points and a partial one


def points(dtype=np.float64, n=N_POINTS, n2=N_CROSS, d=D, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((n2, d)).astype(dtype),
            rng.standard_normal((n, 10)).astype(dtype))


def assert_product(actual, K, V, dtype):
    K, V = np.asarray(K, np.float64), np.asarray(V, np.float64)
    expected = K @ V
    scale = (np.abs(K) @ np.abs(V)).max()
    err = np.abs(np.asarray(actual, np.float64) - expected).max()
    assert err <= PRODUCT_RTOL[np.dtype(dtype).type] * scale, f"max error {err:.3g} vs scale {scale:.3g}"


@pytest.mark.parametrize("m", [1, 10])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("kind", ["rf", "nt", "ntk"])
@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_matvec_and_cross_matvec_equal_the_dense_kernel_times_v(activation, kind, bias, m):
    X, X2, V = points()
    V = V[:, :m]
    k = mf.kernels.Analytic(activation=activation, kind=kind, w_std=0.8, a_std=1.3, b_std=0.4 if bias else 0.0,
                            bias=bias)
    assert_product(k.matvec(X, V), k(X), V, np.float64)
    assert_product(k.cross_matvec(X2, X, V), k(X2, X), V, np.float64)
    assert k.matvec(X, V).shape == (N_POINTS, m) and k.cross_matvec(X2, X, V).shape == (N_CROSS, m)


@pytest.mark.parametrize("activation,method,w_std", [("erf", "quadrature", 1.0), ("sigmoid", "auto", 1.0),
                                                     ("softplus", "auto", 1.0), ("quadratic", "auto", 0.5),
                                                     ("identity", "auto", 1.0), ("tanh", "auto", 40.0)])
def test_every_method_including_direct_integration(activation, method, w_std):
    X, X2, V = points(n=150, n2=40)
    X[1] = X[0]                      # identical points: rho = 1 exactly
    X[2] = X[0] * (1 + 1e-9)         # nearly parallel ones
    kw = dict(activation=activation, kind="ntk", w_std=w_std, b_std=0.2, c0=0.3, method=method)
    K, info = mf.kernels.analytic(X, **kw, return_info=True)
    out, minfo = _core.analytic_matvec(activation, 0.3, X, V, "ntk", w_std, 1.0, 0.2, True, method, 0, 1e-12, 2)
    assert_product(out, K, V, np.float64)
    assert minfo == info              # the same method, order and entry bounds as the Gram matrix
    if w_std > 10:
        assert info["direct_f"] > 0 and info["direct_d"] > 0   # large variances: integrated directly
    assert_product(mf.kernels.Analytic(**kw).cross_matvec(X2, X, V), mf.kernels.analytic(X2, X, **kw), V,
                   np.float64)


def test_output_bias_and_vectors():
    X, X2, V = points()
    k = mf.kernels.Analytic(activation="relu", kind="ntk", output_bias=True)
    v = V[:, 0]
    out = k.matvec(X, v)
    assert out.shape == (N_POINTS,)
    assert_product(out[:, None], k(X), v[:, None], np.float64)      # k(X) includes the constant 1
    assert_product(k.cross_matvec(X2, X, v)[:, None], k(X2, X), v[:, None], np.float64)
    nt = mf.kernels.Analytic(activation="relu", kind="nt", output_bias=True)   # no constant in "nt"
    assert_product(nt.matvec(X, V), nt(X), V, np.float64)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_float32_inputs(activation):
    X, X2, V = points(np.float32)
    k = mf.kernels.Analytic(activation=activation, kind="ntk", b_std=0.3)
    out = k.matvec(X, V)
    assert out.dtype == np.float32
    Xd, X2d, Vd = (np.asarray(A, np.float64) for A in (X, X2, V))
    assert_product(out, k(Xd), Vd, np.float32)
    cross = k.cross_matvec(X2, X, V)
    assert cross.dtype == np.float32
    assert_product(cross, k(X2d, Xd), Vd, np.float32)
    assert k.cross_matvec(X2d, X, V).dtype == np.float64   # float64 when either set is float64


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_bits_do_not_depend_on_threads_or_calls(activation, dtype):
    X, X2, V = points(dtype, n2=90)
    cls = _core.AnalyticMatvec64 if dtype == np.float64 else _core.AnalyticMatvec32
    args = (activation, 0.0)
    kw = ("ntk", 0.7, 1.0, 0.3, True, "auto", 0, 1e-12)
    for rows in (None, X2):
        for tile in (37, 256):          # many blocks, a partial last one; one block and a partial one
            one, info = _core.analytic_matvec(*args, X, V, *kw, 2, rows, tile)
            plan = CountingPlan(cls(*args, X, V, *kw, 2, rows, tile))
            chunked, chunked_info = _backend._drive(plan, 0.0)     # one unit (block) per call
            assert plan.calls == plan.units > 1
            np.testing.assert_array_equal(chunked, one)
            assert chunked_info == info
            serial, _ = _backend._drive(cls(*args, X, V, *kw, 1, rows, tile), math.inf)
            np.testing.assert_array_equal(serial, one)
            ref = mf.kernels.analytic(X if rows is None else rows, None if rows is None else X, activation=activation,
                                      kind="ntk", w_std=0.7, b_std=0.3, bias=True)
            assert_product(one, np.asarray(ref, np.float64), V, dtype)
    # the public entry point drives the same computation
    k = mf.kernels.Analytic(activation=activation, kind="ntk", w_std=0.7, b_std=0.3, bias=True)
    np.testing.assert_array_equal(k.matvec(X, V), _core.analytic_matvec(*args, X, V, *kw, 2)[0])


def test_symmetric_product_is_that_of_a_symmetric_matrix():
    # the blocks below the diagonal are the transposes of those above, bit for bit
    X, _, _ = points(n=90)
    n = X.shape[0]
    E = np.eye(n)
    K = np.column_stack([_core.analytic_matvec("tanh", 0.0, X, np.ascontiguousarray(E[:, [j]]), "ntk", 1.0, 1.0,
                                               0.0, False, "auto", 0, 1e-12, 1, None, 16)[0][:, 0]
                         for j in range(n)])
    np.testing.assert_array_equal(K, K.T)


def test_plan_refuses_an_early_result():
    X, _, V = points()
    plan = _core.AnalyticMatvec64("relu", 0.0, X, V, "ntk", 1.0, 1.0, 0.0, False, "auto", 0, 1e-12, 1)
    plan.advance(1)
    with pytest.raises(ValueError, match=r"result: \d+ unit\(s\) of work left; advance first"):
        plan.result()
    with pytest.raises(ValueError, match="count: must be >= 0"):
        plan.advance(-1)


def test_quadrature_warning_as_for_the_dense_kernel():
    X, X2, V = points()
    k = mf.kernels.Analytic(activation="tanh", w_std=30.0, quad_order=16)   # a fixed order cannot converge
    with pytest.warns(mf.kernels.QuadratureWarning, match="quad_order=16"):
        k.matvec(X, V)
    with pytest.warns(mf.kernels.QuadratureWarning, match="quad_order=16"):
        k.cross_matvec(X2, X, V)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mf.kernels.Analytic(activation="tanh").matvec(X, V)


def test_bad_vectors_name_v():
    X, X2, V = points()
    k = mf.kernels.Analytic()
    with pytest.raises(ValueError, match=r"V: expected 300 rows \(one per point of X\), got shape \(70, 10\)"):
        k.matvec(X, V[:70])
    with pytest.raises(ValueError, match="V: expected 300 rows"):
        k.cross_matvec(X2, X, V[:70])
    with pytest.raises(ValueError, match="V: expected a 1-D or 2-D array"):
        k.matvec(X, V[:, :, None])
    bad = V.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="V: "):
        k.matvec(X, bad)
    with pytest.raises(ValueError, match="X2: expected 6 columns"):
        k.cross_matvec(X2[:, :4], X, V)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_conjugate_gradient_regression_with_an_analytic_kernel(fit_intercept):
    rng = np.random.default_rng(5)
    X, X2 = rng.standard_normal((400, 5)), rng.standard_normal((60, 5))
    Y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]]) + 0.1 * rng.standard_normal((400, 2))
    kernel = mf.kernels.Analytic(activation="relu", kind="ntk", b_std=0.2, output_bias=fit_intercept, threads=1)
    kw = dict(kernel=kernel, ridge=0.1, fit_intercept=fit_intercept)
    chol = mf.KernelRegressor(**kw, solver="cholesky").fit(X, Y)
    auto = mf.KernelRegressor(**kw, max_dense=100, tol=1e-11).fit(X, Y)    # n > max_dense: matrix-free CG
    assert chol.solver_ == "cholesky" and auto.solver_ == "cg" and auto.n_iter_ > 0
    scale = np.abs(chol.predict(X2)).max()
    np.testing.assert_allclose(auto.predict(X2), chol.predict(X2), rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(auto.dual_coef_, chol.dual_coef_, rtol=0, atol=1e-7 * np.abs(chol.dual_coef_).max())


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_ctrl_c_interrupts_a_long_product():
    # 12000^2 / 2 entries of a tanh series and a GEMM of 12000^2 d / 2 flops: tens of seconds on two cores
    rng = np.random.default_rng(2)
    X = rng.standard_normal((12000, 64))
    V = np.ones((12000, 10))
    k = mf.kernels.Analytic(activation="tanh", kind="ntk", w_std=0.5)
    latency = interrupted_after(lambda: k.matvec(X, V), delay=0.5)
    assert latency < CTRL_C_LATENCY
