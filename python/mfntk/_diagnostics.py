"""Lazy-versus-rich diagnostics along a run (SPEC 4).

All are computed on a probe set (a subset of the training inputs) from the particles at two
times, in particle blocks so that no (probe x N) array larger than a block is formed.
"""
from __future__ import annotations

import numpy as np


_BLOCK = 4096


def _features(net, a, W, b, X, j0, j1):
    """sigma(Z) and sigma'(Z), Z = X W^T + b on particles [j0, j1), in float64 by the core's policies."""
    Z = X @ W[j0:j1].T
    if b is not None:
        Z += b[j0:j1]
    return net.backend.activation(net.activation, net.c0, Z, 0), net.backend.activation(net.activation, net.c0, Z, 1)


def tangent_change(net, theta_prev, theta_now, X):
    """|D f(theta_now) - D f(theta_prev)|_F / |D f(theta_prev)|_F on the inputs X.

    The Jacobians of f with respect to all parameters (the lecture notes' Delta(D phi)); the
    factor alpha/N cancels. Differences are taken entry by entry, so that nearly equal
    Jacobians (the lazy regime) do not lose digits to cancellation.
    """
    (a0, W0, b0), (a1, W1, b1) = theta_prev, theta_now
    X = np.asarray(X, np.float64)
    xx = np.sum(X * X, axis=1) + (1.0 if b0 is not None else 0.0)
    k = a0.shape[1]

    def sums(first, last):   # (num, den) over the particles [first, last), in blocks
        num = den = 0.0
        for j0 in range(first, last, _BLOCK):
            j1 = min(j0 + _BLOCK, last)
            s0, d0 = _features(net, a0, W0, b0, X, j0, j1)
            s1, d1 = _features(net, a1, W1, b1, X, j0, j1)
            num += k * np.sum((s1 - s0) ** 2)
            den += k * np.sum(s0 ** 2)
            for p in range(k):
                num += np.sum(((d1 * a1[j0:j1, p]) - (d0 * a0[j0:j1, p])) ** 2 * xx[:, None])
                den += np.sum((d0 * a0[j0:j1, p]) ** 2 * xx[:, None])
        return np.array([num, den])

    num, den = net.backend.particle_sums(net, sums)
    return float(np.sqrt(num / den)) if den > 0 else float("nan")


def _power_difference(u, v, m):
    """u^m - v^m as (u - v) sum_{j < m} u^j v^(m-1-j): no digits lost when u and v nearly agree."""
    total = np.zeros_like(u)
    for j in range(m):
        total += u ** j * v ** (m - 1 - j)
    return (u - v) * total


def diagonal_tangent_change(depth, w_prev, w_now, X):
    """|J(w_now) - J(w_prev)|_F / |J(w_prev)|_F on the inputs X for the diagonal linear network
    f(x) = <w_+^D - w_-^D, x> (``w_prev``, ``w_now``: (w_plus, w_minus) pairs).

    The Jacobian row of x is [D w_+^{D-1} x, -D w_-^{D-1} x] (elementwise), so with
    s_i = sum over the inputs of x_i^2 and the factor D^2 cancelling,

        num = sum_i s_i [(w_+i^{D-1} - v_+i^{D-1})^2 + (w_-i^{D-1} - v_-i^{D-1})^2],
        den = sum_i s_i (v_+i^{2D-2} + v_-i^{2D-2})      (v = w_prev, w = w_now),

    with the differences of powers factored so that nearly equal Jacobians (the lazy regime)
    keep their digits.
    """
    X = np.asarray(X, np.float64)
    s = np.sum(X * X, axis=0)
    m = depth - 1
    num = den = 0.0
    for prev, now in zip(w_prev, w_now):
        prev, now = np.asarray(prev, np.float64), np.asarray(now, np.float64)
        num += float(np.sum(s * _power_difference(now, prev, m) ** 2))
        den += float(np.sum(s * prev ** (2 * m)))
    return float(np.sqrt(num / den)) if den > 0 else float("nan")


def kernel_distance(K, K0):
    """|K - K0|_F / |K0|_F."""
    return float(np.linalg.norm(K - K0) / np.linalg.norm(K0))


def alignment(K, Y):
    """Kernel-target alignment A(K, Y Y^T) = <K, Y Y^T>_F / (|K|_F |Y Y^T|_F) of an (n, n) kernel
    and targets Y (n, k) (Cristianini, Shawe-Taylor, Elisseeff, Kandola 2002, Definition 1).

    |Y Y^T|_F = |Y^T Y|_F is computed from the k x k Gram matrix of the target columns; for
    k = 1 it is |y|^2 (sqrt(g^2) = g exactly in floating point).
    """
    Y = np.asarray(Y, np.float64)
    Y = Y.reshape(len(Y), -1)
    k = Y.shape[1]
    G = np.array([[np.sum(Y[:, p] * Y[:, q]) for q in range(k)] for p in range(k)])
    return float(np.sum(Y * (K @ Y)) / (np.linalg.norm(K) * np.linalg.norm(G)))


def displacement(theta0, theta, particle_sums=None):
    """Relative displacements |theta - theta0| / |theta0|: per block and over all of them (``"all"``).

    ``theta0`` and ``theta`` map block names to arrays (a model's ``parameter_blocks()``); a
    block that is None (a two-layer network without bias has no ``b``) is left out.
    ``particle_sums(sums)``: how sums over the rows of the blocks (the particles) are taken
    (a TwoLayer's: chunk by chunk, as in ``Backend.particle_sums``); None: over all rows at once.
    """
    names = [name for name, block0 in theta0.items() if block0 is not None]

    def sums(j0, j1):   # |theta - theta0|^2 and |theta0|^2 of each block over its rows [j0, j1)
        out = []
        for name in names:
            block0 = theta0[name][j0:j1]
            out += [np.sum((np.asarray(theta[name][j0:j1], np.float64) - block0) ** 2),
                    np.sum(np.asarray(block0, np.float64) ** 2)]
        return np.array(out, dtype=np.float64)

    totals = sums(0, None) if particle_sums is None else particle_sums(sums)
    out = {}
    num_all = den_all = 0.0
    for i, name in enumerate(names):
        num, den = float(totals[2 * i]), float(totals[2 * i + 1])
        out[name] = np.sqrt(num / den) if den > 0 else float("nan")
        num_all += num
        den_all += den
    out["all"] = np.sqrt(num_all / den_all) if den_all > 0 else float("nan")
    return out
