"""Straightforward numpy formulas of SPEC 1-4, written independently of the C++ core.

They form the full (n, N) matrices, so they are only for small sizes.
"""
import numpy as np
from scipy.special import erf

SQRT_PI = np.sqrt(np.pi)


def sigma(name, u, c0=0.0):
    return {
        "relu": lambda: np.maximum(u, 0.0),
        "tanh": lambda: np.tanh(u),
        "erf": lambda: erf(u),
        "sigmoid": lambda: 1.0 / (1.0 + np.exp(-u)),
        "softplus": lambda: np.log1p(np.exp(u)),
        "quadratic": lambda: u ** 2 + c0,
        "identity": lambda: u.copy(),
    }[name]()


def dsigma(name, u, c0=0.0):
    return {
        "relu": lambda: (u > 0).astype(float),
        "tanh": lambda: 1.0 / np.cosh(u) ** 2,
        "erf": lambda: 2.0 / SQRT_PI * np.exp(-u ** 2),
        "sigmoid": lambda: np.exp(-u) / (1.0 + np.exp(-u)) ** 2,
        "softplus": lambda: 1.0 / (1.0 + np.exp(-u)),
        "quadratic": lambda: 2.0 * u,
        "identity": lambda: np.ones_like(u),
    }[name]()


def d2sigma(name, u, c0=0.0):
    """sigma'' (relu: 0 away from the kink)."""
    return {
        "relu": lambda: np.zeros_like(u),
        "tanh": lambda: -2.0 * np.tanh(u) / np.cosh(u) ** 2,
        "erf": lambda: -4.0 / SQRT_PI * u * np.exp(-u ** 2),
        "sigmoid": lambda: np.exp(-u) * (np.exp(-u) - 1.0) / (1.0 + np.exp(-u)) ** 3,
        "softplus": lambda: np.exp(-u) / (1.0 + np.exp(-u)) ** 2,
        "quadratic": lambda: np.full_like(u, 2.0),
        "identity": lambda: np.zeros_like(u),
    }[name]()


def preact(a, W, b, X):
    Z = X @ W.T
    return Z + b if b is not None else Z


def forward(net_like, X):
    """f(X) = (alpha/N) sigma(X W^T + b) a, shape (n, k)."""
    act, c0, alpha, a, W, b = net_like
    return alpha / a.shape[0] * sigma(act, preact(a, W, b, X), c0) @ a


def residual(loss, F, Y):
    return {
        "squared": lambda: Y - F,
        "logistic": lambda: Y / (1.0 + np.exp(Y * F)),
    }[loss]()


def risk(loss, F, Y):
    return {
        "squared": lambda: np.mean(0.5 * np.sum((Y - F) ** 2, axis=1)),
        "logistic": lambda: np.mean(np.sum(np.log1p(np.exp(-Y * F)), axis=1)),
    }[loss]()


def field(net_like, X, Y, loss="squared", weight_decay=0.0):
    """SPEC 3: d theta_j/dt = (1/alpha)(1/n) sum_i grad sigma_*(x_i; theta_j)^T r_i - lambda theta_j."""
    act, c0, alpha, a, W, b = net_like
    n = X.shape[0]
    Z = preact(a, W, b, X)
    S, D = sigma(act, Z, c0), dsigma(act, Z, c0)
    R = residual(loss, forward(net_like, X), Y)
    G = D * (R @ a.T)  # (n, N): <r_i, a_j> sigma'(z_ij)
    dA = S.T @ R / (alpha * n) - weight_decay * a
    dW = G.T @ X / (alpha * n) - weight_decay * W
    db = None if b is None else G.sum(0) / (alpha * n) - weight_decay * b
    return dA, dW, db


def ntk(net_like, X, X2=None, kind="ntk"):
    """SPEC 4 empirical kernel of one output, (1/k) sum_p K_pp: |a_j|^2 / k in the first-layer part
    (the scalar kernel for k = 1)."""
    act, c0, alpha, a, W, b = net_like
    X2 = X if X2 is None else X2
    S1, S2 = sigma(act, preact(a, W, b, X), c0), sigma(act, preact(a, W, b, X2), c0)
    D1, D2 = dsigma(act, preact(a, W, b, X), c0), dsigma(act, preact(a, W, b, X2), c0)
    a2 = np.mean(a ** 2, axis=1)
    rf = S1 @ S2.T
    nt = (X @ X2.T + (1.0 if b is not None else 0.0)) * ((D1 * a2) @ D2.T)
    out = {"rf": rf, "nt": nt, "ntk": rf + nt}[kind]
    return out / a.shape[0]


def jacobian(net_like, X):
    """The Jacobian of F = sum_j a_j sigma(<w_j, x> + b_j) (f without the factor alpha/N) with respect
    to the particles, split as (J_a, J_W, J_b or None): arrays of shape (n k, N k), (n k, N d),
    (n k, N), row i k + p for output p at x_i, columns in the order of the particles' [a | W | b]."""
    act, c0, alpha, a, W, b = net_like
    n, d = X.shape
    N, k = a.shape
    Z = preact(a, W, b, X)
    S, D = sigma(act, Z, c0), dsigma(act, Z, c0)
    Ja = np.einsum("ij,pq->ipjq", S, np.eye(k)).reshape(n * k, N * k)          # d F_p / d a_jq = delta_pq s_j
    DA = np.einsum("ij,jp->ipj", D, a)                                         # a_jp s'_j(x_i)
    JW = np.einsum("ipj,ie->ipje", DA, X).reshape(n * k, N * d)                # d F_p / d w_j = a_jp s'_j x
    Jb = None if b is None else DA.reshape(n * k, N)                           # d F_p / d b_j = a_jp s'_j
    return Ja, JW, Jb


def matrix_ntk(net_like, X, X2=None, kind="ntk"):
    """SPEC 4 matrix-valued kernel from explicit Jacobians: (1/N) J(X) J(X2)^T restricted to the
    second layer (rf), the first layer (nt) or both, shape (n1 k, n2 k)."""
    J1 = jacobian(net_like, X)
    J2 = J1 if X2 is None else jacobian(net_like, X2)
    rf = J1[0] @ J2[0].T
    nt = sum(A @ B.T for A, B in zip(J1[1:], J2[1:]) if A is not None)
    out = {"rf": rf, "nt": nt, "ntk": rf + nt}[kind]
    return out / net_like[3].shape[0]


def as_tuple(net):
    f64 = lambda x: None if x is None else np.asarray(x, np.float64)  # noqa: E731
    return (net.activation, net.c0, net.alpha, f64(net.a), f64(net.W), f64(net.b))
