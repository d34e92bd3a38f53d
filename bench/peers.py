"""Peer implementations: what a competent user of each framework would write.

Every function here is a *preparer*: it takes the shared numpy inputs of one
configuration and returns a zero-argument callable that performs the timed
operation once and returns its outputs (arrays of any framework; they are
converted to numpy only after timing). Conversion of the inputs to the
framework's arrays happens in the preparer, outside the timed region.

torch and jax are imported lazily inside the preparers so that a numpy child
process never loads them (its peak RSS stays the numpy one).

Conventions (SPEC 1-3, squared loss, no bias, no weight decay, k = 1):

    Z  = X W^T                      (n, N)
    f  = (alpha / N) sigma(Z) a     (n, 1)
    R  = Y - f                      (n, 1)
    dA = (1/alpha)(1/n) sigma(Z)^T R                      (N, 1)
    dW = (1/alpha)(1/n) [ (R a^T) o sigma'(Z) ]^T X       (N, d)

and the empirical NTK Gram matrix (SPEC 4)

    K = (1/N) [ S S^T + (X X^T) o ((D diag(a^2)) D^T) ],  S = sigma(Z), D = sigma'(Z).
"""
from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------- numpy


def np_dd_field(X, Y, a, W, alpha, act):
    """One DD field evaluation in numpy, vectorised, with in-place temporaries.

    Peak temporaries: relu 2 n x N floats + an n x N bool mask; tanh 2 n x N floats.
    dW is formed as (X^T G)^T: OpenBLAS runs G.T @ X (a transposed n x N
    operand) at about half the rate. Returns (f, dA, dW).
    """
    n, N = X.shape[0], W.shape[0]
    Z = X @ W.T
    if act == "relu":
        S = np.maximum(Z, 0)
    elif act == "tanh":
        S = np.tanh(Z)
    else:
        raise ValueError(f"activation {act!r} not in the peers")
    f = S @ a
    f *= alpha / N
    R = Y - f
    dA = S.T @ R
    dA *= 1.0 / (alpha * n)
    # G = (R a^T) o sigma'(Z), written into Z's buffer
    if act == "relu":
        mask = Z > 0
        np.multiply(R, a.T, out=Z)
        Z *= mask
        del mask
    else:
        np.multiply(S, S, out=Z)
        np.subtract(1, Z, out=Z)
        Z *= R
        Z *= a.T
    del S
    dW = (X.T @ Z).T  # = G^T X; the transposed-n x N operand form G.T @ X is ~2x slower
    dW *= 1.0 / (alpha * n)
    return f, dA, dW


def np_dd_field_chunked(X, Y, a, W, alpha, act, block_bytes=256 << 20):
    """The same field in blocks of particles, for sizes where n x N does not fit.

    Two passes (forward f, then dA, dW given R); X W^T is computed twice, so the
    actual work is 6 n N d flops instead of 4 n N d. Temporaries are n x B with
    B chosen so that one block holds about ``block_bytes``.
    """
    n, N = X.shape[0], W.shape[0]
    B = max(1, min(N, block_bytes // (X.itemsize * n * 2)))
    f = np.zeros((n, a.shape[1]), dtype=X.dtype)
    for j0 in range(0, N, B):
        Z = X @ W[j0:j0 + B].T
        S = np.maximum(Z, 0, out=Z) if act == "relu" else np.tanh(Z, out=Z)
        f += S @ a[j0:j0 + B]
    f *= alpha / N
    R = Y - f
    dA = np.empty_like(a)
    dW = np.empty_like(W)
    c = 1.0 / (alpha * n)
    for j0 in range(0, N, B):
        ab = a[j0:j0 + B]
        Z = X @ W[j0:j0 + B].T
        if act == "relu":
            S = np.maximum(Z, 0)
            mask = Z > 0
            np.multiply(R, ab.T, out=Z)
            Z *= mask
        else:
            S = np.tanh(Z)
            np.multiply(S, S, out=Z)
            np.subtract(1, Z, out=Z)
            Z *= R
            Z *= ab.T
        np.matmul(S.T, R, out=dA[j0:j0 + B])
        dW[j0:j0 + B] = (X.T @ Z).T
    dA *= c
    dW *= c
    return f, dA, dW


def np_rk4_step(X, Y, a, W, alpha, act, dt):
    """One classical RK4 step of the DD flow: 4 field evaluations + axpys."""
    def field(a_, W_):
        _, dA, dW = np_dd_field(X, Y, a_, W_, alpha, act)
        return dA, dW

    h = 0.5 * dt
    ka1, kw1 = field(a, W)
    ka2, kw2 = field(a + h * ka1, W + h * kw1)
    ka3, kw3 = field(a + h * ka2, W + h * kw2)
    ka4, kw4 = field(a + dt * ka3, W + dt * kw3)
    s = dt / 6.0
    a_new = a + s * (ka1 + 2 * ka2 + 2 * ka3 + ka4)
    W_new = W + s * (kw1 + 2 * kw2 + 2 * kw3 + kw4)
    return a_new, W_new


def np_ntk_gram(X, a, W, act):
    """Empirical NTK Gram matrix K (n, n) by the closed formula (SPEC 4).

    S S^T and (D|a|)(D|a|)^T are written as ``M @ M.T`` so numpy's matmul calls
    the symmetric rank-k update (syrk): n^2 N flops each instead of 2 n^2 N.
    """
    N = W.shape[0]
    Z = X @ W.T
    if act == "relu":
        S = np.maximum(Z, 0)
        np.greater(Z, 0, out=Z)  # D in Z's buffer (as 0/1 floats)
    else:
        S = np.tanh(Z)
        np.multiply(S, S, out=Z)
        np.subtract(1, Z, out=Z)
    Z *= np.abs(a.T)  # D diag(|a|)
    K = S @ S.T
    del S
    G = Z @ Z.T
    del Z
    G *= X @ X.T
    K += G
    K *= 1.0 / N
    return K


def np_relu_ntk_analytic(X, X2=None, w_std=1.0, a_std=1.0):
    """Infinite-width relu NTK, arc-cosine kernels of order 1 and 0 (SPEC 5, no bias).

    K_rf = w_std^2 |x||x'| (sin t + (pi - t) cos t) / (2 pi)
    K_nt = a_std^2 <x, x'> (pi - t) / (2 pi),     t = angle(x, x').
    """
    X2 = X if X2 is None else X2
    G = X @ X2.T
    nx = np.sqrt(np.einsum("ij,ij->i", X, X))
    n2 = nx if X2 is X else np.sqrt(np.einsum("ij,ij->i", X2, X2))
    P = np.multiply.outer(nx, n2)           # |x||x'|
    C = np.divide(G, P)                     # cos t
    if X2 is X:
        np.fill_diagonal(C, 1.0)  # exact: arccos near 1 turns an eps rounding into t ~ 1e-8
    np.clip(C, -1.0, 1.0, out=C)
    T = np.arccos(C)                        # t
    # K_rf: P * (sin t + (pi - t) cos t) / (2 pi) ; sin t = sqrt(1 - cos^2)
    np.subtract(math.pi, T, out=T)          # pi - t
    K = np.multiply(T, C)
    np.multiply(C, C, out=C)
    np.subtract(1.0, C, out=C)
    np.sqrt(C, out=C)                       # sin t
    K += C
    del C
    K *= P
    del P
    K *= w_std ** 2 / (2 * math.pi)
    # K_nt
    T *= G
    T *= a_std ** 2 / (2 * math.pi)
    K += T
    return K


def np_relu_ntk_analytic_blocked(X, w_std=1.0, a_std=1.0, block=1024):
    """Same kernel built in row blocks (low peak memory); used for setup only."""
    n = X.shape[0]
    K = np.empty((n, n), dtype=X.dtype)
    for i0 in range(0, n, block):
        K[i0:i0 + block] = np_relu_ntk_analytic(X[i0:i0 + block], X, w_std, a_std)
    diag = np.einsum("ij,ij->i", X, X) * (w_std ** 2 / 2 + a_std ** 2 / 2)  # t = 0 exactly
    np.fill_diagonal(K, diag)
    # exact symmetry (the blocks agree to rounding only)
    K += K.T
    K *= 0.5
    return K


def np_ntk_matvec_chunked(X, a, W, act, V, block_bytes=256 << 20):
    """K V for the empirical NTK without forming K: O(n N d) per product (SPEC 6).

    K V = (1/N) sum_j [ s_j (s_j^T V) + a_j^2 s'_j o (X X^T (s'_j o V)) ], in
    blocks of particles. 6 n N d flops per product (X W^T, X^T(D o V), X M).
    """
    n, N = X.shape[0], W.shape[0]
    V = V.reshape(n, -1)
    out = np.zeros_like(V, dtype=np.float64)
    B = max(1, min(N, block_bytes // (8 * n * 3)))
    for j0 in range(0, N, B):
        Z = X @ W[j0:j0 + B].T
        if act == "relu":
            S = np.maximum(Z, 0)
            D = (Z > 0).astype(X.dtype)
        else:
            S = np.tanh(Z)
            D = 1 - S * S
        a2 = (a[j0:j0 + B, 0] ** 2)
        out += S @ (S.T @ V)
        for c in range(V.shape[1]):
            M = X.T @ (D * V[:, c:c + 1])          # (d, B)
            out[:, c] += ((X @ M) * D) @ a2
    out /= N
    return out


# Preparers: numpy ------------------------------------------------------------


def prep_numpy_dd(inp, cfg):
    X, Y, a, W, alpha, act = inp["X"], inp["Y"], inp["a"], inp["W"], inp["alpha"], cfg["act"]
    return lambda: np_dd_field(X, Y, a, W, alpha, act)


def prep_numpy_chunked_dd(inp, cfg):
    X, Y, a, W, alpha, act = inp["X"], inp["Y"], inp["a"], inp["W"], inp["alpha"], cfg["act"]
    bb = cfg.get("block_bytes", 256 << 20)
    return lambda: np_dd_field_chunked(X, Y, a, W, alpha, act, block_bytes=bb)


def prep_numpy_rk4(inp, cfg):
    X, Y, a, W, alpha, act = inp["X"], inp["Y"], inp["a"], inp["W"], inp["alpha"], cfg["act"]
    dt = cfg["dt"]
    return lambda: np_rk4_step(X, Y, a, W, alpha, act, dt)


def prep_numpy_ntk(inp, cfg):
    X, a, W, act = inp["X"], inp["a"], inp["W"], cfg["act"]
    return lambda: np_ntk_gram(X, a, W, act)


def prep_numpy_analytic(inp, cfg):
    X, w_std, a_std = inp["X"], inp["w_std"], inp["a_std"]
    return lambda: np_relu_ntk_analytic(X, None, w_std, a_std)


def prep_scipy_cholesky(inp, cfg):
    from scipy.linalg import cho_factor, cho_solve

    K, Y, ridge = inp["K"], inp["Y"], cfg["ridge"]
    n = K.shape[0]

    def run():
        A = K.copy()
        A.flat[:: n + 1] += ridge
        cf = cho_factor(A, lower=True, overwrite_a=True, check_finite=False)
        coef = cho_solve(cf, Y, check_finite=False)
        return coef

    return run


# --------------------------------------------------------------------------- torch


def _torch_act(torch, act):
    if act == "relu":
        return torch.relu, lambda Z, S: torch.sign(S)
    if act == "tanh":
        return torch.tanh, lambda Z, S: 1 - S * S
    raise ValueError(f"activation {act!r} not in the peers")


def _torch_inputs(torch, inp):
    return (torch.from_numpy(inp["X"]), torch.from_numpy(inp["Y"]),
            torch.from_numpy(inp["a"]), torch.from_numpy(inp["W"]))


def prep_torch_dd(inp, cfg):
    """Eager torch, in-place temporaries like the numpy version.

    Two choices from profiling on CPU (torch 2.x, MKL): the relu derivative is
    ``sign(S)`` (a float op; multiplying by a bool mask takes a slow mixed-dtype
    path, 2x the time), and dW is computed as ``(X^T G)^T`` because ``G.T @ X``
    with a transposed n x N operand runs about 3x slower than ``X.T @ G``.
    """
    import torch

    X, Y, a, W = _torch_inputs(torch, inp)
    alpha, act = inp["alpha"], cfg["act"]
    n, N = X.shape[0], W.shape[0]
    c = 1.0 / (alpha * n)

    def run():
        with torch.inference_mode():
            Z = X @ W.T
            S = torch.relu(Z) if act == "relu" else torch.tanh(Z)
            f = (S @ a).mul_(alpha / N)
            R = Y - f
            dA = (S.T @ R).mul_(c)
            # G = (R a^T) o sigma'(Z), in Z's buffer
            if act == "relu":
                torch.sign(S, out=Z)  # S = relu(Z) >= 0: sign is 1 where Z > 0, else 0
            else:
                torch.mul(S, S, out=Z)
                Z.neg_().add_(1)
            Z.mul_(R).mul_(a.T)
            del S
            dW = (X.T @ Z).T.mul_(c)
            return f, dA, dW

    return run


def prep_torch_compile_dd(inp, cfg):
    """torch.compile (inductor, static shapes) of the functional field."""
    import torch

    X, Y, a, W = _torch_inputs(torch, inp)
    alpha, act = inp["alpha"], cfg["act"]
    n, N = X.shape[0], W.shape[0]
    c = 1.0 / (alpha * n)
    sig, dsig = _torch_act(torch, act)

    def field(X, Y, a, W):
        Z = X @ W.T
        S = sig(Z)
        f = (alpha / N) * (S @ a)
        R = Y - f
        dA = c * (S.T @ R)
        G = (R * a.T) * dsig(Z, S)
        dW = c * (X.T @ G).T
        return f, dA, dW

    torch._dynamo.reset()
    cfield = torch.compile(field, dynamic=False)

    def run():
        with torch.inference_mode():
            return cfield(X, Y, a, W)

    return run


def prep_torch_ntk(inp, cfg):
    import torch

    X, _, a, W = _torch_inputs(torch, inp)
    act = cfg["act"]
    N = W.shape[0]

    def run():
        with torch.inference_mode():
            Z = X @ W.T
            if act == "relu":
                S = torch.relu(Z)
                D = torch.sign(S)
            else:
                S = torch.tanh(Z)
                D = 1 - S * S
            del Z
            D.mul_(a.T.abs())
            K = S @ S.T
            del S
            G = D @ D.T
            del D
            G.mul_(X @ X.T)
            return K.add_(G).mul_(1.0 / N)

    return run


def prep_torch_func_ntk(inp, cfg):
    """Empirical NTK by autodiff: torch.func.vmap(grad(f_x)) per-example gradients
    (the Jacobian J, n x N(d+1)), then K = (N / alpha^2) J J^T."""
    import torch
    from torch.func import grad, vmap

    X, _, a, W = _torch_inputs(torch, inp)
    alpha, act = inp["alpha"], cfg["act"]
    n, N = X.shape[0], W.shape[0]
    sig = torch.relu if act == "relu" else torch.tanh
    a1 = a[:, 0]

    def f_single(params, x):
        a_, W_ = params
        return (alpha / N) * (sig(W_ @ x) @ a_)

    per_example = vmap(grad(f_single), in_dims=(None, 0))

    def run():
        Ja, JW = per_example((a1, W), X)
        Ja = Ja.detach()
        JW = JW.detach().reshape(n, -1)
        K = Ja @ Ja.T
        K.addmm_(JW, JW.T)
        return K.mul_(N / alpha ** 2)

    return run


# --------------------------------------------------------------------------- jax


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)  # float32 inputs stay float32
    import jax.numpy as jnp

    return jax, jnp


def _jax_inputs(jax, inp):
    return tuple(jax.device_put(inp[k]) for k in ("X", "Y", "a", "W"))


def prep_jax_dd(inp, cfg):
    jax, jnp = _jax()
    X, Y, a, W = _jax_inputs(jax, inp)
    alpha, act = inp["alpha"], cfg["act"]
    n, N = X.shape[0], W.shape[0]
    c = 1.0 / (alpha * n)

    @jax.jit
    def field(X, Y, a, W):
        Z = X @ W.T
        if act == "relu":
            S = jnp.maximum(Z, 0)
            Dp = (Z > 0).astype(Z.dtype)
        else:
            S = jnp.tanh(Z)
            Dp = 1 - S * S
        f = (alpha / N) * (S @ a)
        R = Y - f
        dA = c * (S.T @ R)
        dW = c * (((R * a.T) * Dp).T @ X)
        return f, dA, dW

    def run():
        return jax.block_until_ready(field(X, Y, a, W))

    return run


def prep_jax_ntk(inp, cfg):
    jax, jnp = _jax()
    X, _, a, W = _jax_inputs(jax, inp)
    act = cfg["act"]
    N = W.shape[0]

    @jax.jit
    def gram(X, a, W):
        Z = X @ W.T
        if act == "relu":
            S = jnp.maximum(Z, 0)
            D = (Z > 0).astype(Z.dtype)
        else:
            S = jnp.tanh(Z)
            D = 1 - S * S
        D = D * jnp.abs(a.T)
        return (S @ S.T + (X @ X.T) * (D @ D.T)) / N

    return lambda: jax.block_until_ready(gram(X, a, W))


def prep_jax_jacrev_ntk(inp, cfg):
    """Empirical NTK by autodiff: vmap(jacrev(f_x)) per-example Jacobian J,
    then K = (N / alpha^2) J J^T, all under one jit."""
    jax, jnp = _jax()
    X, _, a, W = _jax_inputs(jax, inp)
    alpha, act = inp["alpha"], cfg["act"]
    n, N = X.shape[0], W.shape[0]
    sig = (lambda z: jnp.maximum(z, 0)) if act == "relu" else jnp.tanh
    a1 = a[:, 0]

    def f_single(params, x):
        a_, W_ = params
        return (alpha / N) * (sig(W_ @ x) @ a_)

    @jax.jit
    def gram(params, X):
        Ja, JW = jax.vmap(jax.jacrev(f_single), in_axes=(None, 0))(params, X)
        JW = JW.reshape(n, -1)
        return (N / alpha ** 2) * (Ja @ Ja.T + JW @ JW.T)

    return lambda: jax.block_until_ready(gram((a1, W), X))


# --------------------------------------------------------------------------- threads


def set_threads(framework, threads):
    """Limit the threads of the framework about to run (numpy via threadpoolctl)."""
    if framework in ("numpy", "numpy-chunked", "scipy"):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # env vars set by the parent still apply
            return None
        return threadpool_limits(limits=threads)
    if framework.startswith("torch"):
        import torch

        torch.set_num_threads(threads)
    return None


def to_numpy(x):
    """Framework array -> float64 numpy (after timing)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


PREPARERS = {
    ("dd_step", "numpy"): prep_numpy_dd,
    ("dd_step", "numpy-chunked"): prep_numpy_chunked_dd,
    ("dd_step", "torch"): prep_torch_dd,
    ("dd_step", "torch-compile"): prep_torch_compile_dd,
    ("dd_step", "jax"): prep_jax_dd,
    ("threads", "numpy"): prep_numpy_dd,
    ("rk4_step", "numpy"): prep_numpy_rk4,
    ("ntk_gram", "numpy"): prep_numpy_ntk,
    ("ntk_gram", "torch"): prep_torch_ntk,
    ("ntk_gram", "jax"): prep_jax_ntk,
    ("ntk_gram", "torch-func"): prep_torch_func_ntk,
    ("ntk_gram", "jax-jacrev"): prep_jax_jacrev_ntk,
    ("analytic_relu_ntk", "numpy"): prep_numpy_analytic,
    ("kernel_cholesky", "scipy"): prep_scipy_cholesky,
}


def _register_gemm():
    from .machine import gemm_prepare

    PREPARERS[("gemm", "numpy")] = gemm_prepare


_register_gemm()
