"""Iterations and time to solution of matrix-free CG with and without a Nystrom preconditioner.

Kernel ridge regression with the empirical NTK of a two-layer ReLU network (scaling "ntk") on
Gaussian inputs, through :class:`mfntk.KernelRegressor` (solver "cg"): one fit per
preconditioner, each timed once (a fit is seconds to minutes; the set-up of the kernel object
is not timed). The solutions are compared with the first row's as a check.

    python bench/preconditioners.py --n 20000 --centers 200,566,1000,2000

The empirical kernel has no diagonal, so "jacobi" is plain CG.
"""
import argparse
import time

import numpy as np

import mfntk as mf


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--ridge", type=float, default=1.0)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--centers", default="200,500,1000", help="comma-separated M for the Nystrom rows")
    parser.add_argument("--selection", default="uniform", choices=("uniform", "leverage"))
    parser.add_argument("--no-jacobi", action="store_true", help="skip the unpreconditioned row")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(args.n)
    net = mf.TwoLayer(args.d, args.width, scaling="ntk", seed=1)
    kernel = mf.kernels.Empirical(net, kind="ntk", threads=args.threads)
    rows = [] if args.no_jacobi else [("jacobi", None)]
    rows += [("nystrom", int(m)) for m in args.centers.split(",") if m]
    print(f"n={args.n} d={args.d} N={args.width} ridge={args.ridge} tol={args.tol} threads={args.threads} "
          f"selection={args.selection}")
    print(f"{'preconditioner':>16} {'M':>6} {'iterations':>10} {'fit s':>8} {'s/iter':>7} {'residual':>9} "
          f"{'rel diff':>9}")
    first = None
    for kind, M in rows:
        reg = mf.KernelRegressor(kernel=kernel, ridge=args.ridge, solver="cg", tol=args.tol, preconditioner=kind,
                                 centers=M, center_selection=args.selection)
        t0 = time.perf_counter()
        reg.fit(X, y)
        dt = time.perf_counter() - t0
        coef = reg.dual_coef_
        first = coef if first is None else first
        diff = np.abs(coef - first).max() / np.abs(first).max()
        print(f"{str(reg.preconditioner_):>16} {M or 0:>6} {reg.n_iter_:>10} {dt:>8.1f} {dt / reg.n_iter_:>7.2f} "
              f"{float(np.max(reg.residual_)):>9.2e} {diff:>9.1e}", flush=True)


if __name__ == "__main__":
    main()
