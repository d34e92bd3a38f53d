"""One matrix-free product of the infinite-width relu NTK against the dense Gram matrix.

For each n: ``Analytic.matvec(X, V)`` (K(X, X) V in blocks, only the blocks on and above the
diagonal), the same product without the symmetry (``cross_matvec(X, X, V)``, every block) and
the dense path ``Analytic(...)(X) @ V`` (the n x n Gram matrix, then numpy's matmul), on
X ~ N(0, I_d), V ~ N(0, I) of shape (n, m). The fraction of the DGEMM rate (numpy ``A @ B.T``
of two (2048, d) matrices at the same thread count) counts the GEMM of the unit vectors:
n^2 d flops with the symmetry, 2 n^2 d without (the relu formula's n^2 / 2 or n^2 arctan2
and sqrt are not counted). Median of --repeats timed calls after one warm-up at the smallest n.

    python bench/analytic_matvec.py --sizes 8000,12000,16000,20000 --d 784 --m 10 --threads 2
"""
import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import mfntk as mf


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def gemm_rate(d, threads, size=2048, repeats=5):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((size, d)), rng.standard_normal((size, d))
    with threadpool_limits(threads):
        A @ B.T
        seconds, _ = timed(lambda: A @ B.T, repeats)
    return 2.0 * size * size * d / seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="8000,12000,16000,20000", help="comma-separated n")
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--m", type=int, default=10, help="columns of V")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-dense", action="store_true", help="skip the dense Gram matrix (memory 8 n^2 bytes)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rate = gemm_rate(args.d, args.threads)
    print(f"DGEMM (numpy A @ B.T, d = {args.d}, {args.threads} threads): {rate / 1e9:.1f} GFLOP/s")
    k = mf.kernels.Analytic(activation="relu", kind="ntk", threads=args.threads)
    rng = np.random.default_rng(1)
    warm = rng.standard_normal((1000, args.d))
    k.matvec(warm, np.ones((1000, args.m)))
    print(f"{'n':>7} {'matvec s':>9} {'%DGEMM':>7} {'no-sym s':>9} {'%DGEMM':>7} {'dense s':>8} {'max rel diff':>12}")
    for n in sizes:
        X, V = rng.standard_normal((n, args.d)), rng.standard_normal((n, args.m))
        t_sym, out = timed(lambda: k.matvec(X, V), args.repeats)
        t_full, full = timed(lambda: k.cross_matvec(X, X, V), args.repeats)
        t_dense, diff = float("nan"), float("nan")
        if not args.no_dense:
            with threadpool_limits(args.threads):
                t_dense, dense = timed(lambda: k(X) @ V, args.repeats)
            diff = float(np.abs(out - dense).max() / np.abs(dense).max())
        assert np.allclose(out, full, rtol=1e-10, atol=1e-10 * np.abs(full).max())
        flops = float(n) * n * args.d
        print(f"{n:>7} {t_sym:>9.2f} {100 * flops / t_sym / rate:>6.0f}% {t_full:>9.2f} "
              f"{100 * 2 * flops / t_full / rate:>6.0f}% {t_dense:>8.2f} {diff:>12.1e}")


if __name__ == "__main__":
    main()
