"""Infinite-width (analytic) and empirical tangent kernels (SPEC 4, 5).

References used here: known values of the two-layer ReLU kernels, Monte Carlo estimates with
numpy (independent of the C++ core), an independent numpy tensor Gauss-Hermite rule, the
closed forms against the core's quadrature, and the empirical kernel of wide networks
(rate N^-1/2, fitted slope).
"""
import math

import numpy as np
import pytest
from scipy import special

import mfntk as mf
import mfntk.kernels  # noqa: F401  (mf.kernels)

# ---- tolerances ----------------------------------------------------------------------------
EXACT = 1e-13          # identities that hold to rounding (float64)
QUAD_VS_CLOSED = 1e-10  # core quadrature against closed forms (erf, identity, quadratic)
QUAD_VS_NUMPY = 1e-9    # core quadrature against an independent order-160 tensor rule (smooth sigma, s <= 1)
MC_SIGMAS = 5.0         # Monte Carlo: allowed error in standard errors
F32 = 2e-5              # float32 kernels against float64, relative to the largest entry
SAME_POINT = 1e-14      # K(x, x) through k(X, X) rather than k(X) (the same formula, see the test)
SLOPE_RANGE = (-0.65, -0.35)  # fitted slope of log error against log N (theory: -1/2)

SIGMA = {
    "relu": lambda u: np.maximum(u, 0.0),
    "tanh": np.tanh,
    "erf": special.erf,
    "sigmoid": special.expit,
    "softplus": lambda u: np.logaddexp(0.0, u),
    "quadratic": lambda u: u * u + 0.3,  # c0 = 0.3 in these tests
    "identity": lambda u: u,
}
DSIGMA = {
    "relu": lambda u: (u > 0).astype(float),
    "tanh": lambda u: 1.0 / np.cosh(u) ** 2,
    "erf": lambda u: 2.0 / math.sqrt(math.pi) * np.exp(-u * u),
    "sigmoid": lambda u: special.expit(u) * special.expit(-u),
    "softplus": special.expit,
    "quadratic": lambda u: 2.0 * u,
    "identity": np.ones_like,
}
C0 = 0.3
CLOSED = ["relu", "erf", "quadratic", "identity"]
SMOOTH_QUAD = ["tanh", "sigmoid", "softplus"]


def points(n, d, seed=0, radius=None):
    """Gaussian points, optionally rescaled to a sphere of the given radius."""
    X = np.random.default_rng(seed).standard_normal((n, d))
    if radius is not None:
        X *= radius / np.linalg.norm(X, axis=1, keepdims=True)
    return X


# ---------------------------------------------------------------------------------------------
# known values
# ---------------------------------------------------------------------------------------------
def test_relu_known_values_on_unit_vectors():
    """Two-layer ReLU, w ~ N(0, I), unit vectors at cosine u (SPEC 5's definitions).

    K_rf(u) = E[relu(w.x) relu(w.x')] = (sin t + (pi - t) cos t) / (2 pi), t = arccos u:
    K_rf(1) = 1/2, K_rf(0) = 1/(2 pi). K_nt(u) = <x, x'> E[1{w.x > 0} 1{w.x' > 0}]
    = u (pi - t) / (2 pi): K_nt(1) = 1/2, K_nt(0) = 0. Hence NTK(1) = 1 and NTK(0) = 1/(2 pi).
    Both parts are homogeneous of degree one in each argument, so for |x| = r, |x'| = r' every
    value is multiplied by r r'.
    """
    X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    want = {"rf": [0.5, 1 / (2 * np.pi)], "nt": [0.5, 0.0], "ntk": [1.0, 1 / (2 * np.pi)]}
    for kind, (at1, at0) in want.items():
        K = mf.kernels.analytic(X, activation="relu", kind=kind, w_std=1.0)
        np.testing.assert_allclose(K, [[at1, at0], [at0, at1]], rtol=0, atol=EXACT)
        r, r2 = 2.0, 3.0
        K2 = mf.kernels.analytic(r * X[:1], r2 * X, activation="relu", kind=kind, w_std=1.0)
        np.testing.assert_allclose(K2, r * r2 * np.array([[at1, at0]]), rtol=1e-14, atol=EXACT)
    # an intermediate angle, against the formula written out
    u = 0.3
    x2 = np.array([[u, math.sqrt(1 - u * u), 0.0]])
    t = math.acos(u)
    rf = (math.sin(t) + (math.pi - t) * math.cos(t)) / (2 * math.pi)
    nt = u * (math.pi - t) / (2 * math.pi)
    got = mf.kernels.analytic(X[:1], x2, activation="relu", kind="ntk", w_std=1.0)
    assert got[0, 0] == pytest.approx(rf + nt, abs=EXACT)


def test_relu_kernel_near_antiparallel_points():
    """x' at angle pi - delta from x: pi - theta = delta, so K_nt = <x, x'> delta / (2 pi) keeps
    its relative accuracy as delta -> 0 (pi minus an arctangent near pi would lose it)."""
    x = np.array([[1.0, 0.0, 0.0]])
    for delta in (1e-3, 1e-6, 1e-9):
        x2 = np.array([[-math.cos(delta), math.sin(delta), 0.0]])
        exact_delta = math.atan2(x2[0, 1], -x2[0, 0])   # the angle of the rounded x'
        want = x2[0, 0] * exact_delta / (2 * math.pi)
        got = mf.kernels.analytic(x, x2, activation="relu", kind="nt", w_std=1.0)[0, 0]
        assert got == pytest.approx(want, rel=1e-12, abs=0.0)


def test_other_closed_forms_known_values():
    x = np.array([[1.0]])
    # erf, Williams: (2/pi) arcsin(2/3) at Var = Cov = 1
    assert mf.kernels.analytic(x, activation="erf", kind="rf", w_std=1.0)[0, 0] == pytest.approx(
        2 / np.pi * np.arcsin(2 / 3), abs=EXACT)
    # erf': (4/pi) / sqrt(9 - 4) at Var = Cov = 1, times <x, x> = 1
    assert mf.kernels.analytic(x, activation="erf", kind="nt", w_std=1.0)[0, 0] == pytest.approx(
        4 / np.pi / np.sqrt(5.0), abs=EXACT)
    # quadratic: E[(u^2 + c0)^2] = 3 + 2 c0 + c0^2 at Var = 1; identity with bias: Cov + b^2, (<x,x'> + 1)
    assert mf.kernels.analytic(x, activation="quadratic", kind="rf", w_std=1.0, c0=C0)[0, 0] == pytest.approx(
        3 + 2 * C0 + C0 ** 2, abs=EXACT)
    K = mf.kernels.analytic(x, np.array([[2.0]]), activation="identity", kind="ntk", w_std=1.0, b_std=0.5, a_std=2.0)
    assert K[0, 0] == pytest.approx((2.0 + 0.25) + 4.0 * (2.0 + 1.0), abs=EXACT)


# ---------------------------------------------------------------------------------------------
# closed forms against Monte Carlo (numpy, independent of the core) and against quadrature
# ---------------------------------------------------------------------------------------------
def monte_carlo(activation, X, w_std, b_std, a_std, bias, samples, seed):
    """Per-pair samples of the rf and nt integrands, from numpy draws of (w, b)."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    W = w_std * rng.standard_normal((samples, d))
    b = b_std * rng.standard_normal(samples) if bias else np.zeros(samples)
    Z = X @ W.T + b  # (n, samples)
    S, D = SIGMA[activation](Z), DSIGMA[activation](Z)
    G = X @ X.T + (1.0 if bias else 0.0)
    rf = S[:, None, :] * S[None, :, :]
    nt = a_std ** 2 * G[:, :, None] * D[:, None, :] * D[None, :, :]
    return rf, nt


@pytest.mark.parametrize("activation", CLOSED + SMOOTH_QUAD)
@pytest.mark.parametrize("bias", [False, True])
def test_analytic_against_monte_carlo(activation, bias):
    X = points(4, 3, seed=1, radius=math.sqrt(3))
    w_std, b_std, a_std = 1 / math.sqrt(3), (0.4 if bias else 0.0), 1.3
    rf_s, nt_s = monte_carlo(activation, X, w_std, b_std, a_std, bias, samples=100_000, seed=2)
    for kind, samp in (("rf", rf_s), ("nt", nt_s), ("ntk", rf_s + nt_s)):
        K = mf.kernels.analytic(X, activation=activation, kind=kind, w_std=w_std, b_std=b_std, a_std=a_std,
                                bias=bias, c0=C0)
        mean, se = samp.mean(axis=2), samp.std(axis=2) / math.sqrt(samp.shape[2])
        assert np.all(np.abs(K - mean) <= MC_SIGMAS * se + 1e-12), (kind, np.max(np.abs(K - mean) / (se + 1e-300)))


@pytest.mark.parametrize("activation", ["erf", "identity", "quadratic"])
@pytest.mark.parametrize("kind", ["rf", "nt", "ntk"])
def test_quadrature_equals_closed_forms(activation, kind):
    X, X2 = points(6, 4, seed=3, radius=2.0), points(5, 4, seed=4)
    kw = dict(activation=activation, kind=kind, b_std=0.3, c0=C0)
    closed = mf.kernels.analytic(X, X2, method="closed", **kw)
    quad, info = mf.kernels.analytic(X, X2, method="quadrature", return_info=True, **kw)
    assert info["quadrature"] and not mf.kernels.analytic(X, X2, return_info=True, **kw)[1]["quadrature"]
    np.testing.assert_allclose(quad, closed, rtol=0, atol=QUAD_VS_CLOSED * max(1.0, np.abs(closed).max()))


def test_relu_quadrature_warns_and_converges_slowly():
    X = points(3, 2, seed=5, radius=math.sqrt(2))
    closed = mf.kernels.analytic(X, activation="relu", kind="rf")
    with pytest.warns(mf.kernels.QuadratureWarning, match="not smooth"):
        quad = mf.kernels.analytic(X, activation="relu", kind="rf", method="quadrature", quad_order=256)
    err = np.abs(quad - closed).max()
    assert 1e-9 < err < 1e-2  # algebraic, not spectral, convergence


def numpy_tensor_quadrature(activation, q1, q2, c, deriv, order=160):
    """E[g(u) g(v)] by a tensor Gauss-Hermite rule written with numpy (independent of the core)."""
    z, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    s1, s2 = math.sqrt(q1), math.sqrt(q2)
    rho = c / (s1 * s2)
    Z1, Z2 = np.meshgrid(z, z, indexing="ij")
    g = (DSIGMA if deriv else SIGMA)[activation]
    return float(np.sum(np.outer(w, w) * g(s1 * Z1) * g(s2 * (rho * Z1 + math.sqrt(1 - rho * rho) * Z2))))


@pytest.mark.parametrize("activation", SMOOTH_QUAD)
def test_quadrature_against_independent_tensor_rule(activation):
    d = 3
    X = points(4, d, seed=6, radius=math.sqrt(d))  # Var u = 1 with w_std = 1/sqrt(d)
    q = 1.0
    for kind in ("rf", "nt"):
        K = mf.kernels.analytic(X, activation=activation, kind=kind)
        for i in range(4):
            for j in range(i + 1):
                g = X[i] @ X[j]
                c = g / d
                ref = numpy_tensor_quadrature(activation, q, q, min(c, 1.0), deriv=kind == "nt")
                if kind == "nt":
                    ref *= g
                assert K[i, j] == pytest.approx(ref, abs=QUAD_VS_NUMPY)


def test_quadrature_accuracy_report_and_warning():
    x = np.array([[1.0, 0.0]])
    K, info = mf.kernels.analytic(x, activation="tanh", kind="ntk", w_std=1.0, return_info=True)
    assert info["bound_f"] <= 1e-12 and info["bound_d"] <= 1e-12 and info["order"] >= 128
    # a large variance: the tolerance cannot be met with a small rule -> warning with the accuracy
    with pytest.warns(mf.kernels.QuadratureWarning, match="relative accuracy"):
        mf.kernels.analytic(5 * x, activation="tanh", kind="nt", w_std=1.0, quad_order=64)
    # looser tolerance: no warning (32 terms leave a relative tail of 0.2 here, the actual error
    # of the diagonal entry: the bound is met for quad_tol = 0.5, not 0.1)
    mf.kernels.analytic(5 * x, activation="tanh", kind="nt", w_std=1.0, quad_order=64, quad_tol=0.5)


def test_hermite_rule_matches_numpy():
    from mfntk import _core

    for m in (1, 7, 40, 120):
        z, w = _core.hermite_rule(m)
        zr, wr = np.polynomial.hermite_e.hermegauss(m)
        np.testing.assert_allclose(z, zr, atol=1e-12)
        np.testing.assert_allclose(w, wr / wr.sum(), atol=1e-15)


# ---------------------------------------------------------------------------------------------
# empirical kernel of wide networks -> analytic, rate N^-1/2
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation,bias", [("relu", False), ("tanh", True), ("erf", True)])
def test_empirical_converges_to_analytic_at_rate_inverse_sqrt_width(activation, bias):
    d = 5
    X = points(12, d, seed=7, radius=math.sqrt(d))
    widths = [256, 1024, 4096, 16384]
    errors = []
    target = None
    for N in widths:
        errs = []
        for seed in range(4):
            net = mf.TwoLayer(d, N, activation=activation, bias=bias, b_std=0.5 if bias else 0.0, seed=seed)
            if target is None:
                target = mf.kernels.Analytic.from_network(net, kind="ntk")(X)
            Ke = mf.kernels.Empirical(net, kind="ntk")(X)
            errs.append(np.linalg.norm(Ke - target) / np.linalg.norm(target))
        errors.append(np.mean(errs))
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert SLOPE_RANGE[0] < slope < SLOPE_RANGE[1], (slope, errors)


def test_from_network_pairs_with_multi_output_nets():
    """With k outputs every output's kernel tends to the analytic kernel with E a_p^2 = a_std^2
    (no factor k): the mean kernel and the diagonal blocks of the matrix kernel approach it, the
    blocks off the diagonal approach 0."""
    d, k = 4, 3
    X = points(6, d, seed=8, radius=2.0)
    net = mf.TwoLayer(d, 20000, activation="relu", outputs=k, a_std=0.7, seed=1)
    kern = mf.kernels.Analytic.from_network(net, kind="nt")
    assert kern.a_std == 0.7
    Ka = kern(X)
    Ke = mf.kernels.empirical(net, X, kind="nt")
    assert np.linalg.norm(Ke - Ka) / np.linalg.norm(Ka) < 0.05
    B = mf.kernels.empirical(net, X, kind="nt", output="matrix").reshape(6, k, 6, k)
    for p in range(k):
        assert np.linalg.norm(B[:, p, :, p] - Ka) / np.linalg.norm(Ka) < 0.05
        for q in range(p):
            assert np.linalg.norm(B[:, p, :, q]) / np.linalg.norm(Ka) < 0.05
    assert mf.kernels.Empirical(net, kind="nt").analytic() == kern


# ---------------------------------------------------------------------------------------------
# properties of the computation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_symmetric_path_threads_diag_and_dtype(activation):
    X = points(70, 6, seed=9)
    k = mf.kernels.Analytic(activation=activation, kind="ntk", b_std=0.2)
    K = k(X)
    assert np.array_equal(K, K.T)
    # k(X, X) gets correlation 1 exactly for identical rows too (1 - rho from |a - a'|^2 / 2 for
    # nearly parallel points), so relu's infinite slope at correlation 1 costs nothing there.
    np.testing.assert_allclose(K, k(X, X), rtol=SAME_POINT, atol=SAME_POINT)
    off = ~np.eye(len(X), dtype=bool)
    np.testing.assert_allclose(K[off], k(X, X)[off], rtol=1e-12, atol=1e-12)
    k1 = mf.kernels.Analytic(activation=activation, kind="ntk", b_std=0.2, threads=1)
    assert np.array_equal(k1(X), K)  # thread count does not change a bit
    np.testing.assert_allclose(k.diag(X), np.diag(K), rtol=1e-13, atol=1e-13)
    K32 = k(X.astype(np.float32))
    assert K32.dtype == np.float32
    assert np.abs(K32 - K).max() <= F32 * np.abs(K).max()


def test_inputs_left_unmodified_and_list_inputs():
    X = points(5, 3, seed=10)
    X2 = points(4, 3, seed=11)
    X0, X20 = X.copy(), X2.copy()
    K = mf.kernels.analytic(X, X2, activation="tanh")
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(X2, X20)
    np.testing.assert_array_equal(mf.kernels.analytic(X.tolist(), X2.tolist(), activation="tanh"), K)


def test_empirical_objects_and_matrix_free_products():
    d = 4
    net = mf.TwoLayer(d, 300, activation="softplus", bias=True, b_std=0.3, outputs=2, seed=3)
    X, X2 = points(9, d, seed=12), points(5, d, seed=13)
    V = np.random.default_rng(14).standard_normal((9, 3))
    for kind in ("rf", "nt", "ntk"):
        k = mf.kernels.Empirical(net, kind=kind)
        K = k(X)
        np.testing.assert_array_equal(K, mf.kernels.empirical(net, X, kind=kind))
        np.testing.assert_allclose(k.matvec(X, V), K @ V, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(k.matvec(X, V[:, 0]), K @ V[:, 0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(k.cross_matvec(X2, X, V), k(X2, X) @ V, rtol=1e-12, atol=1e-12)
    # the kernel object is a snapshot of the particles
    k = mf.kernels.Empirical(net)
    K = k(X)
    net.W += 1.0
    np.testing.assert_array_equal(k(X), K)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_argument_errors():
    X = points(3, 2)
    with pytest.raises(ValueError, match="kind"):
        mf.kernels.analytic(X, kind="foo")
    with pytest.raises(ValueError, match="activation"):
        mf.kernels.analytic(X, activation="gelu")
    with pytest.raises(TypeError, match="activation"):
        mf.kernels.Analytic(activation=None)
    with pytest.raises(ValueError, match="method"):
        mf.kernels.analytic(X, activation="tanh", method="closed")
    with pytest.raises(ValueError, match="method"):
        mf.kernels.analytic(X, method="exact")
    with pytest.raises(ValueError, match="X2"):
        mf.kernels.analytic(X, points(2, 3))
    with pytest.raises(ValueError, match="X: contains NaN"):
        mf.kernels.analytic(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        mf.kernels.analytic(np.ones(3))
    with pytest.raises(ValueError, match="w_std"):
        mf.kernels.analytic(X, w_std=-1.0)
    with pytest.raises(ValueError, match="a_std"):
        mf.kernels.Analytic(a_std=np.inf)
    with pytest.raises(ValueError, match="quad_tol"):
        mf.kernels.analytic(X, activation="tanh", quad_tol=1e-20)
    with pytest.raises(ValueError, match="quad_order"):
        mf.kernels.analytic(X, activation="tanh", quad_order=0)
    with pytest.raises(TypeError, match="bias"):
        mf.kernels.analytic(X, bias="yes")
    with pytest.raises(TypeError, match="threads"):
        mf.kernels.analytic(X, threads=1.5)
    with pytest.raises(TypeError, match="net"):
        mf.kernels.Empirical(object())
    net = mf.TwoLayer(2, 8)
    with pytest.raises(ValueError, match="kind"):
        mf.kernels.Empirical(net, kind="rff")
    with pytest.raises(ValueError, match="X: expected 2 columns"):
        mf.kernels.empirical(net, points(3, 3))
    with pytest.raises(ValueError, match="V: expected 3 rows"):
        mf.kernels.Empirical(net).matvec(X, np.ones((4, 1)))
    with pytest.raises(ValueError, match="set_params"):
        mf.kernels.Analytic().set_params(foo=1)
