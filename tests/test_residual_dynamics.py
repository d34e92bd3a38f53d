"""Residual dynamics, the tangent kernel K_mu, the linearized model and the lazy regime (SPEC 4)."""
import numpy as np
import pytest
import scipy.linalg

import mfntk as mf
import reference as ref
from mfntk import _core
from conftest import close


def problem(seed=0, n=40, d=4, k=1, loss="squared"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "logistic":
        return X, np.sign(X[:, :1] + 0.3)
    return X, np.tanh(2 * X[:, :k]) + 0.1 * rng.standard_normal((n, k))


def slope(x, y):
    return np.polyfit(np.log(x), np.log(y), 1)[0]


@pytest.mark.parametrize("kind", ["rf", "nt", "ntk"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("k", [1, 3])
def test_empirical_kernel_against_numpy(kind, bias, k):
    net = mf.TwoLayer(4, 300, activation="tanh", bias=bias, b_std=0.5, outputs=k, seed=1)
    X, _ = problem(n=70)
    X2 = problem(seed=1, n=33)[0]
    args = (net.activation, net.c0, net.a, net.W, net.b)
    K = _core.empirical_gram(*args, X, None, kind, 2)
    close(K, ref.ntk(ref.as_tuple(net), X, kind=kind), np.float64)
    np.testing.assert_array_equal(K, K.T)
    assert np.linalg.eigvalsh(K).min() > -1e-12 * np.abs(K).max()
    close(_core.empirical_gram(*args, X, X2, kind, 2), ref.ntk(ref.as_tuple(net), X, X2, kind=kind), np.float64)
    V = np.random.default_rng(2).standard_normal((70, 2))
    close(_core.empirical_matvec(*args, X, V, kind, 2), K @ V, np.float64, scale=np.abs(K @ V).max())


def test_residual_dynamics_is_the_tangent_kernel_flow():
    """At any state, the residual block of the field is du/dt = -(1/n) K_theta u (squared loss)."""
    X, Y = problem()
    net = mf.TwoLayer(4, 200, activation="tanh", bias=True, b_std=0.3, scaling=2.0, seed=3)
    sim = mf.Simulation(net, (X, Y), t_max=1.0, dt=0.1, residual_dynamics=True)
    u = np.random.default_rng(5).standard_normal((40, 1))
    state = sim.state.copy()
    off = sim.layout["residual"]
    state[off:off + 40] = (Y - u).ravel()   # any g: the field must use its own residual u = y - g
    dg = sim.engine.field(state)[off:off + 40].reshape(40, 1)
    K = ref.ntk(ref.as_tuple(net), X)
    close(-dg, -(K @ u) / 40, np.float64, scale=np.abs(K @ u).max() / 40)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("method,order", [("euler", 1), ("rk4", 4)])
def test_rd_residual_tracks_y_minus_f_at_integrator_order(method, order, loss):
    X, Y = problem(loss=loss)
    net = mf.TwoLayer(4, 128, activation="tanh", bias=True, b_std=0.5, symmetric=True, seed=2)
    errors = []
    dts = [0.1, 0.05] if order == 4 else [0.02, 0.01]
    for dt in dts:
        traj = mf.simulate(net, (X, Y), t_max=2.0, dt=dt, method=method, loss=loss, weight_decay=0.05,
                           residual_dynamics=True, record_every=0.5, progress=False)
        assert traj.rd_residual.shape == (len(traj.t), 40, 1)
        F = traj.net.predict(X)
        expected = Y - F if loss == "squared" else Y / (1 + np.exp(Y * F))
        np.testing.assert_allclose(traj.rd_residual[0], Y if loss == "squared" else Y / 2, rtol=0, atol=1e-15)
        errors.append(np.abs(traj.rd_residual[-1] - expected).max())
    observed = np.log2(errors[0] / errors[1])
    assert abs(observed - order) < 0.3 * order, f"errors {errors}: order {observed:.2f}"
    assert errors[1] < (1e-3 if order == 1 else 1e-7)


def test_linearized_model_follows_frozen_kernel_closed_form():
    """The tangent model trained by the flow is u_t = exp(-t K0 / n) u_0 on the training set."""
    X, Y = problem()
    net = mf.TwoLayer(4, 256, activation="erf", scaling="ntk", seed=4)
    t = 3.0
    traj = mf.simulate(net, (X, Y), t_max=t, dt=0.05, method="rk4", linearized=True, record_every=t,
                       progress=False)
    K0 = ref.ntk(ref.as_tuple(net), X)
    u0 = Y - net.predict(X)
    expected = Y - scipy.linalg.expm(-t * K0 / 40) @ u0
    close(traj.linearized_predict(X), expected, np.float64, scale=1e3)  # rk4 at dt = 0.05: ~1e-9
    d = traj.linearized_distance
    assert d[0] == 0.0 and 0 < d[-1] < 0.05


def test_lazy_regime_rates_in_width():
    """NTK scaling (alpha = sqrt N), fixed t: |theta_t - theta_0| / |theta_0| ~ N^-1/2 since each particle
    moves O(1/alpha); |K_t - K_0| / |K_0| ~ N^-1, because the first-order change of K is an average over
    particles of terms odd in a_j (symmetric law), which cancels, leaving the O(|d theta|^2) = O(1/N)
    second-order terms. In the mean-field scaling both stay O(1)."""
    X, Y = problem(n=48, d=5)
    Ns = [1024, 4096, 16384]  # below ~1000 the O(N^-3/2) terms still steepen the kernel-distance slope
    disp, kd, mf_disp, mf_kd = [], [], [], []
    for N in Ns:
        for scaling, out_d, out_k in [("ntk", disp, kd), ("mf", mf_disp, mf_kd)]:
            runs = [mf.simulate(mf.TwoLayer(5, N, activation="tanh", scaling=scaling, symmetric=True, seed=seed),
                                (X, Y), t_max=1.0, dt=0.1, diagnostics=True, record_every=1.0, progress=False)
                    for seed in (0, 1)]
            out_d.append(np.mean([r.displacement[-1] for r in runs]))
            out_k.append(np.mean([r.kernel_distance[-1] for r in runs]))
    assert slope(Ns, disp) == pytest.approx(-0.5, abs=0.1)
    assert slope(Ns, kd) == pytest.approx(-1.0, abs=0.2)
    assert max(mf_disp) / min(mf_disp) < 1.2 and min(mf_disp) > 0.1
    assert max(mf_kd) / min(mf_kd) < 1.3 and min(mf_kd) > 0.05


def test_linearization_distance_rates_in_alpha():
    """Chizat-Oyallon-Bach distance at fixed t: each particle moves O(1/alpha), so the Taylor remainder of
    f = (alpha/N) sum a sigma is alpha O(1/alpha^2) = O(1/alpha) (the theorem's bound). With symmetric pairs
    (a, w), (-a, w) the pair's second-order terms cancel (d a equal, d w opposite), leaving third-order
    terms: O(1/alpha^2). With i.i.d. a the second-order terms also average out over particles up to an
    O(N^-1/2) fluctuation, so the decay is at least 1/alpha (steeper at moderate alpha)."""
    X, Y = problem(n=48, d=5)
    alphas = [4.0, 16.0, 64.0]
    sym = [mf.simulate(mf.TwoLayer(5, 512, activation="tanh", scaling=a, symmetric=True), (X, Y), t_max=1.0,
                       dt=0.05, linearized=True, record_every=1.0, progress=False).linearized_distance[-1]
           for a in alphas]
    assert slope(alphas, sym) == pytest.approx(-2.0, abs=0.2)
    alphas = [1.0, 2.0, 4.0, 8.0]  # N large enough that the random f_0 ~ alpha / sqrt(N) stays small
    iid = [mf.simulate(mf.TwoLayer(5, 4096, activation="tanh", scaling=a), (X, Y), t_max=1.0, dt=0.05,
                       linearized=True, record_every=1.0, progress=False).linearized_distance[-1] for a in alphas]
    assert slope(alphas, iid) < -0.9


def test_diagnostics_are_consistent():
    X, Y = problem()
    net = mf.TwoLayer(4, 128, activation="relu", bias=True, b_std=0.2, seed=0)
    traj = mf.simulate(net, (X, Y), t_max=2.0, dt=0.05, diagnostics=True, record_every=0.5, progress=False)
    assert traj.displacement[0] == 0 and traj.kernel_distance[0] == 0
    assert np.all(traj.displacement[1:] > 0)
    theta, theta0 = traj.net.get_flat(), net.get_flat()
    assert traj.displacement[-1] == pytest.approx(np.linalg.norm(theta - theta0) / np.linalg.norm(theta0))
    assert traj.displacement_a[-1] == pytest.approx(np.linalg.norm(traj.net.a - net.a) / np.linalg.norm(net.a))
    K0, K = ref.ntk(ref.as_tuple(net), X), ref.ntk(ref.as_tuple(traj.net), X)
    assert traj.kernel_distance[-1] == pytest.approx(np.linalg.norm(K - K0) / np.linalg.norm(K0), rel=1e-9)
    assert traj.alignment[-1] == pytest.approx((Y.T @ K @ Y).item() / (np.linalg.norm(K) * (Y.T @ Y).item()), rel=1e-9)
    risks = traj.train_risk
    np.testing.assert_allclose(traj.objective_change[1:], (risks[:-1] - risks[1:]) / risks[:-1], rtol=1e-12)
    assert np.all(traj.tangent_change[1:] > 0)


def test_ntk_limit_closed_form():
    X, Y = problem(n=30)
    X2 = problem(seed=9, n=11)[0]
    net = mf.TwoLayer(4, 512, activation="erf", bias=True, b_std=0.5, scaling="ntk", seed=6)
    limit = mf.NTKLimit(net, X, Y)
    f0 = net.predict(X2)
    np.testing.assert_allclose(limit.predict(X2, t=0.0), f0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(limit.predict(X, t=np.inf), Y, atol=1e-8)  # ridgeless interpolation
    np.testing.assert_allclose(limit.residual(2.0), Y - limit.predict(X, t=2.0), atol=1e-12)
    assert limit.residual(1e6).max() < 1e-8 and limit.n_clipped >= 0
    # exactly the dynamics the linearized model follows under simulate
    t = 2.0
    traj = mf.simulate(net, (X, Y), t_max=t, dt=0.05, linearized=True, record_every=t, progress=False)
    np.testing.assert_allclose(traj.linearized_predict(X2), limit.predict(X2, t=t), atol=1e-8)
    vec = mf.NTKLimit(net, X, Y[:, 0]).predict(X2, t=t)
    assert vec.shape == (11,) and np.allclose(vec, limit.predict(X2, t=t)[:, 0])


def test_wide_network_in_ntk_scaling_follows_its_ntk_limit():
    X, Y = problem(n=30)
    X2 = problem(seed=9, n=50)[0]
    gaps = []
    for N in (256, 4096):
        net = mf.TwoLayer(4, N, activation="tanh", scaling="ntk", symmetric=True, seed=1)
        traj = mf.simulate(net, (X, Y), t_max=3.0, dt=0.1, record_every=3.0, progress=False)
        expected = mf.NTKLimit(net, X, Y).predict(X2, t=3.0)
        gaps.append(np.linalg.norm(traj.net.predict(X2) - expected) / np.linalg.norm(expected))
    assert gaps[1] < 0.01 and gaps[1] < gaps[0] / 4  # O(1/alpha) = O(N^-1/2) or faster


def test_ntk_limit_rejects_bad_input():
    net = mf.TwoLayer(4, 16)
    X, Y = problem(n=10)
    with pytest.raises(TypeError, match="net"):
        mf.NTKLimit("net", X, Y)
    with pytest.raises(ValueError, match="Y: has 9 rows but X has 10"):
        mf.NTKLimit(net, X, Y[:9])
    with pytest.raises(ValueError, match="X2: expected 4 columns"):
        mf.NTKLimit(net, X, Y).predict(np.ones((2, 3)))


def test_tangent_change_against_explicit_jacobians():
    """Delta(D phi) = |J_1 - J_0|_F / |J_0|_F with the Jacobians of f formed entry by entry in numpy."""
    from mfntk import _diagnostics

    X, Y = problem(n=12, d=3)
    net0 = mf.TwoLayer(3, 20, activation="tanh", bias=True, b_std=0.4, outputs=2, seed=2)
    net1 = mf.simulate(net0, (X, np.hstack([Y, -Y])), t_max=1.0, dt=0.1, progress=False).net

    def jacobian(net):  # (n k, N (k + d + 1)): d f_p(x_i) / d (a_j, w_j, b_j)
        Z = X @ net.W.T + net.b
        S, D = np.tanh(Z), 1 - np.tanh(Z) ** 2
        rows = []
        for i in range(X.shape[0]):
            for p in range(2):
                da = np.zeros((20, 2))
                da[:, p] = S[i]
                dw = (net.a[:, p] * D[i])[:, None] * X[i]
                db = net.a[:, p] * D[i]
                rows.append(np.concatenate([da.ravel(), dw.ravel(), db]))
        return np.array(rows)

    J0, J1 = jacobian(net0), jacobian(net1)
    expected = np.linalg.norm(J1 - J0) / np.linalg.norm(J0)
    got = _diagnostics.tangent_change(net0, (net0.a, net0.W, net0.b), (net1.a, net1.W, net1.b), X)
    assert got == pytest.approx(expected, rel=1e-12)
    assert expected > 1e-3


def test_simulation_field_and_advance_match_the_one_call_forms():
    X, Y = problem()
    net = mf.TwoLayer(4, 300, activation="relu", bias=True, b_std=0.3, seed=5)
    sim = mf.Simulation(net, (X, Y), t_max=1.0, dt=0.1, method="heun")
    for got, expected in zip(sim.field(), mf.dd_field(net, X, Y)):
        np.testing.assert_array_equal(got, expected)   # cached and uncached passes: bit-identical
    assert sim.advance(10) == 10 and sim.step == 10
    full = mf.simulate(net, (X, Y), t_max=1.0, dt=0.1, method="heun", progress=False)
    np.testing.assert_array_equal(sim.state[:net.n_params], full.net.get_flat())
    with pytest.raises(ValueError, match="steps"):
        sim.advance(0)
