"""The particle engine (SPEC 1-3) against an independent numpy reference, finite
differences, gradient descent, integrator orders and determinism."""
import os
import signal

import numpy as np
import pytest

import mfntk as mf
import reference as ref
from conftest import close

ACTIVATIONS = list(mf._registry.ACTIVATIONS)  # every activation of the core (reference.py has each)
DTYPES = ["float64", "float32"]


def make_net(activation="tanh", k=1, bias=False, dtype="float64", N=300, d=5, scaling="mf", seed=3, **kw):
    return mf.TwoLayer(d, N, activation=activation, bias=bias, outputs=k, dtype=dtype, scaling=scaling,
                       b_std=0.5 if bias else 0.0, seed=seed, c0=0.3 if activation == "quadratic" else 0.0, **kw)


def make_data(rng, n=37, d=5, k=1, loss="squared"):
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, k)) if loss == "squared" else np.sign(rng.standard_normal((n, 1)))
    return X, Y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_matches_numpy(activation, k, bias, dtype, rng):
    net = make_net(activation, k, bias, dtype)
    X, _ = make_data(rng, k=k)
    F = net.predict(X.astype(dtype))
    assert F.shape == (37, k) and F.dtype == np.dtype(dtype)
    close(F, ref.forward(ref.as_tuple(net), X.astype(dtype).astype(np.float64)), dtype)


@pytest.mark.parametrize("scale", [1e-9, 1e-3, 0.19, 0.21, 3.0, 40.0])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_vectorised_activations_keep_relative_accuracy(activation, scale, rng):
    """The tile paths of tanh and sigmoid (polynomial / exp branches) against numpy, relative to
    the size of the output, across the branch point |u| = 0.2 and in the tails."""
    net = make_net(activation, 1, False, N=257, d=1)
    X = np.full((300, 1), scale) * rng.choice([-1.0, 1.0], (300, 1)) / np.abs(net.W).max()
    S = net.predict(X) * net.width  # alpha = 1: sum_j a_j sigma(w_j x)
    expected = ref.sigma(activation, X @ net.W.T) @ net.a
    assert np.abs(S - expected).max() <= 4e-15 * (np.abs(ref.sigma(activation, X @ net.W.T)) @ np.abs(net.a)).max()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("loss,k", [("squared", 1), ("squared", 2), ("logistic", 1)])  # logistic: one output
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_field_matches_numpy(activation, k, bias, loss, dtype, rng):
    net = make_net(activation, k, bias, dtype, scaling=2.5)
    X, Y = make_data(rng, k=k, loss=loss)
    dA, dW, db = mf.dd_field(net, X.astype(dtype), Y.astype(dtype), loss=loss, weight_decay=0.1)
    eA, eW, eb = ref.field(ref.as_tuple(net), X.astype(dtype).astype(np.float64), Y, loss=loss, weight_decay=0.1)
    close(dA, eA, dtype)
    close(dW, eW, dtype)
    if bias:
        close(db, eb, dtype)
    else:
        assert db is None


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("activation", ["tanh", "softplus", "quadratic"])
def test_field_is_scaled_minus_gradient_of_risk(activation, loss, rng):
    """d theta/dt = -(N / alpha^2) grad R_n(theta): the DD is gradient flow in mean-field time."""
    net = make_net(activation, 1, True, N=20, scaling=3.0)
    X, Y = make_data(rng, loss=loss)
    field = net.copy()
    field.set_flat(np.concatenate([x.ravel() for x in mf.dd_field(net, X, Y, loss=loss) if x is not None]))
    theta = net.get_flat()

    def risk_at(th):
        probe = net.copy()
        probe.set_flat(th)
        return ref.risk(loss, ref.forward(ref.as_tuple(probe), X), Y)

    h = 1e-6
    for i in rng.choice(theta.size, 25, replace=False):
        e = np.zeros_like(theta)
        e[i] = h
        grad = (risk_at(theta + e) - risk_at(theta - e)) / (2 * h)
        expected = -net.width / net.alpha ** 2 * grad
        assert field.get_flat()[i] == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_euler_is_gradient_descent(rng):
    """Explicit Euler with dt = eta alpha^2 / N is plain gradient descent with step eta."""
    net = make_net("tanh", 2, True, N=64, scaling="ntk")
    X, Y = make_data(rng, k=2)
    eta, steps = 0.3, 7
    dt = mf.euler_dt(net, eta)
    assert mf.learning_rate(net, dt) == pytest.approx(eta)
    traj = mf.simulate(net, (X, Y), t_max=steps * dt, dt=dt, method="euler", progress=False)
    assert traj.step[-1] == steps
    a, W, b = net.a.copy(), net.W.copy(), net.b.copy()
    for _ in range(steps):  # gradient of R_n by the chain rule, in numpy
        like = ("tanh", 0.0, net.alpha, a, W, b)
        Z = X @ W.T + b
        R = Y - ref.forward(like, X)
        G = (1 - np.tanh(Z) ** 2) * (R @ a.T)
        c = net.alpha / (net.width * X.shape[0])
        a, W, b = a + eta * c * np.tanh(Z).T @ R, W + eta * c * G.T @ X, b + eta * c * G.sum(0)
    close(traj.net.a, a, "float64")
    close(traj.net.W, W, "float64")
    close(traj.net.b, b, "float64")


@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_integrator_order(method, order, rng):
    net = make_net("tanh", 1, True, N=40, d=3)
    X, Y = make_data(rng, n=20, d=3)
    T = 1.0

    def final(dt, m):
        return mf.simulate(net, (X, Y), t_max=T, dt=dt, method=m, progress=False, record_every=T).net.get_flat()

    exact = final(T / 512, "rk4")
    dts = [T / 4, T / 8, T / 16] if order < 4 else [T / 2, T / 4, T / 8]
    errors = [np.abs(final(dt, method) - exact).max() for dt in dts]
    slopes = np.diff(np.log(errors)) / np.diff(np.log(dts))
    assert np.all(np.abs(slopes - order) < 0.25 * order), f"{method}: errors {errors}, slopes {slopes}"


def test_risk_non_increasing_along_gradient_flow(rng):
    net = make_net("relu", 1, True, N=128, d=5)
    X, Y = make_data(rng, n=64)
    traj = mf.simulate(net, (X, Y), t_max=10.0, dt=0.02, method="rk4", record_every=0.1, progress=False)
    risks = traj.train_risk
    assert risks[-1] < 0.8 * risks[0]
    assert np.all(np.diff(risks) <= 1e-12 * risks[:-1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_symmetric_initialisation_gives_exactly_zero(activation, dtype, rng):
    net = make_net(activation, 2, True, dtype, N=2 * 301, symmetric=True)
    np.testing.assert_array_equal(net.a[:301], -net.a[301:])
    X, _ = make_data(rng, n=300)
    assert np.all(net.predict(X.astype(dtype)) == 0.0)


def test_initialisation_laws():
    net = mf.TwoLayer(50, 20000, bias=True, b_std=0.7, a_std=2.0, seed=1)
    assert net.W.std() == pytest.approx(1 / np.sqrt(50), rel=0.01)
    assert net.a.std() == pytest.approx(2.0, rel=0.02)
    assert net.b.std() == pytest.approx(0.7, rel=0.02)
    rad = mf.TwoLayer(5, 1000, a_init="rademacher", a_std=0.5, seed=1)
    assert set(np.unique(rad.a)) == {-0.5, 0.5}
    assert np.array_equal(mf.TwoLayer(5, 10, seed=4).W, mf.TwoLayer(5, 10, seed=4).W)
    assert not np.array_equal(mf.TwoLayer(5, 10, seed=4).W, mf.TwoLayer(5, 10, seed=5).W)
    assert mf.TwoLayer(5, 100, scaling="ntk").alpha == 10.0


def _run(net, data, threads, **kw):
    return mf.simulate(net, data, progress=False, threads=threads, **kw)


@pytest.mark.parametrize("noise", [False, True])
def test_one_and_two_threads_bit_identical(noise, rng):
    net = make_net("relu", 2, True, N=700, d=6)
    X, Y = make_data(rng, n=600, d=6, k=2)
    kw = dict(t_max=0.2, dt=0.02, method="rk4")
    if noise:
        kw = dict(t_max=0.2, dt=0.02, method="euler", temperature=0.01, batch=100)
    one, two = _run(net, (X, Y), 1, **kw), _run(net, (X, Y), 2, **kw)
    np.testing.assert_array_equal(one.net.get_flat(), two.net.get_flat())
    np.testing.assert_array_equal(one.train_risk, two.train_risk)


# relu k = 2: the cache holds Z; k = 1: its signs; tanh and sigmoid: sigma(Z), sigma' from it
@pytest.mark.parametrize("activation,k", [("relu", 2), ("relu", 1), ("tanh", 2), ("tanh", 1), ("sigmoid", 1),
                                          ("erf", 1)])
def test_preactivation_cache_is_bit_identical(activation, k, rng):
    net = make_net(activation, k, True, N=300, d=6)
    X, Y = make_data(rng, n=520, d=6, k=k)
    kw = dict(t_max=0.3, dt=0.05, method="rk4", residual_dynamics=True, linearized=True)
    cached, recomputed = _run(net, (X, Y), 2, **kw), _run(net, (X, Y), 2, cache_mb=0, **kw)
    np.testing.assert_array_equal(cached.net.get_flat(), recomputed.net.get_flat())
    np.testing.assert_array_equal(cached.rd_residual, recomputed.rd_residual)


def test_noise_does_not_depend_on_chunking(rng):
    net = make_net("tanh", 1, False, N=50)
    X, Y = make_data(rng)
    kw = dict(t_max=0.3, dt=0.01, method="euler", temperature=0.05)
    a = _run(net, (X, Y), 1, record_every=0.01, **kw)
    b = _run(net, (X, Y), 1, record_every=0.1, **kw)
    np.testing.assert_array_equal(a.net.get_flat(), b.net.get_flat())
    c = _run(net, (X, Y), 1, record_every=0.1, seed=1, **kw)
    assert not np.array_equal(a.net.get_flat(), c.net.get_flat())
    # the noise is a centred Gaussian of variance 2 tau dt per step
    incr = _run(net, (X, Y), 1, t_max=0.01, dt=0.01, method="euler", temperature=0.5).net.get_flat()
    drift = _run(net, (X, Y), 1, t_max=0.01, dt=0.01, method="euler").net.get_flat()
    xi = (incr - drift) / np.sqrt(2 * 0.5 * 0.01)
    assert abs(xi.mean()) < 4 / np.sqrt(xi.size) and abs(xi.std() - 1) < 0.06


def test_online_sampling_is_seeded():
    data = mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(5, seed=2), d=5, n_train=50, seed=0)
    net = make_net("relu", 1, False, N=40)
    kw = dict(t_max=0.5, dt=0.05, method="euler", batch=16)
    a, b = _run(net, data, 1, seed=7, **kw), _run(net, data, 1, seed=7, **kw)
    c = _run(net, data, 1, seed=8, **kw)
    assert a.config["online"]
    np.testing.assert_array_equal(a.net.get_flat(), b.net.get_flat())
    assert not np.array_equal(a.net.get_flat(), c.net.get_flat())
    assert a.test_risk is not None and len(a.test_risk) == len(a.t)


def test_minibatch_on_finite_set(rng):
    net = make_net("relu", 1, False, N=40)
    X, Y = make_data(rng, n=100)
    full = _run(net, (X, Y), 1, t_max=1.0, dt=0.05, method="euler")
    mini = _run(net, (X, Y), 1, t_max=1.0, dt=0.05, method="euler", batch=100)  # B = n: all points
    np.testing.assert_allclose(mini.net.get_flat(), full.net.get_flat(), rtol=1e-12, atol=1e-13)
    assert not mini.config["online"]


def test_input_net_unchanged_and_records(rng):
    net = make_net("relu", 1, True, N=64)
    before = net.get_flat().copy()
    X, Y = make_data(rng)
    traj = mf.simulate(net, (X, Y), t_max=1.0, dt=0.1, method="heun", record_every=0.2, progress=False)
    np.testing.assert_array_equal(net.get_flat(), before)
    np.testing.assert_allclose(traj.t, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert traj.test_risk is None
    assert traj.train_risk[0] == pytest.approx(ref.risk("squared", ref.forward(ref.as_tuple(net), X), Y))
    assert traj.wall_time > 0 and not traj.interrupted
    np.testing.assert_array_equal(traj.net0.get_flat(), before)


def test_float32_tracks_float64(rng):
    X, Y = make_data(rng, n=64)
    r64 = mf.simulate(make_net("tanh", dtype="float64"), (X, Y), t_max=1.0, dt=0.1, progress=False)
    r32 = mf.simulate(make_net("tanh", dtype="float32"), (X, Y), t_max=1.0, dt=0.1, progress=False)
    assert r32.net.a.dtype == np.float32
    np.testing.assert_allclose(r32.train_risk, r64.train_risk, rtol=1e-4)


def test_divergence_is_reported(rng):
    net = make_net("quadratic", 1, False, N=32)
    X, Y = make_data(rng)
    with pytest.raises(mf.DivergenceError, match=r"at step \d+ \(t = "):
        mf.simulate(net, (X * 30, Y), t_max=50.0, dt=5.0, method="euler", progress=False)


def test_ctrl_c_stops_at_last_completed_step(rng):
    net = make_net("tanh", 1, False, N=32)
    X, Y = make_data(rng)
    sim = mf.Simulation(net, (X, Y), t_max=10.0, dt=0.01, method="euler", record_every=0.05)

    def interrupt_once(s):
        if s.step == 10:
            os.kill(os.getpid(), signal.SIGINT)

    traj = sim.run(progress=False, callback=interrupt_once)
    assert traj.interrupted
    assert 10 <= traj.step[-1] < 1000
    assert traj.t[-1] == pytest.approx(traj.step[-1] * 0.01)


def test_dtype_conversion_is_announced_once_and_only_when_rounding(rng, monkeypatch):
    import warnings

    from mfntk import _validation
    monkeypatch.setattr(_validation, "_NOTED", set())
    net = make_net("tanh", dtype="float32")
    with pytest.warns(UserWarning, match="X: converted from float64 to float32"):
        net.predict(rng.standard_normal((4, 5)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.predict(rng.standard_normal((4, 5)))                                  # said once per process
        make_net("tanh").predict(rng.standard_normal((4, 5)).astype(np.float32))  # exact: no note


BAD_NETS = [
    (dict(d=0, width=3), ValueError, "d: must be >= 1"),
    (dict(d=2, width=-1), ValueError, "width"),
    (dict(d=2, width=3.5), TypeError, "width"),
    (dict(d=2, width=3, activation="gelu"), ValueError, "activation: unknown value 'gelu'"),
    (dict(d=2, width=3, scaling="lazy"), ValueError, "scaling"),
    (dict(d=2, width=3, scaling=-1.0), ValueError, "scaling"),
    (dict(d=2, width=3, dtype="int32"), ValueError, "dtype"),
    (dict(d=2, width=3, symmetric=True), ValueError, "width: symmetric=True needs an even width"),
    (dict(d=2, width=4, w_std=float("nan")), ValueError, "w_std"),
    (dict(d=2, width=4, a_std=-1.0), ValueError, "a_std"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD_NETS)
def test_bad_network_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mf.TwoLayer(**kwargs)


def test_bad_simulate_arguments(rng):
    net = make_net("relu", 1, False, N=8)
    X, Y = make_data(rng)
    ok = dict(t_max=1.0, dt=0.1, progress=False)
    cases = [
        (dict(ok, dt=0.0), ValueError, "dt: must be > 0"),
        (dict(ok, dt=float("nan")), ValueError, "dt: must be finite"),
        (dict(ok, t_max=-1.0), ValueError, "t_max"),
        (dict(ok, method="rk5"), ValueError, "method: unknown value 'rk5'"),
        (dict(ok, loss="hinge"), ValueError, "loss: unknown value 'hinge'"),
        (dict(ok, temperature=-0.1), ValueError, "temperature"),
        (dict(ok, temperature=0.1, method="rk4"), ValueError, "method: temperature > 0"),
        (dict(ok, batch=0), ValueError, "batch"),
        (dict(ok, batch=1000), ValueError, "batch: 1000 is larger than the training set"),
        (dict(ok, batch=8, residual_dynamics=True), ValueError, "residual_dynamics: needs full-batch"),
        (dict(ok, threads=0), ValueError, "threads: must be >= 1"),
        (dict(ok, weight_decay=-1.0), ValueError, "weight_decay"),
        (dict(ok, checkpoint_every=1.0), ValueError, "checkpoint_every: needs an output file"),
    ]
    for kwargs, exc, match in cases:
        with pytest.raises(exc, match=match):
            mf.simulate(net, (X, Y), **kwargs)
    Xnan = X.copy()
    Xnan[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"data: X: contains NaN \(first non-finite value in row 3\)"):
        mf.simulate(net, (Xnan, Y), **ok)
    with pytest.raises(ValueError, match="d = 6 but the network has d = 5"):
        mf.simulate(net, (rng.standard_normal((37, 6)), Y), **ok)
    with pytest.raises(ValueError, match="rows"):
        mf.simulate(net, (X, Y[:-1]), **ok)
    with pytest.raises(ValueError, match="output column"):
        mf.simulate(net, (X, np.hstack([Y, Y])), **ok)
    with pytest.raises(ValueError, match="loss: 'logistic' needs a network with outputs=1"):
        mf.simulate(make_net("relu", 2, N=8), (X, np.hstack([Y, Y])), loss="logistic", **ok)
    with pytest.raises(TypeError, match="net: expected an mfntk.TwoLayer"):
        mf.simulate("net", (X, Y), **ok)
    with pytest.raises(ValueError, match="X: expected 5 columns"):
        net.predict(np.ones((3, 4)))
    with pytest.raises(ValueError, match="X: contains inf"):
        net.predict(np.full((3, 5), np.inf))
