"""The trained output bias (TwoLayer(output_bias=True)) and the centred model
(simulate(centered=True)): the field against numpy, the residual dynamics, the linearized model
and the NTK limit consistent with them for every number of outputs, the lazy-training rate of
the centred model, the kernels, files and resume."""
import numpy as np
import pytest

import mfntk as mf

from reference import as_tuple, field as ref_field, forward as ref_forward, matrix_ntk, ntk as ref_ntk, residual


def _data(n=30, d=4, k=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = np.sin(X[:, :k] + 0.3) + 0.5          # not centred: an output bias has work to do
    return X, Y


def _net(k=1, output_bias=True, **kw):
    kw = {"activation": "tanh", "scaling": "ntk", "bias": True, "b_std": 0.5, "seed": 3, **kw}
    return mf.TwoLayer(4, 32, outputs=k, output_bias=output_bias, **kw)


def _euler_reference(net, X, Y, dt, steps, loss="squared", centered=False):
    """Euler steps of the particles and the output bias written out in numpy: d theta/dt as in
    SPEC 3 with r on the model f + c (- f_0 when centred), dc/dt = (1/n) sum_i r_i."""
    act, c0, alpha, a, W, b = as_tuple(net)
    c = np.zeros(a.shape[1])
    offset = ref_forward((act, c0, alpha, a, W, b), X) if centered else 0.0
    for _ in range(steps):
        theta = (act, c0, alpha, a, W, b)
        R = residual(loss, ref_forward(theta, X) + c - offset, Y)
        # the reference field evaluates r at f; shift Y so that its r equals ours (squared loss)
        dA, dW, db = ref_field(theta, X, Y - c + offset, loss)
        dc = R.mean(axis=0)
        a, W, b, c = a + dt * dA, W + dt * dW, b + dt * db, c + dt * dc
    return a, W, b, c


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("centered", [False, True])
def test_euler_steps_match_numpy(k, centered):
    X, Y = _data(k=k)
    net = _net(k)
    traj = mf.simulate(net, (X, Y), t_max=0.3, dt=0.1, method="euler", centered=centered, progress=False,
                       record_every=0.1)
    a, W, b, c = _euler_reference(net, X, Y, 0.1, 3, centered=centered)
    np.testing.assert_allclose(traj.net.a, a, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(traj.net.W, W, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(traj.net.b, b, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(traj.net.c, c, rtol=1e-12, atol=1e-13)
    assert np.abs(c).min() > 1e-3   # the bias moved


def test_first_step_moves_the_bias_by_the_mean_residual_and_nothing_else():
    X, Y = _data(k=2)
    with_bias = mf.simulate(_net(2), (X, Y), t_max=0.05, dt=0.05, method="euler", progress=False)
    without = mf.simulate(_net(2, output_bias=False), (X, Y), t_max=0.05, dt=0.05, method="euler", progress=False)
    f0 = _net(2, output_bias=False).predict(X)
    np.testing.assert_array_equal(with_bias.net.a, without.net.a)
    np.testing.assert_array_equal(with_bias.net.W, without.net.W)
    np.testing.assert_allclose(with_bias.net.c, 0.05 * (Y - f0).mean(axis=0), rtol=1e-13)


def test_logistic_loss_with_output_bias_matches_numpy():
    X, _ = _data()
    Y = np.where(X[:, :1] > 0.2, 1.0, -1.0)
    net = _net(1)
    traj = mf.simulate(net, (X, Y), t_max=0.2, dt=0.1, method="euler", loss="logistic", progress=False)
    act, c0, alpha, a, W, b = as_tuple(net)
    c = np.zeros(1)
    for _ in range(2):
        theta = (act, c0, alpha, a, W, b)
        F = ref_forward(theta, X) + c
        R = residual("logistic", F, Y)
        Z = X @ W.T + b
        from reference import dsigma, sigma
        S, D = sigma(act, Z), dsigma(act, Z)
        G = D * (R @ a.T)
        n = X.shape[0]
        a, W, b, c = (a + 0.1 * S.T @ R / (alpha * n), W + 0.1 * G.T @ X / (alpha * n),
                      b + 0.1 * G.sum(0) / (alpha * n), c + 0.1 * R.mean(0))
    np.testing.assert_allclose(traj.net.c, c, rtol=1e-12)
    np.testing.assert_allclose(traj.net.W, W, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("output_bias,centered", [(True, False), (False, True), (True, True)])
def test_residual_dynamics_and_linearized_model_are_consistent(k, output_bias, centered):
    X, Y = _data(k=k)
    net = _net(k, output_bias=output_bias)
    traj = mf.simulate(net, (X, Y), t_max=1.0, dt=0.02, residual_dynamics=True, linearized=True,
                       centered=centered, progress=False)
    F = traj.predict(X)
    # RD residual = y - f of the model trained (f + c, minus f_0 when centred), to the integrator's accuracy
    np.testing.assert_allclose(traj.rd_residual[-1], Y - F, atol=1e-8)
    # the linearized model is the frozen-kernel flow: NTKLimit with the bias's constant kernel
    limit = mf.NTKLimit(net, X, Y, centered=centered)
    X_new = _data(n=7, k=k, seed=5)[0]
    np.testing.assert_allclose(traj.linearized_predict(X_new), limit.predict(X_new, t=1.0).reshape(7, k), atol=1e-7)
    if centered:
        assert traj.train_risk[0] == pytest.approx(0.5 * np.mean(np.sum(Y ** 2, axis=1)), rel=1e-14)


def test_centered_minibatches_are_the_shifted_targets():
    """For the squared loss, training F = f - f_0 on y is training f on y + f_0(x): the same
    particles on the same minibatches (to rounding)."""
    X, Y = _data(n=40)
    net = _net(1, output_bias=False)
    f0 = net.predict(X)
    centred = mf.simulate(net, (X, Y), t_max=0.5, dt=0.05, batch=8, centered=True, progress=False)
    shifted = mf.simulate(net, (X, Y + f0), t_max=0.5, dt=0.05, batch=8, progress=False)
    np.testing.assert_allclose(centred.net.get_flat(), shifted.net.get_flat(), rtol=1e-12, atol=1e-13)


def test_centered_online_samples_use_the_initial_network_on_each_sample():
    rng = np.random.default_rng(1)
    X, Y = _data(n=20)
    net = _net(1, output_bias=False)
    teacher = lambda Z: np.sin(Z[:, :1] + 0.3) + 0.5  # noqa: E731

    def sampler(r, m):
        Z = r.standard_normal((m, 4))
        return Z, teacher(Z)

    def shifted_sampler(r, m):
        Z, y = sampler(r, m)
        return Z, y + net.predict(Z)

    data = mf.datasets.Dataset(X, Y, sampler=sampler)
    shifted = mf.datasets.Dataset(X, Y + net.predict(X), sampler=shifted_sampler)
    a = mf.simulate(net, data, t_max=0.3, dt=0.05, batch=16, centered=True, progress=False)
    b = mf.simulate(net, shifted, t_max=0.3, dt=0.05, batch=16, progress=False)
    np.testing.assert_allclose(a.net.get_flat(), b.net.get_flat(), rtol=1e-12, atol=1e-13)
    del rng


def test_centered_model_reaches_the_generic_lazy_rate():
    """Chizat-Oyallon-Bach: with centring, the distance to the linearized model decays as 1/alpha
    for any initialisation (here non-symmetric, where the uncentred model does not converge)."""
    X, Y = _data(n=30, k=1)
    Y = Y - 0.5
    dist = []
    for alpha in (8.0, 16.0, 32.0):
        net = mf.TwoLayer(4, 128, activation="tanh", scaling=alpha, seed=1)
        tr = mf.simulate(net, (X, Y), t_max=1.0, dt=0.05, linearized=True, centered=True, progress=False)
        dist.append(tr.linearized_distance[-1])
    slope = np.polyfit(np.log([8.0, 16.0, 32.0]), np.log(dist), 1)[0]
    assert -1.15 < slope < -0.85


@pytest.mark.parametrize("k", [1, 3])
def test_empirical_kernel_of_a_network_with_output_bias(k):
    X, _ = _data(n=9, k=k)
    X2 = _data(n=5, k=k, seed=2)[0]
    net = _net(k)
    bare = _net(k, output_bias=False)
    for kind, plus in (("ntk", 1.0), ("rf", 1.0), ("nt", 0.0)):
        np.testing.assert_allclose(mf.kernels.empirical(net, X, X2, kind=kind),
                                   ref_ntk(as_tuple(bare), X, X2, kind=kind) + plus, rtol=1e-12, atol=1e-12)
        M = mf.kernels.empirical(net, X, X2, kind=kind, output="matrix")
        np.testing.assert_allclose(M, matrix_ntk(as_tuple(bare), X, X2, kind=kind) + plus * np.kron(
            np.ones((9, 5)), np.eye(k)), rtol=1e-12, atol=1e-12)
        for output in ("mean", "matrix"):
            kern = mf.kernels.Empirical(net, kind=kind, output=output)
            rows = 9 * (k if output == "matrix" else 1)
            V = np.random.default_rng(0).standard_normal((rows, 2))
            np.testing.assert_allclose(kern.matvec(X, V), kern(X) @ V, atol=1e-11)
            np.testing.assert_allclose(kern.cross_matvec(X2, X, V), kern(X2, X) @ V, atol=1e-11)


def test_network_with_output_bias_predicts_and_round_trips():
    net = _net(2)
    X, _ = _data(n=6, k=2)
    base = net.predict(X)
    theta = net.get_flat()
    assert theta.shape == (net.n_params,) and net.n_params == 32 * (2 + 4 + 1) + 2
    theta[-2:] = [1.5, -2.0]
    net.set_flat(theta)
    np.testing.assert_allclose(net.predict(X), base + [1.5, -2.0], rtol=1e-14)
    np.testing.assert_array_equal(net.copy().c, [1.5, -2.0])
    theta[-1] = np.nan
    with pytest.raises(ValueError, match="c block"):
        net.set_flat(theta)


def test_float32_run_with_output_bias_and_centring():
    X, Y = _data(k=2)
    net = _net(2, dtype="float32")
    t32 = mf.simulate(net, (X.astype(np.float32), Y.astype(np.float32)), t_max=0.5, dt=0.05, centered=True,
                      residual_dynamics=True, progress=False)
    t64 = mf.simulate(_net(2), (X, Y), t_max=0.5, dt=0.05, centered=True, residual_dynamics=True, progress=False)
    assert t32.net.c.dtype == np.float32
    np.testing.assert_allclose(t32.net.c, t64.net.c, atol=1e-5)
    np.testing.assert_allclose(t32.rd_residual[-1], t64.rd_residual[-1], atol=1e-4)


def test_resume_of_a_centred_run_with_output_bias_is_bit_identical(tmp_path):
    X, Y = _data(k=2)
    net = _net(2)
    full = mf.simulate(net, (X, Y), t_max=1.0, dt=0.05, centered=True, batch=10, progress=False)
    path = tmp_path / "run.h5"
    part = mf.simulate(net, (X, Y), t_max=0.5, dt=0.05, centered=True, batch=10, progress=False, out=str(path),
                       checkpoint_every=0.25)
    assert part.config["centered"] and part.net0.output_bias
    resumed = mf.resume(str(path), t_max=1.0, progress=False)
    np.testing.assert_array_equal(resumed.net.get_flat(), full.net.get_flat())
    np.testing.assert_array_equal(resumed.train_risk, full.train_risk)
    np.testing.assert_array_equal(resumed.predict(X), full.predict(X))


def test_analytic_kernel_of_a_network_with_output_bias_is_the_limit_of_the_empirical_one():
    X, _ = _data(n=6)
    kern = mf.kernels.Analytic.from_network(_net(1))
    assert kern.output_bias and "output_bias=True" in repr(kern)
    bare = mf.kernels.Analytic.from_network(_net(1, output_bias=False))
    np.testing.assert_allclose(kern(X), bare(X) + 1.0, rtol=1e-14)
    np.testing.assert_allclose(kern.diag(X), np.diag(bare(X)) + 1.0, rtol=1e-12)
    nt = mf.kernels.Analytic.from_network(_net(1), kind="nt")
    np.testing.assert_allclose(nt(X), mf.kernels.Analytic.from_network(_net(1, output_bias=False), kind="nt")(X))
    assert kern != bare and kern == mf.kernels.Analytic(**kern.get_params())
    # the constant enters the empirical kernel and its limit alike: their gap is the bare network's
    wide, wide_bare = _net(1), _net(1, output_bias=False)
    np.testing.assert_allclose(mf.kernels.empirical(wide, X) - kern(X),
                               mf.kernels.empirical(wide_bare, X) - bare(X), atol=1e-12)
