"""The benchmark cases: parameter lists, frameworks, flop counts, memory
estimates, seeded inputs and the checksums that are compared across frameworks.

A *task* is one (case, configuration, framework); the parent plans tasks from
this table and a child process (:mod:`bench.child`) runs them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

GiB = 1 << 30
MiB = 1 << 20
ITEMSIZE = {"float64": 8, "float32": 4}

# relative tolerance of the cross-framework check (normwise, per checksum entry)
TOL = {"float64": 1e-8, "float32": 2e-3}

# --quick divides n and N by these factors (d is kept)
QUICK_N = 8
QUICK_NP = 32

SEED = 20240601


def _q(v, f, quick, lo=16):
    return max(lo, v // f) if quick else v


def label(cfg):
    """Short human label of a configuration."""
    keys = [k for k in ("n", "N", "d") if k in cfg]
    s = " ".join(f"{k}={cfg[k]}" for k in keys)
    for k in ("dtype", "act"):
        if k in cfg:
            s += f" {cfg[k]}"
    if "threads" in cfg:
        s += f" {cfg['threads']}t"
    if "max_iter" in cfg:
        s += f" ridge={cfg['ridge']:g} max_iter={cfg['max_iter']}"
    if "size" in cfg:
        s = f"{cfg['size']}^2 {cfg['dtype']} {cfg['threads']}t"
    return s.strip()


# ----------------------------------------------------------------------------- inputs


def dd_inputs(cfg):
    """X ~ N(0, I_d), W ~ N(0, I/d), a ~ N(0, 1), Y = tanh(<w*, x>) + 0.1 noise,
    alpha = 1 (mean-field), generated in float64 from the seed then cast."""
    rng = np.random.default_rng(SEED)
    n, N, d, dt = cfg["n"], cfg["N"], cfg["d"], cfg.get("dtype", "float64")
    X = rng.standard_normal((n, d))
    ws = rng.standard_normal(d)
    ws /= np.linalg.norm(ws)
    Y = np.tanh(X @ ws)[:, None] + 0.1 * rng.standard_normal((n, 1))
    W = rng.standard_normal((N, d)) / math.sqrt(d)
    a = rng.standard_normal((N, 1))
    cast = lambda z: np.ascontiguousarray(z, dtype=dt)  # noqa: E731
    return {"X": cast(X), "Y": cast(Y), "a": cast(a), "W": cast(W), "alpha": 1.0}


def analytic_inputs(cfg):
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((cfg["n"], cfg["d"])).astype(cfg["dtype"])
    return {"X": X, "w_std": 1.0 / math.sqrt(cfg["d"]), "a_std": 1.0}


def cholesky_inputs(cfg):
    """K = analytic relu NTK of Gaussian inputs (SPD), built in row blocks."""
    from .peers import np_relu_ntk_analytic_blocked

    rng = np.random.default_rng(SEED)
    n, d = cfg["n"], cfg["d"]
    X = rng.standard_normal((n, d))
    Y = np.tanh(X[:, :1]) + 0.1 * rng.standard_normal((n, 1))
    K = np_relu_ntk_analytic_blocked(X, w_std=1.0 / math.sqrt(d), a_std=1.0)
    return {"K": K, "Y": Y}


def gemm_inputs(cfg):
    rng = np.random.default_rng(SEED)
    s = cfg["size"]
    return {"A": rng.standard_normal((s, s)).astype(cfg["dtype"]),
            "B": rng.standard_normal((s, s)).astype(cfg["dtype"])}


# ----------------------------------------------------------------------------- checksums
# Each returns {name: float64 array}; the parent compares them to the reference
# framework of the same configuration, normwise relative.


def _norms(*arrs):
    return np.array([np.linalg.norm(np.asarray(x, dtype=np.float64)) for x in arrs])


def check_dd(out, cfg):
    from .peers import to_numpy

    f, dA, dW = out
    dA, dW = to_numpy(dA).astype(np.float64), to_numpy(dW).astype(np.float64)
    res = {"dA[:8]": dA[:8].ravel(), "dW[:8]": dW[:8].ravel(), "|dA|,|dW|": _norms(dA, dW)}
    if f is not None:  # mfntk's dd_field does not return f
        res["f[:8]"] = to_numpy(f)[:8].astype(np.float64).ravel()
    return res


def check_rk4(out, cfg):
    from .peers import to_numpy

    a, W = (to_numpy(x).astype(np.float64) for x in out)
    return {"a[:8]": a[:8].ravel(), "W[:8]": W[:8].ravel(), "|a|,|W|": _norms(a, W)}


def check_gram(out, cfg):
    from .peers import to_numpy

    K = to_numpy(out).astype(np.float64)
    return {"K[:8,:64]": K[:8, :64].ravel(), "trace,|K|": np.array([np.trace(K), np.linalg.norm(K)])}


def check_cholesky(out, cfg, inp):
    """Predictions on the first 64 training points, K[:64] @ coef."""
    if hasattr(out, "predict"):  # an mfntk regressor
        p = np.asarray(out.predict(inp["K"][:64]), dtype=np.float64)
    else:
        p = inp["K"][:64] @ np.asarray(out, dtype=np.float64)
    return {"pred[:64]": p.ravel()}


def check_cg(out, cfg, inp):
    """Relative residual of the CG solution, with an independent numpy K v."""
    from .mfntk_runner import dual_coef, n_iter, reported_residual
    from .peers import np_ntk_matvec_chunked

    c = dual_coef(out)
    res = {}
    it = n_iter(out)
    if it is not None:
        res["n_iter"] = np.array([float(it)])
    rr = reported_residual(out)
    if rr is not None:
        res["reported_residual"] = np.array([rr])
    if c is None:
        return res
    c = c.reshape(inp["Y"].shape).astype(np.float64)
    Kc = np_ntk_matvec_chunked(inp["X"].astype(np.float64), inp["a"].astype(np.float64),
                               inp["W"].astype(np.float64), cfg["act"], c)
    r = Kc + cfg["ridge"] * c - inp["Y"]
    res["rel_residual"] = np.array([np.linalg.norm(r) / np.linalg.norm(inp["Y"])])
    return res


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    name: str
    doc: str
    configs: Callable[[bool, int], list]          # (quick, threads) -> [cfg]
    frameworks: tuple
    flops: Callable[[dict], float | None]
    flop_formula: str
    mem: Callable[[str, dict], tuple]             # (framework, cfg) -> (bytes, what)
    inputs: Callable[[dict], dict]
    check: Callable
    check_needs_inputs: bool = False
    reference: tuple = ("numpy",)
    # framework -> replacement when it does not fit in memory
    fallback: dict = field(default_factory=dict)
    warmup: int = 1
    max_repeats: int | None = None
    # framework -> how many configurations it runs under --quick (the rest are skipped)
    quick_limit: dict = field(default_factory=dict)
    tol_scale: float = 1.0


def _dd_configs(quick, threads):
    sizes = [(1024, 4096, 32), (4096, 16384, 64), (4096, 65536, 64), (4096, 2 ** 20, 32)]
    return [{"n": _q(n, QUICK_N, quick), "N": _q(N, QUICK_NP, quick), "d": d,
             "dtype": dt, "act": act}
            for (n, N, d) in sizes for dt in ("float64", "float32") for act in ("relu", "tanh")]


def _dd_mem(fw, cfg):
    n, N, d, it = cfg["n"], cfg["N"], cfg["d"], ITEMSIZE[cfg["dtype"]]
    io = (n * d + 2 * N * d + 2 * N + n) * it
    nN = n * N * it
    if fw in ("numpy", "torch"):
        k = 2.0 + (1.0 / it if cfg["act"] == "relu" else 0.0)  # + a bool mask for relu
        return io + k * nN, f"{k:g} n x N temporaries of {nN / GiB:.3g} GiB"
    if fw in ("torch-compile", "jax"):
        return io + 3 * nN, f"3 n x N temporaries of {nN / GiB:.3g} GiB"
    if fw == "numpy-chunked":
        return io + cfg.get("block_bytes", 256 << 20), "n x B blocks"
    if fw == "mfntk":
        return 2 * io + 64 * MiB, "tiled: inputs + outputs + tiles"
    return io, "inputs"


def _dd_flops(cfg):
    return 4.0 * cfg["n"] * cfg["N"] * cfg["d"]


def _rk4_configs(quick, threads):
    return [{"n": _q(4096, QUICK_N, quick), "N": _q(16384, QUICK_NP, quick), "d": 64,
             "dtype": "float64", "act": "relu", "dt": 0.1}]


def _rk4_mem(fw, cfg):
    b, what = _dd_mem(fw, cfg)
    return b + 10 * cfg["N"] * cfg["d"] * ITEMSIZE[cfg["dtype"]], what + " + 10 copies of W"


def _ntk_configs(quick, threads):
    return [{"n": _q(n, QUICK_N, quick), "N": _q(N, QUICK_NP, quick), "d": 64,
             "dtype": "float64", "act": "relu"}
            for (n, N) in [(4096, 16384), (1024, 4096)]]


def _ntk_mem(fw, cfg):
    n, N, d, it = cfg["n"], cfg["N"], cfg["d"], ITEMSIZE[cfg["dtype"]]
    nN, nn = n * N * it, n * n * it
    if fw in ("torch-func", "jax-jacrev"):
        J = n * N * (d + 1) * it
        return 3 * J + 3 * nn, f"the n x N(d+1) Jacobian ({J / GiB:.3g} GiB) and its copies"
    if fw == "mfntk":
        return 3 * nn + 64 * MiB, "K and tiles"
    return 3 * nN + 3 * nn, f"3 n x N temporaries of {nN / GiB:.3g} GiB + 3 n x n"


def _ntk_flops(cfg):
    n, N, d = cfg["n"], cfg["N"], cfg["d"]
    return 2.0 * n * N * d + 2.0 * n * n * N


def _analytic_configs(quick, threads):
    return [{"n": _q(8192, 16, quick), "d": 64, "dtype": "float64"}]


def _analytic_mem(fw, cfg):
    nn = cfg["n"] ** 2 * ITEMSIZE[cfg["dtype"]]
    return 5 * nn, f"5 n x n arrays of {nn / GiB:.3g} GiB"


def _chol_configs(quick, threads):
    return [{"n": _q(8192, QUICK_N, quick), "d": 64, "dtype": "float64", "ridge": 1e-3}]


def _chol_mem(fw, cfg):
    nn = cfg["n"] ** 2 * 8
    return 2 * nn, f"K and its factor, {nn / GiB:.3g} GiB each"


def _chol_flops(cfg):
    n = cfg["n"]
    return n ** 3 / 3.0 + 2.0 * n * n


def _cg_configs(quick, threads):
    return [{"n": _q(50000, QUICK_N, quick), "N": _q(4096, QUICK_NP, quick), "d": 32,
             "dtype": "float64", "act": "relu", "ridge": 1e-3, "max_iter": 20 if quick else 50}]


def _cg_mem(fw, cfg):
    n, N, d = cfg["n"], cfg["N"], cfg["d"]
    return (n * d + N * d) * 8 * 3 + (256 << 20), "inputs + check blocks"


def _threads_configs(quick, threads):
    base = {"n": _q(4096, QUICK_N, quick), "N": _q(16384, QUICK_NP, quick), "d": 64,
            "dtype": "float64", "act": "relu"}
    ts = sorted({1, threads})
    return [dict(base, threads=t) for t in ts]


def _gemm_configs(quick, threads):
    s = 2048 if quick else 4096
    return [{"size": s, "dtype": "float64", "threads": threads},
            {"size": s, "dtype": "float32", "threads": threads}]


def _gemm_mem(fw, cfg):
    return 3 * cfg["size"] ** 2 * ITEMSIZE[cfg["dtype"]], "3 matrices"


CASES = {
    "gemm": Case(
        "gemm", "numpy matmul of two square matrices: the machine's reference GEMM rate",
        _gemm_configs, ("numpy",), lambda c: 2.0 * c["size"] ** 3, "2 s^3",
        _gemm_mem, gemm_inputs, lambda out, cfg: {}, reference=(), warmup=1),
    "dd_step": Case(
        "dd_step", "one DD field evaluation (forward f, residual, dA, dW)",
        _dd_configs, ("mfntk", "numpy", "torch", "torch-compile", "jax"), _dd_flops,
        "4 n N d (two GEMM-shaped passes of 2 n N d)", _dd_mem, dd_inputs, check_dd,
        reference=("numpy", "numpy-chunked"), fallback={"numpy": "numpy-chunked"},
        quick_limit={"torch-compile": 4}),
    "rk4_step": Case(
        "rk4_step", "one RK4 step of the DD flow (4 fields + axpys); mfntk: the whole simulate() call",
        _rk4_configs, ("mfntk", "numpy"), lambda c: 4 * _dd_flops(c), "16 n N d (4 fields)",
        _rk4_mem, dd_inputs, check_rk4),
    "ntk_gram": Case(
        "ntk_gram", "empirical NTK Gram matrix K (n x n) of the network",
        _ntk_configs, ("mfntk", "numpy", "torch", "jax", "torch-func", "jax-jacrev"), _ntk_flops,
        "2 n N d + 2 n^2 N (each symmetric rank-N product counted once, n^2 N)",
        _ntk_mem, dd_inputs, check_gram),
    "analytic_relu_ntk": Case(
        "analytic_relu_ntk", "infinite-width relu NTK, closed form (arc-cosine kernels)",
        _analytic_configs, ("mfntk", "numpy"), lambda c: 2.0 * c["n"] ** 2 * c["d"],
        "2 n^2 d (the Gram GEMM only; n^2 arccos/sqrt dominate)",
        _analytic_mem, analytic_inputs, check_gram),
    "kernel_cholesky": Case(
        "kernel_cholesky", "kernel ridge fit on a precomputed n x n kernel (Cholesky + solve)",
        _chol_configs, ("mfntk", "scipy"), _chol_flops, "n^3/3 + 2 n^2",
        _chol_mem, cholesky_inputs, check_cholesky, check_needs_inputs=True,
        reference=("scipy",), tol_scale=100.0),
    "cg_matfree": Case(
        "cg_matfree", "kernel ridge fit with the empirical NTK, matrix-free CG (mfntk only)",
        _cg_configs, ("mfntk",), lambda c: None,
        "time only; CG capped at max_iter iterations (ridge 1e-3 needs thousands), see ms/iteration",
        _cg_mem, dd_inputs, check_cg, check_needs_inputs=True, reference=(),
        warmup=0, max_repeats=1),
    "threads": Case(
        "threads", "the DD step at 1 thread and at all threads (speed-up)",
        _threads_configs, ("mfntk", "numpy"), _dd_flops, "4 n N d",
        _dd_mem, dd_inputs, check_dd),
}

ORDER = ["dd_step", "rk4_step", "ntk_gram", "analytic_relu_ntk", "kernel_cholesky",
         "cg_matfree", "threads"]
