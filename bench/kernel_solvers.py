"""Kernel regression at the size of real data sets: preconditioned CG and Nystrom estimators.

Two cases, each configuration in its own child process (so its peak RSS is its own), the
timings wall-clock medians of ``--repeats`` fits (1 by default: the large fits take minutes):

``empirical``
    The empirical NTK of a ReLU network (N particles, d inputs) as a matrix-free kernel
    (``mf.kernels.Empirical``, no n x n matrix), kernel ridge regression by conjugate gradient
    to a relative residual ``--tol``: plain CG (the empirical kernel has no diagonal, so
    "jacobi" is no preconditioner) as in 0.1 (each product recomputes X W^T, all in float64)
    and as now (the operator that keeps the signs of X W^T, CG in mixed precision), against
    the Nystrom preconditioner for several numbers of centres M; ``--release DIR`` adds the CG of
    an earlier release itself (installed in DIR, e.g. 0.1.0: ``git worktree add /tmp/mfntk-0.1.0
    c8604d9 && pip install --no-deps --no-build-isolation --target DIR /tmp/mfntk-0.1.0``), timed
    in the same run. The network has the NTK scaling, the inputs are Gaussian and the target is
    sin(x_1) + x_2 x_3 / 2 plus noise. Reported: iterations, time to solution, the time spent
    building the preconditioner, peak RSS, and the difference of the predictions from those of
    the first row (all solve the same system).
``analytic``
    The infinite-width ReLU NTK (``mf.kernels.Analytic``) on MNIST-shaped data (n training
    points in d = 784, 10 classes, one-hot targets): exact kernel ridge regression by
    Nystrom-preconditioned CG with the matrix-free analytic product, the FALKON-style
    ``mf.NystromRegressor`` with M centres, and, on the dense kernel at the largest n it fits
    (``--sklearn-n``), scikit-learn's ``KernelRidge`` and GPyTorch's preconditioned CG
    (``--methods gpytorch``, if installed); ``--methods keops`` (pykeops, if installed) runs
    the same preconditioned CG with KeOps' product against mfntk's at n = ``--keops-n``. Test
    accuracy beside each. The data are
    synthetic (class templates with smooth structure plus pixel noise, values in [0, 1]) unless
    ``--mnist DIR`` names a folder with the four MNIST IDX files.

    python bench/kernel_solvers.py empirical --n 50000 --width 4096 --d 32
    python bench/kernel_solvers.py analytic --n 20000 --centers 5000 --sklearn-n 16384

Results: ``bench/results/<host>-<date>-kernel-<case>.{json,md}`` (``--out`` to change the folder).
Measure on a quiet machine (``cat /proc/loadavg``); nothing else should run at the same time.
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import queue as queues
import resource
import socket
import statistics
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GiB = 1 << 30
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def mnist_like(n, n_test, d=784, classes=10, seed=0):
    """Images in [0, 1]^d: one smooth template per class (a sum of random Gaussian blobs on a
    sqrt(d) x sqrt(d) grid), shifted by up to two pixels and with pixel noise; labels one-hot."""
    rng = np.random.default_rng(seed)
    side = int(round(np.sqrt(d)))
    if side * side != d:
        raise ValueError(f"d: expected a square number of pixels, got {d}")
    yy, xx = np.mgrid[0:side, 0:side]
    templates = np.zeros((classes, side, side))
    for c in range(classes):
        for _ in range(6):
            cy, cx = rng.uniform(0.25, 0.75, 2) * side
            width = rng.uniform(1.5, 4.0)
            templates[c] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
        templates[c] /= templates[c].max()

    def draw(m):
        labels = rng.integers(0, classes, m)
        shifts = rng.integers(-2, 3, (m, 2))
        X = np.empty((m, d))
        for i in range(m):
            img = np.roll(templates[labels[i]], tuple(shifts[i]), axis=(0, 1))
            X[i] = np.clip(img.ravel() + 0.25 * rng.standard_normal(d), 0.0, 1.0)
        return X, labels

    X, y = draw(n)
    X_test, y_test = draw(n_test)
    return X, y, X_test, y_test


def load_data(args):
    if args.mnist:
        import mfntk as mf
        paths = [os.path.join(args.mnist, name) for name in MNIST_FILES]
        data = mf.datasets.mnist(*paths)
        X, Y, X_test, Y_test = data.X, data.y, data.X_test, data.y_test
        y, y_test = Y.argmax(axis=1), Y_test.argmax(axis=1)
        return X[:args.n], y[:args.n], X_test[:args.n_test], y_test[:args.n_test]
    return mnist_like(args.n, args.n_test, seed=args.seed)


def one_hot(y, classes=10):
    Y = np.full((y.size, classes), 0.0)
    Y[np.arange(y.size), y] = 1.0
    return Y


# ---------------------------------------------------------------------------------------------
# child processes
# ---------------------------------------------------------------------------------------------
def _child(queue, fn, kwargs):
    try:
        out = fn(**kwargs)
        out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GiB
        queue.put(out)
    except BaseException as exc:  # reported in the table, the run goes on
        queue.put({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})


def in_child(fn, **kwargs):
    """fn(**kwargs) in a fresh spawned process; its result dict with the child's peak RSS."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, kwargs))
    proc.start()
    while True:  # a child killed by a signal (OOM, ...) never answers: report it instead of waiting
        try:
            out = queue.get(timeout=1.0)
            break
        except queues.Empty:
            if not proc.is_alive():
                return {"error": f"the child process died (exit code {proc.exitcode})"}
    proc.join()
    return out


def _timed_fit(make, X, Y, repeats):
    times, model = [], None
    for _ in range(repeats):
        model = make()
        t0 = time.perf_counter()
        model.fit(X, Y)
        times.append(time.perf_counter() - t0)
    return model, statistics.median(times), times


class KernelAsIn01:
    """A kernel as mfntk 0.1 used it: the products of ``matvec`` only (no ``operator``, whose
    products keep the signs of X W^T, and no ``astype``, whose float32 copy builds the
    preconditioner's columns)."""

    def __init__(self, kernel):
        self._kernel = kernel

    def __getattr__(self, name):
        if name in ("operator", "astype"):
            raise AttributeError(name)
        return getattr(self._kernel, name)

    def __call__(self, X, X2=None):
        return self._kernel(X, X2)


def empirical_task(n, width, d, ridge, tol, preconditioner, centers, as_in_01, threads, seed, repeats, n_test,
                   release=None):
    if release is not None:  # an installed earlier release, its own CG (it has no preconditioner option)
        sys.path.insert(0, release)
    import mfntk as mf
    if release is not None and not os.path.abspath(mf.__file__).startswith(os.path.abspath(release) + os.sep):
        raise RuntimeError(f"--release: mfntk was imported from {mf.__file__}, not from {release}")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + n_test, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(n + n_test)
    X, X_test, y = X[:n], X[n:], y[:n]
    net = mf.TwoLayer(d, width, "relu", scaling="ntk", seed=seed + 1)
    kernel = mf.kernels.Empirical(net, kind="ntk", threads=threads)
    if as_in_01:
        kernel = KernelAsIn01(kernel)

    def make():
        if release is not None:
            return mf.KernelRegressor(kernel=kernel, ridge=ridge, solver="cg", tol=tol, max_iter=2000)
        return mf.KernelRegressor(kernel=kernel, ridge=ridge, solver="cg", tol=tol, max_iter=2000,
                                  preconditioner=preconditioner, centers=centers, random_state=seed)

    model, median, times = _timed_fit(make, X, y, repeats)
    setup = 0.0
    if preconditioner == "nystrom":  # the same factor again, timed alone: the set-up part of a fit
        from mfntk._preconditioners import KernelColumns, nystrom
        t0 = time.perf_counter()
        nystrom(KernelColumns.from_kernel(kernel, X, outputs=1, fast=True), centers, ridge, "uniform", seed)
        setup = time.perf_counter() - t0
    return {"iterations": int(model.n_iter_), "seconds": median, "times": times, "setup_seconds": setup,
            "residual": float(np.max(model.residual_)), "predictions": model.predict(X_test).tolist(),
            "version": mf.__version__, "module": os.path.dirname(mf.__file__)}


def _accuracy(pred, y_test):
    return float(np.mean(np.asarray(pred).argmax(axis=1) == y_test))


def analytic_task(method, args_dict):
    import mfntk as mf
    args = argparse.Namespace(**args_dict)
    X, y, X_test, y_test = load_data(args)
    if method in ("sklearn", "gpytorch"):  # the methods that form the n x n kernel
        X, y = X[:args.sklearn_n], y[:args.sklearn_n]
    if method == "keops":
        return keops_task(args, X[:args.keops_n], one_hot(y[:args.keops_n]), X_test, y_test)
    Y = one_hot(y)
    kernel = mf.kernels.Analytic(activation="relu", kind="ntk", threads=args.threads)
    out = {"n": int(X.shape[0])}
    if method == "cg":
        def make():
            return mf.KernelRegressor(kernel=kernel, ridge=args.ridge, solver="cg", tol=args.tol,
                                      preconditioner="nystrom", centers=args.cg_centers,
                                      random_state=args.seed)
    elif method == "falkon":
        def make():
            return mf.NystromRegressor(kernel=kernel, ridge=args.ridge, centers=args.centers,
                                       random_state=args.seed)
    elif method == "gpytorch":
        def make():
            return GPyTorchCG(kernel, args.ridge, args.tol, args.cg_centers or 1000, args.threads)
    elif method == "sklearn":
        from sklearn.kernel_ridge import KernelRidge

        class Dense:  # the kernel matrix is part of the fit, as for the other methods
            def fit(self, X, Y):
                self.X = X
                self.model = KernelRidge(alpha=args.ridge, kernel="precomputed").fit(kernel(X), Y)
                return self

            def predict(self, X2):
                return self.model.predict(kernel(X2, self.X))
        make = Dense
    else:
        raise ValueError(method)
    model, median, times = _timed_fit(make, X, Y, args.repeats)
    t0 = time.perf_counter()
    pred = model.predict(X_test)
    out.update(seconds=median, times=times, predict_seconds=time.perf_counter() - t0,
               test_accuracy=_accuracy(pred, y_test), train_accuracy=_accuracy(model.predict(X[:2000]), y[:2000]))
    if hasattr(model, "n_iter_"):
        out["iterations"] = int(model.n_iter_)
    if hasattr(model, "residual_"):
        out["residual"] = float(np.max(model.residual_))
    return out


#: GPyTorch's own default of ``max_cg_iterations``.
GPYTORCH_MAX_ITER = 1000


class GPyTorchCG:
    """Exact kernel ridge regression by GPyTorch's conjugate gradient (``linear_operator``: CG
    with its pivoted-Cholesky preconditioner of rank M, to the relative residual ``tol``) on the
    same kernel. GPyTorch has no NTK kernel and, on the CPU without KeOps, multiplies by a formed
    matrix: the dense kernel comes from mfntk (its time is part of the fit, as for KernelRidge).
    ``residual_`` is the relative residual reached, computed afterwards from the dense kernel
    (GPyTorch's CG stops at its own tolerance or after GPYTORCH_MAX_ITER iterations, warning)."""

    def __init__(self, kernel, ridge, tol, rank, threads):
        self.kernel, self.ridge, self.tol, self.rank, self.threads = kernel, ridge, tol, rank, threads

    def fit(self, X, Y):
        import linear_operator
        import torch
        from linear_operator.operators import DenseLinearOperator
        torch.set_num_threads(self.threads)
        self.X = X
        K = torch.from_numpy(np.asarray(self.kernel(X), dtype=np.float64))
        op = DenseLinearOperator(K).add_diagonal(torch.tensor(self.ridge, dtype=torch.float64))
        rhs = torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float64))
        s = linear_operator.settings
        with s.cg_tolerance(self.tol), s.max_cg_iterations(GPYTORCH_MAX_ITER), s.max_cholesky_size(0), \
                s.max_preconditioner_size(self.rank), s.min_preconditioning_size(1):
            coef = op.solve(rhs)
        self.coef = coef.numpy()
        A = K.numpy()
        R = A @ self.coef + self.ridge * self.coef - Y
        self.residual_ = np.linalg.norm(R, axis=0) / np.linalg.norm(Y, axis=0)
        return self

    def predict(self, X2):
        return np.asarray(self.kernel(X2, self.X)) @ self.coef


def keops_relu_ntk(X, w_std2):
    """The infinite-width ReLU NTK of ``mf.kernels.Analytic(activation="relu", kind="ntk")`` (no
    bias) as a KeOps LazyTensor: with c the cosine of the angle theta of x and x',
    K = |x| |x'| [w_std^2 (sqrt(1 - c^2) + (pi - theta) c) + c (pi - theta)] / (2 pi)."""
    import math
    from pykeops.numpy import LazyTensor
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    U = X / norms
    u_i, u_j = LazyTensor(U[:, None, :]), LazyTensor(U[None, :, :])
    r_i, r_j = LazyTensor(norms[:, None, :]), LazyTensor(norms[None, :, :])
    c = (u_i | u_j).clamp(-1.0, 1.0)
    rest = math.pi - c.acos()
    return r_i * r_j * (w_std2 * ((1 - c * c).sqrt() + rest * c) + c * rest) / (2 * math.pi)


def keops_task(args, X, Y, X_test, y_test):
    """pykeops' product against mfntk's in one process, at n = ``--keops-n``: the same
    Nystrom-preconditioned CG (mfntk's, same centres, same stopping rule) with the kernel product
    K V of KeOps (the NTK's closed form as a LazyTensor reduction, tile by tile, no n x n matrix)
    and with mfntk's matrix-free product. KeOps' own ``solve`` is CG without a preconditioner and
    an absolute stopping rule, so it would not solve to the same tolerance."""
    import mfntk as mf
    from mfntk._preconditioners import KernelColumns, nystrom
    from mfntk._solvers import conjugate_gradient
    kernel = mf.kernels.Analytic(activation="relu", kind="ntk", threads=args.threads)
    n, d = X.shape
    K_keops = keops_relu_ntk(X, 1.0 / d)
    probe = np.random.default_rng(1).standard_normal((n, 2))
    exact = kernel.matvec(X, probe)
    formula_error = float(np.abs(K_keops @ probe - exact).max() / np.abs(exact).max())
    out = {"n": n, "formula_relative_difference": formula_error}
    for name, product in (("mfntk", lambda V: kernel.matvec(X, V)), ("keops", lambda V: K_keops @ V)):
        t0 = time.perf_counter()
        P = nystrom(KernelColumns.from_kernel(kernel, X), args.cg_centers, args.ridge, "uniform", args.seed)
        setup = time.perf_counter() - t0
        product(probe)   # KeOps compiles its formula on first use
        t1 = time.perf_counter()
        product(probe)
        per_product = time.perf_counter() - t1
        t1 = time.perf_counter()
        coef, info = conjugate_gradient(lambda V: np.ascontiguousarray(product(np.ascontiguousarray(V))), Y,
                                        shift=args.ridge, tol=args.tol, preconditioner=P, max_iter=500)
        solve = time.perf_counter() - t1
        pred = kernel(X_test, X) @ coef
        out[name] = {"iterations": int(info["iterations"]), "residual": float(np.max(info["residual"])),
                     "seconds": setup + solve, "setup_seconds": setup, "product_seconds": per_product,
                     "test_accuracy": _accuracy(pred, y_test)}
    out["seconds"] = out["keops"]["seconds"]
    return out


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------
def machine():
    try:
        sys.path.insert(0, os.path.dirname(HERE))
        from bench.machine import facts
        return facts()
    except Exception as exc:  # facts are a courtesy; the timings stand without them
        return {"error": str(exc)}


def run_empirical(args):
    rows = []
    # first the baseline of every ratio: plain CG as in 0.1
    configs = [("jacobi", None, True, None)] + ([("jacobi", None, False, args.release)] if args.release else [])
    configs += [("jacobi", None, False, None)] + [("nystrom", m, False, None) for m in args.center_list]
    for pre, m, as_in_01, release in configs:
        print(f"empirical n={args.n} N={args.width} d={args.d}: {pre} M={m} as in 0.1: {as_in_01} "
              f"release: {release} ...", flush=True)
        out = in_child(empirical_task, n=args.n, width=args.width, d=args.d, ridge=args.ridge, tol=args.tol,
                       preconditioner=pre, centers=m, as_in_01=as_in_01, threads=args.threads, seed=args.seed,
                       repeats=args.repeats, n_test=args.n_test, release=release)
        out.update(preconditioner=pre, centers=m, as_in_01=as_in_01, release=release)
        rows.append(out)
        print({k: v for k, v in out.items() if k not in ("predictions", "traceback")}, flush=True)
    ref = rows[0].get("predictions")
    for r in rows:
        if ref is not None and "predictions" in r:
            a, b = np.asarray(r["predictions"]), np.asarray(ref)
            r["prediction_difference"] = float(np.linalg.norm(a - b) / np.linalg.norm(b))
        r.pop("predictions", None)
        if "seconds" in r and "seconds" in rows[0]:
            r["speedup"] = rows[0]["seconds"] / r["seconds"]
        if "seconds" in r and args.release and "seconds" in rows[1]:
            r["speedup_release"] = rows[1]["seconds"] / r["seconds"]
    return rows


def run_analytic(args):
    rows = []
    for method in args.methods:
        print(f"analytic {method} ...", flush=True)
        out = in_child(analytic_task, method=method, args_dict=vars(args))
        out["method"] = method
        rows.append(out)
        print({k: v for k, v in out.items() if k != "traceback"}, flush=True)
    return rows


def markdown(case, args, rows):
    lines = [f"# kernel solvers: {case}", "", f"`python bench/kernel_solvers.py {' '.join(sys.argv[1:])}`", ""]
    if case == "empirical":
        lines += [f"n = {args.n}, N = {args.width}, d = {args.d}, ridge = {args.ridge}, tol = {args.tol}, "
                  f"threads = {args.threads}", "",
                  "Solver: \"as in 0.1\": every product recomputes X W^T (`Empirical.matvec`), all in float64; "
                  "\"current\": what `KernelRegressor` does now, the products of `Empirical.operator` (the signs of "
                  "X W^T kept), CG in mixed precision (products of the float32 kernel, true float64 residuals every "
                  "hundredfold fall) and the Nystrom factor from float32 columns. Speed-up: against the first row."]
        release = rows[1] if args.release else None
        if release is not None:
            lines[-1] += (f" \"release\": mfntk {release.get('version', '?')} itself, installed in `{args.release}` "
                          "and timed in the same run; the last column is the speed-up against it.")
        extra = " speed-up against the release |" if release is not None else ""
        lines += ["", "| preconditioner | M | solver | iterations | time to solution (s) | of which setup (s) | "
                  "speed-up | peak RSS (GiB) | rel. diff. of predictions |" + extra,
                  "|---|---|---|---|---|---|---|---|---|" + ("---|" if extra else "")]
        for r in rows:
            products = (f"release {r.get('version', '')}" if r.get("release") else
                        "as in 0.1" if r.get("as_in_01") else "current")
            if "error" in r:
                lines.append(f"| {r['preconditioner']} | {r['centers']} | {products} | error: {r['error']} "
                             "| | | | | |" + (" |" if extra else ""))
                continue
            lines.append(f"| {r['preconditioner']} | {r['centers'] or ''} | {products} | {r['iterations']} | "
                         f"{r['seconds']:.1f} | {r['setup_seconds']:.1f} | {r.get('speedup', float('nan')):.2f} | "
                         f"{r['peak_rss_gib']:.2f} | {r.get('prediction_difference', float('nan')):.1e} |"
                         + (f" {r.get('speedup_release', float('nan')):.2f} |" if extra else ""))
    else:
        data = f"MNIST from {args.mnist}" if args.mnist else "synthetic MNIST-shaped data"
        lines += [f"{data}, d = 784, 10 classes, ridge = {args.ridge}, tol = {args.tol}, threads = {args.threads}",
                  "", "| method | n | M | iterations | fit (s) | predict (s) | test accuracy | peak RSS (GiB) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            m = {"falkon": args.centers, "cg": args.cg_centers,
                 "gpytorch": args.cg_centers or 1000}.get(r["method"], "")
            if "error" in r:
                lines.append(f"| {r['method']} | | {m} | error: {r['error']} | | | | |")
                continue
            if r["method"] == "keops":
                continue
            lines.append(f"| {r['method']} | {r['n']} | {m} | {r.get('iterations', '')} | {r['seconds']:.1f} | "
                         f"{r['predict_seconds']:.1f} | {r['test_accuracy']:.4f} | {r['peak_rss_gib']:.2f} |")
        for r in rows:
            if r["method"] == "keops" and "error" not in r:
                lines += ["", f"pykeops against mfntk at n = {r['n']}: the same Nystrom-preconditioned CG "
                          f"(M = {args.cg_centers or 'default'}), only the kernel product differs (KeOps' closed "
                          f"form agrees with mfntk's kernel to {r['formula_relative_difference']:.1e}):", "",
                          "| product | iterations | one product, 2 columns (s) | fit (s) | of which set-up (s) | "
                          "test accuracy |", "|---|---|---|---|---|---|"]
                for name in ("mfntk", "keops"):
                    q = r[name]
                    lines.append(f"| {name} | {q['iterations']} | {q['product_seconds']:.2f} | {q['seconds']:.1f} | "
                                 f"{q['setup_seconds']:.1f} | {q['test_accuracy']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=("empirical", "analytic"))
    ap.add_argument("--n", type=int, default=None, help="training points (50000 empirical, 20000 analytic)")
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--width", type=int, default=4096, help="particles N of the empirical kernel")
    ap.add_argument("--d", type=int, default=32, help="input dimension of the empirical case")
    ap.add_argument("--ridge", type=float, default=1.0)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--center-list", type=lambda s: [int(v) for v in s.split(",")], default=[500, 1000, 2000],
                    help="numbers of Nystrom centres tried in the empirical case")
    ap.add_argument("--centers", type=int, default=5000, help="centres of NystromRegressor (analytic case)")
    ap.add_argument("--cg-centers", type=int, default=None, help="centres of the CG preconditioner (default: its own)")
    ap.add_argument("--sklearn-n", type=int, default=16384,
                    help="training points given to KernelRidge and GPyTorch (both multiply by a formed matrix)")
    ap.add_argument("--methods", type=lambda s: s.split(","), default=["falkon", "cg", "sklearn"],
                    help="of falkon, cg, sklearn, gpytorch, keops")
    ap.add_argument("--keops-n", type=int, default=4096,
                    help="training points of the keops comparison (its CPU product is slow at large n)")
    ap.add_argument("--release", default=None,
                    help="empirical case: a folder with an earlier mfntk installed (pip install --no-deps "
                         "--target DIR <its source>), whose own CG is timed in the same run")
    ap.add_argument("--mnist", default=None, help="a folder with the four MNIST IDX files")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args(argv)
    if args.n is None:
        args.n = 50000 if args.case == "empirical" else 20000
    if args.case == "analytic":
        args.d = 784
    rows = run_empirical(args) if args.case == "empirical" else run_analytic(args)
    result = {"case": args.case, "args": vars(args), "machine": machine(), "rows": rows,
              "loadavg": os.getloadavg()}
    stem = f"{socket.gethostname()}-{datetime.date.today().isoformat()}-kernel-{args.case}"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, stem + ".json"), "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    text = markdown(args.case, args, rows)
    with open(os.path.join(args.out, stem + ".md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
