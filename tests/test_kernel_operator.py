"""The empirical kernel on fixed points as a linear operator (``Empirical.operator``): the numbers
of ``Empirical.matvec`` bit for bit, whether the signs of X W^T are kept between products (relu,
one output per product) or recomputed, and the dense kernel times V."""
import math
import threading

import numpy as np
import pytest
import scipy.sparse.linalg

import mfntk as mf
from mfntk import _backend, _core
from conftest import CTRL_C_LATENCY, interrupted_after


def kernel_and_points(activation="relu", k=1, output="mean", bias=True, dtype=np.float64, N=300, n=700, d=6,
                      **net_kw):
    net = mf.TwoLayer(d, N, activation=activation, outputs=k, bias=bias, b_std=0.3 if bias else 0.0, seed=2,
                      dtype=np.dtype(dtype).name, **net_kw)
    X = np.random.default_rng(3).standard_normal((n, d)).astype(dtype)
    return mf.kernels.Empirical(net, output=output, threads=2), X


# (activation, outputs, output, whether the signs are kept)
CASES = [("relu", 1, "mean", True), ("relu", 3, "mean", True), ("relu", 1, "matrix", True),
         ("relu", 3, "matrix", False), ("tanh", 1, "mean", False), ("softplus", 2, "mean", False)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation,k,output,cached", CASES)
def test_operator_products_are_the_matvec_bit_for_bit(activation, k, output, cached, bias, dtype):
    kernel, X = kernel_and_points(activation, k, output, bias, dtype)
    op = kernel.operator(X)
    assert (op.cache_bytes > 0) == cached
    assert op.shape == (X.shape[0] * (k if output == "matrix" else 1),) * 2 and op.dtype == dtype
    V = np.random.default_rng(4).standard_normal((op.shape[0], 3)).astype(dtype)
    want = kernel.matvec(X, V)
    # the first product fills the cache, the later ones read it; every form of the product alike
    for got in (op(V), op(V), op @ V, op.matmat(V), op.dot(V)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(op.matvec(V[:, 0]), want[:, 0])
    np.testing.assert_array_equal(op.rmatvec(V[:, 1]), want[:, 1])   # symmetric
    dense = kernel(X) @ V.astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(want, dense, rtol=tol, atol=tol * np.abs(dense).max())


def test_the_signs_of_a_chunked_network_are_kept_per_chunk():
    kernel, X = kernel_and_points(N=512, particle_chunk=128)
    op = kernel.operator(X)
    assert op.cache_bytes >= X.shape[0] * 512 // 8
    V = np.random.default_rng(5).standard_normal((X.shape[0], 2))
    for _ in range(2):
        np.testing.assert_array_equal(op(V), kernel.matvec(X, V))


def test_the_cache_follows_its_budget_and_the_operator_its_own_copy_of_X():
    kernel, X = kernel_and_points()
    needed = kernel.operator(X).cache_bytes
    assert kernel.operator(X, cache_mb=0).cache_bytes == 0
    assert kernel.operator(X, cache_mb=(needed - 1) / 2 ** 20).cache_bytes == 0
    assert kernel.operator(X, cache_mb=needed / 2 ** 20).cache_bytes == needed
    V = np.ones((X.shape[0], 1))
    want = kernel.matvec(X, V)
    op = kernel.operator(X)
    X[:] = 0.0                       # the caller's array changes; the operator's copy does not
    np.testing.assert_array_equal(op(V), want)
    with pytest.raises(ValueError, match="cache_mb"):
        kernel.operator(X, cache_mb=-1)
    with pytest.raises(ValueError, match="V: expected 700 rows"):
        op(np.ones((5, 1)))
    with pytest.raises(TypeError, match="kernel: expected a mfntk.kernels.Empirical"):
        mf.kernels.EmpiricalOperator(mf.kernels.Analytic(), X)


def test_an_interrupted_first_product_leaves_the_cache_unused():
    """A cache is read only after a product that filled it has completed; a product stopped
    part-way (Ctrl-C between units) fills it again."""
    kernel, X = kernel_and_points(N=600, n=2000)
    op = kernel.operator(X)
    V = np.random.default_rng(6).standard_normal((X.shape[0], 2))
    want = kernel.matvec(X, V)
    p = kernel._p
    plan = _core.EmpiricalMatvec64(p.activation, p.c0, p.a, p.W, p.b, op.X, V, "ntk", "mean", 2, None,
                                   op._signs.words[0], False)
    plan.advance(3)                  # part of the fill written into the operator's cache, then abandoned
    np.testing.assert_array_equal(op(V), want)
    assert op._signs.ready
    np.testing.assert_array_equal(op(V), want)


def test_the_operator_keeps_the_kernel_it_was_made_from():
    """The signs are those of the particles at construction: a later set_params of the kernel
    (another network of the same width) does not reach the operator."""
    kernel, X = kernel_and_points()
    op = kernel.operator(X)
    V = np.random.default_rng(8).standard_normal((X.shape[0], 1))
    want = kernel.matvec(X, V)
    np.testing.assert_array_equal(op(V), want)
    kernel.set_params(net=mf.TwoLayer(6, 300, activation="relu", bias=True, b_std=0.3, seed=99))
    assert not np.array_equal(kernel.matvec(X, V), want)
    np.testing.assert_array_equal(op(V), want)


def test_the_core_refuses_a_cache_it_cannot_use():
    kernel, X = kernel_and_points()
    p = kernel._p
    words = _core.EmpiricalMatvec64.sign_cache_words("relu", p.N, 1, "mean", X.shape[0])
    assert words == X.shape[0] * math.ceil(150 / 64) * 2 * 1   # two tiles of 128 + 22 per half, 64 bits a word
    V = np.ones((X.shape[0], 1))
    args = (p.activation, p.c0, p.a, p.W, p.b, X, V, "ntk", "mean", 1)
    with pytest.raises(ValueError, match="signs: expected a writeable uint64 array of"):
        _core.EmpiricalMatvec64(*args, None, np.empty(words - 1, np.uint64))
    with pytest.raises(ValueError, match="signs: a sign cache needs K"):
        _core.EmpiricalMatvec64(*args, X[:5], np.empty(words, np.uint64))
    with pytest.raises(ValueError, match="signs: a sign cache needs K"):
        _core.EmpiricalMatvec64("tanh", *args[1:], None, np.empty(words, np.uint64))
    assert _core.EmpiricalMatvec64.sign_cache_words("tanh", p.N, 1, "mean", 10) == 0
    assert _core.EmpiricalMatvec64.sign_cache_words("relu", p.N, 2, "matrix", 10) == 0


def test_scipy_solvers_take_the_operator():
    kernel, X = kernel_and_points(n=300)
    op = kernel.operator(X)
    K = kernel(X)
    top = scipy.sparse.linalg.eigsh(op, k=3, return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(top), np.linalg.eigvalsh(K)[-3:], rtol=1e-9)
    y = np.sin(X[:, 0])
    x, info = scipy.sparse.linalg.cg(op + 0.5 * scipy.sparse.linalg.aslinearoperator(np.eye(300)), y, rtol=1e-12,
                                     maxiter=2000)
    assert info == 0
    np.testing.assert_allclose(x, np.linalg.solve(K + 0.5 * np.eye(300), y), rtol=1e-8, atol=1e-10)


def test_kernel_regression_by_cg_reads_the_cache_and_solves_the_same_system():
    kernel, X = kernel_and_points(n=900)
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    K = kernel(X)
    want = np.linalg.solve(K + 0.3 * np.eye(900), y)
    calls = []
    fill = _backend.CPUBackend.matvec

    def counting(self, p, *args, **kw):
        calls.append((p.dtype, None if kw.get("signs") is None else kw["signs"].ready))
        return fill(self, p, *args, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(_backend.CPUBackend, "matvec", counting)
    try:
        fit = mf.KernelRegressor(kernel=kernel, ridge=0.3, solver="cg", tol=1e-12, preconditioner=None).fit(X, y)
    finally:
        mp.undo()
    for dtype in (np.float64, np.float32):   # the residuals' operator, the refinement's float32 one
        ready = [r for t, r in calls if t == dtype]
        assert ready[0] is False and len(ready) > 1 and all(ready[1:])   # filled once, then read
    np.testing.assert_allclose(fit.dual_coef_.reshape(-1), want, rtol=1e-7, atol=1e-9 * np.abs(want).max())


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_ctrl_c_interrupts_the_first_product_and_the_next_one_is_right():
    kernel, X = kernel_and_points(N=16384, n=6000, d=64, bias=False)
    op = kernel.operator(X)
    V = np.ones((X.shape[0], 30))
    latency = interrupted_after(lambda: op(V), delay=0.3)
    assert latency < CTRL_C_LATENCY
    assert not op._signs.ready
    v = np.random.default_rng(7).standard_normal((X.shape[0], 1))
    np.testing.assert_array_equal(op(v), kernel.matvec(X, v))
