"""mf.theory against exact finite-d computations (GMMM quadratic-target and mixture settings, the
concentration of the empirical tangent kernel).

References: the population risk of a class of quadratic forms by Isserlis' theorem (a
Frobenius least-squares problem, solved by numpy), checked itself against Monte Carlo; least
squares on Monte Carlo samples with numpy feature matrices; the best network by direct
minimisation (scipy L-BFGS); averages over draws of the random first-layer weights; explicit
numpy kernels for the concentration of the empirical kernel.
"""
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from threadpoolctl import threadpool_limits

import mfntk as mf
import reference as ref

MC_SIGMAS = 5.0  # Monte Carlo: allowed error in standard errors


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """The matrices here are small (d <= 400, N <= 800): one BLAS thread is the fastest, and keeps these
    tests from spinning threads on a loaded machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def psd(d, seed, rank=None):
    A = np.random.default_rng(seed).standard_normal((d, rank or d))
    return A @ A.T / d


# ---- exact finite-d references ---------------------------------------------------------------
def rf_risk_exact(B, W):
    """min over a of E[(f*(x) - sum_i a_i (<w_i, x>^2 - 1))^2] / ||f*||^2, f* = <x, B x> - Tr B.

    Isserlis: E[f* phi_i] = 2 w_i^T B w_i, E[phi_i phi_j] = 2 <w_i, w_j>^2 + (|w_i|^2 - 1)(|w_j|^2 - 1).
    """
    n2 = np.sum(W * W, axis=1)
    G = 2.0 * (W @ W.T) ** 2 + np.outer(n2 - 1.0, n2 - 1.0)
    b = 2.0 * np.einsum("ij,jk,ik->i", W, B, W)
    norm2 = 2.0 * np.sum(B * B)
    return (norm2 - b @ np.linalg.lstsq(G, b, rcond=None)[0]) / norm2


def nt_risk_exact(B, W, intercept=True, b0=None):
    """min over (c,) a_i in R^d of E[(f*(x) - (c) - sum_i <a_i, x> 2 <w_i, x>)^2] / ||f*||^2, f* = <x, B x> + b0,
    by least squares over the N d coefficients in the Isserlis inner product
    E[(<x, R x> + e)^2] = 2 |R|_F^2 + (Tr R + e)^2: the residual R = B - S as the vector
    (sqrt(2) vec(R), Tr R + b0); the constant, when free, makes the last entry vanish."""
    N, d = W.shape
    b0 = -np.trace(B) if b0 is None else b0
    # <x, S x> with S = sum_i (a_i w_i^T + w_i a_i^T): column (i, e) of the map a -> vec(S)
    cols = []
    for i in range(N):
        for e in range(d):
            E = np.zeros((d, d))
            E[e] += W[i]
            S = E + E.T
            cols.append(np.r_[np.sqrt(2.0) * S.ravel(), 0.0 if intercept else np.trace(S)])
    M = np.array(cols).T
    target = np.r_[np.sqrt(2.0) * B.ravel(), 0.0 if intercept else np.trace(B) + b0]
    coef = np.linalg.lstsq(M, target, rcond=None)[0]
    return np.sum((target - M @ coef) ** 2) / (2.0 * np.sum(B * B) + (np.trace(B) + b0) ** 2)


def quadratic_sample(B, b0, n, rng):
    """x ~ N(0, I_d) and f*(x) = <x, B x> + b0 (b0 None: -Tr B)."""
    X = rng.standard_normal((n, B.shape[0]))
    return X, np.einsum("ni,ij,nj->n", X, B, X) + (-np.trace(B) if b0 is None else b0)


def rf_features(X, W, c0=0.0):
    return (X @ W.T) ** 2 + c0


def nt_features(X, W):
    """x sigma'(<w_i, x>) = 2 <w_i, x> x for every neuron i: (n, N d)."""
    return (2.0 * (X @ W.T)[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)


def least_squares_risk(Phi, f, intercept):
    """In-sample least squares of f on the columns of Phi (and a constant): the mean squared residual and
    its standard error."""
    if intercept:
        Phi = np.column_stack([Phi, np.ones(len(f))])
    res2 = (f - Phi @ np.linalg.lstsq(Phi, f, rcond=None)[0]) ** 2
    return res2.mean(), res2.std() / np.sqrt(len(f)), Phi.shape[1]


# ---- the references' own check ------------------------------------------------------------------
def test_isserlis_formulas_of_the_references_against_monte_carlo():
    d, N, n = 4, 3, 400_000
    rng = np.random.default_rng(0)
    B, W = psd(d, 1), rng.standard_normal((N, d)) / np.sqrt(d)
    X = rng.standard_normal((n, d))
    f = np.einsum("ni,ij,nj->n", X, B, X) - np.trace(B)
    phi = (X @ W.T) ** 2 - 1.0
    n2 = np.sum(W * W, axis=1)
    for got, want in [(f * phi[:, 0], 2.0 * W[0] @ B @ W[0]),
                      (phi[:, 0] * phi[:, 1], 2.0 * (W[0] @ W[1]) ** 2 + (n2[0] - 1) * (n2[1] - 1)),
                      (f * f, mf.theory.qf_norm2(B))]:
        assert abs(got.mean() - want) < MC_SIGMAS * got.std() / np.sqrt(n)


# ---- Theorem 1: random features ---------------------------------------------------------------
@pytest.mark.parametrize("gamma", ["isotropic", "anisotropic", "aligned"])
def test_rf_risk_is_the_limit_of_the_exact_finite_d_risk(gamma):
    d = 200
    B = psd(d, 2)
    Gamma = {"isotropic": np.eye(d) / d,
             "anisotropic": np.diag(np.r_[np.full(d // 2, 1.5), np.full(d // 2, 0.5)]) / d,
             "aligned": B / np.trace(B)}[gamma]
    L = np.linalg.cholesky(Gamma)
    rng = np.random.default_rng(3)
    for rho in (0.5, 2.0):
        Ws = [rng.standard_normal((int(rho * d), d)) @ L.T for _ in range(2)]
        limit = mf.theory.qf_rf_risk(B, rho, Gamma)
        # without and with the constant: the same limit
        for exact in (np.mean([rf_risk_exact(B, W) for W in Ws]),
                      np.mean([mf.theory.qf_rf_risk_finite(B, W) for W in Ws])):
            # finite-d correction: the N fluctuation directions W_i - Gamma capture about rho / d more
            assert abs(limit - exact) < 2.0 * (1.0 + rho) / d, (rho, exact, limit)


def test_rf_risk_finite_d_error_shrinks_like_one_over_d():
    gaps = []
    for d in (100, 400):
        B = psd(d, 4)
        rng = np.random.default_rng(5)
        exact = np.mean([rf_risk_exact(B, rng.standard_normal((d, d)) / np.sqrt(d)) for _ in range(2)])
        gaps.append(mf.theory.qf_rf_risk(B, 1.0) - exact)
    assert 2.0 < gaps[0] / gaps[1] < 8.0, gaps


# ---- Theorem 2: neural tangent ------------------------------------------------------------------
@pytest.mark.parametrize("N", [1, 4, 9, 12])
def test_nt_class_is_the_quadratic_forms_with_q_s_q_zero(N):
    """Least squares over the NT coefficients = |(I - P) B (I - P)|_F^2 / |B|_F^2."""
    d = 9
    B = psd(d, 6) - 0.3 * np.eye(d)  # any symmetric B
    W = np.random.default_rng(7).standard_normal((N, d)) / np.sqrt(d)
    P = W.T @ np.linalg.pinv(W.T)
    Q = np.eye(d) - P
    assert nt_risk_exact(B, W) == pytest.approx(np.sum((Q @ B @ Q) ** 2) / np.sum(B * B), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("N", [5, 15, 25, 40])
def test_nt_risk_expected_matches_the_average_over_draws_of_w(N):
    d, draws = 30, 400
    B = psd(d, 8, rank=10)
    rng = np.random.default_rng(9)
    values = []
    for _ in range(draws):
        W = rng.standard_normal((N, d)) / np.sqrt(d)
        Q = np.eye(d) - W.T @ np.linalg.pinv(W.T)
        values.append(np.sum((Q @ B @ Q) ** 2) / np.sum(B * B))
    values = np.array(values)
    want = mf.theory.qf_nt_risk_expected(B, N)
    if N >= d:
        assert want == 0.0 and np.abs(values).max() < 1e-20
    else:
        assert abs(values.mean() - want) < MC_SIGMAS * values.std() / np.sqrt(draws)


def test_nt_risk_is_the_limit_of_the_finite_d_expectation():
    for B_of in (lambda d: psd(d, 10), lambda d: np.eye(d), lambda d: np.diag(np.linspace(-1.0, 2.0, d))):
        for rho in (0.25, 0.5, 0.8, 1.5):
            gaps = []
            for d in (50, 200, 800):
                B = B_of(d)
                gaps.append(abs(mf.theory.qf_nt_risk_expected(B, int(rho * d)) - mf.theory.qf_nt_risk(B, rho)))
            assert gaps[-1] < 3.0 / 800 and gaps[-1] <= gaps[0] + 1e-15, (rho, gaps)
    # rho >= 1: the weights span R^d, the risk vanishes; B = I: (1 - rho)^2 + rho (1 - rho)
    assert mf.theory.qf_nt_risk(np.eye(7), 1.0) == 0.0
    assert mf.theory.qf_nt_risk(np.eye(40), 0.3) == pytest.approx(0.7 ** 2 + 0.3 * 0.7, rel=1e-14)


# ---- exact risks for a given first layer ------------------------------------------------------
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("b0", [None, 0.0, 1.5])
@pytest.mark.parametrize("N", [1, 4, 9, 12])
def test_nt_risk_finite_is_the_least_squares_over_the_nt_coefficients(N, b0, intercept):
    d = 9
    B = psd(d, 6) - 0.3 * np.eye(d)  # any symmetric B, Tr B != 0
    W = np.random.default_rng(7).standard_normal((N, d)) / np.sqrt(d)
    got = mf.theory.qf_nt_risk_finite(B, W, intercept=intercept, b0=b0)
    assert got == pytest.approx(nt_risk_exact(B, W, intercept, b0), rel=1e-9, abs=1e-14)
    # the span alone matters: rescaled rows, W / sqrt(d) or W, and repeated neurons change nothing
    again = mf.theory.qf_nt_risk_finite(B, np.vstack([3.0 * W, -W[:1]]), intercept=intercept, b0=b0)
    assert again == pytest.approx(got, rel=1e-9, abs=1e-14)


def test_rf_risk_finite_is_the_reference_least_squares():
    d = 6
    B = psd(d, 14) - 0.2 * np.eye(d)
    rng = np.random.default_rng(15)
    for N in (1, 5, 30):  # 30 > d (d + 1) / 2: the features are linearly dependent
        W = rng.standard_normal((N, d)) / np.sqrt(d)
        assert mf.theory.qf_rf_risk_finite(B, W, intercept=False, c0=-1.0) == pytest.approx(
            rf_risk_exact(B, W), rel=1e-9, abs=1e-12)
    W = rng.standard_normal((30, d))
    assert mf.theory.qf_rf_risk_finite(B, W) < 1e-10  # span{w w^T} = all symmetric matrices


@pytest.mark.parametrize("model", ["rf", "nt"])
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("b0", [None, 0.7])
def test_finite_risks_against_monte_carlo_least_squares(model, intercept, b0):
    """An independent fit: least squares on 10^5 Gaussian samples with numpy feature matrices."""
    d, n = 4, 100_000
    rng = np.random.default_rng(16)
    B = psd(d, 17) - 0.1 * np.eye(d)
    X, f = quadratic_sample(B, b0, n, rng)
    if model == "rf":
        W, c0 = rng.standard_normal((5, d)) / np.sqrt(d), 0.3
        got = mf.theory.qf_rf_risk_finite(B, W, intercept=intercept, b0=b0, c0=c0)
        Phi = rf_features(X, W, c0)
    else:
        W = rng.standard_normal((2, d)) / np.sqrt(d)
        got = mf.theory.qf_nt_risk_finite(B, W, intercept=intercept, b0=b0)
        Phi = nt_features(X, W)
    norm2 = 2.0 * np.sum(B * B) + (np.trace(B) + (-np.trace(B) if b0 is None else b0)) ** 2
    risk, se, p = least_squares_risk(Phi, f, intercept)
    # in-sample least squares is low by about p / n of the risk
    assert abs(risk - got * norm2) < MC_SIGMAS * se + 2.0 * p / n * risk, (risk / norm2, got)


@pytest.mark.parametrize("model", ["rf", "nt"])
def test_finite_risks_are_those_of_the_package_estimators(model):
    """RandomFeatures / NeuralTangent (intercept-free least squares, quadratic activation) on a large
    sample reach the exact risk of their own first layer on fresh data."""
    d, n = 4, 60_000
    rng = np.random.default_rng(18)
    B = psd(d, 19)
    X, f = quadratic_sample(B, None, n, rng)
    X2, f2 = quadratic_sample(B, None, n, rng)
    if model == "rf":
        est = mf.RandomFeatures(width=6, activation="quadratic", c0=0.5, seed=3).fit(X, f)
        want = mf.theory.qf_rf_risk_finite(B, est.network_.W, intercept=False, c0=0.5)
    else:
        est = mf.NeuralTangent(width=2, activation="quadratic", seed=3).fit(X, f)
        want = mf.theory.qf_nt_risk_finite(B, est.network_.W, intercept=False)
    res2 = (f2 - est.predict(X2)) ** 2
    norm2 = mf.theory.qf_norm2(B)
    assert abs(res2.mean() / norm2 - want) < MC_SIGMAS * res2.std() / np.sqrt(n) / norm2 + 1e-3, want


@pytest.mark.parametrize("N", [5, 25, 40])
def test_nt_risk_expected_without_intercept_matches_the_average_over_draws(N):
    d, draws = 30, 300
    B = psd(d, 20, rank=10)
    rng = np.random.default_rng(21)
    values = np.array([mf.theory.qf_nt_risk_finite(B, rng.standard_normal((N, d)), intercept=False)
                       for _ in range(draws)])
    want = mf.theory.qf_nt_risk_expected(B, N, intercept=False)
    assert abs(values.mean() - want) < MC_SIGMAS * values.std() / np.sqrt(draws) + 1e-12, (values.mean(), want)
    # the constant matters for Tr B != 0: by about min(rho, 1) Tr(B)^2 / (d |B|_F^2)
    extra = min(N, d) / d * np.trace(B) ** 2 / (d * np.sum(B * B))
    assert want - mf.theory.qf_nt_risk_expected(B, N) > 0.5 * extra > 0.01


def haar_rows(N, d, rng):
    """N orthonormal rows spanning a uniformly random N-dimensional subspace."""
    Q, R = np.linalg.qr(rng.standard_normal((d, N)))
    return (Q * np.sign(np.diag(R))).T


@pytest.mark.parametrize("law", ["gaussian", "haar"])
def test_theorem_2_at_d_100(law):
    """The NT risk with the constant, averaged over 3 draws of W at d = 100, against Theorem 2 (the product
    formula): within 0.03 for a traceless B, where it is (1 - rho)^2, and 0.05 for a Wishart B = G G^T / d
    (Tr(B)^2 / (d |B|_F^2) ~ 1/2), where the trace term is far larger than the tolerance; without the
    constant, against the limit with the extra min(rho, 1) Tr(B)^2 / (d |B|_F^2)."""
    d = 100
    rng = np.random.default_rng(22)
    A = rng.standard_normal((d, d))
    traceless = (A + A.T) / 2.0 - np.trace(A) / d * np.eye(d)
    wishart = psd(d, 23)
    draw = {"gaussian": lambda N: rng.standard_normal((N, d)) / np.sqrt(d), "haar": lambda N: haar_rows(N, d, rng)}[law]
    for rho in (0.25, 0.5, 0.75):
        N = int(rho * d)
        Ws = [draw(N) for _ in range(3)]
        for B, tol in ((traceless, 0.03), (wishart, 0.05)):
            for intercept in (True, False):
                got = np.mean([mf.theory.qf_nt_risk_finite(B, W, intercept=intercept) for W in Ws])
                want = mf.theory.qf_nt_risk(B, rho, intercept=intercept)
                assert abs(got - want) < tol, (rho, intercept, got, want)
        assert mf.theory.qf_nt_risk(traceless, rho) == pytest.approx((1 - rho) ** 2, abs=1e-12)
        assert mf.theory.qf_nt_risk(wishart, rho) - (1 - rho) ** 2 > 0.05 + 0.03  # (1 - rho)^2 would fail


# ---- Theorem 3: the network -----------------------------------------------------------------------
@pytest.mark.parametrize("N", [1, 3, 6])
def test_nn_risk_is_the_minimum_over_networks(N):
    """Direct minimisation of the population risk 2 |B - sum_i a_i w_i w_i^T|_F^2 (a_i = +-1 absorbed
    in w_i for B >= 0) from random starts reaches the formula and never goes below it."""
    d = 8
    B = psd(d, 11)
    norm2 = mf.theory.qf_norm2(B)

    def risk(flat):
        Wm = flat.reshape(N, d)
        return 2.0 * np.sum((B - Wm.T @ Wm) ** 2) / norm2

    def grad(flat):
        Wm = flat.reshape(N, d)
        return (-8.0 * Wm @ (B - Wm.T @ Wm) / norm2).ravel()

    want = mf.theory.qf_nn_risk(B, N)
    rng = np.random.default_rng(12)
    best = min(scipy.optimize.minimize(risk, 0.5 * rng.standard_normal(N * d), jac=grad, method="L-BFGS-B",
                                       options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000}).fun
               for _ in range(3))
    assert best == pytest.approx(want, rel=1e-6, abs=1e-12)
    lam = np.linalg.eigvalsh(B)[::-1]
    assert want == pytest.approx(np.sum(lam[N:] ** 2) / np.sum(lam ** 2), rel=1e-12)


def test_nn_risk_ordering_and_the_gap_to_nt():
    """NN fits the top eigendirections, NT a random subspace: for a low-rank B with N < d, NN
    reaches 0 while NT keeps a risk of order (1 - rho)^2."""
    d, N = 100, 20
    B = psd(d, 13, rank=10)
    assert mf.theory.qf_nn_risk(B, N) < 1e-20
    assert mf.theory.qf_nt_risk(B, N / d) > 0.6
    assert mf.theory.qf_nn_risk(np.diag([-3.0, 1.0]), 1) == pytest.approx(0.1)  # ordered by magnitude


# ---- mixture of Gaussians ----------------------------------------------------------------------
def mixture_sample(Delta, n, rng):
    """y = +-1 and x | y ~ N(0, I + y Delta), through the eigendecomposition of Delta."""
    y = rng.choice([-1.0, 1.0], size=n)
    lam, V = np.linalg.eigh(Delta)
    Z = rng.standard_normal((n, Delta.shape[0]))
    return ((Z @ V) * np.sqrt(1.0 + y[:, None] * lam)) @ V.T, y


def rotated(diagonal, seed):
    """O diag(diagonal) O^T for a random orthogonal O: a non-diagonal Delta with that spectrum."""
    O, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(diagonal), len(diagonal))))
    return (O * diagonal) @ O.T


def mixture_exact_risk(S, Delta):
    """Population risk of c + <x, S x> with the best c on the mixture (Isserlis under each component)."""
    t = np.sum(S * Delta)
    return (1.0 - t) ** 2 + 2.0 * np.sum(S * (S + Delta @ S @ Delta))


@pytest.mark.parametrize("model", ["rf", "nt"])
def test_mixture_finite_risks_against_monte_carlo_least_squares(model):
    """A general (non-diagonal) Delta with |Delta|_op = 0.7, where the term Delta S Delta matters: the
    exact risks match least squares on 2 10^5 samples, the leading-order ones would not."""
    d, n = 5, 200_000
    rng = np.random.default_rng(30)
    A = rng.standard_normal((d, d))
    A = (A + A.T) / 2.0 + np.eye(d)
    Delta = 0.7 * A / np.abs(np.linalg.eigvalsh(A)).max()
    X, y = mixture_sample(Delta, n, rng)
    if model == "rf":
        W = rng.standard_normal((4, d)) / np.sqrt(d)
        got = mf.theory.mixture_rf_risk_finite(Delta, W)
        Phi = rf_features(X, W, c0=0.4)
        t = np.einsum("ij,jk,ik->i", W, Delta, W)
        leading = 1.0 / (1.0 + t @ np.linalg.lstsq(2.0 * (W @ W.T) ** 2, t, rcond=None)[0])
    else:
        W = rng.standard_normal((2, d)) / np.sqrt(d)
        got = mf.theory.mixture_nt_risk_finite(Delta, W)
        Phi = nt_features(X, W)
        Q = np.eye(d) - W.T @ np.linalg.pinv(W.T)
        leading = 1.0 / (1.0 + 0.5 * np.sum((Delta - Q @ Delta @ Q) ** 2))
    risk, se, p = least_squares_risk(Phi, y, intercept=True)
    tol = MC_SIGMAS * se + 2.0 * p / n * risk
    assert abs(risk - got) < tol, (risk, got)
    assert abs(leading - got) > 2.0 * tol  # the test tells the exact risk from the leading order


def test_mixture_nt_risk_finite_against_direct_normal_equations():
    """The conjugate-gradient solution against the normal equations in the basis of the N d NT
    coefficients, solved densely."""
    d = 6
    Delta = rotated(np.linspace(-0.8, 0.9, d), 31)
    rng = np.random.default_rng(32)
    for N in (1, 3, 6):
        W = rng.standard_normal((N, d))
        basis = []
        for i in range(N):
            for e in range(d):
                E = np.zeros((d, d))
                E[e] += W[i]
                basis.append(E + E.T)
        t = np.array([np.sum(S * Delta) for S in basis])
        M = np.array([[2.0 * np.sum(S * (T + Delta @ T @ Delta)) for T in basis] for S in basis])
        want = 1.0 / (1.0 + t @ np.linalg.lstsq(M, t, rcond=None)[0])
        assert mf.theory.mixture_nt_risk_finite(Delta, W) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("rho", [0.5, 2.0])
def test_mixture_rf_risk_is_the_limit_of_the_exact_risk(rho):
    """d = 300, Tr(Delta)^2 / (2 d) ~ 0.5, |Delta|_op ~ 0.12: the exact risk for two draws of W agrees with
    rho / (1 + rho), not with the seed's printed rho / (1 + 2 rho)."""
    d = 300
    Delta = rotated(np.random.default_rng(33).uniform(0.0, 0.12, d), 34)
    rng = np.random.default_rng(35)
    exact = np.mean([mf.theory.mixture_rf_risk_finite(Delta, rng.standard_normal((int(rho * d), d)) / np.sqrt(d))
                     for _ in range(2)])
    want = mf.theory.mixture_rf_risk(Delta, rho)
    printed = 1.0 / (1.0 + rho / (1.0 + 2.0 * rho) * np.trace(Delta) ** 2 / (2.0 * d))
    assert abs(exact - want) < 0.006, (exact, want)
    assert abs(exact - printed) > 0.025
    assert want == pytest.approx(1.0 / (1.0 + rho / (1.0 + rho) * np.trace(Delta) ** 2 / (2.0 * d)), rel=1e-12)


@pytest.mark.parametrize("rho", [0.25, 0.75])
def test_mixture_nt_risk_is_the_limit_of_the_exact_risk(rho):
    d = 150
    lam = np.random.default_rng(36).uniform(-0.05, 0.15, d)  # Tr(Delta)^2 / (d |Delta|_F^2) ~ 1/2
    Delta = rotated(lam, 37)
    rng = np.random.default_rng(38)
    exact = np.mean([mf.theory.mixture_nt_risk_finite(Delta, rng.standard_normal((int(rho * d), d)))
                     for _ in range(2)])
    want = mf.theory.mixture_nt_risk(Delta, rho)
    assert abs(exact - want) < 0.01, (exact, want)
    T = np.trace(Delta) ** 2 / (d * np.sum(Delta * Delta))
    kappa = 1.0 - (1.0 - rho) ** 2 - rho * (1.0 - rho) * T
    assert want == pytest.approx(1.0 / (1.0 + kappa * np.sum(Delta * Delta) / 2.0), rel=1e-12)


def test_mixture_nn_risk_is_the_minimum_over_networks():
    """Direct minimisation of the exact population risk over networks c + sum_i a_i <w_i, x>^2 (N = 2) from
    random starts: it reaches the top-eigenvector value 1 / (1 + sum_{i<=N} lambda_i^2 / (2 (1 + lambda_i^2)))
    and never goes below; the paper's leading-order formula is below it by the Delta S Delta term."""
    d, N = 6, 2
    Delta = rotated(0.6 * np.array([1.0, -0.9, 0.5, 0.3, -0.2, 0.1]), 39)
    rng = np.random.default_rng(40)

    def risk(flat):
        a, Wm = flat[:N], flat[N:].reshape(N, d)
        return mixture_exact_risk(Wm.T @ (a[:, None] * Wm), Delta)

    def grad(flat):
        a, Wm = flat[:N], flat[N:].reshape(N, d)
        S = Wm.T @ (a[:, None] * Wm)
        G = -2.0 * (1.0 - np.sum(S * Delta)) * Delta + 4.0 * S + 4.0 * Delta @ S @ Delta
        return np.r_[np.einsum("ij,jk,ik->i", Wm, G, Wm), (2.0 * a[:, None] * Wm @ G).ravel()]

    best = min(scipy.optimize.minimize(risk, rng.standard_normal(N + N * d), jac=grad, method="L-BFGS-B",
                                       options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000}).fun
               for _ in range(3))
    lam = np.sort(np.abs(np.linalg.eigvalsh(Delta)))[::-1][:N]
    assert best == pytest.approx(1.0 / (1.0 + 0.5 * np.sum(lam ** 2 / (1.0 + lam ** 2))), rel=1e-7)
    assert mf.theory.mixture_nn_risk(Delta, N, exact=True) == pytest.approx(best, rel=1e-7)
    paper = mf.theory.mixture_nn_risk(Delta, N)
    assert paper == pytest.approx(1.0 / (1.0 + 0.5 * np.sum(lam ** 2)), rel=1e-12)
    assert 0.0 <= best - paper <= 0.5 * np.sum(lam ** 4) + 1e-12


def test_mixture_ordering_of_nn_and_nt_depends_on_the_spectrum():
    """Figure 2's NN < NT (error) for N < d needs a spiked Delta; a flat diagonal Delta reverses it. Checked
    with the formulas and with the exact NT risk of two draws of W at d = 100."""
    d, N = 100, 30
    rng = np.random.default_rng(41)
    spiked = rotated(np.r_[np.full(5, 0.3), np.zeros(d - 5)], 42)
    flat = 0.08 * np.diag(np.resize([1.0, -1.0], d))
    Ws = [rng.standard_normal((N, d)) for _ in range(2)]
    for Delta, nn_wins in ((spiked, True), (flat, False)):
        nn, nt = mf.theory.mixture_nn_risk(Delta, N), mf.theory.mixture_nt_risk(Delta, N / d)
        nt_exact = np.mean([mf.theory.mixture_nt_risk_finite(Delta, W) for W in Ws])
        lam = np.sort(np.abs(np.linalg.eigvalsh(Delta)))[::-1][:N]
        nn_exact = 1.0 / (1.0 + 0.5 * np.sum(lam ** 2 / (1.0 + lam ** 2)))
        assert (nn < nt) == nn_wins and (nn_exact < nt_exact) == nn_wins, (nn, nt, nn_exact, nt_exact)
        assert abs(nt - nt_exact) < 0.02
    # RF sees only Tr Delta: no better than 1 for the traceless flat Delta
    assert mf.theory.mixture_rf_risk(flat, N / d) == pytest.approx(1.0, abs=1e-12)


# ---- concentration of the empirical tangent kernel --------------------------------------------
def sphere(n, d, seed):
    """n points uniform on the sphere of radius sqrt(d) (the setting of the concentration theorem)."""
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X * np.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True)


def relu_kernel(X, w_std, kind):
    """Infinite-width relu kernels (arc-cosine, orders 1 and 0; a_std = 1), in numpy."""
    norms = np.linalg.norm(X, axis=1)
    G = X @ X.T
    theta = np.arccos(np.clip(G / np.outer(norms, norms), -1.0, 1.0))
    rf = w_std ** 2 * np.outer(norms, norms) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    nt = G * (np.pi - theta) / (2 * np.pi)
    return {"rf": rf, "nt": nt, "ntk": rf + nt}[kind]


@pytest.mark.parametrize("kind", ["nt", "ntk"])
def test_ntk_concentration_is_the_operator_norm_of_the_whitened_kernel(kind):
    """Against numpy: the explicit empirical kernel (tests/reference.py), the arc-cosine kernels and the
    symmetric inverse square root from scipy."""
    d, n, N = 6, 15, 300
    X = sphere(n, d, 50)
    net = mf.TwoLayer(d, N, activation="relu", seed=51)
    K_N = ref.ntk(ref.as_tuple(net), X, kind=kind)
    root = np.linalg.inv(np.real(scipy.linalg.sqrtm(relu_kernel(X, net.w_std, kind))))
    want = np.linalg.norm(root @ K_N @ root - np.eye(n), 2)
    assert mf.theory.ntk_concentration(net, X, kind=kind) == pytest.approx(want, rel=1e-8)


def test_ntk_concentration_follows_the_predicted_scale():
    """|K^-1/2 K_N K^-1/2 - I|_op against sqrt((n + d) / (N d)) for relu networks (mean over 3 networks): the
    ratio stays between fixed constants over N = 250 ... 16000 and several (n, d), and the measured
    deviation decays like N^-1/2."""
    widths = np.array([250, 1000, 4000, 16000])
    for n, d in ((20, 10), (80, 10), (40, 20)):
        X = sphere(n, d, 52)
        measured = np.array([np.mean([mf.theory.ntk_concentration(mf.TwoLayer(d, N, activation="relu", seed=s), X)
                                      for s in range(3)]) for N in widths])
        ratio = measured / np.array([mf.theory.ntk_concentration_scale(n, d, N) for N in widths])
        assert np.all((1.5 < ratio) & (ratio < 8.0)), (n, d, ratio)
        slope = np.polyfit(np.log(widths), np.log(measured), 1)[0]
        assert abs(slope + 0.5) < 0.1, (n, d, slope)


def test_ntk_concentration_rejects_a_singular_kernel():
    X = sphere(5, 3, 53)
    with pytest.raises(ValueError, match="X: the analytic kernel K"):
        mf.theory.ntk_concentration(mf.TwoLayer(3, 50, seed=0), np.vstack([X, X[:1]]))
    with pytest.raises(ValueError, match="width: must be >= 1"):
        mf.theory.ntk_concentration_scale(10, 3, 0)


def test_theory_argument_errors():
    with pytest.raises(ValueError, match="B: must be symmetric"):
        mf.theory.qf_nt_risk(np.array([[1.0, 2.0], [0.0, 1.0]]), 0.5)
    with pytest.raises(ValueError, match=r"B: expected a square"):
        mf.theory.qf_norm2(np.ones((2, 3)))
    with pytest.raises(ValueError, match="B: must not be zero"):
        mf.theory.qf_nn_risk(np.zeros((3, 3)), 1)
    with pytest.raises(ValueError, match="rho: must be > 0"):
        mf.theory.qf_rf_risk(np.eye(3), 0.0)
    with pytest.raises(ValueError, match="Gamma: must have trace 1"):
        mf.theory.qf_rf_risk(np.eye(3), 1.0, Gamma=np.eye(3))
    with pytest.raises(ValueError, match="Gamma: must be positive semi-definite"):
        mf.theory.qf_rf_risk(np.eye(2), 1.0, Gamma=np.array([[1.5, 0.0], [0.0, -0.5]]))
    with pytest.raises(ValueError, match="N: must be >= 1"):
        mf.theory.qf_nn_risk(np.eye(3), 0)
    with pytest.raises(ValueError, match="W: expected 3 columns"):
        mf.theory.qf_nt_risk_finite(np.eye(3), np.ones((2, 4)))
    with pytest.raises(TypeError, match="intercept: expected True or False"):
        mf.theory.qf_rf_risk_finite(np.eye(3), np.ones((2, 3)), intercept=1)
    with pytest.raises(ValueError, match="b0: must be finite"):
        mf.theory.qf_nt_risk_finite(np.eye(3), np.ones((2, 3)), b0=np.nan)
    with pytest.raises(ValueError, match=r"Delta: \|Delta\|_op must be < 1"):
        mf.theory.mixture_nt_risk(np.diag([0.5, -1.0]), 0.5)
    with pytest.raises(ValueError, match="Delta: must be symmetric"):
        mf.theory.mixture_rf_risk_finite(np.array([[0.1, 0.2], [0.0, 0.1]]), np.ones((1, 2)))
    with pytest.raises(ValueError, match="Delta: must not be zero"):
        mf.theory.mixture_nn_risk(np.zeros((2, 2)), 1)
    with pytest.raises(TypeError, match="exact: expected True or False"):
        mf.theory.mixture_nn_risk(np.eye(2) / 2.0, 1, exact="yes")
