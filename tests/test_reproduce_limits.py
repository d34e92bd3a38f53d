"""The entries mean-field-limit, ntk-limit and rf-nt-kernels of mfntk.reproduce, each at its quick size.

Besides the entry's own checks, each test asserts something the entry does not compute itself:
closed forms at t = 0, the arc-cosine kernels and the frozen-kernel flow written in numpy, kernel
ridge regression solved by numpy, Monte Carlo norms of the staircase's harmonics, and the
spectrum of a kernel whose Gegenbauer expansion is known.
"""
import math

import numpy as np
import pytest

from threadpoolctl import threadpool_limits

import mfntk as mf
from mfntk.reproduce import _limits
from mfntk.studies import Table
from mfntk.studies._base import seed_for

MC_SIGMAS = 5.0  # Monte Carlo: allowed error in standard errors
THREADS = 1      # the numbers do not depend on it; one thread keeps these runs fast on a busy machine


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """The kernel matrices here are at most 2000 x 2000: one BLAS thread for them too."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _files_and_checks(result, out):
    assert result.agrees, "\n".join(c.describe() for c in result.checks if not c.agrees)
    for ext in ("csv", "json", "png", "md"):
        assert (out / f"{result.name}.{ext}").stat().st_size > 0
    np.testing.assert_array_equal(Table.from_csv(out / f"{result.name}.csv")["series"], result.table["series"])


def _relu_kernels(X, X2, w_std, b_std=0.0, bias=False):
    """Infinite-width relu kernels (arc-cosine of orders 1 and 0, a_std = 1) in numpy."""
    cov = w_std ** 2 * X @ X2.T + b_std ** 2
    s1 = np.sqrt(w_std ** 2 * np.sum(X ** 2, axis=1) + b_std ** 2)
    s2 = np.sqrt(w_std ** 2 * np.sum(X2 ** 2, axis=1) + b_std ** 2)
    theta = np.arccos(np.clip(cov / np.outer(s1, s2), -1.0, 1.0))
    rf = np.outer(s1, s2) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    nt = (X @ X2.T + (1.0 if bias else 0.0)) * (np.pi - theta) / (2 * np.pi)
    return rf, nt


def test_mean_field_limit(tmp_path):
    result = mf.reproduce.mean_field_limit(out=tmp_path, threads=THREADS)
    _files_and_checks(result, tmp_path)
    p = _limits._MF_SIZES["quick"]
    table = result.table
    # symmetric initialisation: f(x; theta_0) = 0 for every N, so R(0) = mean(y^2) / 2 of the training set
    for i, problem in enumerate(_limits._MF_PROBLEMS):
        data = _limits._mf_data(problem, p["d"], p["n"], seed_for(0, i))
        start = [r for r in table.rows if r["series"] == "risk curve" and r["problem"] == problem and r["t"] == 0.0]
        assert len(start) == 1 + _limits._MF["curve_widths"]
        for r in start:
            assert r["train_risk"] == pytest.approx(0.5 * np.mean(data.y ** 2), rel=1e-12)
    # the gaps decrease with N, and numpy's least squares gives the slopes of the checks
    for problem in _limits._MF_PROBLEMS:
        gaps = [r for r in table.rows if r["series"] == "gap" and r["problem"] == problem]
        assert [r["width"] for r in gaps] == list(p["widths"])
        assert all(r["systems"] == p["seeds"] * p["blocks"] for r in gaps)
        values = np.array([r["sup_risk_gap"] for r in gaps])
        assert values[0] > values[-1] > 0
        slope = np.polyfit(np.log(p["widths"]), np.log(values), 1)[0]
        assert any(c.measured == pytest.approx(slope, abs=1e-10) for c in result.checks if problem in c.quantity)
    # every histogram of |w_j| is a probability density
    dens = [r for r in table.rows if r["series"] == "density"]
    centres = sorted({r["w_norm"] for r in dens})
    width = centres[1] - centres[0]
    for n in {r["width"] for r in dens}:
        for t in {r["t"] for r in dens}:
            mass = width * sum(r["density"] for r in dens if r["width"] == n and r["t"] == t)
            assert mass == pytest.approx(1.0, abs=0.01)     # the reference's top 0.5 % lies beyond the last bin


def test_mean_field_blocks_are_disjoint_pairs_of_the_reference():
    """The N-systems carved out of a symmetric reference: disjoint, covering it, and made of whole
    pairs (a, w, b), (-a, w, b), so that each starts with f(x; theta_0) = 0 like the reference."""
    n_ref = 64
    ref = mf.TwoLayer(3, n_ref, bias=True, b_std=0.5, symmetric=True, seed=1)
    for width in (8, 16, 64):
        blocks = [_limits._block_index(width, b, n_ref) for b in range(n_ref // width)]
        assert sorted(np.concatenate(blocks).tolist()) == list(range(n_ref))
        for idx in blocks:
            half = width // 2
            np.testing.assert_array_equal(ref.a[idx[:half]], -ref.a[idx[half:]])
            np.testing.assert_array_equal(ref.W[idx[:half]], ref.W[idx[half:]])
            np.testing.assert_array_equal(ref.b[idx[:half]], ref.b[idx[half:]])


def test_ntk_limit(tmp_path):
    result = mf.reproduce.ntk_limit(out=tmp_path, threads=THREADS)
    _files_and_checks(result, tmp_path)
    table = result.table
    gamma, X, y, grid = _limits._ntk_problem(0)
    circle = np.sqrt(2.0) * np.column_stack([np.cos(grid), np.sin(grid)])
    # the analytic kernel K(x_0, x) on the circle: the arc-cosine kernels in numpy (w_std = 1/sqrt(2))
    rf, nt = _relu_kernels(circle[[grid.size // 2]], circle, 1 / np.sqrt(2))
    analytic = [r["kernel"] for r in table.rows if r["series"] == "kernel" and r["width"] == 0]
    np.testing.assert_allclose(analytic, (rf + nt)[0], rtol=1e-10, atol=1e-12)
    # the infinite-width function at t_max: the frozen-kernel flow K(x, X) K^-1 (I - exp(-t K / n)) y in numpy
    rf, nt = _relu_kernels(X, X, 1 / np.sqrt(2))
    lam, V = np.linalg.eigh(rf + nt)
    t = _limits._NTK["t_max"]
    coef = V @ ((1 - np.exp(-t * lam / len(X))) / lam * (V.T @ y))
    rf2, nt2 = _relu_kernels(circle, X, 1 / np.sqrt(2))
    flow = [r["f_mean"] for r in table.rows if r["series"] == "function" and r["width"] == 0]
    np.testing.assert_allclose(flow, (rf2 + nt2) @ coef, rtol=1e-8, atol=1e-10)
    # the kernel moves less, and the network gets closer to both limits, as N grows (every activation)
    for act in _limits._NTK_ACTIVATIONS:
        rows = [r for r in table.rows if r["series"] == "rate" and r["activation"] == act]
        for column, _ in _limits._NTK_RATES:
            means = [np.mean([r[column] for r in rows if r["width"] == n])
                     for n in _limits._NTK_SIZES["quick"]["widths"]]
            assert all(a > b for a, b in zip(means, means[1:])), (act, column, means)


def test_rf_nt_kernels(tmp_path):
    result = mf.reproduce.rf_nt_kernels(out=tmp_path, threads=THREADS)
    _files_and_checks(result, tmp_path)
    table = result.table
    kern = [r for r in table.rows if r["series"] == "kernels"]
    for r in kern:
        assert r["concentration_scale"] == pytest.approx(math.sqrt((r["n"] + r["d"]) / (r["width"] * r["d"])))
    # one point of the staircase again, with the relu-with-bias NTK written in numpy and solved by numpy
    stair = [r for r in table.rows if r["series"] == "staircase"]
    row = min((r for r in stair if r["d"] == 12 and r["seed"] == 1), key=lambda r: abs(r["n"] - 300))
    d, n = row["d"], row["n"]
    data_seed = seed_for(0, 2)
    X = mf.datasets.sphere_inputs(seed_for(data_seed, d, n, 1), n, d)
    X_test = mf.datasets.sphere_inputs(seed_for(data_seed, d, 0), _limits._RF_SIZES["quick"]["n_test"], d)
    opts = _limits._RF["stair_kernel"]
    rf, nt = _relu_kernels(X, X, 1 / np.sqrt(d), opts["b_std"], bias=True)
    coef = np.linalg.solve(rf + nt + _limits._RF["ridge"] * np.eye(n), _limits._staircase_target(X))
    rf2, nt2 = _relu_kernels(X_test, X, 1 / np.sqrt(d), opts["b_std"], bias=True)
    mse = np.mean((_limits._staircase_target(X_test) - (rf2 + nt2) @ coef) ** 2)
    assert row["test_mse"] == pytest.approx(mse, rel=1e-7)
    # the plateau column is ||P_>l f*||^2 with l = floor(log n / log d)
    for r in stair:
        assert r["plateau_norm2"] == 3.0 - min(math.floor(math.log(r["n"]) / math.log(r["d"])), 3)


@pytest.mark.parametrize("d", [6, 13])
def test_staircase_harmonics_are_orthonormal(d):
    """Monte Carlo on the sphere of radius sqrt(d): E Y_k Y_l = delta_kl, and each Y_l is orthogonal to
    the polynomials of lower degree (checked against 1, x_i and x_i x_j)."""
    m = 200_000
    X = mf.datasets.sphere_inputs(np.random.default_rng(7), m, d)
    Y = _limits._harmonics(X)
    gram = Y.T @ Y / m
    se = np.sqrt(np.var(Y[:, :, None] * Y[:, None, :], axis=0) / m)
    assert np.all(np.abs(gram - np.eye(3)) < MC_SIGMAS * se)
    lower = np.column_stack([np.ones(m), X[:, :3], X[:, 0] * X[:, 1], X[:, 0] ** 2 - 1.0])
    for l, columns in ((2, lower[:, :4]), (3, lower)):
        proj = Y[:, l - 1][:, None] * columns
        assert np.all(np.abs(proj.mean(axis=0)) < MC_SIGMAS * proj.std(axis=0) / np.sqrt(m)), l


def test_sphere_spectrum_of_kernels_with_a_known_expansion():
    """<x, x'> / d = t has the single eigenvalue 1/d on the d harmonics of degree 1; (<x, x'> / d)^2 = t^2 =
    1/d + (t^2 - 1/d) puts 1/d on degree 0 and 2 / (d (d + 2)) on each of the (d + 2)(d - 1) / 2 harmonics
    of degree 2 (the trace t^2 at t = 1 is 1)."""
    d = 7
    linear = mf.kernels.Analytic(activation="identity", kind="rf", w_std=1 / np.sqrt(d))
    xi, mult, tail = _limits._sphere_spectrum(linear, d, 5, 60)
    np.testing.assert_allclose(xi, [0, 1 / d, 0, 0, 0, 0], atol=1e-14)
    assert mult[1] == d and mult[2] == (d + 2) * (d - 1) / 2 and tail == pytest.approx(0.0, abs=1e-12)
    square = lambda A, B=None: linear(A, B) ** 2  # noqa: E731
    xi, mult, tail = _limits._sphere_spectrum(square, d, 5, 60)
    np.testing.assert_allclose(xi, [1 / d, 0, 2 / (d * (d + 2)), 0, 0, 0], atol=1e-14)
    assert tail == pytest.approx(0.0, abs=1e-12)


def test_krr_theory_limits():
    """The finite-d theory of kernel ridge regression: no samples learn nothing (risk ||f*||^2), many samples
    learn everything, and for M features of equal variance and n < M noiseless samples, ridgeless regression
    (the minimum-norm interpolant) leaves the part of f* outside an n-dimensional random subspace: risk
    (1 - n / M) ||f*||^2."""
    spectrum = (np.array([0.0, 0.5]), np.array([1.0, 10.0]), 0.0)
    assert _limits._krr_risk_theory(1e-9, spectrum, [0.0, 2.0], 1e-12) == pytest.approx(2.0, rel=1e-6)
    assert _limits._krr_risk_theory(1e6, spectrum, [0.0, 2.0], 1e-12) < 1e-6
    for n in (2, 5, 8):
        assert _limits._krr_risk_theory(n, spectrum, [0.0, 2.0], 1e-12) == pytest.approx(2.0 * (1 - n / 10), rel=1e-6)
