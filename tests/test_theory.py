"""mf.theory against exact finite-d computations (GMMM quadratic-target setting).

References: the population risk of a class of quadratic forms by Isserlis' theorem (a
Frobenius least-squares problem, solved by numpy), checked itself against Monte Carlo; the
best network by direct minimisation (scipy L-BFGS); averages over draws of the random
first-layer weights.
"""
import numpy as np
import pytest
import scipy.optimize

import mfntk as mf

MC_SIGMAS = 5.0  # Monte Carlo: allowed error in standard errors


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


def nt_risk_exact(B, W):
    """min over c, a_i in R^d of E[(f*(x) - c - sum_i <a_i, x> 2 <w_i, x>)^2] / ||f*||^2 by least squares
    over the N d coefficients on the Frobenius inner product (the constant absorbs every mean)."""
    N, d = W.shape
    # <x, S x> with S = sum_i (a_i w_i^T + w_i a_i^T): column (i, e) of the map a -> vec(S)
    cols = []
    for i in range(N):
        for e in range(d):
            E = np.zeros((d, d))
            E[e] += W[i]
            cols.append((E + E.T).ravel())
    M = np.array(cols).T
    coef = np.linalg.lstsq(M, B.ravel(), rcond=None)[0]
    return np.sum((B.ravel() - M @ coef) ** 2) / np.sum(B * B)


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
        exact = np.mean([rf_risk_exact(B, rng.standard_normal((int(rho * d), d)) @ L.T) for _ in range(2)])
        limit = mf.theory.qf_rf_risk(B, rho, Gamma)
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
