"""Kernel regression, classification, the spectral / CG solvers and the RF / NT models (SPEC 6).

References: numpy.linalg.solve, scikit-learn's KernelRidge, scipy.linalg.expm for the kernel
flow, the t = 0 and t = infinity limits, CG against Cholesky, the kernel trick against the
normal equations, and GMMM's Theorems 1-2 for the RF and NT risks on a quadratic target.
"""
import itertools
import math

import numpy as np
import pytest
import scipy.linalg
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.kernel_ridge import KernelRidge

import mfntk as mf
import mfntk.kernels  # noqa: F401  (mf.kernels)
from mfntk import _solvers

# ---- tolerances ----------------------------------------------------------------------------
DIRECT = 1e-9    # direct solvers against each other / numpy, relative to max |prediction|
CG = 1e-7        # CG (tol 1e-11) against Cholesky
INTERP = 1e-8    # ridgeless training residual, relative to max |y|
FLOW = 1e-8      # kernel flow against scipy.linalg.expm


def data(n=40, d=4, m=9, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X, X2 = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    if k is not None:
        y = np.stack([y, np.cos(X[:, 1]), X[:, 3] ** 2][:k], axis=1)
    return X, X2, y


def rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-300)


KERNEL = mf.kernels.Analytic(activation="relu", kind="ntk", b_std=0.3)


# ---------------------------------------------------------------------------------------------
# against references
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ridge", [1e-3, 0.5])
@pytest.mark.parametrize("solver", ["auto", "cholesky", "eigh", "cg"])
def test_against_numpy_solve_and_sklearn_kernel_ridge(ridge, solver):
    """sklearn's KernelRidge minimises |y - K c|^2 + alpha c^T K c, i.e. sum_i (y_i - f(x_i))^2 +
    alpha |f|_H^2 -- the same objective as ours, so alpha = ridge (no factor n)."""
    X, X2, y = data()
    K, K2 = KERNEL(X), KERNEL(X2, X)
    reg = mf.KernelRegressor(kernel="precomputed", ridge=ridge, solver=solver, tol=1e-12).fit(K, y)
    pred = reg.predict(K2)
    ref = K2 @ np.linalg.solve(K + ridge * np.eye(len(X)), y)
    sk = KernelRidge(kernel="precomputed", alpha=ridge).fit(K, y).predict(K2)
    tol = CG if solver == "cg" else DIRECT
    assert rel(pred, ref) < tol and rel(pred, sk) < tol
    assert reg.solver_ == {"auto": "cholesky"}.get(solver, solver)
    # the same through the kernel object
    assert rel(mf.KernelRegressor(kernel=KERNEL, ridge=ridge, solver=solver, tol=1e-12).fit(X, y).predict(X2),
               ref) < tol


def test_ridgeless_interpolates():
    X, X2, y = data(n=60)
    for kernel in (KERNEL, mf.kernels.Analytic(activation="tanh", kind="ntk", b_std=0.3)):
        reg = mf.KernelRegressor(kernel=kernel).fit(X, y)
        assert reg.solver_ == "eigh"
        assert rel(reg.predict(X), y) < INTERP
    # precomputed, and through Cholesky at ridge 0 (positive definite here)
    K = KERNEL(X)
    assert rel(mf.KernelRegressor(kernel="precomputed").fit(K, y).predict(K), y) < INTERP
    assert rel(mf.KernelRegressor(kernel="precomputed", solver="cholesky").fit(K, y).predict(K), y) < INTERP


def test_kernel_flow_limits_and_closed_form():
    X, X2, y = data()
    n = len(X)
    K, K2 = KERNEL(X), KERNEL(X2, X)
    ridgeless = mf.KernelRegressor(kernel=KERNEL).fit(X, y)
    # t = 0: the initial function, zero
    assert np.array_equal(mf.KernelRegressor(kernel=KERNEL, t=0.0).fit(X, y).predict(X2), np.zeros(len(X2)))
    # t -> infinity: the ridgeless solution (t beyond n log(1/eps) / lambda_min)
    lam_min = np.linalg.eigvalsh(K)[0]
    t_big = n * 40.0 / lam_min
    assert rel(mf.KernelRegressor(kernel=KERNEL, t=t_big).fit(X, y).predict(X2), ridgeless.predict(X2)) < 1e-7
    assert rel(mf.KernelRegressor(kernel=KERNEL, t=np.inf).fit(X, y).predict(X2), ridgeless.predict(X2)) < DIRECT
    # finite t against the matrix exponential: fhat_t(X2) = K2 K^{-1} (I - exp(-t K / n)) y
    for t, ridge in ((3.0, 0.0), (50.0, 0.0), (10.0, 0.2)):
        A = K + ridge * np.eye(n)
        ref = K2 @ np.linalg.solve(A, (np.eye(n) - scipy.linalg.expm(-t * A / n)) @ y)
        got = mf.KernelRegressor(kernel=KERNEL, t=t, ridge=ridge).fit(X, y).predict(X2)
        assert rel(got, ref) < FLOW
    # the training-set residual decreases monotonically in t
    res = [np.linalg.norm(y - mf.KernelRegressor(kernel=KERNEL, t=t).fit(X, y).predict(X)) for t in (1, 10, 100)]
    assert res[0] > res[1] > res[2]


def test_cg_equals_cholesky_including_matrix_free_empirical_kernel():
    X, X2, y = data(n=80, k=2)
    net = mf.TwoLayer(4, 512, activation="tanh", bias=True, b_std=0.2, seed=4)
    for kernel in (KERNEL, mf.kernels.Empirical(net, kind="ntk", threads=1)):  # tiny: one thread is fastest
        chol = mf.KernelRegressor(kernel=kernel, ridge=1e-2).fit(X, y)
        cg = mf.KernelRegressor(kernel=kernel, ridge=1e-2, solver="cg", tol=1e-11).fit(X, y)
        assert chol.solver_ == "cholesky" and cg.solver_ == "cg" and cg.n_iter_ > 0
        assert np.all(cg.residual_ <= 1e-11)
        assert rel(cg.predict(X2), chol.predict(X2)) < CG
    # "auto" switches to matrix-free CG above max_dense for a kernel with a matvec
    auto = mf.KernelRegressor(kernel=mf.kernels.Empirical(net, threads=1), ridge=1e-2, max_dense=50,
                              tol=1e-11).fit(X, y)
    assert auto.solver_ == "cg"
    assert rel(auto.predict(X2), chol.predict(X2)) < CG


def _spd_system(n=300, seed=0):
    X, _, _ = data(n=n, seed=seed)
    A = KERNEL(X)
    B = np.random.default_rng(seed + 1).standard_normal((n, 3))
    return A, B


def test_mixed_precision_refinement_reaches_the_float64_tolerance(recwarn):
    """Iterations with the float32 product, true residuals with the float64 one: the true
    residual meets tol, far below what float32 alone resolves."""
    A, B = _spd_system()
    A32 = A.astype(np.float32)
    fast = []

    def fast_matvec(V):
        fast.append(V.shape[1])
        return (A32 @ V.astype(np.float32)).astype(np.float64)

    from mfntk._preconditioners import KernelColumns, nystrom
    want = np.linalg.solve(A + 1e-2 * np.eye(len(A)), B)
    for P in (None, nystrom(KernelColumns.from_matrix(A), 60, 1e-2)):
        fast.clear()
        X, info = _solvers.conjugate_gradient(lambda V: A @ V, B, shift=1e-2, tol=1e-10, fast_matvec=fast_matvec,
                                              preconditioner=P)
        plain = _solvers.conjugate_gradient(lambda V: A @ V, B, shift=1e-2, tol=1e-10, preconditioner=P)[1]
        assert info["converged"] and info["true_residuals"] >= 9 and len(fast) == info["iterations"]
        assert plain["true_residuals"] == 0
        # well conditioned: about the iterations of float64 CG, about one true residual per hundredfold fall
        if P is not None:
            assert info["iterations"] <= 1.2 * plain["iterations"] and info["true_residuals"] <= 30
        R = B - A @ X - 1e-2 * X
        assert np.all(np.linalg.norm(R, axis=0) <= 1e-10 * np.linalg.norm(B, axis=0))
        assert rel(X, want) < 1e-8
    assert not [w for w in recwarn if issubclass(w.category, _solvers.ConvergenceWarning)]


def test_mixed_precision_hands_over_to_float64_when_the_fast_product_is_too_poor(recwarn):
    A, B = _spd_system()
    fast = []
    X, info = _solvers.conjugate_gradient(lambda V: A @ V, B, shift=1e-2, tol=1e-10,
                                          fast_matvec=lambda V: fast.append(1) or 0.3 * (A @ V))
    # one replacement finds too little progress: the hand-over's true residuals follow
    assert info["converged"] and info["true_residuals"] == 2 and len(fast) < 60
    assert rel(X, np.linalg.solve(A + 1e-2 * np.eye(len(A)), B)) < 1e-8
    # one column: the replacement that finds the stall is the hand-over's, not computed twice
    fast.clear()
    x, info = _solvers.conjugate_gradient(lambda V: A @ V, B[:, :1], shift=1e-2, tol=1e-10,
                                          fast_matvec=lambda V: fast.append(1) or 0.3 * (A @ V))
    assert info["converged"] and info["true_residuals"] == 1 and len(fast) < 60
    assert rel(x, np.linalg.solve(A + 1e-2 * np.eye(len(A)), B[:, :1])) < 1e-8
    assert not [w for w in recwarn if issubclass(w.category, _solvers.ConvergenceWarning)]


def test_mixed_precision_is_not_used_at_or_below_its_floor():
    """A shift at or below FAST_RCOND sqrt(n) lambda_max: no fast product when the bound is known
    from the start (diag), and a hand-over once the Rayleigh quotients reveal it (no diag)."""
    A, B = _spd_system(n=60)
    floor = _solvers.FAST_RCOND * math.sqrt(60) * np.max(np.diag(A))   # max diag(A) <= lambda_max
    for shift in (0.0, 0.5 * floor):
        calls = []
        X, info = _solvers.conjugate_gradient(lambda V: A @ V, B[:, :1], shift=shift, tol=1e-8, diag=np.diag(A),
                                              fast_matvec=lambda V: calls.append(1) or A @ V)
        assert info["true_residuals"] == 0 and not calls
        calls = []
        X, info = _solvers.conjugate_gradient(lambda V: A @ V, B[:, :1], shift=shift, tol=1e-8,
                                              fast_matvec=lambda V: calls.append(1) or A @ V)
        # shift 0: never; above 0: until the Rayleigh quotients reveal the floor, then the hand-over
        assert info["converged"] and (len(calls) == 0 if shift == 0 else 0 < len(calls) < info["iterations"])


def test_mixed_precision_hands_over_where_the_fast_system_is_indefinite(recwarn):
    """A singular A and a tiny shift: A32 + shift I can have negative eigenvalues where A + shift I
    has none. CG hands over to the float64 product instead of reporting a breakdown."""
    rng = np.random.default_rng(3)
    Q = np.linalg.qr(rng.standard_normal((200, 200)))[0]
    lam = np.concatenate([np.geomspace(1e2, 1e-1, 120), np.zeros(80)])
    A = (Q * lam) @ Q.T
    B = A @ rng.standard_normal((200, 2))        # consistent
    A32 = A.astype(np.float32)
    fast = lambda V: (A32 @ V.astype(np.float32)).astype(np.float64)  # noqa: E731
    for shift in (1e-3, 1e-9):
        X, info = _solvers.conjugate_gradient(lambda V: A @ V, B, shift=shift, tol=1e-9, fast_matvec=fast)
        assert info["converged"]
        R = B - A @ X - shift * X
        assert np.all(np.linalg.norm(R, axis=0) <= 1e-9 * np.linalg.norm(B, axis=0))
    assert not [w for w in recwarn if issubclass(w.category, _solvers.ConvergenceWarning)]


def test_kernel_regressor_in_mixed_precision_solves_ill_conditioned_empirical_systems(recwarn):
    """An empirical kernel of rank N (d + 1) < n and small ridges, no preconditioner: the fit
    converges as CG with float64 products does (it hands over where float32 cannot resolve the
    ridge), to the dense solution."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 3))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    kernel = mf.kernels.Empirical(mf.TwoLayer(3, 64, "relu", bias=True, b_std=0.3, seed=1), threads=2)
    K = kernel(X)
    for ridge in (1e-2, 1e-4, 1e-6):
        fit = mf.KernelRegressor(kernel=kernel, ridge=ridge, solver="cg", tol=1e-9, preconditioner=None).fit(X, y)
        assert np.all(fit.residual_ <= 1e-9)
        coef = fit.dual_coef_.reshape(-1)
        assert np.linalg.norm(K @ coef + ridge * coef - y) <= 1e-8 * np.linalg.norm(y)
    assert not [w for w in recwarn if issubclass(w.category, _solvers.ConvergenceWarning)]


def test_kernel_regressor_iterates_with_the_float32_copy_of_an_empirical_kernel(monkeypatch):
    """A float64 Empirical kernel: CG's iterations run the float32 operator, the true residuals
    the float64 one; the fit equals the dense solve (with and without fit_intercept; relu with a
    bias, whose operator keeps the signs, and a three-output tanh network, whose does not)."""
    X, X2, y = data(n=400, k=2)
    nets = [mf.TwoLayer(4, 512, activation="relu", bias=True, b_std=0.2, seed=4),
            mf.TwoLayer(4, 256, activation="tanh", outputs=3, seed=5)]
    dtypes = []
    original = mf.kernels.EmpiricalOperator._matmat
    monkeypatch.setattr(mf.kernels.EmpiricalOperator, "_matmat",
                        lambda self, V: dtypes.append(self.dtype) or original(self, V))
    for net, intercept in itertools.product(nets, (False, True)):
        kernel = mf.kernels.Empirical(net, kind="ntk", threads=2)
        dtypes.clear()
        cg = mf.KernelRegressor(kernel=kernel, ridge=1e-2, solver="cg", tol=1e-10, preconditioner=None,
                                fit_intercept=intercept).fit(X, y)
        chol = mf.KernelRegressor(kernel=kernel, ridge=1e-2, fit_intercept=intercept).fit(X, y)
        assert np.float32 in dtypes and np.float64 in dtypes
        assert np.all(cg.residual_ <= 1e-10)
        assert rel(cg.predict(X2), chol.predict(X2)) < CG


def test_float32_kernels_fit_without_warnings():
    """A float32 kernel sets the pseudo-inverse cutoff (n eps_32) and the CG tolerance (1e-5)."""
    X, X2, y = data(n=60)
    X, X2 = X.astype(np.float32), X2.astype(np.float32)
    net = mf.TwoLayer(4, 256, activation="tanh", dtype="float32", seed=2)
    k = mf.kernels.Empirical(net, threads=1)
    K, K2 = k(X).astype(np.float64), k(X2, X).astype(np.float64)
    ref = K2 @ np.linalg.solve(K + 1e-2 * np.eye(len(X)), y)
    for kw in (dict(ridge=1e-2), dict(ridge=1e-2, solver="cg"), dict(ridge=1e-2, solver="eigh")):
        reg = mf.KernelRegressor(kernel=k, **kw).fit(X, y)
        assert rel(reg.predict(X2), ref) < 1e-4
    for kw in (dict(), dict(t=10.0)):  # ridgeless and flow: finite, no warning (pytest turns them into errors)
        assert np.all(np.isfinite(mf.KernelRegressor(kernel=k, **kw).fit(X, y).predict(X2)))
    assert rel(mf.KernelRegressor(kernel=mf.kernels.Analytic(), ridge=1e-2).fit(X, y).predict(X2),
               mf.KernelRegressor(kernel=mf.kernels.Analytic(), ridge=1e-2).fit(X.astype(float), y).predict(
                   X2.astype(float))) < 1e-4


def test_inputs_left_unmodified():
    X, X2, y = data(k=2)
    X0, X20, y0 = X.copy(), X2.copy(), y.copy()
    K = KERNEL(X)
    K0 = K.copy()
    for solver in ("cholesky", "eigh", "cg"):
        mf.KernelRegressor(kernel=KERNEL, ridge=0.1, solver=solver).fit(X, y).predict(X2)
        mf.KernelRegressor(kernel="precomputed", ridge=0.1, solver=solver).fit(K, y)
    mf.KernelRegressor(kernel=KERNEL, t=2.0).fit(X, y).predict(X2)
    for a, b in ((X, X0), (X2, X20), (y, y0), (K, K0)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kw", [dict(ridge=0.1), dict(), dict(t=5.0), dict(ridge=0.1, solver="cg", tol=1e-12)])
def test_multi_output_equals_stacked_single_outputs(kw):
    X, X2, Y = data(k=3)
    multi = mf.KernelRegressor(kernel=KERNEL, **kw).fit(X, Y)
    P = multi.predict(X2)
    assert P.shape == (len(X2), 3) and multi.dual_coef_.shape == (len(X), 3)
    for c in range(3):
        single = mf.KernelRegressor(kernel=KERNEL, **kw).fit(X, Y[:, c])
        p = single.predict(X2)
        assert p.shape == (len(X2),)  # 1-D in, 1-D out
        assert rel(P[:, c], p) < (CG if kw.get("solver") == "cg" else DIRECT)
    # 2-D with one column stays 2-D
    assert mf.KernelRegressor(kernel=KERNEL, **kw).fit(X, Y[:, :1]).predict(X2).shape == (len(X2), 1)


# ---------------------------------------------------------------------------------------------
# scikit-learn conventions
# ---------------------------------------------------------------------------------------------
def test_sklearn_conventions():
    X, X2, y = data()
    reg = mf.KernelRegressor(kernel=KERNEL, ridge=0.1)
    with pytest.raises(NotFittedError):
        reg.predict(X2)
    assert reg.fit(X, y) is reg
    assert reg.get_params()["ridge"] == 0.1 and reg.get_params()["kernel__activation"] == "relu"
    reg2 = clone(reg).set_params(ridge=0.2, kernel__kind="rf")
    assert reg2.kernel.kind == "rf" and reg.kernel.kind == "ntk" and not hasattr(reg2, "dual_coef_")
    assert reg.score(X, y) == pytest.approx(1.0 - np.sum((y - reg.predict(X)) ** 2) / np.sum((y - y.mean()) ** 2))
    assert reg.n_features_in_ == 4 and reg.X_fit_.shape == (40, 4)
    emp = mf.KernelRegressor(kernel=mf.kernels.Empirical(mf.TwoLayer(4, 64)), ridge=0.1).fit(X, y)
    assert clone(emp).kernel.net is not emp.kernel.net  # cloned with a copy of the network


@pytest.mark.parametrize("n,block", [(300, 64), (300, 300), (301, 100), (3, 1)])
def test_blocked_cholesky_equals_lapack(n, block, monkeypatch):
    """The factor by diagonal blocks (potrf, trsm, GEMM updates) is LAPACK's potrf of the whole,
    and the Cholesky solver through it equals numpy's solve."""
    rng = np.random.default_rng(n)
    B = rng.standard_normal((n, n + 3))
    K = B @ B.T
    L = _solvers.blocked_cholesky(np.array(K, order="F"), block)
    want = scipy.linalg.cholesky(K, lower=True)
    assert np.abs(np.tril(L) - want).max() <= 1e-13 * np.abs(want).max()
    monkeypatch.setattr(_solvers, "CHOLESKY_BLOCK", block)
    Y = rng.standard_normal((n, 2))
    coef, rcond = _solvers.cholesky_solve(K, Y, ridge=0.5)
    assert rel(coef, np.linalg.solve(K + 0.5 * np.eye(n), Y)) < DIRECT and rcond > 0
    bad = K.copy()
    bad[n - 1, n - 1] = -1.0  # the last leading minor is not positive definite
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        _solvers.blocked_cholesky(np.array(bad, order="F"), block)
    assert _solvers.cholesky_solve(bad, Y)[0] is None


def test_solver_fallbacks_and_warnings():
    X, X2, y = data(n=30)
    Xd = np.concatenate([X, X[:5]])  # duplicated points: a singular kernel matrix
    yd = np.concatenate([y, y[:5]])
    with pytest.warns(_solvers.SolverFallbackWarning, match="fell back to the symmetric eigendecomposition"):
        reg = mf.KernelRegressor(kernel=KERNEL, solver="cholesky").fit(Xd, yd)
    assert reg.solver_ == "eigh" and np.all(np.isfinite(reg.predict(X2)))
    assert rel(reg.predict(X2), mf.KernelRegressor(kernel=KERNEL).fit(X, y).predict(X2)) < 1e-6
    # the default ridgeless path is the eigendecomposition: no warning, consistent duplicates fitted
    assert rel(mf.KernelRegressor(kernel=KERNEL).fit(Xd, yd).predict(Xd), yd) < INTERP
    # an indefinite "kernel": reported, clipped, finite
    K = KERNEL(X)
    K_bad = K - 2.0 * np.linalg.eigvalsh(K)[3] * np.eye(len(X))
    with pytest.warns(_solvers.IndefiniteKernelWarning, match="not positive semi-definite"):
        p = mf.KernelRegressor(kernel="precomputed", t=1.0).fit(K_bad, y).predict(K_bad)
    assert np.all(np.isfinite(p))
    # CG that cannot finish
    with pytest.warns(_solvers.ConvergenceWarning, match="relative residual"):
        reg = mf.KernelRegressor(kernel=KERNEL, ridge=1e-6, solver="cg", max_iter=2).fit(X, y)
    assert reg.n_iter_ == 2 and np.all(np.isfinite(reg.predict(X2)))


def test_spectral_factor_api():
    X, _, y = data(n=25)
    K = KERNEL(X)
    n = len(X)
    F = _solvers.SpectralFactor(K)
    assert F.n_clipped == 0 and F.rank == n
    U0 = np.stack([y, y ** 2], axis=1)
    for t in (0.0, 0.7, 30.0):
        E = scipy.linalg.expm(-t * K / n)
        assert rel(F.flow_residual(U0, t), E @ U0) < FLOW
        assert rel(F.flow_fit(U0, t) + F.flow_residual(U0, t), U0) < 1e-12
        if t > 0:
            assert rel(K @ F.flow_coef(U0, t), (np.eye(n) - E) @ U0) < FLOW
    assert rel(F.ridge(y, 0.3), np.linalg.solve(K + 0.3 * np.eye(n), y)) < DIRECT
    # the lambda -> 0 limit of (1 - exp(-t lambda / n)) / lambda is t / n, computed stably
    phi = _solvers.flow_filter(np.array([0.0, 1e-30, 1e-12, 1.0]), t=2.0, n=4)
    np.testing.assert_allclose(phi, [0.5, 0.5, 0.5 * (1 - 0.25e-12), -np.expm1(-0.5)], rtol=1e-15)
    # rounding-level negative eigenvalues are clipped without a warning and reported
    low_rank = X[:, :2] @ X[:, :2].T
    G = _solvers.SpectralFactor(low_rank)
    assert G.rank == 2 and G.eigenvalues.min() >= 0.0 and G.n_clipped >= 0


# ---------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------
def test_classifier_one_hot_argmax_and_accuracy():
    rng = np.random.default_rng(3)
    centers = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    labels = np.array(["a", "b", "c"])
    idx = rng.integers(0, 3, 150)
    X = centers[idx] + 0.5 * rng.standard_normal((150, 2))
    y = labels[idx]
    clf = mf.KernelClassifier(kernel=mf.kernels.Analytic(kind="ntk", b_std=0.5), ridge=1e-2).fit(X[:100], y[:100])
    assert list(clf.classes_) == ["a", "b", "c"]
    D = clf.decision_function(X[100:])
    assert D.shape == (50, 3)
    np.testing.assert_array_equal(clf.predict(X[100:]), clf.classes_[np.argmax(D, axis=1)])
    assert clf.score(X[100:], y[100:]) == np.mean(clf.predict(X[100:]) == y[100:]) >= 0.95
    # the regressor on one-hot targets gives the same decision values and predict_class
    Y = (y[:100, None] == labels[None, :]).astype(float)
    reg = mf.KernelRegressor(kernel=clf.kernel, ridge=1e-2).fit(X[:100], Y)
    assert rel(reg.predict(X[100:]), D) < DIRECT
    np.testing.assert_array_equal(labels[reg.predict_class(X[100:])], clf.predict(X[100:]))
    with pytest.raises(ValueError, match="y: needs at least 2 classes"):
        mf.KernelClassifier(kernel=clf.kernel).fit(X[:5], ["a"] * 5)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_argument_errors():
    X, X2, y = data()
    K = KERNEL(X)
    with pytest.raises(ValueError, match="ridge"):
        mf.KernelRegressor(kernel=KERNEL, ridge=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        mf.KernelRegressor(kernel=KERNEL, solver="lu").fit(X, y)
    with pytest.raises(ValueError, match="solver: 'cholesky' cannot compute the kernel flow"):
        mf.KernelRegressor(kernel=KERNEL, t=1.0, solver="cholesky").fit(X, y)
    with pytest.raises(ValueError, match="t"):
        mf.KernelRegressor(kernel=KERNEL, t=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="kernel"):
        mf.KernelRegressor(kernel="rbf").fit(X, y)
    with pytest.raises(TypeError, match="kernel"):
        mf.KernelRegressor(kernel=3).fit(X, y)
    with pytest.raises(ValueError, match="X: a precomputed kernel must be square"):
        mf.KernelRegressor().fit(K[:, :10], y)
    with pytest.raises(ValueError, match="X: a precomputed kernel must be symmetric"):
        mf.KernelRegressor().fit(K + np.triu(np.ones_like(K), 1), y)
    reg = mf.KernelRegressor().fit(K, y)
    with pytest.raises(ValueError, match=r"X has 5 features, but KernelRegressor is expecting 40.*precomputed kernel K\(X2, X_train\) needs one column"):
        reg.predict(KERNEL(X2, X[:5]))
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[40, 5\]"):
        mf.KernelRegressor(kernel=KERNEL).fit(X, y[:5])
    with pytest.raises(ValueError, match="Input y contains NaN"):
        mf.KernelRegressor(kernel=KERNEL).fit(X, np.where(np.arange(40) == 3, np.nan, y))
    with pytest.raises(ValueError, match="X has 3 features, but KernelRegressor is expecting 4"):
        mf.KernelRegressor(kernel=KERNEL).fit(X, y).predict(X2[:, :3])
    with pytest.raises(ValueError, match="tol"):
        mf.KernelRegressor(kernel=KERNEL, tol=0.0, solver="cg").fit(X, y)
    with pytest.raises(ValueError, match="formulation"):
        mf.RandomFeatures(formulation="dual").fit(X, y)
    with pytest.raises(ValueError, match="X: has 4 columns but net.d = 3"):
        mf.NeuralTangent(net=mf.TwoLayer(3, 10)).fit(X, y)


# ---------------------------------------------------------------------------------------------
# finite-width RF and NT models (GMMM)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["RandomFeatures", "NeuralTangent"])
@pytest.mark.parametrize("ridge", [0.0, 1e-2])
def test_rf_nt_kernel_trick_equals_normal_equations(model, ridge):
    X, X2, y = data(n=80, k=2)  # p = 12 (RF) or 60 (NT) features < n: the primal problem is determined
    cls = getattr(mf, model)
    kw = dict(width=12, activation="softplus", bias=True, b_std=0.4, ridge=ridge, seed=5)
    dual = cls(formulation="kernel", **kw).fit(X, y)
    primal = cls(formulation="primal", **kw).fit(X, y)
    assert dual.formulation_ == "kernel" and primal.formulation_ == "primal"
    p = dual.n_features_
    assert p == (12 if model == "RandomFeatures" else 12 * 4 + 12)
    tol = 1e-6 if ridge == 0.0 else DIRECT  # ridgeless: minimum-norm solutions, conditioning-limited
    assert rel(dual.predict(X2), primal.predict(X2)) < tol
    assert cls(**kw).fit(X, y).formulation_ == ("kernel" if len(X) < p else "primal")
    # the same predictor as kernel regression with the network's empirical kernel
    kind = "rf" if model == "RandomFeatures" else "nt"
    reg = mf.KernelRegressor(kernel=mf.kernels.Empirical(dual.network_, kind=kind), ridge=ridge).fit(X, y)
    assert rel(reg.predict(X2), dual.predict(X2)) < max(tol, DIRECT)


def test_nt_interpolates_when_overparametrized():
    rng = np.random.default_rng(7)
    n, d, N = 50, 10, 100  # N d = 1000 >> n
    X = rng.standard_normal((n, d))
    y = X[:, 0] * X[:, 1] + rng.standard_normal(n)
    nt = mf.NeuralTangent(width=N, activation="relu", seed=1).fit(X, y)
    assert nt.formulation_ == "kernel" and nt.n_features_ == N * d
    assert nt.risk(X, y) < 1e-16 * 1e6 and rel(nt.predict(X), y) < INTERP
    # while the RF model with N < n cannot
    rf = mf.RandomFeatures(width=N // 4, activation="relu", seed=1).fit(X, y)
    assert rf.risk(X, y, normalized=True) > 0.1


def test_rf_nt_risks_on_quadratic_target_follow_gmmm_theorems():
    """GMMM (seed 002, Theorems 1-2): x ~ N(0, I_d), f*(x) = <x, B x>, quadratic activation,
    w ~ N(0, I_d / d), N = rho d with rho < 1, B traceless.

    RF (sigma = u^2 - 1), Theorem 1: R / |f*|^2 -> 1 - rho d <B, I/d>^2 / (|B|_F^2 (1 + rho)) = 1:
    random features learn nothing of a traceless quadratic.
    NT (sigma = u^2): the class is {x^T S x : S = sym(W^T A)}, all symmetric S whose block on the
    orthogonal complement of span(w_j) vanishes, so the best approximation misses exactly
    P B P (P the projector on that complement): R / |f*|^2 = |P B P|_F^2 / |B|_F^2 (up to an
    O(1/N) trace correction), about (1 - rho)^2 for a generic B, and Theorem 2 (as transcribed
    in seed 002) gives (1 - rho)^2 + rho (1 - rho). Either way NT beats RF at N < d: that is the
    direction checked, with the NT risk pinned to this instance's |P B P|^2 / |B|^2 (finite
    n = 12 N d adds an excess of order p / n)."""
    rng = np.random.default_rng(11)
    d, N = 30, 10
    rho = N / d
    A = rng.standard_normal((d, d))
    B = (A + A.T) / 2
    B -= np.trace(B) / d * np.eye(d)
    f = lambda X: np.einsum("ij,jk,ik->i", X, B, X)  # noqa: E731
    n = 12 * N * d
    X, Xt = rng.standard_normal((n, d)), rng.standard_normal((4000, d))
    y, yt = f(X), f(Xt)
    rf = mf.RandomFeatures(width=N, activation="quadratic", c0=-1.0, seed=2).fit(X, y)
    # the quadratic NT class has dimension N d - N (N - 1) / 2 < N d: the ridgeless (pseudo-inverse) fit
    nt = mf.NeuralTangent(width=N, activation="quadratic", seed=2).fit(X, y)
    r_rf, r_nt = rf.risk(Xt, yt, normalized=True), nt.risk(Xt, yt, normalized=True)
    Q, _ = np.linalg.qr(nt.network_.W.T)
    P = np.eye(d) - Q @ Q.T
    best = np.sum((P @ B @ P) ** 2) / np.sum(B ** 2)
    assert r_rf > 0.9                                   # Theorem 1: 1
    assert r_nt < r_rf - 0.3                            # NT beats RF at N < d
    assert best - 0.03 < r_nt < best + 0.1              # the NT class's own optimum, plus O(p / n)
    assert (1 - rho) ** 2 - 0.15 < r_nt < (1 - rho) ** 2 + rho * (1 - rho) + 0.05
    # risk conventions: 1/2 mean squared error, and its normalisation
    assert nt.risk(Xt, yt) == pytest.approx(0.5 * np.mean((yt - nt.predict(Xt)) ** 2))
    assert r_nt == pytest.approx(np.mean((yt - nt.predict(Xt)) ** 2) / np.mean(yt ** 2))


def test_nearly_symmetric_kernel_is_symmetrised_blockwise():
    from mfntk._solvers import check_kernel_matrix

    rng = np.random.default_rng(3)
    A = rng.standard_normal((700, 700))   # more than one 512-row block
    K = A @ A.T
    K_noisy = K + 1e-12 * rng.standard_normal(K.shape)
    before = K_noisy.copy()
    out = check_kernel_matrix(K_noisy)
    np.testing.assert_array_equal(out, 0.5 * (K_noisy + K_noisy.T))
    np.testing.assert_array_equal(out, out.T)
    np.testing.assert_array_equal(K_noisy, before)  # the input is left unmodified
