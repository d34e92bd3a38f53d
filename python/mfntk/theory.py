"""Closed forms of the source papers, each with its reference and its domain.

Quadratic target (GMMM "QF" setting)
------------------------------------
x ~ N(0, I_d) and the quadratic target f*(x) = <x, B x> + b0 (B symmetric d x d), centred when
b0 = -Tr B (the default everywhere), with squared L2 norm ||f*||^2 = 2 |B|_F^2 + (Tr B + b0)^2
(:func:`qf_norm2` for the centred one). By Isserlis, E[<x, A x> <x, C x>] = 2 Tr(A C) + Tr A Tr C:
every class below is a space of quadratic forms (plus constants), and its best predictor is a
projection in that inner product. The functions return the risk of the best predictor of a class
divided by ||f*||^2 (1 = no better than predicting 0):

- :func:`qf_rf_risk` -- random features, sigma(u) = u^2 - 1, w_i ~ N(0, Gamma), N/d -> rho
  (Theorem 1); :func:`qf_rf_risk_finite`, the exact risk for a given first layer W;
- :func:`qf_nt_risk` -- neural tangent, sigma(u) = u^2, w_i ~ N(0, I_d/d), N/d -> rho, averaged
  over W (Theorem 2), :func:`qf_nt_risk_expected`, the same expectation at finite d, exact, and
  :func:`qf_nt_risk_finite`, the exact risk for a given W;
- :func:`qf_nn_risk` -- the two-layer network itself, sigma(u) = u^2 (Theorem 3: the value
  reached by one-pass SGD in the limit of small steps).

With or without a free constant (``intercept``): the classes of [GMMM19]_ contain one (their
eq. (1), f(x) = c + sum_i ...), and Theorem 2 is the form with it; without it the NT risk of a
target with Tr B != 0 is larger (:func:`qf_nt_risk`, Notes).

Mixture of two Gaussians (GMMM "MG" setting)
--------------------------------------------
Setting ([GMMM19]_, "mixture of Gaussians"): y = +1 or -1 with probability 1/2 each,
x | y = +1 ~ N(0, I_d + Delta), x | y = -1 ~ N(0, I_d - Delta), Delta symmetric with
|Delta|_op < 1 (any orientation; :func:`mfntk.datasets.gaussian_mixture` draws a diagonal one).
The risk is the prediction error min E[(y - f(x))^2] over the class, which contains a free
constant; E y^2 = 1, so 1 is the risk of predicting 0.

Derivation. Every class here is {c + <x, S x> : S in V} for a linear space V of symmetric
matrices (RF: span{w_i w_i^T}; NT: {S : Q S Q = 0}; NN: rank <= N). By Isserlis under each
component, E[y <x, S x>] = <S, Delta> and the variance of <x, S x> under the mixture is
2 <S, S + Delta S Delta> + <S, Delta>^2, so (Sherman-Morrison on the normal equations) the risk
is exactly 1 / (1 + g), g = sup_{S in V} <S, Delta>^2 / (2 <S, S + Delta S Delta>). To leading order
in |Delta|_op, the paper's regime (|Delta|_F = O(1) spread over many directions, so
|Delta|_op -> 0), Delta S Delta is dropped and g = |Pi_V Delta|_F^2 / 2: the fraction of the
quadratic target B = Delta that the class captures (1 - the QF risk of the same class) times
|Delta|_F^2 / 2. The three risks are therefore the QF ones of :func:`qf_rf_risk`,
:func:`qf_nt_risk` and :func:`qf_nn_risk` at B = Delta, mapped by R -> 1 / (1 + (1 - R) |Delta|_F^2 / 2).

Domain and accuracy: N, d -> infinity with N/d -> rho, |Delta|_op -> 0; the neglected term
changes g by a relative O(|Delta|_op^2): for NN, the best S spanned by the top eigenvectors gives
exactly g = sum_{i <= N} lambda_i^2 / (2 (1 + lambda_i^2)), so a spike with |lambda| of order 1 makes
the correction of order 1 too.
:func:`mixture_rf_risk_finite` and :func:`mixture_nt_risk_finite` are exact, Delta S Delta
included, for a given first layer.

Concentration of the empirical tangent kernel
---------------------------------------------
:func:`ntk_concentration_scale`, the predicted scale sqrt((n + d) / (N d)) of
|K^{-1/2} K_N K^{-1/2} - I|_op (Montanari-Zhong, as stated in the lecture notes "Linearized
networks"), and :func:`ntk_concentration`, that quantity measured with mfntk's empirical and
analytic kernels.

References
----------
.. [GMMM19] B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari, "Limitations of lazy training
   of two-layers neural networks", NeurIPS 2019 (Theorems 1-3, the quadratic-function setting;
   Section 3 and Figure 2, the mixture of Gaussians).
"""
from __future__ import annotations

import math

import numpy as np

from ._solvers import conjugate_gradient
from ._validation import as_matrix, check_bool, check_float, check_int

__all__ = ["qf_norm2", "qf_rf_risk", "qf_rf_risk_finite", "qf_nt_risk", "qf_nt_risk_expected",
           "qf_nt_risk_finite", "qf_nn_risk", "mixture_rf_risk", "mixture_nt_risk", "mixture_nn_risk",
           "mixture_rf_risk_finite", "mixture_nt_risk_finite", "ntk_concentration_scale", "ntk_concentration"]

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
    |w_i|^2 - 1 contribute O(rho / d), so the limit is the same with a free constant. At finite d
    the exact risk (:func:`qf_rf_risk_finite`, with or without the constant) is below the limit by
    about rho / d. It depends on sigma only through this quadratic part
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


def qf_nt_risk(B, rho, intercept=True):
    """Asymptotic risk of the neural-tangent model on a centred quadratic target, averaged over W, over
    ||f*||^2 ([GMMM19]_ Thm 2).

    NT class {c + sum_i <a_i, x> sigma'(<w_i, x>) : c in R, a_i in R^d} at fixed w_i ~ N(0, I_d/d),
    sigma(u) = u^2 (without the constant c when ``intercept=False``); f*(x) = <x, B x> - Tr B. As
    N, d -> infinity with N/d -> rho, with T = Tr(B)^2 / (d |B|_F^2),

        with the constant (Theorem 2):  E_W R_NT / ||f*||^2 -> (1 - rho)_+^2 + rho (1 - rho)_+ T,
        without it:                     E_W R_NT / ||f*||^2 -> (1 - rho)_+^2 + rho (1 - rho)_+ T + min(rho, 1) T.

    Parameters
    ----------
    B : array_like (d, d), symmetric
    rho : float > 0
        N / d.
    intercept : bool
        Whether the class has the free constant c (the class of [GMMM19]_).

    Returns
    -------
    float in [0, 1]

    Notes
    -----
    With sigma'(u) = 2u, sum_i <a_i, x> 2 <w_i, x> = <x, S x> with S = sum_i (a_i w_i^T + w_i a_i^T):
    the class is {c + <x, S x> : S in V}, V = {S : Q S Q = 0}, Q = I - P, P the orthogonal projector
    on span(w_i), of rank r. The residual's component Q B Q is orthogonal to V in the Frobenius
    product, so with the constant (which fits the mean exactly) the risk is 2 |Q B Q|_F^2. For
    Gaussian W, span(w_i) is uniform: Q is a Haar-random projector of rank m = (d - N)_+, and
    E[Q_ij Q_kl] = alpha delta_ij delta_kl + beta (delta_ik delta_jl + delta_il delta_jk) with
    beta = m (d - m) / (d (d - 1) (d + 2)), alpha = m/d - (d + 1) beta (from Q^2 = Q and
    (Tr Q)^2 = m^2), so that E |Q B Q|_F^2 = (alpha + beta) |B|_F^2 + beta Tr(B)^2 exactly
    (:func:`qf_nt_risk_expected`); m/d -> 1 - rho gives the limit, a product of (1 - rho) and the
    trace term: the seed's transcription, which adds rho (1 - rho) and T, is garbled. The constant
    absorbs only the mean of f*, not the trace term: for B = I the NT risk with the constant is
    1 - rho (the function <x, Q x> - Tr Q is orthogonal to the class), and (1 - rho)^2 holds for
    traceless B only.

    Without the constant the mean of the fit, Tr S = <S, P> for S in V, must also match: the
    minimum of 2 |B - S|_F^2 + (Tr S)^2 over V is 2 |Q B Q|_F^2 + 2 Tr(P B)^2 / (r + 2) (the best S
    moves from B - Q B Q along P, the projection of I on V, |P|_F^2 = r), and
    E Tr(P B)^2 ~ (r/d)^2 Tr(B)^2 gives the extra min(rho, 1) T. So for N >= d the NT risk
    vanishes only with the constant, as [GMMM19]_ states it.

    Domain: T is in [0, 1] (Cauchy-Schwarz) and stays O(1) for, e.g., B positive semi-definite;
    the finite-d error is O(1/d) (:func:`qf_nt_risk_expected` is exact).

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> round(mf.theory.qf_nt_risk(np.eye(50), rho=0.5), 6)   # (1/2)^2 + (1/2)(1/2) Tr(I)^2 / (d d)
    0.5
    >>> round(mf.theory.qf_nt_risk(np.eye(50), rho=0.5, intercept=False), 6)   # + (1/2) * 1
    1.0
    """
    B = _symmetric(B)
    rho = _rho(rho)
    intercept = check_bool(intercept, "intercept")
    d = B.shape[0]
    r = max(1.0 - rho, 0.0)
    trace_term = float(np.trace(B)) ** 2 / (d * float(np.sum(B * B)))
    risk = r * r + rho * r * trace_term
    return risk if intercept else risk + min(rho, 1.0) * trace_term


def _haar_moments(rank, d):
    """(alpha, beta) of E[P_ij P_kl] = alpha delta_ij delta_kl + beta (delta_ik delta_jl + delta_il delta_jk)
    for a Haar-random orthogonal projector P of the given rank in R^d."""
    beta = rank * (d - rank) / (d * (d - 1) * (d + 2)) if d > 1 else 0.0
    return rank / d - (d + 1) * beta, beta


def qf_nt_risk_expected(B, N, intercept=True):
    """E_W R_NT / ||f*||^2 at finite d, exactly, for w_i ~ N(0, sigma^2 I_d) (any sigma > 0), N neurons.

    With the constant: (alpha + beta) + beta Tr(B)^2 / |B|_F^2, (alpha, beta) the moments of the Haar
    projector Q of rank m = (d - N)_+ (see :func:`qf_nt_risk`, of which this is the finite-d form).
    Without it, add E Tr(P B)^2 / ((r + 2) |B|_F^2) = (alpha' Tr(B)^2 / |B|_F^2 + 2 beta') / (r + 2),
    (alpha', beta') those of P = I - Q, of rank r = min(N, d). For d = 1, beta = 0.

    Parameters
    ----------
    B : array_like (d, d), symmetric
    N : int >= 1
    intercept : bool
        Whether the class has a free constant.

    Returns
    -------
    float in [0, 1]
    """
    B = _symmetric(B)
    N = check_int(N, "N")
    intercept = check_bool(intercept, "intercept")
    d = B.shape[0]
    ratio = float(np.trace(B)) ** 2 / float(np.sum(B * B))
    alpha, beta = _haar_moments(max(d - N, 0), d)
    risk = (alpha + beta) + beta * ratio
    if intercept:
        return risk
    r = min(N, d)
    alpha_p, beta_p = _haar_moments(r, d)
    return risk + (alpha_p * ratio + 2.0 * beta_p) / (r + 2)


# ---- exact risks for a given first layer -------------------------------------------------------
def _first_layer(W, d):
    W = as_matrix(W, "W")
    if W.shape[1] != d:
        raise ValueError(f"W: expected {d} columns (the dimension of B), got shape {W.shape}")
    return W


def _span_basis(W, full=False):
    """Orthonormal basis of span(w_i) (columns 0..r-1 of the returned d x r, or d x d with ``full``), and r."""
    U, s, _ = np.linalg.svd(W.T, full_matrices=full)
    r = int(np.sum(s > max(W.shape) * np.finfo(float).eps * s[0])) if s.size and s[0] > 0.0 else 0
    return (U if full else U[:, :r]), r


def _target_mean(B, b0):
    """E f* = Tr B + b0 (b0 None: centred, 0)."""
    return 0.0 if b0 is None else float(np.trace(B)) + check_float(b0, "b0")


def qf_rf_risk_finite(B, W, intercept=True, b0=None, c0=0.0):
    """Exact risk of the random-features fit for a given first layer W, quadratic activation, over ||f*||^2.

    min over a (and c) of E[(f*(x) - c - sum_i a_i sigma(<w_i, x>))^2] / E[f*(x)^2] for x ~ N(0, I_d),
    sigma(u) = u^2 + c0, f*(x) = <x, B x> + b0. It does not depend on the scale of the features, so
    the package's RF features sigma(<w_j, x>) / sqrt(N) (:class:`mfntk.RandomFeatures` with
    ``activation="quadratic"``) have the same risk.

    Parameters
    ----------
    B : array_like (d, d), symmetric
    W : array_like (N, d)
        The first-layer weights (rows w_i), e.g. ``net.W`` of a :class:`mfntk.TwoLayer`.
    intercept : bool
        Whether the class has a free constant c.
    b0 : float or None
        Constant of the target; None: -Tr B (the centred target of [GMMM19]_).
    c0 : float
        Constant of the activation (irrelevant with the intercept).

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ValueError
        B not symmetric or zero, W without d columns, non-finite values.

    Notes
    -----
    Feature i is the quadratic form <x, W_i x> + c0, W_i = w_i w_i^T, and
    E[(<x, A x> + a)(<x, C x> + c)] = 2 Tr(A C) + (Tr A + a)(Tr C + c) (Isserlis). Without the
    constant the best a solves the normal equations with the Gram matrix
    G_ij = 2 <w_i, w_j>^2 + mu_i mu_j, mu_i = |w_i|^2 + c0, and right-hand side
    g_i = 2 <w_i, B w_i> + mu_i (Tr B + b0): the risk is E f*^2 - g^T G^+ g. With the constant every
    function is centred (the constant fits the means): G_ij = 2 <w_i, w_j>^2, g_i = 2 <w_i, B w_i>,
    risk 2 |B|_F^2 - g^T G^+ g, the Frobenius projection of B onto span{w_i w_i^T}. Exact at every
    d and N (including N > d (d + 1) / 2, through the pseudo-inverse); its average over
    w_i ~ N(0, Gamma) tends to :func:`qf_rf_risk` (with or without the constant: the means
    mu_i - 1 - c0 are O(d^-1/2) fluctuations, worth O(rho / d)).

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> W = np.eye(3)                                    # the features x_1^2, x_2^2, x_3^2
    >>> float(mf.theory.qf_rf_risk_finite(np.diag([1.0, 2.0, 3.0]), W))   # a diagonal B is fitted
    0.0
    """
    B = _symmetric(B)
    W = _first_layer(W, B.shape[0])
    intercept = check_bool(intercept, "intercept")
    c0 = check_float(c0, "c0")
    mean = _target_mean(B, b0)
    norm2 = 2.0 * float(np.sum(B * B)) + mean * mean
    G = 2.0 * (W @ W.T) ** 2
    g = 2.0 * np.einsum("ij,jk,ik->i", W, B, W)
    total = norm2 - mean * mean  # the constant fits the mean
    if not intercept:
        mu = np.einsum("ij,ij->i", W, W) + c0
        G += np.outer(mu, mu)
        g += mu * mean
        total = norm2
    captured = float(g @ np.linalg.lstsq(G, g, rcond=None)[0])
    return max(total - captured, 0.0) / norm2


def qf_nt_risk_finite(B, W, intercept=True, b0=None):
    """Exact risk of the neural-tangent fit for a given first layer W, quadratic activation, over ||f*||^2.

    min over a_i in R^d (and c) of E[(f*(x) - c - sum_i <a_i, x> sigma'(<w_i, x>))^2] / E[f*(x)^2] for
    x ~ N(0, I_d), sigma(u) = u^2 (+ c0: sigma' = 2u either way), f*(x) = <x, B x> + b0:

        with the constant:     2 |Q B Q|_F^2 / E f*^2,
        without it:            (2 |Q B Q|_F^2 + 2 (Tr(Q B) + b0)^2 / (r + 2)) / E f*^2,

    Q = I - P, P the orthogonal projector on span(w_i), r its rank (derivation: :func:`qf_nt_risk`).

    The risk depends on W only through span(w_i): the derivative taken with respect to w or to
    w / sqrt(d), and the factors |a_j| / sqrt(N) of the package's NT features
    (:class:`mfntk.NeuralTangent`, features |a_j| sigma'(<w_j, x>) x / sqrt(N), a_j != 0), rescale
    the features without changing the class.

    Parameters
    ----------
    B : array_like (d, d), symmetric
    W : array_like (N, d)
        The first-layer weights (rows w_i).
    intercept : bool
        Whether the class has a free constant c.
    b0 : float or None
        Constant of the target; None: -Tr B (centred).

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ValueError
        B not symmetric or zero, W without d columns, non-finite values.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> B = np.diag([1.0, -1.0, 2.0])
    >>> W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])   # Q B Q = diag(0, 0, 2)
    >>> float(mf.theory.qf_nt_risk_finite(B, W))           # 2 * 4 / (2 * 6)
    0.6666666666666666
    """
    B = _symmetric(B)
    d = B.shape[0]
    W = _first_layer(W, d)
    intercept = check_bool(intercept, "intercept")
    mean = _target_mean(B, b0)
    U, r = _span_basis(W)
    Q = np.eye(d) - U @ U.T
    QBQ = Q @ B @ Q
    risk = 2.0 * float(np.sum(QBQ * QBQ))
    if not intercept:
        # Tr(Q B) + b0 = E f* - Tr(P B): the mean left once S fits B - Q B Q
        risk += 2.0 * (mean - float(np.trace(U.T @ B @ U))) ** 2 / (r + 2)
    return risk / (2.0 * float(np.sum(B * B)) + mean * mean)


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


# ---- mixture of two centred Gaussians (GMMM "MG" setting) --------------------------------------
_MIXTURE_CG_TOL = 1e-12  # relative residual of the NT normal equations (their spectrum lies in [1, 2])


def _delta(Delta):
    Delta = _symmetric(Delta, "Delta")
    top = float(np.max(np.abs(np.linalg.eigvalsh(Delta))))
    if top >= 1.0:
        raise ValueError(f"Delta: |Delta|_op must be < 1 so that I + Delta and I - Delta are covariances, "
                         f"got {top:.6g}")
    return Delta


def _mixture_risk(captured, Delta):
    """1 / (1 + g) with g = (captured fraction of |Delta|_F^2) |Delta|_F^2 / 2 (module notes, mixture)."""
    return 1.0 / (1.0 + 0.5 * captured * float(np.sum(Delta * Delta)))


def mixture_rf_risk(Delta, rho, Gamma=None):
    """Asymptotic prediction error of the random-features model on the Gaussian mixture ([GMMM19]_, Fig. 2).

        R_RF -> 1 / (1 + (1 - r_RF) |Delta|_F^2 / 2),   r_RF = :func:`qf_rf_risk` (Delta, rho, Gamma),

    which for w_i ~ N(0, I_d/d) is 1 / (1 + rho / (1 + rho) Tr(Delta)^2 / (2 d)): RF sees only the
    trace of Delta, i.e. the norm |x|.

    Parameters
    ----------
    Delta : array_like (d, d), symmetric, |Delta|_op < 1
    rho : float > 0
        N / d.
    Gamma : array_like (d, d) or None
        Covariance of the first-layer weights, as in :func:`qf_rf_risk`; None: I_d / d.

    Returns
    -------
    float in (0, 1]

    Raises
    ------
    ValueError
        Delta not symmetric, zero, or with |Delta|_op >= 1; rho <= 0; a bad Gamma.

    Notes
    -----
    The seed transcribes this risk as 1 / (1 + rho / (1 + 2 rho) r(Delta)^2 / (2 d)) with r(Delta) left
    undefined. The derivation (module notes, "Mixture of two Gaussians", also for the domain), with
    sigma(u) = u^2 + c0 (any c0: the constant absorbs it), gives rho / (1 + rho) with
    r(Delta) = Tr(Delta) -- the factor of Theorem 1 at B = Delta, Gamma = I/d -- and so does the exact
    risk for given W (:func:`mixture_rf_risk_finite`): at d = 300, Tr(Delta)^2 / (2 d) = 0.51 and
    rho = 2, averaged over two draws of W, it is 0.7458 against 0.7466 here and 0.8308 with 1 + 2 rho.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> d = 400
    >>> round(mf.theory.mixture_rf_risk(0.05 * np.eye(d), rho=1.0), 6)   # 1 / (1 + (1/2) * 400 * 0.05^2 / 2)
    0.8
    """
    Delta = _delta(Delta)
    return _mixture_risk(1.0 - qf_rf_risk(Delta, rho, Gamma), Delta)


def mixture_nt_risk(Delta, rho):
    """Asymptotic prediction error of the neural-tangent model on the Gaussian mixture, averaged over W
    ([GMMM19]_, Fig. 2).

    ::

        R_NT -> 1 / (1 + kappa(rho, Delta) |Delta|_F^2 / 2),
        kappa(rho, Delta) = 1 - (1 - rho)_+^2 - rho (1 - rho)_+ Tr(Delta)^2 / (d |Delta|_F^2)
                          = 1 - qf_nt_risk(Delta, rho),

    for w_i ~ N(0, I_d/d), sigma(u) = u^2 (+ c0). The seed names kappa without defining it; this is
    the derivation (module notes).

    Parameters
    ----------
    Delta : array_like (d, d), symmetric, |Delta|_op < 1
    rho : float > 0
        N / d.

    Returns
    -------
    float in (0, 1]

    Raises
    ------
    ValueError
        Delta not symmetric, zero, or with |Delta|_op >= 1; rho <= 0.

    Notes
    -----
    NT against NN (the ordering of [GMMM19]_'s Figure 2, where NN has the smaller error for
    N < d) depends on the spectrum of Delta: NN captures the N largest lambda_i(Delta)^2, NT a
    fraction about 1 - (1 - rho)^2 = rho (2 - rho) of |Delta|_F^2 whatever the spectrum. NN wins for a
    spiked Delta (few large eigenvalues, all captured once N exceeds their number); for a flat
    spectrum (e.g. the diagonal +-delta of :func:`mfntk.datasets.gaussian_mixture`) NN captures
    only rho < rho (2 - rho), and NT has the smaller error.
    See the module notes ("Mixture of two Gaussians") for the derivation and the domain.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> Delta = 0.1 * np.diag(np.resize([1.0, -1.0], 200))   # traceless, |Delta|_F^2 = 2
    >>> round(mf.theory.mixture_nt_risk(Delta, rho=0.5), 6)   # 1 / (1 + 0.75)
    0.571429
    """
    Delta = _delta(Delta)
    return _mixture_risk(1.0 - qf_nt_risk(Delta, rho), Delta)


def mixture_nn_risk(Delta, N, exact=False):
    """Prediction error of the best two-layer network with N quadratic neurons on the Gaussian mixture, to
    leading order in |Delta|_op ([GMMM19]_, Fig. 2), or exactly.

        R_NN = 1 / (1 + sum_{i <= min(N, d)} lambda_i(Delta)^2 / 2)                      (leading order),
        R_NN = 1 / (1 + sum_{i <= min(N, d)} lambda_i(Delta)^2 / (2 (1 + lambda_i(Delta)^2)))   (``exact``),

    the eigenvalues ordered by decreasing magnitude (for Delta >= 0 the paper's ordering).

    Parameters
    ----------
    Delta : array_like (d, d), symmetric, |Delta|_op < 1
    N : int >= 1
    exact : bool
        Keep the term Delta S Delta that the leading order drops: the value of the best S along the top
        eigenvectors, sum_i s_i v_i v_i^T with s_i = lambda_i / (1 + lambda_i^2) (the finite-d value to
        compare a trained network with when |Delta|_op is not small).

    Returns
    -------
    float in (0, 1]

    Raises
    ------
    ValueError
        Delta not symmetric, zero, or with |Delta|_op >= 1; N < 1.

    Notes
    -----
    The class {c + sum_i a_i <w_i, x>^2} is {c + <x, S x> : rank S <= N}; the best S is along the top
    eigenvectors (Eckart-Young, :func:`qf_nn_risk` at B = Delta). The paper does not prove that SGD
    reaches it in this setting; this is the minimum over the class. With ``exact``, g of the module notes
    is, for S = sum_i s_i v_i v_i^T on eigenvectors of Delta, (sum_i s_i lambda_i)^2 / (2 sum_i s_i^2 (1 +
    lambda_i^2)), largest (Cauchy-Schwarz) at s_i proportional to lambda_i / (1 + lambda_i^2) on the N
    largest |lambda_i|; direct minimisation over networks reaches this value and does not go below it
    (tests/test_theory.py), and it lies above the leading order by at most sum_{i <= N} lambda_i^4 / 2.
    NN beats NT only for a spiked
    Delta (see :func:`mixture_nt_risk`, Notes): a flat diagonal Delta reverses Figure 2's ordering.
    See the module notes ("Mixture of two Gaussians") for the derivation and the domain.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> round(mf.theory.mixture_nn_risk(np.diag([0.6, -0.8, 0.1]), N=2), 6)   # 1 / (1 + (0.64 + 0.36) / 2)
    0.666667
    >>> round(mf.theory.mixture_nn_risk(np.diag([0.6, -0.8, 0.1]), N=2, exact=True), 6)   # 0.64/1.64, 0.36/1.36
    0.75331
    """
    Delta = _delta(Delta)
    N = check_int(N, "N")
    if check_bool(exact, "exact"):
        lam = np.sort(np.abs(np.linalg.eigvalsh(Delta)))[::-1][:N]
        return 1.0 / (1.0 + 0.5 * float(np.sum(lam ** 2 / (1.0 + lam ** 2))))
    return _mixture_risk(1.0 - qf_nn_risk(Delta, N), Delta)


def mixture_rf_risk_finite(Delta, W):
    """Exact prediction error of the random-features fit (with the constant) on the Gaussian mixture, for a
    given first layer W, quadratic activation.

    min over c, a of E[(y - c - sum_i a_i sigma(<w_i, x>))^2], sigma(u) = u^2 + c0 (any c0), is
    1 / (1 + t^T M^+ t) with t_i = <w_i, Delta w_i> and M_ij = 2 (<w_i, w_j>^2 + <w_i, Delta w_j>^2).

    Parameters
    ----------
    Delta : array_like (d, d), symmetric, |Delta|_op < 1
    W : array_like (N, d)

    Returns
    -------
    float in (0, 1]

    Raises
    ------
    ValueError
        Delta not symmetric, zero or with |Delta|_op >= 1; W without d columns.

    Notes
    -----
    The normal equations of the mixture setting (see :func:`mixture_rf_risk`) in the basis
    S_i = w_i w_i^T: <S_i, Delta> = t_i and 2 <S_i, S_j + Delta S_j Delta> = M_ij. Exact for every d and N;
    its average over w_i ~ N(0, I_d/d) tends to :func:`mixture_rf_risk` as d -> infinity with
    |Delta|_op -> 0.
    """
    Delta = _delta(Delta)
    W = _first_layer(W, Delta.shape[0])
    WD = W @ Delta @ W.T
    t = np.diag(WD).copy()
    M = 2.0 * ((W @ W.T) ** 2 + WD ** 2)
    return 1.0 / (1.0 + max(float(t @ np.linalg.lstsq(M, t, rcond=None)[0]), 0.0))


def mixture_nt_risk_finite(Delta, W):
    """Exact prediction error of the neural-tangent fit (with the constant) on the Gaussian mixture, for a
    given first layer W, quadratic activation.

    1 / (1 + g), g = sup_{S : Q S Q = 0} <S, Delta>^2 / (2 <S, S + Delta S Delta>), Q = I - P and P the
    projector on span(w_i) (only the span matters, as in :func:`qf_nt_risk_finite`).

    Parameters
    ----------
    Delta : array_like (d, d), symmetric, |Delta|_op < 1
    W : array_like (N, d)

    Returns
    -------
    float in (0, 1]

    Raises
    ------
    ValueError
        Delta not symmetric, zero or with |Delta|_op >= 1; W without d columns.

    Notes
    -----
    g = <Pi Delta, X> / 2 where X in V = {S : Q S Q = 0} solves Pi (X + Delta X Delta) = Pi Delta, Pi the
    orthogonal projection onto V (S -> S - Q S Q). The operator is symmetric on V with spectrum in
    [1, 1 + |Delta|_op^2], so conjugate gradient (mfntk's, matrix-free, O(d^3) per step) reaches a
    relative residual of 1e-12 in a few tens of steps. Without Delta S Delta, g = |Delta - Q Delta Q|_F^2 / 2
    (the QF projection), whose average over W gives :func:`mixture_nt_risk`.
    """
    Delta = _delta(Delta)
    d = Delta.shape[0]
    W = _first_layer(W, d)
    O, r = _span_basis(W, full=True)
    D = O.T @ Delta @ O  # in the basis (span(w_i), its complement), V = {S : S[r:, r:] = 0}
    in_V = np.ones((d, d))
    in_V[r:, r:] = 0.0

    def normal_operator(columns):
        S = columns.reshape(d, d)
        return ((S + D @ S @ D) * in_V).reshape(-1, 1)

    rhs = (D * in_V).reshape(-1, 1)
    if not np.any(rhs):
        return 1.0
    X, _ = conjugate_gradient(normal_operator, rhs, tol=_MIXTURE_CG_TOL, max_iter=10 * d * d)
    return 1.0 / (1.0 + 0.5 * max(float(rhs[:, 0] @ X[:, 0]), 0.0))


# ---- concentration of the empirical tangent kernel ---------------------------------------------
def ntk_concentration_scale(n, d, width):
    """Predicted scale sqrt((n + d) / (N d)) of |K^{-1/2} K_N K^{-1/2} - I_n|_op ([MZ22]_, via [LN]_ Thm 2).

    K_N is the empirical neural-tangent kernel of a width-N network on n points in R^d, K its
    infinite-width limit. With high probability the deviation is at most this scale up to constants
    and logarithmic factors: the empirical kernel is accurate once the number N d of first-layer
    parameters is much larger than the number n of samples (and than d).

    Parameters
    ----------
    n : int >= 1
        Number of points.
    d : int >= 1
        Input dimension.
    width : int >= 1
        Number N of independent neurons (for ``symmetric=True`` networks, half the width: the pairs
        (a, w), (-a, w) share their first layer).

    Returns
    -------
    float

    Notes
    -----
    Domain of [MZ22]_: the first-layer (NT) kernel, inputs uniform on the sphere of radius sqrt(d),
    w_j ~ N(0, I_d / d), N and d large with n <= N d; the bound comes from the matrix Bernstein
    inequality for K_N = (1/N) sum_j (a sum of N independent rank-d terms). :func:`ntk_concentration`
    measures the quantity; the test suite checks that measured / predicted stays between fixed
    constants and decays like N^{-1/2}. The second-layer (RF) part has rank at most N and
    concentrates at the slower scale sqrt(n / N) (no better than 1 when n > N).

    References
    ----------
    .. [MZ22] A. Montanari and Y. Zhong, "The interpolation phase transition in neural networks:
       memorization and generalization under lazy training", Ann. Statist. 50(5), 2022.
    .. [LN] Lecture notes "Linearized networks" (lecture 11), Theorem 2 (informal version of [MZ22]_).

    Examples
    --------
    >>> import mfntk as mf
    >>> mf.theory.ntk_concentration_scale(n=90, d=10, width=1000)   # sqrt(100 / 10^4)
    0.1
    """
    n = check_int(n, "n")
    d = check_int(d, "d")
    width = check_int(width, "width")
    return math.sqrt((n + d) / (width * d))


def ntk_concentration(net, X, kind="nt", rcond=None, threads=None, **analytic_options):
    """Measured |K^{-1/2} K_N K^{-1/2} - I_n|_op: the empirical tangent kernel of ``net`` on X against its
    infinite-width limit.

    K_N = ``mfntk.kernels.empirical(net, X, kind=kind)`` and
    K = ``mfntk.kernels.Analytic.from_network(net, kind=kind)(X)``, the analytic kernel of the
    network's own initialisation law (activation, c0, w_std, a_std, b_std, bias). The norm is the
    largest |mu - 1| over the eigenvalues mu of K^{-1/2} K_N K^{-1/2} (a similarity transform of
    K^{-1} K_N, so the result does not depend on the square root chosen).

    Parameters
    ----------
    net : mfntk.TwoLayer
        The network at initialisation (any trained state is compared with the initial law).
    X : array_like (n, d)
        Distinct points, with K(X, X) positive definite.
    kind : {"nt", "ntk", "rf"}
        The kernel part ("nt": the first layer, the kernel of [MZ22]_; see
        :func:`ntk_concentration_scale`).
    rcond : float or None
        K is declared singular when its smallest eigenvalue is at most rcond times its largest;
        None: n * machine epsilon.
    threads : int or None
        OpenMP threads of the kernel computations.
    **analytic_options
        Passed to :class:`mfntk.kernels.Analytic` (method, quad_order, quad_tol).

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        A bad network, points or kind (from :mod:`mfntk.kernels`); K singular to working precision
        (repeated or parallel points, or n beyond the kernel's rank).

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> X = np.random.default_rng(0).standard_normal((20, 5))
    >>> net = mf.TwoLayer(d=5, width=4000, activation="relu", seed=1)
    >>> bool(mf.theory.ntk_concentration(net, X) < 5 * mf.theory.ntk_concentration_scale(20, 5, 4000))
    True
    """
    from . import kernels

    K_N = np.asarray(kernels.empirical(net, X, kind=kind, threads=threads), dtype=np.float64)
    K = np.asarray(kernels.Analytic.from_network(net, kind=kind, threads=threads, **analytic_options)(X),
                   dtype=np.float64)
    n = K.shape[0]
    rcond = n * np.finfo(float).eps if rcond is None else check_float(rcond, "rcond", minimum=0.0)
    lam, V = np.linalg.eigh(K)
    if not lam[-1] > 0.0 or lam[0] <= rcond * lam[-1]:
        raise ValueError(f"X: the analytic kernel K(X, X) ({kind!r}) is singular to working precision (eigenvalues "
                         f"from {lam[0]:.3g} to {lam[-1]:.3g}, cutoff rcond={rcond:.3g}): K^(-1/2) does not exist; "
                         "use distinct, non-parallel points, or fewer than the kernel's rank")
    root = V / np.sqrt(lam)  # K^{-1/2} up to the rotation V, which leaves the spectrum unchanged
    M = root.T @ K_N @ root
    return float(np.max(np.abs(np.linalg.eigvalsh(0.5 * (M + M.T)) - 1.0)))
