"""Numerical edges: analytic kernels at extreme scales, tiny ridges, argument bounds, bad data.

References are independent of the C++ core: adaptive quadrature (scipy.integrate.quad) on the
Gaussian law of the pre-activations, homogeneity of the ReLU kernel, the pseudo-inverse of
numpy, and the large-variance asymptotics of E[sech^4].
"""
import math
import re
import warnings

import numpy as np
import pytest
from scipy import integrate, special

import mfntk as mf
import mfntk.kernels  # noqa: F401  (mf.kernels)
from mfntk import _solvers

# ---- tolerances ----------------------------------------------------------------------------
TOL = 1e-12            # the default quad_tol: the accuracy promised when nothing is warned
REF_SLACK = 5e-14      # accuracy of the nested adaptive reference (relative to sqrt(E E))
ULPS = 8               # symmetric / cross / diagonal paths: the same formula, a few roundings apart
HOMOGENEOUS = 1e-13    # relu: K(c X) = c^2 K(X)
PINV = 1e-10           # tiny-ridge predictions against numpy's pseudo-inverse

SIGMA = {"tanh": np.tanh, "sigmoid": special.expit, "softplus": lambda u: np.logaddexp(0.0, u)}
DSIGMA = {
    "tanh": lambda u: 4.0 * np.exp(-2.0 * np.abs(u)) / (1.0 + np.exp(-2.0 * np.abs(u))) ** 2,
    "sigmoid": lambda u: special.expit(u) * special.expit(-u),
    "softplus": special.expit,
}
FEATURES = [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0]  # where sigma, sigma' turn (scale 1)


# ---------------------------------------------------------------------------------------------
# references: adaptive quadrature on the pre-activations (u, v)
# ---------------------------------------------------------------------------------------------
def _quad(f, lo, hi, marks):
    """int_lo^hi f, split at every mark inside (scipy's quad on each piece)."""
    edges = [lo] + sorted({m for m in marks if lo < m < hi}) + [hi]
    with warnings.catch_warnings():  # "roundoff error detected" at this tolerance: within REF_SLACK
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return sum(integrate.quad(f, a, b, limit=400, epsabs=0.0, epsrel=2e-14)[0] for a, b in zip(edges, edges[1:]))


def _marks(scale=None):
    out = [s * f for f in FEATURES for s in (-1.0, 1.0)]
    if scale is not None:
        out += [k * scale for k in (-3.0, -1.0, 1.0, 3.0)]
    return out


def reference(activation, deriv, s1, s2, rho):
    """E[g(u) g(v)], g = sigma or sigma', sd(u) = s1, sd(v) = s2, corr rho: 1-D for rho = +-1,
    otherwise nested (outer over the variable of the smaller standard deviation)."""
    g = (DSIGMA if deriv else SIGMA)[activation]
    if s1 > s2:
        s1, s2 = s2, s1
    pdf = lambda t: math.exp(-0.5 * (t / s1) ** 2) / (s1 * math.sqrt(2.0 * math.pi))  # noqa: E731
    beta = math.sqrt(max(0.0, (1.0 - rho) * (1.0 + rho)))
    lam, sd = rho * s2 / s1, s2 * beta
    if sd == 0.0:
        inner = lambda t: float(g(lam * t))  # noqa: E731
    else:
        def inner(t):
            m = lam * t
            f = lambda x: float(g(x)) * math.exp(-0.5 * ((x - m) / sd) ** 2) / (sd * math.sqrt(2.0 * math.pi))  # noqa: E731
            return _quad(f, m - 10 * sd, m + 10 * sd, _marks() + [m + k * sd for k in (-3, -1, 0, 1, 3)])
    marks = _marks(s1) + ([f / abs(lam) * s for f in FEATURES for s in (-1, 1)] if lam else [])
    return _quad(lambda t: float(g(t)) * pdf(t) * inner(t), -10 * s1, 10 * s1, marks)


def energy(activation, deriv, s):
    return reference(activation, deriv, s, s, 1.0)


def quadrature_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, mf.kernels.QuadratureWarning)]


def stated_bound(messages):
    """The relative accuracy a QuadratureWarning states."""
    found = [float(m) for msg in messages for m in re.findall(r"relative accuracy of ([0-9.e+-]+) only", msg)]
    assert found, messages
    return max(found)


# ---------------------------------------------------------------------------------------------
# item: the quadrature is accurate, or says how inaccurate it is, for every variance
# ---------------------------------------------------------------------------------------------
SCALES = [1e-3, 0.5, 3.0, 20.0, 90.0, 1e3, 1e4]


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize("kind", ["rf", "nt"])
def test_quadrature_within_its_bound_from_tiny_to_huge_variances(activation, kind):
    """Collinear points (correlations +-1, variances from 1e-6 to 1e8): every entry is a 1-D
    integral, so every entry is checked. Before: tanh nt off by 47% / 85% / 100% at s = 20, 30,
    100 while stating 4e-2, and 0 without a warning at s >= 1000."""
    deriv = kind == "nt"
    s = np.array(SCALES + [c / 3.0 for c in SCALES] + [-c / 7.0 for c in SCALES])
    X = np.stack([s, np.zeros_like(s)], axis=1)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        K, info = mf.kernels.analytic(X, activation=activation, kind=kind, w_std=1.0, return_info=True)
    msgs = quadrature_warnings(rec)
    allowed = stated_bound(msgs) if msgs else TOL
    sd = np.abs(s)
    E = [energy(activation, deriv, v) for v in sd]
    worst = 0.0
    for i in range(len(s)):
        for j in range(i + 1):
            rho = float(np.sign(s[i] * s[j]))
            ref = reference(activation, deriv, sd[i], sd[j], rho)
            got = K[i, j] / (s[i] * s[j]) if deriv else K[i, j]
            worst = max(worst, abs(got - ref) / math.sqrt(E[i] * E[j]))
    assert worst <= allowed + REF_SLACK, (worst, allowed, info)
    assert not msgs  # with the automatic order every entry meets the default tolerance


@pytest.mark.parametrize("activation,kind,s1,s2,rho", [
    ("tanh", "nt", 30.0, 30.0, 0.999),
    ("tanh", "rf", 1e3, 500.0, 0.97),
    ("sigmoid", "nt", 100.0, 50.0, 0.9999),
    ("sigmoid", "rf", 20.0, 20.0, -0.999),
    ("softplus", "rf", 90.0, 90.0, 0.99999),
    ("softplus", "nt", 300.0, 150.0, 0.995),
])
def test_quadrature_near_identical_points_at_large_variance(activation, kind, s1, s2, rho):
    """Correlations near +-1 at large variances: the Mehler series cannot converge there (it
    needs ~s^2 terms); the entry is integrated directly and meets the tolerance."""
    deriv = kind == "nt"
    X1 = np.array([[s1, 0.0]])
    X2 = np.array([[s2 * rho, s2 * math.sqrt((1 - rho) * (1 + rho))]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        K, info = mf.kernels.analytic(X1, X2, activation=activation, kind=kind, w_std=1.0, return_info=True)
    assert info["direct_f"] + info["direct_d"] == 1
    got = K[0, 0] / (s1 * s2 * rho) if deriv else K[0, 0]
    ref = reference(activation, deriv, s1, s2, rho)
    norm = math.sqrt(energy(activation, deriv, s1) * energy(activation, deriv, s2))
    assert abs(got - ref) / norm <= TOL + REF_SLACK


@pytest.mark.parametrize("s", [20.0, 30.0, 100.0])
def test_fixed_order_warning_states_a_true_bound(s):
    """A fixed quad_order (series only): the warning's bound is at least the actual error."""
    X = np.array([[s, 0.0], [0.6 * s, 0.8 * s]])
    with pytest.warns(mf.kernels.QuadratureWarning, match="relative accuracy") as rec:
        K = mf.kernels.analytic(X, activation="tanh", kind="nt", w_std=1.0, quad_order=512)
    bound = stated_bound(quadrature_warnings(rec))
    E = energy("tanh", True, s)
    err_diag = abs(K[0, 0] / (s * s) - E) / E
    err_off = abs(K[0, 1] / (0.6 * s * s) - reference("tanh", True, s, s, 0.6)) / E
    assert max(err_diag, err_off) <= bound + REF_SLACK
    assert err_diag > 1e-3  # the series really is inaccurate there: the warning is needed


@pytest.mark.parametrize("s", [1e3, 1e6, 1e12])
def test_huge_variance_is_never_a_silent_zero(s):
    """E[sech^2(u)^2] ~ (4/3) / (s sqrt(2 pi)) (1 + O(s^-2)) for large s: before, 0 without a warning."""
    X = np.array([[s, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        K = mf.kernels.analytic(X, activation="tanh", kind="nt", w_std=1.0)
        D = mf.kernels.Analytic(activation="tanh", kind="nt", w_std=1.0).diag(X)
    asymptotic = (4.0 / 3.0) / (s * math.sqrt(2.0 * math.pi))
    exact = asymptotic if s >= 1e6 else energy("tanh", True, s)
    assert K[0, 0] / (s * s) == pytest.approx(exact, rel=1e-11)
    assert D[0] == K[0, 0]


# ---------------------------------------------------------------------------------------------
# item: scaled form, and the symmetric, cross and diagonal paths agree
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rf", "nt", "ntk"])
def test_relu_kernel_is_homogeneous_over_every_scale(kind):
    """K(c X) = c^2 K(X) (relu, no bias): finite from c = 1e-150 to 1e150. Before: NaN / inf
    below ~1e-81 and above ~1e77 (q1 q2 under- / overflowed)."""
    X = np.random.default_rng(0).standard_normal((6, 3))
    k = mf.kernels.Analytic(activation="relu", kind=kind, w_std=1.0)
    K1 = k(X)
    for e in (-150, -100, -81, -40, 0, 40, 77, 100, 150):
        c = 10.0 ** e
        Kc = k(c * X)
        assert np.all(np.isfinite(Kc)), e
        np.testing.assert_allclose(Kc / (c * c), K1, rtol=HOMOGENEOUS, atol=0, err_msg=str(e))
        np.testing.assert_allclose(k(c * X, X) / c, K1, rtol=HOMOGENEOUS, atol=0, err_msg=str(e))


def assert_ulps(A, B, dtype, what):
    tol = ULPS * np.finfo(dtype).eps * np.abs(B).max()
    assert np.abs(A.astype(np.float64) - B.astype(np.float64)).max() <= tol, what


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_symmetric_cross_and_diagonal_paths_agree(activation, dtype):
    """K(X, X) == K(X) and diag == diagonal of K to a few ulps. Before: relu differed by 5e-9
    (float64) and 6.6e-5 (float32) on the diagonal (rho = 1 - O(eps) there, infinite slope)."""
    X = np.random.default_rng(1).standard_normal((40, 5)).astype(dtype)
    k = mf.kernels.Analytic(activation=activation, kind="ntk", b_std=0.3)
    K, Kc, D = k(X), k(X, X), k.diag(X)
    assert K.dtype == Kc.dtype == D.dtype == dtype
    assert np.array_equal(K, K.T)
    assert_ulps(Kc, K, dtype, "cross vs symmetric")
    assert_ulps(D, np.diag(K), dtype, "diag vs diagonal")


@pytest.mark.parametrize("scale", [1e-100, 1.0, 1e100])
def test_tanh_diag_equals_the_diagonal_at_extreme_scales(scale):
    """Before: at 1e100 Analytic.diag gave 7.7e-34 (rho computed as 0) and K's diagonal 0.99."""
    X = scale * np.random.default_rng(2).standard_normal((5, 3))
    k = mf.kernels.Analytic(activation="tanh", kind="rf", w_std=1.0)
    K, D = k(X), k.diag(X)
    assert np.all(np.isfinite(K))
    assert_ulps(D, np.diag(K), np.float64, "diag")
    if scale == 1e100:  # saturated: E[sign(u)^2] = 1 up to O(1/s)
        np.testing.assert_allclose(D, 1.0, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# item: tiny ridges
# ---------------------------------------------------------------------------------------------
def rank_deficient(n=40, r=10, m=7, seed=3):
    rng = np.random.default_rng(seed)
    Phi, Phi2 = rng.standard_normal((n, r)), rng.standard_normal((m, r))
    return Phi @ Phi.T, Phi2 @ Phi.T, rng.standard_normal(n)


@pytest.mark.parametrize("solver", ["auto", "eigh", "cholesky"])
@pytest.mark.parametrize("ridge", [1e-30, 1e-14])
def test_ridge_below_the_numerical_floor_is_ridgeless_and_said(solver, ridge):
    """Before: ridge=1e-30 with solver='eigh' predicted values off by 1e16, without a warning."""
    K, K2, y = rank_deficient()
    n = K.shape[0]
    ref = K2 @ np.linalg.pinv(K, rcond=n * np.finfo(np.float64).eps, hermitian=True) @ y
    with pytest.warns(_solvers.NumericalRidgeWarning, match="numerical floor"):
        pred = mf.KernelRegressor(kernel="precomputed", ridge=ridge, solver=solver).fit(K, y).predict(K2)
    assert np.abs(pred - ref).max() <= PINV * np.abs(ref).max()
    # the same at t = inf through the kernel flow, and through the factor itself
    with pytest.warns(_solvers.NumericalRidgeWarning):
        flow = mf.KernelRegressor(kernel="precomputed", ridge=ridge, t=np.inf).fit(K, y).predict(K2)
    assert np.abs(flow - ref).max() <= PINV * np.abs(ref).max()


def test_ridge_above_the_floor_is_used_silently():
    K, K2, y = rank_deficient()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = mf.KernelRegressor(kernel="precomputed", ridge=1e-3, solver="eigh").fit(K, y).predict(K2)
    ref = K2 @ np.linalg.solve(K + 1e-3 * np.eye(K.shape[0]), y)
    assert np.abs(pred - ref).max() <= 1e-9 * np.abs(ref).max()


@pytest.mark.parametrize("ridge", [0.0, 1e-30])
def test_cg_refuses_a_singular_system(ridge):
    """Before: coefficients of 1e11-1e14 with only a ConvergenceWarning."""
    K, _, y = rank_deficient()
    with pytest.raises(np.linalg.LinAlgError, match="singular to working precision.*solver='eigh'"):
        mf.KernelRegressor(kernel="precomputed", ridge=ridge, solver="cg").fit(K, y)


def test_cg_still_solves_a_consistent_singular_system():
    K, K2, _ = rank_deficient()
    y = K @ np.random.default_rng(4).standard_normal(K.shape[0])  # in the range of K
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = mf.KernelRegressor(kernel="precomputed", solver="cg", tol=1e-10).fit(K, y)
    ref = K2 @ np.linalg.pinv(K, hermitian=True) @ y
    assert np.abs(reg.predict(K2) - ref).max() <= 1e-8 * np.abs(ref).max()


# ---------------------------------------------------------------------------------------------
# item: arguments out of range, targets, non-finite particles
# ---------------------------------------------------------------------------------------------
def small_problem():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 3))
    return X, np.sin(X[:, 0]), mf.TwoLayer(3, 8, seed=1)


@pytest.mark.parametrize("kw,match", [
    (dict(threads=2 ** 31), r"threads: must be <= 1024, got 2147483648"),
    (dict(seed=2 ** 64), r"seed: must be <= 9223372036854775807, got 18446744073709551616"),
    (dict(cache_mb=1e30), r"cache_mb: must be <= 1.07374e\+09, got 1e\+30"),
    (dict(t_max=1e300, dt=1e-300), r"t_max, dt: t_max / dt = inf steps .* too many; at most 2\*\*53"),
    (dict(t_max=1.0, dt=1e-16), r"t_max, dt: t_max / dt = 1e\+16 steps .* too many"),
])
def test_simulate_arguments_out_of_range(kw, match):
    """Before: raw binding TypeErrors (threads, seed, cache_mb) and an OverflowError (steps)."""
    X, y, net = small_problem()
    args = dict(t_max=0.1, dt=0.05)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        mf.simulate(net, (X, y), progress=False, **args)


def test_other_entry_points_bound_threads_and_seeds():
    X, _, _ = small_problem()
    with pytest.raises(ValueError, match="threads: must be <= 1024"):
        mf.kernels.analytic(X, threads=2 ** 31)
    with pytest.raises(ValueError, match="seed: must be <= 9223372036854775807"):
        mf.TwoLayer(3, 8, seed=2 ** 64)
    mf.TwoLayer(3, 8, seed=2 ** 63 - 1)  # the largest seed is fine


def test_logistic_loss_refuses_labels_that_are_not_pm1():
    """Before: accepted any targets (the loss is then not the logistic classification loss)."""
    X, y, net = small_problem()
    with pytest.raises(ValueError, match=r"data.y: the logistic loss needs labels y in \{-1, \+1\}; got -?0\.\d+ in row 0"):
        mf.simulate(net, (X, y), t_max=0.1, dt=0.05, loss="logistic", progress=False)
    with pytest.raises(ValueError, match=r"data.y: .* got 0 in row 0 \(6 of 12 targets are not \+-1\)"):
        mf.simulate(net, (X, (np.arange(12) % 2).astype(float)), t_max=0.1, dt=0.05, loss="logistic",
                    progress=False)
    with pytest.raises(ValueError, match=r"Y: the logistic loss needs labels"):
        mf._simulate.dd_field(net, X, y, loss="logistic")
    ypm = np.where(y > 0, 1.0, -1.0)
    traj = mf.simulate(net, (X, ypm), t_max=0.1, dt=0.05, loss="logistic", progress=False)
    assert np.all(np.isfinite(traj.train_risk))


@pytest.mark.parametrize("part", ["a", "W"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_particles_are_refused(part, bad):
    """Before: relu masked a NaN in W, so predict looked finite, and simulate blamed the dynamics."""
    X, y, net = small_problem()
    arr = getattr(net, part).copy()
    arr[2, 0] = bad
    setattr(net, part, arr)
    what = "NaN" if np.isnan(bad) else "inf"
    with pytest.raises(ValueError, match=rf"net\.{part}: contains {what} \(first non-finite value in row 2\)"):
        net.predict(X)
    with pytest.raises(ValueError, match=rf"net\.{part}: contains {what}"):
        mf.simulate(net, (X, y), t_max=0.1, dt=0.05, progress=False)
    theta = mf.TwoLayer(3, 8, seed=1).get_flat()
    theta[3] = bad
    with pytest.raises(ValueError, match=rf"theta \(its a block\): contains {what}"):
        mf.TwoLayer(3, 8, seed=1).set_flat(theta)
