"""Networks with k > 1 outputs: the matrix-valued tangent kernel (SPEC 4), its per-output mean,
their infinite-width limit, the frozen-kernel (NTK-limit) dynamics and the diagnostics.

References: explicit numpy Jacobians (tests/reference.py), the linearized model integrated by
the core's dynamics (``simulate(linearized=True)``), the analytic kernel, the kernel-target
alignment formula of Cristianini et al.
"""
import math

import numpy as np
import pytest

import mfntk as mf
import reference as ref
from conftest import close
from mfntk import _diagnostics

SLOPE_RANGE = (-0.65, -0.35)  # fitted slope of log error against log N (theory: -1/2)
RK4_GAP = 1e-7                # NTKLimit against the rk4-integrated linearized model at dt = 0.05 (measured ~1e-8)


def problem(n=30, d=5, k=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.tanh(X @ rng.standard_normal((d, k))) + 0.1 * rng.standard_normal((n, k))


def blocks(K, n1, k, n2=None):
    """(n1 k, n2 k) -> (n1, k, n2, k): blocks[i, p, l, q] = K_pq(x_i, x'_l)."""
    return K.reshape(n1, k, n1 if n2 is None else n2, k)


# ---------------------------------------------------------------------------------------------
# the matrix kernel against explicit Jacobians
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_matrix_kernel_is_the_jacobian_gram(k, bias, dtype):
    d, n1, n2 = 4, 23, 9
    net = mf.TwoLayer(d, 300, activation="tanh", outputs=k, bias=bias, b_std=0.4 if bias else 0.0, seed=2,
                      dtype=np.dtype(dtype).name)
    X, _ = problem(n1, d, seed=3)
    X2, _ = problem(n2, d, seed=4)
    X, X2 = X.astype(dtype), X2.astype(dtype)
    theta = ref.as_tuple(net)
    for kind in ("rf", "nt", "ntk"):
        want = ref.matrix_ntk(theta, X.astype(np.float64), kind=kind)
        K = mf.kernels.empirical(net, X, kind=kind, output="matrix")
        assert K.shape == (n1 * k, n1 * k) and K.dtype == dtype
        close(K, want, dtype)
        np.testing.assert_array_equal(K, K.T)
        want2 = ref.matrix_ntk(theta, X.astype(np.float64), X2.astype(np.float64), kind=kind)
        close(mf.kernels.empirical(net, X, X2, kind=kind, output="matrix"), want2, dtype)
        # the mean over outputs is (1/k) sum_p K_pp
        mean = np.einsum("ipjp->ij", blocks(want2, n1, k, n2)) / k
        close(mf.kernels.empirical(net, X, X2, kind=kind), mean, dtype)
        if k == 1:  # one output: both forms are the scalar kernel, the same numbers
            np.testing.assert_array_equal(K, mf.kernels.empirical(net, X, kind=kind))


def test_matrix_kernel_is_positive_semidefinite_and_its_blocks_symmetric():
    k, n = 3, 20
    net = mf.TwoLayer(4, 200, activation="relu", outputs=k, bias=True, seed=5)
    X, _ = problem(n, 4, seed=6)
    K = mf.kernels.empirical(net, X, output="matrix")
    assert np.linalg.eigvalsh(K).min() > -1e-12 * np.abs(K).max()
    B = blocks(K, n, k)
    np.testing.assert_allclose(B, B.transpose(0, 3, 2, 1), rtol=0, atol=1e-14)  # K_pq(x, x') = K_qp(x, x')
    rf = mf.kernels.empirical(net, X, kind="rf", output="matrix")
    np.testing.assert_array_equal(blocks(rf, n, k)[:, 0, :, 1], 0.0)  # the second-layer part is diagonal in p, q


def test_matrix_products_and_thread_count():
    """Matrix-free products K V = (1/N) J (J^T V) against the Gram matrix; sizes spanning several
    tiles of samples, particles and output blocks; one thread gives the same bits as two."""
    k, d = 3, 6
    net = mf.TwoLayer(d, 700, activation="softplus", outputs=k, bias=True, b_std=0.3, seed=7)
    X, _ = problem(300, d, seed=8)
    X2, _ = problem(40, d, seed=9)
    V = np.random.default_rng(10).standard_normal((300 * k, 2))
    for kind in ("rf", "nt", "ntk"):
        one = mf.kernels.Empirical(net, kind=kind, output="matrix", threads=1)
        two = mf.kernels.Empirical(net, kind=kind, output="matrix", threads=2)
        K = one(X)
        np.testing.assert_array_equal(K, two(X))
        np.testing.assert_array_equal(one(X2, X), two(X2, X))
        KV = one.matvec(X, V)
        np.testing.assert_array_equal(KV, two.matvec(X, V))
        close(KV, K @ V, np.float64, scale=np.abs(K @ V).max())
        close(one.matvec(X, V[:, 0]), K @ V[:, 0], np.float64, scale=np.abs(K @ V).max())
        cross = one.cross_matvec(X2, X, V)
        assert cross.shape == (40 * k, 2)
        np.testing.assert_array_equal(cross, two.cross_matvec(X2, X, V))
        close(cross, one(X2, X) @ V, np.float64, scale=np.abs(cross).max())
    with pytest.raises(ValueError, match=r"V: expected 900 rows \(one per point of X and output, 300 x 3\)"):
        one.matvec(X, V[:300])
    assert one.get_params()["output"] == "matrix"
    assert one.set_params(output="mean")(X).shape == (300, 300)


# ---------------------------------------------------------------------------------------------
# infinite width
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation,bias", [("relu", False), ("tanh", True)])
def test_multi_output_kernel_converges_to_the_per_output_analytic_kernel(activation, bias):
    """K_pq -> delta_pq K_ntk (E a_p^2 = a_std^2, no factor k), at rate N^-1/2, for the matrix
    kernel and for its mean over outputs."""
    d, n, k = 5, 12, 3
    X = problem(n, d, seed=7)[0]
    widths = [256, 1024, 4096, 16384]
    err_matrix, err_mean = [], []
    target = None
    for N in widths:
        em, en = [], []
        for seed in range(4):
            net = mf.TwoLayer(d, N, activation=activation, outputs=k, a_std=0.8, bias=bias,
                              b_std=0.5 if bias else 0.0, seed=seed)
            if target is None:
                target = mf.kernels.Analytic.from_network(net, kind="ntk")(X)
                full = np.kron(target, np.eye(k))  # entry (i k + p, l k + q) = delta_pq K(x_i, x_l)
            K = mf.kernels.empirical(net, X, output="matrix")
            em.append(np.linalg.norm(K - full) / np.linalg.norm(full))
            en.append(np.linalg.norm(mf.kernels.empirical(net, X) - target) / np.linalg.norm(target))
        err_matrix.append(np.mean(em))
        err_mean.append(np.mean(en))
    for errors in (err_matrix, err_mean):
        slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
        assert SLOPE_RANGE[0] < slope < SLOPE_RANGE[1], (slope, errors)
    assert err_mean[-1] < 0.02 and err_matrix[-1] < 0.05


# ---------------------------------------------------------------------------------------------
# the NTK limit is the flow of the linearized model, for any k
# ---------------------------------------------------------------------------------------------
def ntk_limit_gap(net, X, Y, X2, t, dt):
    """max over X, X2 of |NTKLimit - linearized model| / |linearized model|, and the residual's gap."""
    traj = mf.simulate(net, (X, Y), t_max=t, dt=dt, method="rk4", linearized=True, record_every=t,
                       progress=False)
    limit = mf.NTKLimit(net, X, Y)
    gaps = []
    for Z in (X, X2):
        fbar = traj.linearized_predict(Z)
        gaps.append(np.linalg.norm(limit.predict(Z, t=t) - fbar) / np.linalg.norm(fbar))
    res = np.abs(limit.residual(t) - (Y - traj.linearized_predict(X))).max() / np.abs(Y).max()
    return max(gaps), res


@pytest.mark.parametrize("k", [1, 3, 10])
def test_ntk_limit_is_the_linearized_model_for_k_outputs(k):
    X, Y = problem(30, 5, k=k, seed=11)
    X2 = problem(7, 5, seed=12)[0]
    net = mf.TwoLayer(5, 256, activation="relu", scaling="ntk", outputs=k, bias=True, b_std=0.3, seed=1)
    coarse, _ = ntk_limit_gap(net, X, Y, X2, t=3.0, dt=0.1)
    fine, res = ntk_limit_gap(net, X, Y, X2, t=3.0, dt=0.05)
    assert fine < RK4_GAP and res < RK4_GAP
    assert coarse / fine > 8  # the gap is the integrator's error, of order 4
    limit = mf.NTKLimit(net, X, Y)
    assert limit.K0.shape == (30 * k, 30 * k) and limit.coef(1.0).shape == (30, k)


@pytest.mark.slow
def test_ntk_limit_is_the_linearized_model_on_digits():
    """The measurement of the report: 200 digits, k = 10, ReLU, NTK scaling, N = 4096, t = 5."""
    data = mf.datasets.digits(seed=0)
    X, Y = np.ascontiguousarray(data.X[:200]), np.ascontiguousarray(data.y[:200])
    net = mf.TwoLayer(X.shape[1], 4096, activation="relu", scaling="ntk", outputs=10, seed=0)
    gap, res = ntk_limit_gap(net, X, Y, np.ascontiguousarray(data.X_test[:50]), t=5.0, dt=0.05)
    assert gap < 1e-6 and res < 1e-6


# ---------------------------------------------------------------------------------------------
# residual dynamics and diagnostics
# ---------------------------------------------------------------------------------------------
def test_residual_dynamics_for_k_outputs_tracks_y_minus_f():
    """The core integrates the residual dynamics with the matrix kernel: g stays f(theta_t)."""
    X, Y = problem(40, 4, k=3, seed=13)
    net = mf.TwoLayer(4, 128, activation="tanh", outputs=3, bias=True, b_std=0.5, seed=2)
    errors = []
    for dt in (0.1, 0.05):
        traj = mf.simulate(net, (X, Y), t_max=2.0, dt=dt, method="rk4", weight_decay=0.05, residual_dynamics=True,
                           record_every=1.0, progress=False)
        assert traj.rd_residual.shape == (3, 40, 3)
        errors.append(np.abs(traj.rd_residual[-1] - (Y - traj.net.predict(X))).max())
    assert errors[1] < 1e-6 and errors[0] / errors[1] > 8, errors  # rk4: order 4 (measured ratio 15)


def test_alignment_is_cristianini_for_k_outputs():
    rng = np.random.default_rng(14)
    Y = rng.standard_normal((15, 3))
    A = rng.standard_normal((15, 15))
    K = A @ A.T
    want = np.sum(K * (Y @ Y.T)) / (np.linalg.norm(K) * np.linalg.norm(Y @ Y.T))
    assert _diagnostics.alignment(K, Y) == pytest.approx(want, rel=1e-13)
    assert _diagnostics.alignment(Y @ Y.T, Y) == pytest.approx(1.0, rel=1e-13)  # a kernel aligned with its target
    y = Y[:, :1]
    assert _diagnostics.alignment(K, y) == np.sum(y * (K @ y)) / (np.linalg.norm(K) * np.sum(y * y))  # k = 1


def test_diagnostics_of_a_multi_output_run():
    X, Y = problem(40, 4, k=2, seed=15)
    net = mf.TwoLayer(4, 64, activation="tanh", outputs=2, seed=3)
    traj = mf.simulate(net, (X, Y), t_max=1.0, dt=0.1, diagnostics=True, record_every=0.5, progress=False)
    K0, K = ref.ntk(ref.as_tuple(net), X), ref.ntk(ref.as_tuple(traj.net), X)  # mean over outputs
    assert traj.kernel_distance[-1] == pytest.approx(np.linalg.norm(K - K0) / np.linalg.norm(K0), rel=1e-9)
    want = np.sum(K * (Y @ Y.T)) / (np.linalg.norm(K) * np.linalg.norm(Y @ Y.T))
    assert traj.alignment[-1] == pytest.approx(want, rel=1e-9)
    assert 0 < traj.alignment[-1] <= 1


def test_from_network_has_no_factor_k():
    net = mf.TwoLayer(3, 8, outputs=4, a_std=0.6)
    assert mf.kernels.Analytic.from_network(net).a_std == 0.6
    assert math.isclose(mf.kernels.Empirical(net, output="matrix").analytic().a_std, 0.6)
