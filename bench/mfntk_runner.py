"""The mfntk side of the benchmarks: every call into mfntk lives in this module.

Each ``prep_*`` takes the shared numpy inputs of one configuration and returns a
zero-argument callable that performs the timed operation once, like the
preparers in :mod:`bench.peers`. The mfntk names are looked up in the preparer,
so a name the package does not have yet makes the row "unavailable" rather than
"failed". When the package's interface changes, only this
file needs adjusting.
"""
from __future__ import annotations

import inspect
import os
import sys

import numpy as np

_MF = None
_ERR = None


def load():
    """Import mfntk once; return the module or raise ImportError with the reason."""
    global _MF, _ERR
    if _MF is not None:
        return _MF
    if _ERR is not None:
        raise ImportError(_ERR)
    try:
        import mfntk as mf
    except Exception as e:  # noqa: BLE001 - any failure means "unavailable"
        first = f"{type(e).__name__}: {e}"
        # a source checkout that is not installed: try python/ beside bench/
        src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")
        if os.path.isdir(os.path.join(src, "mfntk")) and src not in sys.path:
            sys.path.insert(0, src)
            try:
                import mfntk as mf
            except Exception as e2:  # noqa: BLE001
                _ERR = f"{first} (from {src}: {type(e2).__name__}: {e2})"
                raise ImportError(_ERR) from None
        else:
            _ERR = first
            raise ImportError(_ERR) from None
    try:  # the public submodule, in case the package does not import it at start-up
        import mfntk.kernels  # noqa: F401
    except Exception:  # noqa: BLE001 - rows that need it will say "unavailable"
        pass
    _MF = mf
    return mf


def describe():
    """Version and location of the mfntk in use (for the machine facts)."""
    mf = load()
    info = {"version": getattr(mf, "__version__", None), "path": getattr(mf, "__file__", None)}
    if callable(getattr(mf, "get_simd", None)):  # the relu passes' kernels
        info["simd"] = mf.get_simd()
    core = getattr(mf, "_core", None)
    if core is not None:
        info["core"] = getattr(core, "__file__", None)
        for name in ("build_info", "config", "show_config"):
            obj = getattr(core, name, None) or getattr(mf, name, None)
            if callable(obj):
                try:
                    info["build"] = obj()
                    if not isinstance(info["build"], (str, dict, list)):
                        info["build"] = str(info["build"])
                except Exception:  # noqa: BLE001
                    pass
                break
    return info


def _threads_kw(fn, threads):
    """{"threads": threads} when fn (or a class's __init__) accepts it, else {}."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    return {"threads": threads} if "threads" in params else {}


def _net(mf, inp, cfg):
    """A TwoLayer net carrying the shared particles (a, W)."""
    a, W = inp["a"], inp["W"]
    N, d = W.shape
    net = mf.TwoLayer(d, N, activation=cfg["act"], scaling="mf", dtype=cfg["dtype"], seed=0)
    net.a[...] = a
    net.W[...] = W
    if not (np.array_equal(np.asarray(net.a), a) and np.array_equal(np.asarray(net.W), W)):
        raise RuntimeError("could not load the shared particles into net.a / net.W")
    if float(net.alpha) != float(inp["alpha"]):
        raise RuntimeError(f"net.alpha = {net.alpha}, the peers use {inp['alpha']}")
    return net


def prep_dd(inp, cfg, threads):
    """One field evaluation of a persistent Simulation (its buffers are set up once, as in a run)."""
    mf = load()
    net = _net(mf, inp, cfg)
    sim = mf.Simulation(net, (inp["X"], inp["Y"]), t_max=1.0, dt=1.0, method="euler", threads=threads)

    def run():
        dA, dW, _db = sim.field()
        return None, dA.copy(), dW.copy()

    return run


def prep_rk4(inp, cfg, threads):
    mf = load()
    net = _net(mf, inp, cfg)
    X, Y, dt = inp["X"], inp["Y"], cfg["dt"]
    sim = mf.Simulation(net, (X, Y), t_max=dt, dt=dt, method="rk4", threads=threads)
    start = sim.state.copy()

    def run():  # one RK4 step from the same initial state each time
        sim.state[:] = start
        sim.step = 0
        sim.advance(1)
        N, d = net.W.shape
        return sim.state[:N].reshape(N, 1).copy(), sim.state[N:N * (1 + d)].reshape(N, d).copy()

    return run


def prep_ntk(inp, cfg, threads):
    mf = load()
    net = _net(mf, inp, cfg)
    X = inp["X"]
    empirical = mf.kernels.empirical
    return lambda: empirical(net, X, kind="ntk", threads=threads)


def prep_analytic(inp, cfg, threads):
    mf = load()
    X = inp["X"]
    analytic = mf.kernels.analytic
    kw = _threads_kw(analytic, threads)
    return lambda: analytic(X, activation="relu", kind="ntk", w_std=inp["w_std"],
                            a_std=inp["a_std"], **kw)


def prep_cholesky(inp, cfg, threads):
    """Kernel ridge regression on a precomputed kernel (Cholesky path).

    Returns the fitted regressor; the check compares its ``predict(K[:64])`` with
    the peer's K[:64] @ coef.
    """
    mf = load()
    K, Y, ridge = inp["K"], inp["Y"], cfg["ridge"]
    KernelRegressor = mf.KernelRegressor

    def run():
        return KernelRegressor(kernel="precomputed", ridge=ridge).fit(K, Y)

    return run


def prep_cg(inp, cfg, threads):
    """Matrix-free CG on the empirical NTK; no peer. The check is the relative
    residual |(K + ridge I) c - Y| / |Y| from an independent numpy K v.

    With ridge 1e-3 and n = 50000 the system has a condition number ~1e7 and CG
    needs thousands of iterations (hours here), so the fit is capped at
    ``cfg["max_iter"]`` iterations: the row measures the time per iteration.
    """
    mf = load()
    net = _net(mf, inp, cfg)
    X, Y, ridge = inp["X"], inp["Y"], cfg["ridge"]
    Empirical, KernelRegressor = mf.kernels.Empirical, mf.KernelRegressor
    kw = _threads_kw(Empirical, threads)
    try:
        cap = ({"max_iter": cfg["max_iter"]}
               if "max_iter" in inspect.signature(KernelRegressor).parameters else {})
    except (TypeError, ValueError):
        cap = {}

    def run():
        kern = Empirical(net, kind="ntk", **kw)
        return KernelRegressor(kernel=kern, ridge=ridge, solver="cg", **cap).fit(X, Y)

    return run


def dual_coef(reg):
    """The fitted dual coefficients (n, k), if the regressor exposes them."""
    for name in ("dual_coef_", "coef_", "alpha_"):
        c = getattr(reg, name, None)
        if c is not None:
            return np.asarray(c)
    return None


def reported_residual(reg):
    """The relative residual the solver says it reached, if exposed."""
    v = getattr(reg, "residual_", None)
    return None if v is None else float(np.max(v))


def n_iter(reg):
    for name in ("n_iter_", "niter_", "iterations_"):
        v = getattr(reg, name, None)
        if v is not None:
            return int(np.max(v))
    return None


PREPARERS = {
    "dd_step": prep_dd,
    "threads": prep_dd,
    "rk4_step": prep_rk4,
    "ntk_gram": prep_ntk,
    "analytic_relu_ntk": prep_analytic,
    "kernel_cholesky": prep_cholesky,
    "cg_matfree": prep_cg,
}
