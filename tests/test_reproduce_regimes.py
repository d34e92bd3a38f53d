"""The entries cob and diag-linear of mfntk.reproduce at their quick size: every check agrees,
the four files are written, and the tables against references computed here in NumPy (the
small-time constant by the product rule, gradient descent step by step, the reference solutions
by their optimality conditions)."""
import numpy as np
import pytest
from scipy.optimize import linprog, nnls

import mfntk as mf
from mfntk.reproduce import _regimes
from mfntk.studies._base import default_data, seed_for

# the runs are small: one thread each is as fast, and stays fast on a machine shared with other jobs
THREADS = 1


def written(folder, name):
    return all((folder / f"{name}.{ext}").is_file() for ext in ("csv", "json", "png", "md"))


@pytest.fixture(scope="module")
def cob(tmp_path_factory):
    out = tmp_path_factory.mktemp("cob")
    return mf.reproduce.cob(out=out, threads=THREADS), out


@pytest.fixture(scope="module")
def diag(tmp_path_factory):
    out = tmp_path_factory.mktemp("diag")
    return mf.reproduce.diag_linear(out=out, threads=THREADS), out


# ---- cob --------------------------------------------------------------------------------------------

def np_small_time_constant(net, X, y):
    """C of |F - fbar| / |y| = C t^2 + O(t^3) for a tanh network without bias: dK/dt at t = 0 by
    the product rule on K = (1/N) sum_j [s_j s_j^T + a_j^2 (s'_j s'_j^T) * X X^T], along the
    centred field (residual y): da_j = (1/alpha n) sum_i y_i s_j(x_i),
    dw_j = (1/alpha n) sum_i y_i a_j s'_j(x_i) x_i."""
    a, W, alpha = net.a[:, 0], net.W, net.alpha
    N, n = len(a), len(X)
    s = np.tanh(X @ W.T)
    ds = 1 - s ** 2
    dds = -2 * s * ds
    da = (y @ s) / (alpha * n)
    dW = ((y[:, None] * ds * a).T @ X) / (alpha * n)
    dZ = X @ dW.T
    s_dot, ds_dot = ds * dZ, dds * dZ
    G = X @ X.T
    dK = (s_dot @ s.T + s @ s_dot.T + ((2 * a * da * ds) @ ds.T + (a ** 2 * ds_dot) @ ds.T
                                        + (a ** 2 * ds) @ ds_dot.T) * G) / N
    return np.linalg.norm(dK @ y) / (2 * n * np.linalg.norm(y))


def test_cob_quick_agrees_and_its_small_time_theory_is_the_product_rule(cob):
    result, out = cob
    assert result.agrees, [c.describe() for c in result.checks if not c.agrees]
    assert written(out, "cob")
    t = result.table
    # the constant C of seed 0, alpha = 32, rebuilt from the entry's seeds and computed in NumPy
    data = default_data(d=5, n_train=64, n_test=0, activation="tanh", seed=seed_for(0, 0, 0))
    net = mf.TwoLayer(5, 256, activation="tanh", scaling=32.0, seed=seed_for(0, 1, 0))
    rows = (t["series"] == "time") & (t["alpha"] == 32.0) & (t["seed"] == 0)
    C_table = t["theory_C_t2"][rows].astype(float) / t["t_mf"][rows].astype(float) ** 2
    np.testing.assert_allclose(C_table, np_small_time_constant(net, data.X, data.y[:, 0]), rtol=1e-8)
    # in mean-field time the objective's first change does not depend on alpha (up to O(1/alpha))
    for model in ("centred", "symmetric"):
        for seed in (0, 1):
            lazy = (t["series"] == "alpha") & (t["model"] == model) & (t["seed"] == seed) & (t["alpha"] >= 16)
            change = t["objective_change"][lazy].astype(float)
            assert np.ptp(change) < 1e-3 * change.mean(), (model, seed, change)


def test_the_small_time_constant_holds_for_another_smooth_activation():
    # erf instead of tanh: the central difference of the kernel still gives the distance at small t
    data = default_data(d=3, n_train=20, n_test=0, activation="tanh", seed=1)
    net = mf.TwoLayer(3, 64, activation="erf", scaling=8.0, seed=2)
    C = _regimes.small_time_constant(net, data.X, data.y, threads=1)
    tr = mf.simulate(net, data, 0.01, 0.001, method="rk4", record_every=0.001, centered=True, linearized=True,
                     threads=1, progress=False)
    assert abs(tr.linearized_distance[1] / (C * tr.t[1] ** 2) - 1) < 2e-3


# ---- diag-linear -------------------------------------------------------------------------------------

def np_gradient_descent_steps(X, y, alpha, loss, eta, kappa, max_steps=100000):
    """The first step of gradient descent on (1/n) sum l(<w_+^2 - w_-^2, x_i>, y_i) from
    w_+ = w_- = alpha with risk <= kappa."""
    wp = np.full(X.shape[1], alpha)
    wm = wp.copy()
    for step in range(max_steps + 1):
        f = X @ (wp ** 2 - wm ** 2)
        if loss == "squared":
            value, r = np.mean(0.5 * (y - f) ** 2), y - f
        else:
            value, r = np.mean(np.logaddexp(0.0, -y * f)), y / (1 + np.exp(y * f))
        if value <= kappa:
            return step
        G = X.T @ r / len(y)
        wp, wm = wp + eta * 2 * wp * G, wm - eta * 2 * wm * G
    raise AssertionError("not reached")


def test_diag_linear_quick_agrees_and_its_table_matches_numpy(diag):
    result, out = diag
    assert result.agrees, [c.describe() for c in result.checks if not c.agrees]
    assert written(out, "diag-linear")
    t = result.table
    for loss, alpha in (("squared", 0.1), ("logistic", 0.01)):
        row = next(r for r in t.records()
                   if r["loss"] == loss and r["seed"] == 0 and r["alpha"] == pytest.approx(alpha))
        X, y, _ = _regimes.sparse_problem(100, 5, row["n_train"], loss, seed_for(0, 0))
        assert row["iterations_to_kappa"] == np_gradient_descent_steps(X, y, alpha, loss, row["learning_rate"],
                                                                      row["kappa"])
    # the reference errors: minimum-l2 by the pseudo-inverse, minimum-l1 by the LP in (beta, t), |beta| <= t
    X, y, b_star = _regimes.sparse_problem(100, 5, 40, "squared", seed_for(0, 0))
    d = X.shape[1]
    lp = linprog(np.r_[np.zeros(d), np.ones(d)], A_ub=np.block([[np.eye(d), -np.eye(d)], [-np.eye(d), -np.eye(d)]]),
                 b_ub=np.zeros(2 * d), A_eq=np.hstack([X, np.zeros((len(X), d))]), b_eq=y,
                 bounds=[(None, None)] * d + [(0, None)] * d, method="highs")
    rows = (t["loss"] == "squared") & (t["seed"] == 0)
    np.testing.assert_allclose(t["l2_solution_error"][rows].astype(float),
                               np.sum((np.linalg.pinv(X) @ y - b_star) ** 2), rtol=1e-9)
    np.testing.assert_allclose(t["l1_solution_error"][rows].astype(float), np.sum((lp.x[:d] - b_star) ** 2), atol=1e-8)
    # the conserved w_+ w_- = alpha^2 makes the kernel a function of beta: the flow's records agree where
    # gradient descent's drift of w_+ w_- is negligible against alpha^2 (rich side)
    rich = (t["loss"] == "squared") & (t["alpha"] <= 0.1)
    np.testing.assert_allclose(t["kernel_distance"][rich].astype(float),
                               t["kernel_distance_from_beta"][rich].astype(float), rtol=1e-2)


def test_the_reference_classifiers_satisfy_their_optimality_conditions():
    X, y, _ = _regimes.sparse_problem(100, 5, 80, "logistic", seed_for(0, 0))
    A = y[:, None] * X
    b1, b2 = _regimes.reference_solutions("logistic", X, y)
    margins = A @ b2
    assert margins.min() > 1 - 1e-9
    active = margins < 1 + 1e-7
    lam, residual = nnls(A[active].T, b2)        # KKT: beta = sum over the active rows of lambda_i y_i x_i, lambda >= 0
    assert residual < 1e-7 * np.linalg.norm(b2)
    assert (A @ b1).min() > 1 - 1e-9 and np.abs(b1).sum() <= np.abs(b2).sum() + 1e-9


def test_the_conserved_kernel_distance_is_the_kernel_of_the_balanced_weights():
    rng = np.random.default_rng(4)
    X, beta, alpha = rng.standard_normal((7, 5)), rng.standard_normal(5), 0.3
    root = np.sqrt(4 * alpha ** 4 + beta ** 2)
    model = mf.DiagonalLinear(5, alpha=alpha)
    K0 = model.tangent_kernel(X)
    model.set_flat(np.r_[np.sqrt((root + beta) / 2), np.sqrt((root - beta) / 2)])   # w_+ w_- = alpha^2
    np.testing.assert_allclose(model.beta, beta, atol=1e-12)
    expected = np.linalg.norm(model.tangent_kernel(X) - K0) / np.linalg.norm(K0)
    assert _regimes.conserved_kernel_distance(X, alpha, beta) == pytest.approx(expected, rel=1e-10)
