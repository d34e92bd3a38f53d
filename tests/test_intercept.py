"""``fit_intercept``: an unpenalised constant for the kernel and the RF / NT models.

References: numpy least squares with a column of ones (the features built here from the
documented feature maps), the bordered kernel system [[K + ridge I, 1], [1^T, 0]], the matrix
exponential of the (n + 1)-dimensional flow of (a, c), and the closed-form risk of the NT
class on a centred quadratic target (GMMM).
"""
import numpy as np
import pytest
import scipy.linalg
from sklearn.linear_model import Ridge

import mfntk as mf
import mfntk.kernels  # noqa: F401  (mf.kernels)

DIRECT = 1e-9   # direct solves against numpy, relative to max |prediction|
LSTSQ = 1e-7    # ridgeless least squares, conditioning-limited
CG = 1e-7       # CG (tol 1e-12) against the dense solve
FLOW = 1e-8     # flow against scipy.linalg.expm

KERNEL = mf.kernels.Analytic(activation="relu", kind="ntk", b_std=0.3, threads=1)


def data(n=40, d=4, m=9, k=None, seed=0, offset=3.0):
    """Targets with a large mean, so that a missing constant shows."""
    rng = np.random.default_rng(seed)
    X, X2 = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + offset
    if k is not None:
        y = np.stack([y, np.cos(X[:, 1]) - offset, X[:, 3] ** 2][:k], axis=1)
    return X, X2, y


def rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-300)


# ---------------------------------------------------------------------------------------------
# RF / NT against numpy least squares with a column of ones
# ---------------------------------------------------------------------------------------------
def feature_matrix(model, X):
    """The documented feature maps, from the fitted network's weights (tanh: sigma' = 1 - tanh^2).

    RF: sigma(<w_j, x> + b_j) / sqrt(N); NT: |a_j| sigma'(<w_j, x> + b_j) (x, 1) / sqrt(N)."""
    net = model.network_
    W, b, a = net.W, net.b, np.abs(net.a[:, 0])
    N = W.shape[0]
    Z = X @ W.T + b
    if isinstance(model, mf.RandomFeatures):
        return np.tanh(Z) / np.sqrt(N)
    D = a * (1.0 - np.tanh(Z) ** 2) / np.sqrt(N)
    return np.concatenate([(D[:, :, None] * X[:, None, :]).reshape(len(X), -1), D], axis=1)


def reference_fit(Phi, Y, ridge):
    """(theta, c) minimising |Y - Phi theta - c|^2 + ridge |theta|^2; at ridge 0 the least-squares
    solution of smallest |theta| (the constant is free)."""
    n = len(Phi)
    if ridge > 0.0:  # the normal equations of [Phi, 1] with the penalty on theta only
        A = np.block([[Phi.T @ Phi + ridge * np.eye(Phi.shape[1]), Phi.sum(axis=0)[:, None]],
                      [Phi.sum(axis=0)[None, :], np.array([[n]])]])
        sol = np.linalg.solve(A, np.concatenate([Phi.T @ Y, Y.sum(axis=0, keepdims=True)]))
        return sol[:-1], sol[-1]
    if n > Phi.shape[1] + 1:  # a unique solution: plain least squares with a column of ones
        sol = np.linalg.lstsq(np.concatenate([Phi, np.ones((n, 1))], axis=1), Y, rcond=None)[0]
        return sol[:-1], sol[-1]
    mean_phi, mean_y = Phi.mean(axis=0), Y.mean(axis=0)
    theta = np.linalg.lstsq(Phi - mean_phi, Y - mean_y, rcond=None)[0]
    return theta, mean_y - mean_phi @ theta


@pytest.mark.parametrize("model", ["RandomFeatures", "NeuralTangent"])
@pytest.mark.parametrize("formulation", ["primal", "kernel"])
@pytest.mark.parametrize("ridge", [0.0, 0.5])
@pytest.mark.parametrize("k", [None, 3])
def test_feature_models_equal_least_squares_with_a_column_of_ones(model, formulation, ridge, k):
    # primal: n = 80 > p + 1 (p = 40 or 60); kernel: n = 30 < p, the interpolating regime at ridge 0
    n = 80 if formulation == "primal" else 30
    X, X2, Y = data(n=n, k=k)
    X32, X232 = X.astype(np.float32), X2.astype(np.float32)
    width = 40 if model == "RandomFeatures" else 12
    est = getattr(mf, model)(width=width, activation="tanh", bias=True, b_std=0.4, ridge=ridge, seed=3,
                             formulation=formulation, threads=1, fit_intercept=True).fit(X32, Y)
    assert est.formulation_ == formulation
    Xr, X2r = X32.astype(np.float64), X232.astype(np.float64)
    Y2 = Y.reshape(n, -1)
    theta, c = reference_fit(feature_matrix(est, Xr), Y2, ridge)
    ref = feature_matrix(est, X2r) @ theta + c
    tol = DIRECT if ridge > 0 else LSTSQ
    pred = est.predict(X232)
    assert pred.shape == ((len(X2),) if k is None else (len(X2), 3))
    assert rel(pred.reshape(len(X2), -1), ref) < tol
    if k is None:
        assert isinstance(est.intercept_, float)
    else:
        assert est.intercept_.shape == (3,)
    assert rel(np.atleast_1d(est.intercept_), c) < tol
    if ridge > 0:  # scikit-learn's Ridge, whose alpha penalises |theta|^2 only, on the same features
        sk = Ridge(alpha=ridge, fit_intercept=True).fit(feature_matrix(est, Xr), Y2)
        assert rel(pred.reshape(len(X2), -1), sk.predict(feature_matrix(est, X2r)).reshape(len(X2), -1)) < 1e-8
    # the training residuals have mean 0 with a free constant (the normal equation of c)
    resid = Y2 - est.predict(X32).reshape(n, -1)
    assert np.abs(resid.mean(axis=0)).max() < 1e-8 * np.abs(Y2).max()


def test_feature_models_without_intercept_are_unchanged():
    X, X2, y = data(n=80)
    for cls in (mf.RandomFeatures, mf.NeuralTangent):
        est = cls(width=12, activation="tanh", ridge=0.5, seed=3).fit(X, y)
        assert est.intercept_ == 0.0
        W = est.network_.W
        N = W.shape[0]
        if cls is mf.RandomFeatures:
            F, F2 = np.tanh(X @ W.T) / np.sqrt(N), np.tanh(X2 @ W.T) / np.sqrt(N)
        else:
            D, D2 = (1 - np.tanh(X @ W.T) ** 2) / np.sqrt(N), (1 - np.tanh(X2 @ W.T) ** 2) / np.sqrt(N)
            F = (D[:, :, None] * X[:, None, :]).reshape(len(X), -1)
            F2 = (D2[:, :, None] * X2[:, None, :]).reshape(len(X2), -1)
        theta = np.linalg.solve(F.T @ F + 0.5 * np.eye(F.shape[1]), F.T @ y)
        assert rel(est.predict(X2), F2 @ theta) < DIRECT


def test_primal_normal_equations_merged_over_chunks(monkeypatch):
    """Centred sums merged chunk by chunk (7 rows a chunk, a last short one) equal one pass over
    explicitly centred features, on features with a large mean (relu of biased neurons)."""
    X, X2, Y = data(n=101, k=2)
    kw = dict(width=10, activation="relu", bias=True, b_std=3.0, ridge=0.0, seed=1, formulation="primal",
              threads=1, fit_intercept=True)
    whole = mf.RandomFeatures(**kw).fit(X, Y)
    monkeypatch.setattr(mf.RandomFeatures, "_chunk", lambda self: 7)
    chunked = mf.RandomFeatures(**kw).fit(X, Y)
    net = chunked.network_
    Phi = np.maximum(X @ net.W.T + net.b, 0.0) / np.sqrt(10)
    Phi2 = np.maximum(X2 @ net.W.T + net.b, 0.0) / np.sqrt(10)
    theta, c = reference_fit(Phi, Y, 0.0)
    assert rel(chunked.predict(X2), Phi2 @ theta + c) < LSTSQ
    assert rel(chunked.predict(X2), whole.predict(X2)) < LSTSQ


# ---------------------------------------------------------------------------------------------
# kernel ridge against the bordered system
# ---------------------------------------------------------------------------------------------
def bordered(K, Y, ridge):
    """[[K + ridge I, 1], [1^T, 0]] [a; c] = [Y; 0]."""
    n = len(K)
    A = np.block([[K + ridge * np.eye(n), np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    sol = np.linalg.solve(A, np.concatenate([Y.reshape(n, -1), np.zeros((1, Y.reshape(n, -1).shape[1]))]))
    return sol[:-1], sol[-1]


@pytest.mark.parametrize("k", [None, 3])
@pytest.mark.parametrize("ridge, solver", [(0.0, "auto"), (0.0, "eigh"), (0.3, "auto"), (0.3, "cholesky"),
                                           (0.3, "eigh"), (0.3, "cg"), (1e-3, "cg")])
def test_kernel_ridge_equals_the_bordered_system(k, ridge, solver):
    X, X2, Y = data(k=k)
    K, K2 = KERNEL(X), KERNEL(X2, X)
    a, c = bordered(K, Y, ridge)
    ref = K2 @ a + c
    tol = CG if solver == "cg" else DIRECT
    for kernel, fit_X, pred_X in ((KERNEL, X, X2), ("precomputed", K, K2)):
        reg = mf.KernelRegressor(kernel=kernel, ridge=ridge, solver=solver, tol=1e-12, fit_intercept=True)
        pred = reg.fit(fit_X, Y).predict(pred_X)
        assert rel(pred.reshape(len(X2), -1), ref) < tol
        assert rel(np.atleast_1d(reg.intercept_), c) < tol
        assert rel(reg.dual_coef_.reshape(len(X), -1), a) < (1e-5 if solver == "cg" else 1e-7)
        assert reg.n_iter_ >= 1
        if k is None:
            assert isinstance(reg.intercept_, float) and pred.shape == (len(X2),)
        else:
            assert reg.intercept_.shape == (3,) and pred.shape == (len(X2), 3)


def test_matrix_free_cg_with_intercept_equals_the_bordered_system():
    X, X2, Y = data(n=60, k=2)
    net = mf.TwoLayer(4, 256, activation="tanh", bias=True, b_std=0.2, seed=4)
    kern = mf.kernels.Empirical(net, kind="ntk", threads=1)
    a, c = bordered(kern(X), Y, 1e-2)
    reg = mf.KernelRegressor(kernel=kern, ridge=1e-2, max_dense=10, tol=1e-12, fit_intercept=True).fit(X, Y)
    assert reg.solver_ == "cg"
    assert rel(reg.predict(X2), kern(X2, X) @ a + c) < CG


def test_classifier_intercept_is_the_one_hot_regression_with_intercept():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 2))
    labels = np.array(["a", "b", "c"])
    y = labels[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    X2 = rng.standard_normal((20, 2))
    clf = mf.KernelClassifier(kernel=KERNEL, ridge=0.1, fit_intercept=True).fit(X, y)
    Y = (y[:, None] == labels[None, :]).astype(float)
    a, c = bordered(KERNEL(X), Y, 0.1)
    D = KERNEL(X2, X) @ a + c
    assert rel(clf.decision_function(X2), D) < DIRECT and rel(clf.intercept_, c) < DIRECT
    np.testing.assert_array_equal(clf.predict(X2), labels[np.argmax(D, axis=1)])
    # two classes: the decision function is the difference of the two columns, > 0 for classes_[1]
    yb = np.where(X[:, 0] > 0, "pos", "neg")
    binary = mf.KernelClassifier(kernel=KERNEL, ridge=0.1, fit_intercept=True).fit(X, yb)
    a, c = bordered(KERNEL(X), (yb[:, None] == binary.classes_[None, :]).astype(float), 0.1)
    Db = KERNEL(X2, X) @ a + c
    assert rel(binary.decision_function(X2), Db[:, 1] - Db[:, 0]) < DIRECT
    np.testing.assert_array_equal(binary.predict(X2), binary.classes_[(Db[:, 1] > Db[:, 0]).astype(int)])


# ---------------------------------------------------------------------------------------------
# the kernel flow with a trained constant
# ---------------------------------------------------------------------------------------------
def flow_reference(K, Y, t, ridge):
    """(a, c) at time t of da/dt = (1/n)(r - ridge a), dc/dt = (1/n) 1^T r, r = Y - K a - c 1,
    from 0: the last column of the exponential of the affine system's augmented matrix."""
    n = len(K)
    Y = Y.reshape(n, -1)
    M = np.block([[K + ridge * np.eye(n), np.ones((n, 1))], [K.sum(axis=0)[None, :], np.array([[n]])]])
    out = []
    for col in Y.T:
        b = np.concatenate([col, [col.sum()]])
        aug = np.zeros((n + 2, n + 2))
        aug[:n + 1, :n + 1] = -M / n
        aug[:n + 1, n + 1] = b / n
        out.append(scipy.linalg.expm(t * aug)[:n + 1, n + 1])
    Z = np.stack(out, axis=1)
    return Z[:n], Z[n]


@pytest.mark.parametrize("k", [None, 2])
@pytest.mark.parametrize("t, ridge", [(3.0, 0.0), (40.0, 0.0), (10.0, 0.2)])
def test_flow_with_intercept_equals_the_matrix_exponential(k, t, ridge):
    X, X2, Y = data(n=30, k=k)
    K, K2 = KERNEL(X), KERNEL(X2, X)
    a, c = flow_reference(K, Y, t, ridge)
    reg = mf.KernelRegressor(kernel=KERNEL, t=t, ridge=ridge, fit_intercept=True).fit(X, Y)
    assert rel(reg.predict(X2).reshape(len(X2), -1), K2 @ a + c) < FLOW
    assert rel(np.atleast_1d(reg.intercept_), c) < FLOW


def test_ridgeless_flow_with_intercept_is_the_flow_of_k_plus_1():
    """With ridge 0, c = 1^T a: the flow of the kernel K + 1 (a network's tangent kernel with a
    trained output bias)."""
    X, X2, y = data(n=30)
    K, K2 = KERNEL(X), KERNEL(X2, X)
    for t in (0.5, 20.0, np.inf):
        plus_one = mf.KernelRegressor(kernel="precomputed", t=t).fit(K + 1.0, y).predict(K2 + 1.0)
        reg = mf.KernelRegressor(kernel=KERNEL, t=t, fit_intercept=True).fit(X, y)
        assert rel(reg.predict(X2), plus_one) < FLOW
        assert reg.intercept_ == pytest.approx(reg.dual_coef_.sum(), rel=1e-9)
    assert mf.KernelRegressor(kernel=KERNEL, t=0.0, fit_intercept=True).fit(X, y).intercept_ == 0.0


def test_flow_with_ridge_tends_to_the_ridge_solution_with_intercept():
    X, X2, Y = data(n=30, k=2)
    direct = mf.KernelRegressor(kernel=KERNEL, ridge=0.2, fit_intercept=True).fit(X, Y)
    for t in (np.inf, 1e6):
        flow = mf.KernelRegressor(kernel=KERNEL, ridge=0.2, t=t, fit_intercept=True).fit(X, Y)
        assert rel(flow.predict(X2), direct.predict(X2)) < 1e-8
        assert rel(flow.intercept_, direct.intercept_) < 1e-8


# ---------------------------------------------------------------------------------------------
# shifting the targets
# ---------------------------------------------------------------------------------------------
SHIFTED = [
    ("kernel ridge", lambda fi: mf.KernelRegressor(kernel=KERNEL, ridge=0.3, fit_intercept=fi)),
    ("ridgeless", lambda fi: mf.KernelRegressor(kernel=KERNEL, fit_intercept=fi)),
    ("cg", lambda fi: mf.KernelRegressor(kernel=KERNEL, ridge=0.3, solver="cg", tol=1e-12, fit_intercept=fi)),
    ("flow t=inf", lambda fi: mf.KernelRegressor(kernel=KERNEL, ridge=0.3, t=np.inf, fit_intercept=fi)),
    ("RF primal", lambda fi: mf.RandomFeatures(width=20, activation="tanh", ridge=0.1, fit_intercept=fi)),
    ("RF kernel", lambda fi: mf.RandomFeatures(width=20, activation="tanh", formulation="kernel", ridge=0.1,
                                               fit_intercept=fi)),
    ("NT primal", lambda fi: mf.NeuralTangent(width=5, activation="tanh", ridge=0.1, fit_intercept=fi)),
    ("NT ridgeless", lambda fi: mf.NeuralTangent(width=30, activation="tanh", fit_intercept=fi)),
]


@pytest.mark.parametrize("name, make", SHIFTED, ids=[s[0] for s in SHIFTED])
def test_shifting_y_shifts_predictions_only_with_intercept(name, make):
    X, X2, Y = data(n=50, k=2)
    shift = 7.5
    base = make(True).fit(X, Y).predict(X2)
    moved = make(True).fit(X, Y + shift).predict(X2)
    np.testing.assert_allclose(moved - base, shift, rtol=0, atol=1e-7 * shift)
    base = make(False).fit(X, Y).predict(X2)
    moved = make(False).fit(X, Y + shift).predict(X2)
    assert np.abs(moved - base - shift).max() > 0.01 * shift


def test_finite_time_flow_does_not_shift_with_y():
    """At a finite time the constant and f share the flow: a shift of Y moves both."""
    X, X2, y = data(n=30)
    reg = mf.KernelRegressor(kernel=KERNEL, t=5.0, fit_intercept=True)
    delta = reg.fit(X, y + 7.5).predict(X2) - reg.fit(X, y).predict(X2)
    assert np.abs(delta - 7.5).max() > 0.01


def test_fit_intercept_must_be_a_bool():
    X, _, y = data()
    for est in (mf.KernelRegressor(kernel=KERNEL, fit_intercept="yes"), mf.RandomFeatures(fit_intercept=1)):
        with pytest.raises(TypeError, match="fit_intercept: expected True or False"):
            est.fit(X, y)


# ---------------------------------------------------------------------------------------------
# GMMM: the NT model of a quadratic network on a centred quadratic target
# ---------------------------------------------------------------------------------------------
def quadratic_form(predict, d):
    """(c, S) with predict(x) = c + x^T S x, by polarisation at 0, e_i and e_i + e_j."""
    E = np.eye(d)
    pts = [np.zeros(d)] + list(E) + [E[i] + E[j] for i in range(d) for j in range(i + 1, d)]
    v = predict(np.array(pts))
    c = v[0]
    diag = v[1:d + 1] - c
    S = np.diag(diag)
    pos = d + 1
    for i in range(d):
        for j in range(i + 1, d):
            S[i, j] = S[j, i] = (v[pos] - c - diag[i] - diag[j]) / 2.0
            pos += 1
    return c, S


def test_nt_quadratic_risk_with_and_without_intercept():
    """sigma(t) = t^2, x ~ N(0, I_d), f*(x) = x^T B x - Tr B (centred). The NT functions are
    x^T S x with S = sum_j (w_j v_j^T + v_j w_j^T) / sqrt(N) (up to |a_j| = 1 and the factor 2 of
    sigma'), i.e. every symmetric S whose block on the complement of span(w_j) vanishes,
    (I - P) S (I - P) = 0, P the projector on span(w_j) (N <= d independent w_j).

    For Gaussian x, E (x^T D x - m)^2 = 2 |D|_F^2 + (Tr D - m)^2. With a free constant c the risk of
    c + x^T S x is 2 |B - S|_F^2 + (c + Tr S)^2, at best 2 |(I - P) B (I - P)|_F^2 (c = -Tr S).
    Without it, with B_perp = (I - P) B (I - P) fixed, only the trace tau of the P-block of
    B - S interacts with the mean: 2 |B_perp|^2 + 2 tau^2 / N + (Tr PBP - tau)^2, at best
    2 |B_perp|_F^2 + 2 (Tr P B P)^2 / (N + 2).

    Least squares on n = 20000 samples (ridgeless) lands within 2% of each optimum; the fitted
    risk is computed exactly from the fitted quadratic form."""
    rng = np.random.default_rng(5)
    d, N, n = 12, 6, 20000
    A = rng.standard_normal((d, d))
    B = (A + A.T) / 2 + 1.5 * np.eye(d)     # a trace, so that the constant matters
    X = rng.standard_normal((n, d))
    y = np.einsum("ij,jk,ik->i", X, B, X) - np.trace(B)
    risks = {}
    for fi in (True, False):
        nt = mf.NeuralTangent(width=N, activation="quadratic", seed=2, threads=1, fit_intercept=fi).fit(X, y)
        c, S = quadratic_form(nt.predict, d)
        risks[fi] = 2.0 * np.sum((B - S) ** 2) + (c + np.trace(S)) ** 2
        if not fi:
            assert c == 0.0
    Q, _ = np.linalg.qr(nt.network_.W.T)
    P = Q @ Q.T
    B_perp = (np.eye(d) - P) @ B @ (np.eye(d) - P)
    best = 2.0 * np.sum(B_perp ** 2)
    best_without = best + 2.0 * np.trace(P @ B @ P) ** 2 / (N + 2)
    assert best * (1 - 1e-9) <= risks[True] <= 1.02 * best
    assert best_without * (1 - 1e-9) <= risks[False] <= 1.02 * best_without
    assert best_without > 1.5 * best                                     # the constant matters here
    # the exact risk against a Monte Carlo test risk
    Xt = rng.standard_normal((20000, d))
    yt = np.einsum("ij,jk,ik->i", Xt, B, Xt) - np.trace(B)
    nt = mf.NeuralTangent(width=N, activation="quadratic", seed=2, threads=1, fit_intercept=True).fit(X, y)
    assert 2.0 * nt.risk(Xt, yt) == pytest.approx(risks[True], rel=0.1)
