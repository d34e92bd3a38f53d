"""Closed forms of the source papers, each with its reference and its domain.

Quadratic target (GMMM "QF" setting)
------------------------------------
x ~ N(0, I_d) and the centred quadratic target f*(x) = <x, B x> - Tr B (B symmetric d x d),
whose squared L2 norm is ||f*||^2 = Var <x, B x> = 2 |B|_F^2 (:func:`qf_norm2`). For any
symmetric S, E[(<x, (B - S) x> - Tr(B - S))^2] = 2 |B - S|_F^2 (Isserlis): the risk of a
centred quadratic form is a Frobenius distance. The functions below return the risk of the
best predictor of a class divided by ||f*||^2 (1 = no better than predicting 0):

- :func:`qf_rf_risk` -- random features, sigma(u) = u^2 - 1, w_i ~ N(0, Gamma), N/d -> rho
  (Theorem 1);
- :func:`qf_nt_risk` -- neural tangent, sigma(u) = u^2, w_i ~ N(0, I_d/d), N/d -> rho, averaged
  over W (Theorem 2), and :func:`qf_nt_risk_expected`, the same expectation at finite d, exact;
- :func:`qf_nn_risk` -- the two-layer network itself, sigma(u) = u^2 (Theorem 3: the value
  reached by one-pass SGD in the limit of small steps).

References
----------
.. [GMMM19] B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari, "Limitations of lazy training
   of two-layers neural networks", NeurIPS 2019 (Theorems 1-3; the quadratic-function setting).
"""
from __future__ import annotations

import numpy as np

from ._validation import as_matrix, check_float, check_int

__all__ = ["qf_norm2", "qf_rf_risk", "qf_nt_risk", "qf_nt_risk_expected", "qf_nn_risk"]

_SYM_RTOL = 1e-10  # relative asymmetry accepted in B (and Gamma)
_TRACE_RTOL = 1e-8  # |Tr Gamma - 1| accepted


def _symmetric(B, name="B"):
    B = as_matrix(B, name)
    if B.shape[0] != B.shape[1]:
        raise ValueError(f"{name}: expected a square (d, d) matrix, got shape {B.shape}")
    scale = float(np.max(np.abs(B))) if B.size else 0.0
    if float(np.max(np.abs(B - B.T))) > _SYM_RTOL * max(scale, np.finfo(float).tiny):
        raise ValueError(f"{name}: must be symmetric")
    if scale == 0.0:
        raise ValueError(f"{name}: must not be zero (the target's norm divides every risk)")
    return 0.5 * (B + B.T)


def _rho(rho):
    return check_float(rho, "rho", minimum=0.0, strict=True)


def qf_norm2(B):
    """||f*||^2_L2 = Var <x, B x> = 2 |B|_F^2 for x ~ N(0, I_d): the risk of predicting E f*.

    Parameters
    ----------
    B : array_like (d, d), symmetric

    Returns
    -------
    float
    """
    B = _symmetric(B)
    return 2.0 * float(np.sum(B * B))


def qf_rf_risk(B, rho, Gamma=None):
    """Asymptotic risk of the random-features model on a quadratic target, over ||f*||^2 ([GMMM19]_ Thm 1).

    RF class {sum_i a_i sigma(<w_i, x>) : a in R^N} at fixed w_i ~ N(0, Gamma), sigma(u) = u^2 - 1;
    as N, d -> infinity with N/d -> rho,

        R_RF / ||f*||^2 -> 1 - rho d <B, Gamma>^2 / ( |B|_F^2 (1 + rho d |Gamma|_F^2) ).

    Parameters
    ----------
    B : array_like (d, d), symmetric
        The target f*(x) = <x, B x> - Tr B.
    rho : float > 0
        N / d.
    Gamma : array_like (d, d) or None
        Covariance of the first-layer weights, symmetric positive semi-definite with Tr Gamma = 1
        (so that E |w|^2 = 1 and sigma(<w, x>) is centred on average). None: I_d / d.

    Returns
    -------
    float in [0, 1]

    Notes
    -----
    Domain: the proportional limit, Gamma with |Gamma|_op = O(1/d) (weights spread over many
    directions). Derivation: sigma(<w_i, x>) = (<x, w_i w_i^T x> - |w_i|^2) + (|w_i|^2 - 1); the
    centred quadratic parts W_i = w_i w_i^T have Frobenius Gram matrix <W_i, W_j> = <w_i, w_j>^2,
    about 1 on the diagonal and |Gamma|_F^2 off it, and <B, W_i> about <B, Gamma>: least squares
    over a then captures the direction of the mean Gamma, with weight
    N <B, Gamma>^2 / (1 + N |Gamma|_F^2); the fluctuations W_i - Gamma and the constants
    |w_i|^2 - 1 contribute O(rho / d). At finite d the exact risk (tests/test_theory.py) is
    below the limit by about rho / d. It depends on sigma only through this quadratic part
    (the limit rho -> infinity is 1 - <B, Gamma>^2 / (|B|_F^2 |Gamma|_F^2) for any activation, [GMMM19]_).

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> round(mf.theory.qf_rf_risk(np.eye(100), rho=1.0), 6)   # B = I: 1 - rho / (1 + rho)
    0.5
    """
    B = _symmetric(B)
    rho = _rho(rho)
    d = B.shape[0]
    if Gamma is None:
        Gamma = np.eye(d) / d
    Gamma = _symmetric(Gamma, "Gamma")
    if Gamma.shape != B.shape:
        raise ValueError(f"Gamma: expected shape {B.shape} like B, got {Gamma.shape}")
    if abs(np.trace(Gamma) - 1.0) > _TRACE_RTOL:
        raise ValueError(f"Gamma: must have trace 1 (E |w|^2 = 1), got {np.trace(Gamma):.6g}")
    if np.linalg.eigvalsh(Gamma)[0] < -_SYM_RTOL * np.max(np.abs(Gamma)):
        raise ValueError("Gamma: must be positive semi-definite (a covariance)")
    bg = float(np.sum(B * Gamma))
    return 1.0 - rho * d * bg * bg / (float(np.sum(B * B)) * (1.0 + rho * d * float(np.sum(Gamma * Gamma))))


def qf_nt_risk(B, rho):
    """Asymptotic risk of the neural-tangent model on a quadratic target, averaged over W, over ||f*||^2
    ([GMMM19]_ Thm 2, with a free constant).

    NT class {c + sum_i <a_i, x> sigma'(<w_i, x>) : c in R, a_i in R^d} at fixed w_i ~ N(0, I_d/d),
    sigma(u) = u^2; as N, d -> infinity with N/d -> rho,

        E_W R_NT / ||f*||^2 -> (1 - rho)_+^2 + rho (1 - rho)_+ Tr(B)^2 / (d |B|_F^2).

    Parameters
    ----------
    B : array_like (d, d), symmetric
    rho : float > 0

    Returns
    -------
    float in [0, 1]

    Notes
    -----
    With sigma'(u) = 2u, sum_i <a_i, x> 2 <w_i, x> = <x, S x> with S = sum_i (a_i w_i^T + w_i a_i^T):
    the class is {c + <x, S x> : (I - P) S (I - P) = 0}, P the orthogonal projector on span(w_i).
    The constant fits E f* exactly, so the risk is 2 min_S |B - S|_F^2 = 2 |Q B Q|_F^2, Q = I - P.
    For Gaussian W, span(w_i) is uniform: Q is a Haar-random projector of rank m = (d - N)_+, and
    E[Q_ij Q_kl] = alpha delta_ij delta_kl + beta (delta_ik delta_jl + delta_il delta_jk) with
    beta = m (d - m) / (d (d - 1) (d + 2)), alpha = m/d - (d + 1) beta (from Q^2 = Q and
    (Tr Q)^2 = m^2), so that E |Q B Q|_F^2 = (alpha + beta) |B|_F^2 + beta Tr(B)^2 exactly
    (:func:`qf_nt_risk_expected`); m/d -> 1 - rho gives the limit. The seed's transcription of
    this theorem is garbled; this is the derivation. Domain: the term Tr(B)^2 / (d |B|_F^2) is in
    [0, 1] (Cauchy-Schwarz) and stays O(1) for, e.g., B positive semi-definite.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> round(mf.theory.qf_nt_risk(np.eye(50), rho=0.5), 6)   # (1/2)^2 + (1/2)(1/2) Tr(I)^2 / (d d)
    0.5
    """
    B = _symmetric(B)
    rho = _rho(rho)
    d = B.shape[0]
    r = max(1.0 - rho, 0.0)
    return r * r + rho * r * float(np.trace(B)) ** 2 / (d * float(np.sum(B * B)))


def qf_nt_risk_expected(B, N):
    """E_W R_NT / ||f*||^2 at finite d, exactly, for w_i ~ N(0, sigma^2 I_d) (any sigma > 0), N neurons.

    = (alpha + beta) + beta Tr(B)^2 / |B|_F^2 with m = (d - N)_+, beta = m (d - m) / (d (d - 1) (d + 2)),
    alpha = m/d - (d + 1) beta (see :func:`qf_nt_risk`, of which this is the finite-d form; for d = 1,
    beta = 0).

    Parameters
    ----------
    B : array_like (d, d), symmetric
    N : int >= 1

    Returns
    -------
    float in [0, 1]
    """
    B = _symmetric(B)
    N = check_int(N, "N")
    d = B.shape[0]
    m = max(d - N, 0)
    beta = m * (d - m) / (d * (d - 1) * (d + 2)) if d > 1 else 0.0
    alpha = m / d - (d + 1) * beta
    return (alpha + beta) + beta * float(np.trace(B)) ** 2 / float(np.sum(B * B))


def qf_nn_risk(B, N):
    """Risk of the two-layer network with N neurons and sigma(u) = u^2 on a quadratic target, over ||f*||^2
    ([GMMM19]_ Thm 3).

        R_NN / ||f*||^2 = 2 sum_{i > N} lambda_i(B)^2 / ||f*||^2 = sum_{i > N} lambda_i(B)^2 / |B|_F^2,

    lambda_1 >= ... >= lambda_d the eigenvalues of B.

    Parameters
    ----------
    B : array_like (d, d), symmetric
    N : int >= 1

    Returns
    -------
    float in [0, 1]

    Notes
    -----
    The class {sum_i a_i <w_i, x>^2} (centred, e.g. |w_i| = 1 with sigma(u) = u^2 - 1, or with a free
    constant) is {<x, S x> : rank S <= N}, so the minimal risk is 2 min_{rank S <= N} |B - S|_F^2,
    the Eckart-Young tail of the spectrum. [GMMM19]_ Theorem 3 shows that one-pass SGD with small
    steps reaches it for B positive semi-definite (the theorem's domain), N and d large with
    N/d -> rho. For any symmetric B this function orders the eigenvalues by magnitude, which is the
    minimum over the class (and for B >= 0 the theorem's ordering).

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> mf.theory.qf_nn_risk(np.diag([3.0, 2.0, 1.0]), N=2)   # 1 / (9 + 4 + 1)
    0.07142857142857142
    """
    B = _symmetric(B)
    N = check_int(N, "N")
    lam = np.sort(np.abs(np.linalg.eigvalsh(B)))[::-1]
    return float(np.sum(lam[N:] ** 2) / np.sum(lam ** 2))
