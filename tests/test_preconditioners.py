"""Nystrom and pivoted-Cholesky preconditioned CG, and Nystrom kernel ridge regression.

References: dense Cholesky solves (scipy), the exact limits M = n (the preconditioner is then
(s_n + ridge) (K + ridge I)^{-1}; Nystrom KRR is kernel ridge regression), an independent numpy
implementation of Nystrom KRR (the normal equations K_nM^T K_nM + ridge K_MM) and of the
leverage-score draw, and the iteration counts of unpreconditioned CG.
"""
import math
import time

import numpy as np
import pytest
import scipy.linalg
from sklearn.base import clone

import mfntk as mf
import mfntk.kernels  # noqa: F401  (mf.kernels)
from conftest import CTRL_C_LATENCY, interrupted_after
from mfntk import _preconditioners as pc
from mfntk import _validation
from mfntk._solvers import conjugate_gradient

# ---- tolerances ----------------------------------------------------------------------------
CG64 = 1e-8     # preconditioned CG (tol 1e-11) against a dense Cholesky solve, relative
CG32 = 1e-4     # float32 kernels (tol 1e-6): the kernel's own rounding dominates
EXACT = 1e-8    # closed forms (M = n), relative


def rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-300)


def problem(n=600, d=8, width=256, outputs=1, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    net = mf.TwoLayer(d, width, scaling="ntk", outputs=outputs, seed=seed + 1, dtype=dtype)
    Y = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)
    return X.astype(dtype), Y, net


def dense_solve(K, Y, ridge):
    K = np.asarray(K, dtype=np.float64)
    return scipy.linalg.cho_solve(scipy.linalg.cho_factor(K + ridge * np.eye(K.shape[0])), Y)


# ---------------------------------------------------------------------------------------------
# conjugate gradient with the preconditioners, against dense solves
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", ["nystrom", "leverage", "pivoted-cholesky"])
def test_preconditioned_cg_equals_dense_solve_empirical_ntk(build):
    X, Y, net = problem(n=400)
    k = mf.kernels.Empirical(net, kind="ntk")
    ridge = 0.5
    cols = pc.KernelColumns.from_kernel(k, X)
    P = (pc.pivoted_cholesky(cols, 80, ridge) if build == "pivoted-cholesky" else
         pc.nystrom(cols, 80, ridge, selection="leverage" if build == "leverage" else "uniform", random_state=3))
    sol, info = conjugate_gradient(lambda V: k.matvec(X, V), Y, shift=ridge, tol=1e-11, preconditioner=P)
    assert info["converged"]
    assert rel(sol, dense_solve(k(X), Y, ridge)) < CG64
    assert P.centers.shape == (80,) and np.unique(P.centers).size == 80


def test_matrix_kernel_columns_and_preconditioned_cg():
    """A matrix kernel (n k x n k, row i k + p): a centre brings its k columns; CG on the matrix
    kernel's matvec, preconditioned, equals the dense solve."""
    outputs = 3
    X, _, net = problem(n=300, outputs=outputs)
    k = mf.kernels.Empirical(net, kind="ntk", output="matrix")
    K = k(X)
    cols = pc.KernelColumns.from_kernel(k, X)
    assert cols.outputs == outputs and cols.rows == 300 * outputs
    pts = np.array([4, 17, 250])
    rows = (pts[:, None] * outputs + np.arange(outputs)).ravel()
    assert rel(cols(pts), K[:, rows]) < 1e-13
    assert rel(cols.diagonal(), np.diag(K)) < 1e-13
    rng = np.random.default_rng(5)
    B = rng.standard_normal((300 * outputs, 2))
    ridge = 0.3
    ref = dense_solve(K, B, ridge)
    plain = conjugate_gradient(lambda V: K @ V, B, shift=ridge, tol=1e-11)[1]["iterations"]
    for P in (pc.nystrom(cols, 60, ridge), pc.pivoted_cholesky(cols, 60, ridge)):
        assert P.rank <= 60 * outputs
        sol, info = conjugate_gradient(lambda V: k.matvec(X, V), B, shift=ridge, tol=1e-11, preconditioner=P)
        assert rel(sol, ref) < CG64
        assert info["iterations"] < plain


def test_full_rank_factor_is_exact():
    """M = n: the Nystrom approximation and the full pivoted Cholesky are K itself, so
    P^{-1} (K + ridge I) = (s_n + ridge) I and CG converges in one or two steps."""
    X, Y, net = problem(n=150)
    K = mf.kernels.empirical(net, X)
    cols = pc.KernelColumns.from_matrix(K)
    for P in (pc.nystrom(cols, 150, 0.2), pc.pivoted_cholesky(cols, 150, 0.2, tol=0.0)):
        assert rel((P.U * P.s) @ P.U.T, K) < EXACT
        A = K + 0.2 * np.eye(150)
        assert rel(P(A), (P.s[-1] + 0.2) * np.eye(150)) < 1e-7
        assert conjugate_gradient(lambda V: K @ V, Y, 0.2, tol=1e-10, preconditioner=P)[1]["iterations"] <= 3


def test_astype_is_the_kernel_of_the_rounded_particles():
    X, _, net = problem(n=200)
    k32 = mf.kernels.Empirical(net, kind="ntk").astype("float32")
    net32 = mf.TwoLayer(8, 256, scaling="ntk", seed=1, dtype="float32")
    net32.set_flat(net.get_flat().astype(np.float32))
    X = X.astype(np.float32)
    assert k32.dtype == np.float32 and k32(X).dtype == np.float32
    np.testing.assert_array_equal(k32(X, X[:7]), mf.kernels.Empirical(net32, kind="ntk")(X, X[:7]))
    assert mf.kernels.Empirical(net).astype(np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="dtype"):
        mf.kernels.Empirical(net).astype("float16")


def test_fast_columns_are_float32_for_a_float64_kernel_that_has_astype():
    X, _, net = problem(n=300)
    k = mf.kernels.Empirical(net, kind="ntk")
    cols = pc.KernelColumns.from_kernel(k, X, outputs=1, fast=True)
    assert cols.fast.dtype == np.float32 and cols.fast.fast is None
    idx = np.array([3, 50, 299])
    np.testing.assert_array_equal(cols.fast(idx), k.astype("float32")(X.astype(np.float32), X[idx].astype(
        np.float32)).astype(np.float64))
    assert rel(cols.fast(idx), cols(idx)) < 1e-5
    assert pc.KernelColumns.from_kernel(k, X, outputs=1).fast is None            # not asked for
    assert pc.KernelColumns.from_kernel(k.astype("float32"), X.astype(np.float32), fast=True).fast is None
    analytic = mf.kernels.Analytic()
    assert pc.KernelColumns.from_kernel(analytic, X, fast=True).fast is None    # no astype
    centred = cols.centred(np.full(300, 0.5))
    np.testing.assert_allclose(centred.fast(idx), centred(idx), rtol=0, atol=1e-5 * np.abs(centred(idx)).max())


def test_nystrom_builds_from_the_fast_columns_unless_float32_loses_the_rank(monkeypatch):
    """Well-separated centres: the factor is that of the float32 columns, and CG converges to
    the float64 solution. Centres closer than float32 resolves (K_MM's smallest eigenvalues below
    M eps_32 of its largest): the float32 factor would drop them, so the float64 columns build it."""
    X, Y, net = problem(n=400)
    k = mf.kernels.Empirical(net, kind="ntk")
    ridge = 0.5
    cols = pc.KernelColumns.from_kernel(k, X, outputs=1, fast=True)
    P = pc.nystrom(cols, 60, ridge, random_state=2)
    P32 = pc.nystrom(cols.fast, 60, ridge, random_state=2)   # the float32 columns, factored as float64 ones
    np.testing.assert_allclose(P.s, P32.s, rtol=0, atol=1e-11 * P.s[0])
    v = np.random.default_rng(8).standard_normal((400, 2))
    assert rel(P(v), P32(v)) < 1e-9
    sol, info = conjugate_gradient(lambda V: k.matvec(X, V), Y, shift=ridge, tol=1e-11, preconditioner=P)
    assert info["converged"] and rel(sol, dense_solve(k(X), Y, ridge)) < CG64

    rng = np.random.default_rng(9)
    Xc = X[:1] + 1e-4 * rng.standard_normal((400, 8))     # every point near one: K's spectrum falls fast
    cols = pc.KernelColumns.from_kernel(k, Xc, outputs=1, fast=True)
    built = []
    features, float32_factor = pc.nystrom_features, pc._float32_factor
    monkeypatch.setattr(pc, "nystrom_features", lambda c, idx: built.append(c.dtype) or features(c, idx))
    monkeypatch.setattr(pc, "_float32_factor",
                        lambda c, idx: built.append((c.dtype, float32_factor(c, idx) is None)) or None)
    P = pc.nystrom(cols, 12, 1e-9, random_state=2)
    assert built == [(np.float32, True), np.float64]
    assert P.rank > pc.nystrom(cols.fast, 12, 1e-9, random_state=2).rank
    sol, info = conjugate_gradient(lambda V: k.matvec(Xc, V), Y, shift=1e-2, tol=1e-11, preconditioner=P)
    assert info["converged"] and rel(sol, dense_solve(k(Xc), Y, 1e-2)) < CG64


@pytest.mark.parametrize("n,r,m", [(70000, 40, 3), (5000, 300, 1), (1, 4, 2), (900, 0, 2), (900, 3, 0)])
def test_low_rank_update_equals_numpy_for_any_thread_count(n, r, m):
    """The core's V + U diag(scale) U^T V (blocks of rows, their partial products added in
    block order) against numpy's, and the same bits on 1, 2 and 3 threads."""
    rng = np.random.default_rng(n + r + m)
    U, scale, V = rng.standard_normal((n, r)), rng.uniform(-1.0, 0.0, r), rng.standard_normal((n, m))
    want = V + U @ (scale[:, None] * (U.T @ V))
    one = mf._core.low_rank_update(U, scale, V, 1)
    np.testing.assert_allclose(one, want, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(want).max(initial=0.0)))
    for threads in (2, 3):
        np.testing.assert_array_equal(mf._core.low_rank_update(U, scale, V, threads), one)


def test_low_rank_update_refuses_mismatched_shapes():
    U, V = np.ones((10, 3)), np.ones((10, 2))
    with pytest.raises(ValueError, match="scale"):
        mf._core.low_rank_update(U, np.ones(4), V, 1)
    with pytest.raises(ValueError, match="V"):
        mf._core.low_rank_update(U, np.ones(3), np.ones((9, 2)), 1)
    with pytest.raises(ValueError, match="threads"):
        mf._core.low_rank_update(U, np.ones(3), V, 0)


@pytest.mark.parametrize("shape", [(50, 7, 7), (50, 7, 3), (1, 4, 2), (33, 5, 0)])
def test_in_place_product_equals_the_product(monkeypatch, shape):
    """B @ T written over B, in row blocks of a few rows (each block read before it is written)."""
    monkeypatch.setattr(pc, "PRODUCT_BLOCK", 13)
    n, r, q = shape
    rng = np.random.default_rng(1)
    B, T = rng.standard_normal((n, r)), rng.standard_normal((r, q))
    want = B @ T
    got = pc.in_place_product(B, T)
    assert got.shape == (n, q) and np.allclose(got, want, rtol=1e-14, atol=1e-14)
    if q:
        assert np.shares_memory(got, B)
    strided = rng.standard_normal((n, 2 * r))[:, ::2]
    assert np.allclose(pc.in_place_product(strided, T), strided @ T, rtol=1e-14, atol=1e-14)


def test_default_centers_follow_the_kernels_product_work(monkeypatch):
    """CG's default rank: 12 sqrt(n) for a kernel whose product is quadratic in n (a matrix, an
    analytic kernel), 4 sqrt(n) for the empirical kernel (floored at 1000, capped by n); an unknown
    product_work is a ValueError naming the kernel."""
    seen = []
    real = pc.nystrom

    def spy(columns, centers, *args, **kw):
        seen.append(centers)
        return real(columns, centers, *args, **kw)

    monkeypatch.setattr(mf.regression, "nystrom", spy)
    monkeypatch.setitem(pc.CENTERS_PER_ROOT_N, "quadratic", 35.0)  # 1356 centres: above the floor, below n
    X, Y, net = problem(n=1500, d=3, width=64)
    y = Y[:, 0]
    for kernel, want in ((mf.kernels.Analytic(activation="relu"), math.ceil(35.0 * math.sqrt(1500))),
                         (mf.kernels.Empirical(net), 1000)):
        mf.KernelRegressor(kernel=kernel, ridge=1.0, solver="cg", tol=1e-4, preconditioner="nystrom").fit(X, y)
        assert seen[-1] == want

    class Odd(mf.kernels.Analytic):
        product_work = "cubic"

    with pytest.raises(ValueError, match="^kernel: product_work"):
        mf.KernelRegressor(kernel=Odd(activation="relu"), ridge=1.0, solver="cg", preconditioner="nystrom").fit(X, y)


@pytest.mark.parametrize("q", [5, 2, 0])
def test_leading_columns_in_place(monkeypatch, q):
    monkeypatch.setattr(pc, "PRODUCT_BLOCK", 11)
    B = np.random.default_rng(4).standard_normal((40, 5))
    want = B[:, :q].copy()
    got = pc.leading_columns(B, q)
    assert got.flags.c_contiguous and np.array_equal(got, want)
    if 0 < q < 5:
        assert np.shares_memory(got, B)


def test_eigen_factor_equals_the_svd():
    """U diag(s) U^T = B B^T with U orthonormal and s the squared singular values; directions of
    B B^T below GRAM_RCOND s_1 (here an exact rank deficiency) are dropped."""
    rng = np.random.default_rng(2)
    B = rng.standard_normal((300, 40)) * np.logspace(0, -3, 40)
    B[:, 30:] = B[:, :10] @ rng.standard_normal((10, 10))  # rank 30
    sv = np.linalg.svd(B, compute_uv=False)
    BBt = B @ B.T
    U, s = pc.eigen_factor(B.copy())
    assert s.shape == (30,) and np.all(np.diff(s) <= 0)
    assert rel(s, sv[:30] ** 2) < 1e-12
    assert np.abs(U.T @ U - np.eye(30)).max() < 1e-10
    assert rel((U * s) @ U.T, BBt) < 1e-12


def test_nystrom_factor_takes_one_array_of_columns(monkeypatch):
    """The preconditioner's factor is written over the kernel columns: the peak of the arrays
    allocated while it is built stays near one n x M array (K_nM, B and an SVD's workspace would
    be three or more)."""
    import tracemalloc
    monkeypatch.setattr(pc, "PRODUCT_BLOCK", 1 << 14)
    monkeypatch.setattr(pc, "ROW_BLOCK", 256)  # the kernel's blocks of columns, computed by rows
    n, M = 6000, 300
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, 5))
    cols = pc.KernelColumns.from_kernel(mf.kernels.Analytic(activation="relu", kind="ntk"), X)
    one = 8.0 * n * M
    tracemalloc.start()
    try:
        P = pc.nystrom(cols, M, ridge=1.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert P.rank == M
    assert peak < 1.4 * one, f"peak {peak / one:.2f} x the n x M columns"


def test_iterations_fall_as_centers_grow():
    X, Y, net = problem(n=1600, d=16, width=512)
    K = mf.kernels.empirical(net, X)
    ridge = 0.1
    cols = pc.KernelColumns.from_matrix(K)

    def iterations(P):
        return conjugate_gradient(lambda V: K @ V, Y, ridge, tol=1e-8, preconditioner=P)[1]["iterations"]

    counts = [iterations(None)] + [iterations(pc.nystrom(cols, M, ridge)) for M in (50, 200, 800)]
    assert all(a > b for a, b in zip(counts, counts[1:])), counts
    assert counts[-1] < counts[0] / 4, counts


# ---------------------------------------------------------------------------------------------
# the estimators' preconditioner
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("kind", ["nystrom", "pivoted-cholesky", "jacobi", None])
def test_kernel_regressor_cg_preconditioners_equal_cholesky(kind, intercept):
    X, Y, net = problem(n=400)
    k = mf.kernels.Empirical(net, kind="ntk")
    X2 = np.random.default_rng(9).standard_normal((30, X.shape[1]))
    ref = mf.KernelRegressor(kernel=k, ridge=0.5, solver="cholesky", fit_intercept=intercept).fit(X, Y)
    reg = mf.KernelRegressor(kernel=k, ridge=0.5, solver="cg", tol=1e-11, preconditioner=kind, centers=60,
                             fit_intercept=intercept).fit(X, Y)
    assert rel(reg.predict(X2), ref.predict(X2)) < CG64
    assert rel(reg.intercept_, ref.intercept_) < CG64 if intercept else np.all(reg.intercept_ == 0)
    # the empirical kernel has no diag: "jacobi" falls back to no preconditioner
    assert reg.preconditioner_ == (None if kind == "jacobi" else kind)
    assert (reg.centers_ is None) == (kind in ("jacobi", None))
    assert reg.n_iter_ > 0 and reg.residual_.shape == (2,)


@pytest.mark.parametrize("intercept", [False, True])
def test_precomputed_and_dense_kernels(intercept):
    """A precomputed kernel (columns K[:, C], Jacobi from its diagonal) and a kernel object whose
    matvec is a dense product (the form of any kernel with a matvec)."""
    X, Y, net = problem(n=300)
    K = mf.kernels.empirical(net, X)

    class DenseKernel:
        def __call__(self, A, B=None):
            return mf.kernels.empirical(net, A, B)

        def matvec(self, A, V):
            return K @ V

    ref = mf.KernelRegressor(kernel="precomputed", ridge=0.2, fit_intercept=intercept).fit(K, Y)
    for kernel, inputs in (("precomputed", K), (DenseKernel(), X)):
        for kind in ("nystrom", "pivoted-cholesky", "jacobi"):
            reg = mf.KernelRegressor(kernel=kernel, ridge=0.2, solver="cg", tol=1e-11, preconditioner=kind,
                                     centers=40, fit_intercept=intercept).fit(inputs, Y)
            assert rel(reg.dual_coef_, ref.dual_coef_) < CG64
            # Jacobi needs a diagonal: the precomputed matrix has one, the kernel object none
            assert reg.preconditioner_ == (None if kind == "jacobi" and kernel != "precomputed" else kind)


def test_float32_kernel():
    X, Y, net = problem(n=400, dtype="float32")
    k = mf.kernels.Empirical(net, kind="ntk")
    reg = mf.KernelRegressor(kernel=k, ridge=0.5, solver="cg", tol=1e-6, preconditioner="nystrom",
                             centers=50).fit(X, Y)
    ref = dense_solve(k(X), Y, 0.5)
    assert rel(reg.dual_coef_, ref) < CG32


def test_auto_preconditioner():
    X, Y, net = problem(n=2000, d=8, width=64)
    k = mf.kernels.Empirical(net, kind="ntk")
    big = mf.KernelRegressor(kernel=k, ridge=1.0, solver="cg", tol=1e-6).fit(X, Y)
    assert big.preconditioner_ == "nystrom" and big.centers_.size == pc.default_centers(2000)
    small = mf.KernelRegressor(kernel="precomputed", ridge=1.0, solver="cg").fit(k(X[:100]), Y[:100])
    assert small.preconditioner_ == "jacobi" and small.centers_ is None
    ridgeless = mf.KernelRegressor(kernel="precomputed", solver="cholesky").fit(k(X[:100]), Y[:100])
    assert ridgeless.preconditioner_ is None


@pytest.mark.parametrize("kind", ["nystrom", "pivoted-cholesky"])
def test_numerical_floor_unchanged_by_the_preconditioner(kind):
    """A ridge at or below the floor of a rank-deficient kernel (the rf kernel of 50 neurons on
    300 points) is refused as without a preconditioner; a consistent ridgeless system is solved."""
    X, _, net = problem(n=300, width=50)
    k = mf.kernels.Empirical(net, kind="rf")
    y = np.random.default_rng(2).standard_normal(300)
    for ridge in (0.0, 1e-14):
        with pytest.raises(np.linalg.LinAlgError, match="singular to working precision"):
            mf.KernelRegressor(kernel=k, ridge=ridge, solver="cg", preconditioner=kind, centers=100).fit(X, y)
    target = k.matvec(X, y)  # in the range of K
    reg = mf.KernelRegressor(kernel=k, solver="cg", preconditioner=kind, centers=100, tol=1e-10).fit(X, target)
    assert rel(reg.predict(X), target) < 1e-8


# ---------------------------------------------------------------------------------------------
# centre selection
# ---------------------------------------------------------------------------------------------
def test_leverage_selection_is_seeded_and_matches_numpy():
    X, _, net = problem(n=500)
    K = mf.kernels.empirical(net, X)
    cols = pc.KernelColumns.from_matrix(K)
    ridge, M = 0.5, 40
    got = pc.select_centers(cols, M, "leverage", ridge, random_state=7)
    assert np.array_equal(got, pc.select_centers(cols, M, "leverage", ridge, random_state=7))
    assert not np.array_equal(got, pc.select_centers(cols, M, "leverage", ridge, random_state=8))
    # the same draw in plain numpy: a uniform pilot, its Nystrom approximation's ridge leverage
    # scores diag(K_nys (K_nys + ridge I)^{-1}), then M points proportionally, without replacement
    rng = np.random.default_rng(7)
    pilot = np.sort(rng.choice(500, size=M, replace=False))
    assert np.array_equal(pilot, pc.select_centers(cols, M, "uniform", ridge, random_state=7))
    C = K[:, pilot]
    K_nys = C @ np.linalg.pinv(C[pilot], rcond=1e-10, hermitian=True) @ C.T
    scores = np.diag(K_nys @ np.linalg.inv(K_nys + ridge * np.eye(500)))
    scores = np.maximum(scores, 1e-3 * scores.mean())
    want = np.sort(rng.choice(500, size=M, replace=False, p=scores / scores.sum()))
    assert np.array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# Nystrom kernel ridge regression
# ---------------------------------------------------------------------------------------------
def numpy_nystrom_krr(K, K2, Y, centers, ridge, intercept=False):
    """min |K_nM a (+ c) - Y|^2 + ridge a^T K_MM a by its normal equations (bordered with the
    constant), solved by lstsq."""
    C = K[:, centers]
    A = C.T @ C + ridge * K[np.ix_(centers, centers)]
    rhs = C.T @ Y
    if intercept:
        one = C.sum(axis=0)
        A = np.block([[A, one[:, None]], [one[None, :], np.array([[K.shape[0]]])]])
        rhs = np.vstack([rhs, Y.sum(axis=0, keepdims=True)])
    sol = np.linalg.lstsq(A, rhs, rcond=None)[0]
    a, c = (sol[:-1], sol[-1]) if intercept else (sol, np.zeros(Y.shape[1]))
    return K2[:, centers] @ a + c


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("selection", ["uniform", "leverage"])
def test_nystrom_regressor_equals_numpy(selection, intercept):
    X, Y, net = problem(n=400)
    X2 = np.random.default_rng(3).standard_normal((25, X.shape[1]))
    k = mf.kernels.Empirical(net, kind="ntk")
    reg = mf.NystromRegressor(kernel=k, ridge=0.3, centers=50, center_selection=selection, random_state=2,
                              fit_intercept=intercept).fit(X, Y)
    want = numpy_nystrom_krr(k(X), k(X2, X), Y, reg.centers_, 0.3, intercept)
    assert rel(reg.predict(X2), want) < 1e-7
    pre = mf.NystromRegressor(kernel="precomputed", ridge=0.3, centers=50, center_selection=selection,
                              random_state=2, fit_intercept=intercept).fit(k(X), Y)
    assert np.array_equal(pre.centers_, reg.centers_)
    assert rel(pre.predict(k(X2, X)), want) < 1e-7
    assert reg.dual_coef_.shape == (50, 2) and reg.X_centers_.shape == (50, X.shape[1])


def test_nystrom_regressor_tends_to_kernel_regressor():
    X, Y, net = problem(n=300)
    X2 = np.random.default_rng(4).standard_normal((20, X.shape[1]))
    k = mf.kernels.Empirical(net, kind="ntk")
    full = mf.KernelRegressor(kernel=k, ridge=0.1).fit(X, Y).predict(X2)
    errors = [rel(mf.NystromRegressor(kernel=k, ridge=0.1, centers=M).fit(X, Y).predict(X2), full)
              for M in (20, 80, 200, 300)]
    assert errors[0] > errors[1] > errors[2] and errors[-1] < EXACT, errors
    # a kernel with small eigenvalues (the analytic ReLU NTK in d = 3) and a small ridge: M = n
    # keeps every eigenvalue of K_MM above its rounding
    X3 = X[:, :3]
    analytic = mf.kernels.Analytic(activation="relu", kind="ntk")
    exact = mf.KernelRegressor(kernel=analytic, ridge=1e-3).fit(X3, Y).predict(X2[:, :3])
    nys = mf.NystromRegressor(kernel=analytic, ridge=1e-3, centers=300).fit(X3, Y)
    assert nys.rank_ == 300 and rel(nys.predict(X2[:, :3]), exact) < EXACT
    y = Y[:, 0]
    one = mf.NystromRegressor(kernel=k, ridge=0.1, centers=300).fit(X, y)
    assert one.predict(X2).shape == (20,) and isinstance(one.intercept_, float)
    assert one.score(X, y) == pytest.approx(mf.KernelRegressor(kernel=k, ridge=0.1).fit(X, y).score(X, y), rel=1e-9)


def test_nystrom_regressor_float32():
    X, Y, net = problem(n=300, dtype="float32")
    k = mf.kernels.Empirical(net, kind="ntk")
    reg = mf.NystromRegressor(kernel=k, ridge=0.3, centers=60).fit(X, Y)
    K = k(X).astype(np.float64)
    assert rel(reg.predict(X), numpy_nystrom_krr(K, K, Y, reg.centers_, 0.3)) < CG32


def test_nystrom_classifier_and_clone():
    X, _, net = problem(n=300)
    y = np.where(X[:, 0] > 0, "a", "b")
    k = mf.kernels.Empirical(net, kind="ntk")
    clf = mf.NystromClassifier(kernel=k, ridge=0.1, centers=300).fit(X, y)
    ref = mf.KernelClassifier(kernel=k, ridge=0.1).fit(X, y)
    assert rel(clf.decision_function(X), ref.decision_function(X)) < EXACT
    assert np.array_equal(clf.predict(X), ref.predict(X))
    c2 = clone(mf.NystromRegressor(kernel=k, centers=30, random_state=5))
    assert c2.get_params()["centers"] == 30 and c2.get_params()["random_state"] == 5


# ---------------------------------------------------------------------------------------------
# bad parameters
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    (dict(preconditioner="ilu"), "preconditioner"),
    (dict(preconditioner="None"), "preconditioner"),
    (dict(center_selection="greedy"), "center_selection"),
    (dict(centers=0), "centers"),
    (dict(centers=1000), "centers"),
])
def test_bad_parameters(kw, match):
    X, Y, net = problem(n=100)
    K = mf.kernels.empirical(net, X)
    with pytest.raises(ValueError, match=match):
        mf.KernelRegressor(kernel="precomputed", ridge=0.1, solver="cg", **{"preconditioner": "nystrom", **kw}).fit(K, Y)
    if "preconditioner" not in kw:
        with pytest.raises(ValueError, match=match):
            mf.NystromRegressor(kernel="precomputed", ridge=0.1, **kw).fit(K, Y)


def test_bad_nystrom_regressor_parameters_and_memory(monkeypatch):
    X, Y, net = problem(n=100)
    k = mf.kernels.Empirical(net)
    with pytest.raises(ValueError, match="ridge"):
        mf.NystromRegressor(kernel=k, ridge=-1.0).fit(X, Y)
    with pytest.raises(ValueError, match="kernel"):
        mf.NystromRegressor(kernel="rbf").fit(X, Y)
    with pytest.raises(ValueError, match="centers"):
        pc.nystrom(pc.KernelColumns.from_kernel(k, X), centers=[3, 100])
    with pytest.raises(TypeError, match="preconditioner"):
        conjugate_gradient(lambda V: V, Y, preconditioner="nystrom")
    monkeypatch.setattr(_validation, "available_memory", lambda: 10_000)
    with pytest.raises(MemoryError, match="^centers: 50 centres"):
        mf.NystromRegressor(kernel=k, centers=50).fit(X, Y)
    with pytest.raises(MemoryError, match="^centers"):
        mf.KernelRegressor(kernel=k, ridge=1.0, solver="cg", preconditioner="nystrom", centers=50).fit(X, Y)


# ---------------------------------------------------------------------------------------------
# the kernel flow at time t, matrix-free (Lanczos)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ridge", [0.0, 0.2])
@pytest.mark.parametrize("t", [0.0, 3.0, 300.0, 3e4])
def test_lanczos_flow_equals_eigendecomposition(t, ridge):
    X, Y, net = problem(n=300)
    k = mf.kernels.Empirical(net, kind="ntk")
    X2 = np.random.default_rng(6).standard_normal((15, X.shape[1]))
    ref = mf.KernelRegressor(kernel=k, ridge=ridge, t=t, solver="eigh").fit(X, Y)
    reg = mf.KernelRegressor(kernel=k, ridge=ridge, t=t, solver="cg", tol=1e-11).fit(X, Y)
    if t == 0.0:
        assert np.all(reg.predict(X2) == 0.0) and reg.n_iter_ == 0
    else:
        assert rel(reg.predict(X2), ref.predict(X2)) < CG64
        assert reg.preconditioner_ is None and np.all(reg.residual_ <= 1e-11)
    # small times need few steps: the Krylov space of phi_t converges like a power series in t
    assert reg.n_iter_ <= {0.0: 0, 3.0: 15}.get(t, 300)


def test_lanczos_flow_warns_and_refuses_intercept():
    X, Y, net = problem(n=200)
    K = mf.kernels.empirical(net, X)
    with pytest.warns(mf.ConvergenceWarning, match="Lanczos kernel flow did not converge in 3 steps"):
        reg = mf.KernelRegressor(kernel="precomputed", t=1e3, solver="cg", max_iter=3).fit(K, Y)
    assert reg.n_iter_ == 3 and np.all(np.isfinite(reg.dual_coef_))
    with pytest.raises(ValueError, match="fit_intercept"):
        mf.KernelRegressor(kernel="precomputed", t=1.0, solver="cg", fit_intercept=True).fit(K, Y)
    # an invariant Krylov space ends Lanczos exactly: K = identity needs one step
    eye = mf.KernelRegressor(kernel="precomputed", t=2.0, solver="cg").fit(np.eye(50), Y[:50])
    assert eye.n_iter_ == 1 and rel(eye.dual_coef_, -np.expm1(-2.0 / 50) * Y[:50]) < 1e-14


@pytest.mark.parametrize("ridge", [1e-2, 1e-8, 1e-20, 0.0])
def test_ridge_least_squares_matches_the_svd_filter(ridge):
    """Normal equations above the rounding floor, the SVD at it: both equal the SVD's filter
    V diag(s / (s^2 + ridge)) U^T Y (the pseudo-inverse at ridge 0) on an ill-conditioned B."""
    from mfntk.regression import _ridge_least_squares
    rng = np.random.default_rng(0)
    B = rng.standard_normal((500, 80)) @ np.diag(np.logspace(0, -6, 80))
    Y = rng.standard_normal((500, 3))
    U, s, Wt = np.linalg.svd(B, full_matrices=False)
    filt = s / (s ** 2 + ridge) if ridge > 0 else 1.0 / s
    ref = Wt.T @ (filt[:, None] * (U.T @ Y))
    b = _ridge_least_squares(B, Y, ridge)
    assert np.linalg.norm(b - ref) <= 1e-12 * np.linalg.norm(ref)


# ---------------------------------------------------------------------------------------------
# progress and Ctrl-C of the iterative solvers
# ---------------------------------------------------------------------------------------------
def test_cg_and_lanczos_report_progress_off_a_terminal(capsys):
    """progress=True: a first and a last line on stderr (not a terminal under pytest) with the
    iterations reached; the default writes nothing for a short fit, nor does False."""
    X, Y, net = problem(n=300)
    k = mf.kernels.Empirical(net, kind="ntk")
    reg = mf.KernelRegressor(kernel=k, ridge=0.5, solver="cg", tol=1e-10, progress=True).fit(X, Y)
    err = capsys.readouterr().err
    assert "conjugate gradient: started: iteration 0" in err
    assert f"conjugate gradient: finished: iteration {reg.n_iter_}, relative residual" in err
    flow = mf.KernelRegressor(kernel=k, ridge=0.5, t=50.0, solver="cg", progress=True).fit(X, Y)
    assert f"Lanczos: finished: iteration {flow.n_iter_}" in capsys.readouterr().err
    for progress in (None, False):
        mf.KernelRegressor(kernel=k, ridge=0.5, solver="cg", progress=progress).fit(X, Y)
        assert capsys.readouterr().err == ""


def test_solver_progress_lines_every_interval(monkeypatch, capsys):
    """Off a terminal the default writes a line once a solve has run PROGRESS_LOG_SECONDS, then
    one per interval, and a last one."""
    from mfntk import _solvers
    monkeypatch.setattr(_solvers, "PROGRESS_LOG_SECONDS", 0.0)
    A = np.diag(np.linspace(1.0, 100.0, 50))
    _, info = conjugate_gradient(lambda V: A @ V, np.ones((50, 1)), tol=1e-10, progress=None)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == info["iterations"] + 1
    assert lines[0].startswith("conjugate gradient: running: iteration 1, relative residual")
    assert lines[-1].startswith(f"conjugate gradient: finished: iteration {info['iterations']}")


def test_ctrl_c_stops_a_cg_fit_and_keeps_the_earlier_fit(capsys):
    X, Y, _ = problem(n=300)
    kernel = mf.kernels.Analytic(activation="relu", kind="ntk")
    reg = mf.KernelRegressor(kernel=kernel, ridge=0.5, solver="cg", tol=1e-10).fit(X, Y)
    coef = reg.dual_coef_.copy()
    calls = []

    def slow_matvec(X1, V):  # each product 0.2 s, so that the signal lands mid-solve
        calls.append(1)
        time.sleep(0.2)
        return mf.kernels.Analytic(activation="relu", kind="ntk").matvec(X1, V)

    kernel.matvec = slow_matvec
    reg.set_params(progress=True, ridge=0.25)
    delay = interrupted_after(lambda: reg.fit(X, Y), 0.5)
    assert delay < CTRL_C_LATENCY and calls
    assert "conjugate gradient: stopped" in capsys.readouterr().err
    np.testing.assert_array_equal(reg.dual_coef_, coef)
    assert reg.ridge == 0.25 and reg.n_iter_ > 0
