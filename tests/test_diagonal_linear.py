"""The diagonal linear network f_w(x) = <w_+^D - w_-^D, x> (Woodworth et al. 2020): its field,
integrators, blocks and kernel against NumPy references, and the kernel-versus-rich results
(trained by mf.simulate; its records, files and resume: test_diagonal_simulate.py)."""
import numpy as np
import pytest

import mfntk as mf
from mfntk import _core
from mfntk.datasets.teachers import SparseLinear
from conftest import close

LOSSES = ["squared", "logistic"]


# ---- NumPy references, written from the formulas ------------------------------------------------

def np_risk(w, X, y, D, loss):
    d = X.shape[1]
    f = X @ (w[:d] ** D - w[d:] ** D)
    if loss == "squared":
        return 0.5 * np.mean((y - f) ** 2)
    return np.mean(np.logaddexp(0.0, -y * f))


def np_residual(f, y, loss):
    return y - f if loss == "squared" else y / (1.0 + np.exp(y * f))


def np_jacobian(w, X, D):
    """J (n, 2d) of f(X) in w = [w_+ | w_-]."""
    d = X.shape[1]
    return np.hstack([X * (D * w[:d] ** (D - 1)), -X * (D * w[d:] ** (D - 1))])


def np_field(w, X, y, D, loss, weight_decay=0.0, offset=0.0):
    """-grad of the risk of f - offset (+ weight decay lambda/2 |w|^2): J^T r / n - lambda w."""
    d = X.shape[1]
    r = np_residual(X @ (w[:d] ** D - w[d:] ** D) - offset, y, loss)
    return np_jacobian(w, X, D).T @ r / X.shape[0] - weight_decay * w


def np_step(field, w, dt, method):
    """One step of the integrator `method` for dw/dt = field(w)."""
    if method == "euler":
        return w + dt * field(w)
    if method == "heun":
        k1 = field(w)
        k2 = field(w + dt * k1)
        return w + dt / 2 * (k1 + k2)
    k1 = field(w)
    k2 = field(w + dt / 2 * k1)
    k3 = field(w + dt / 2 * k2)
    k4 = field(w + dt * k3)
    return w + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def problem(seed=0, n=30, d=12, loss="squared"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    b = rng.standard_normal(d) / np.sqrt(d)
    y = X @ b + 0.1 * rng.standard_normal(n)
    return X, (np.where(X @ b > 0, 1.0, -1.0) if loss == "logistic" else y)


def random_model(d, depth=2, seed=1, dtype="float64"):
    """A model away from its initialisation (w_+ != w_-), so that every term of the field counts."""
    model = mf.DiagonalLinear(d, alpha=0.5, depth=depth, dtype=dtype)
    model.set_flat(0.5 + 0.4 * np.random.default_rng(seed).standard_normal(2 * d))
    return model


def train(model, X, y, t_max, dt, method="euler", **options):
    """mf.simulate on (X, y), Euler (gradient descent) unless told, one thread, quiet."""
    return mf.simulate(model, (X, y), t_max, dt, method=method, threads=1, progress=False, **options)


def engine(model, X, y, threads=1, **options):
    values = dict(loss="squared", weight_decay=0.0, temperature=0.0, seed=0, residual_dynamics=False,
                  linearized=False, threads=threads)
    values.update(options)
    eng = model.backend.diagonal_dynamics(model, **values)
    eng.set_data(np.ascontiguousarray(X, model.dtype), np.ascontiguousarray(np.reshape(y, (-1, 1)), model.dtype))
    return eng


# ---- the field ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("loss", LOSSES)
def test_field_is_minus_the_gradient_of_the_risk(loss, depth, dtype):
    X, y = problem(loss=loss)
    model = random_model(12, depth, dtype=np.dtype(dtype).name)
    w = model.get_flat().astype(np.float64)
    want = np_field(w, X, y, depth, loss, weight_decay=0.3)
    dw_plus, dw_minus = mf.dd_field(model, X.astype(dtype), y, loss=loss, weight_decay=0.3, threads=1)
    assert dw_plus.dtype == dtype
    close(np.concatenate([dw_plus, dw_minus]), want, dtype)


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("loss", LOSSES)
def test_field_matches_finite_differences_of_the_risk(loss, depth):
    X, y = problem(seed=3, loss=loss)
    model = random_model(12, depth, seed=4)
    w = model.get_flat()
    field = np.concatenate(mf.dd_field(model, X, y, loss=loss))
    h = 1e-5
    for v in np.random.default_rng(5).standard_normal((3, w.size)):
        slope = (np_risk(w + h * v, X, y, depth, loss) - np_risk(w - h * v, X, y, depth, loss)) / (2 * h)
        assert abs(-slope - field @ v) <= 1e-7 * max(1.0, abs(slope))


# ---- integrators, threads, batches ----------------------------------------------------------------

def test_euler_with_dt_eta_is_gradient_descent():
    X, y = problem(seed=6)
    eta, steps = 0.05, 6
    model = mf.DiagonalLinear(12, alpha=0.7, depth=3)
    w = model.get_flat()
    for _ in range(steps):
        w = w - eta * (-np_field(w, X, y, 3, "squared", weight_decay=0.1))   # w <- w - eta grad (risk + decay)
    assert mf.euler_dt(model, eta) == eta and mf.learning_rate(model, eta) == eta
    traj = train(model, X, y, steps * eta, eta, weight_decay=0.1)
    assert traj.step[-1] == steps and traj.config["learning_rate"] == eta
    np.testing.assert_allclose(traj.net.get_flat(), w, rtol=0, atol=1e-12 * np.abs(w).max())


@pytest.mark.parametrize("method", ["heun", "rk4"])
def test_every_integrator_steps_as_its_numpy_scheme(method):
    X, y = problem(seed=7, loss="logistic")
    model = random_model(12, 2, seed=8)
    w = model.get_flat()
    for _ in range(4):
        w = np_step(lambda v: np_field(v, X, y, 2, "logistic"), w, 0.1, method)
    traj = train(model, X, y, 0.4, 0.1, method=method, loss="logistic")
    np.testing.assert_allclose(traj.net.get_flat(), w, rtol=0, atol=1e-12 * np.abs(w).max())


def test_results_are_bit_identical_for_any_thread_count():
    # n and d large enough for several row and column blocks and for the parallel loops
    rng = np.random.default_rng(9)
    n, d = 1100, 700
    X = rng.standard_normal((n, d))
    y = X[:, :3].sum(axis=1)
    model = random_model(d, 2, seed=10)
    states = []
    for threads in (1, 2):
        eng = engine(model, X, y, threads=threads, residual_dynamics=True, linearized=True, temperature=1e-6,
                     weight_decay=0.01)
        eng.set_reference(model.get_flat())
        layout = eng.layout()
        state = np.zeros(layout["size"])
        state[:2 * d] = state[layout["linearized"]:] = 0.9 * model.get_flat()
        state[layout["residual"]:layout["residual"] + n] = model.predict(X).ravel()
        field = eng.field(state)
        assert eng.advance(state, 3, 1e-4, "euler", 0) == (3, True)
        states.append((field, state))
    np.testing.assert_array_equal(states[0][0], states[1][0])
    np.testing.assert_array_equal(states[0][1], states[1][1])
    # the blocked reduction is the plain sum X^T r / n
    want = np_field(0.9 * model.get_flat(), X, y, 2, "squared", weight_decay=0.01)
    close(states[0][0][:2 * d], want, np.float64)


def test_stacked_minibatches_are_sgd():
    X, y = problem(seed=11, n=40)
    model = random_model(12, 2, seed=12)
    batches = np.random.default_rng(13).integers(0, 40, size=(5, 8))
    Xb, yb = np.ascontiguousarray(X[batches]), np.ascontiguousarray(y[batches][..., None])
    offset = np.random.default_rng(14).standard_normal(40)
    ob = np.ascontiguousarray(offset[batches][..., None])
    w = model.get_flat()
    for s in range(5):
        w = w + 0.1 * np_field(w, Xb[s], yb[s, :, 0], 2, "squared", offset=ob[s, :, 0])
    eng = engine(model, X, y, linearized=True)
    eng.set_reference(model.get_flat())
    eng.set_offset(offset[:, None])
    state = np.concatenate([model.get_flat(), model.get_flat()])
    with pytest.raises(ValueError, match="offset batches: the model has offsets"):
        eng.advance(state.copy(), 5, 0.1, "euler", 0, Xb, yb)
    assert eng.advance(state, 5, 0.1, "euler", 0, Xb, yb, ob) == (5, True)
    np.testing.assert_allclose(state[:24], w, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="batch: residual_dynamics needs full-batch"):
        engine(model, X, y, residual_dynamics=True).advance(np.zeros(24 + 40), 5, 0.1, "euler", 0, Xb, yb)


@pytest.mark.parametrize("loss", LOSSES)
def test_offsets_are_subtracted_from_the_model_and_its_linearization(loss):
    """The centred model f - o (o = f(w_0) in the centred runs): every point's offset enters r."""
    X, y = problem(seed=24, loss=loss)
    model = random_model(12, 2, seed=25)
    w0 = model.get_flat()
    o = np.random.default_rng(26).standard_normal(30)
    wbar = w0 + 0.1 * np.random.default_rng(27).standard_normal(24)
    eng = engine(model, X, y, loss=loss, linearized=True)
    eng.set_reference(w0)
    eng.set_offset(o[:, None])
    w = 0.8 * w0
    field = eng.field(np.concatenate([w, wbar]))
    close(field[:24], np_field(w, X, y, 2, loss, offset=o), np.float64)
    J0 = np_jacobian(w0, X, 2)
    fbar = X @ (w0[:12] ** 2 - w0[12:] ** 2) + J0 @ (wbar - w0) - o
    close(field[24:], J0.T @ np_residual(fbar, y, loss) / 30, np.float64)


def test_temperature_adds_the_euler_maruyama_increment_to_the_particles_only():
    d, tau, dt = 5000, 0.3, 0.01
    model = mf.DiagonalLinear(d, alpha=0.2)
    X = np.random.default_rng(14).standard_normal((4, d))
    eng = engine(model, X, np.zeros(4), temperature=tau, seed=7, linearized=True)   # r = 0: no drift
    eng.set_reference(model.get_flat())
    state = np.full(4 * d, 0.2)
    assert eng.advance(state, 1, dt, "euler", 0) == (1, True)
    noise = (state[:2 * d] - 0.2) / np.sqrt(2 * tau * dt)
    assert abs(noise.mean()) < 5 / np.sqrt(2 * d) and abs(noise.std() - 1) < 5 / np.sqrt(4 * d)
    np.testing.assert_array_equal(state[2 * d:], 0.2)
    again = np.full(4 * d, 0.2)
    eng.advance(again, 1, dt, "euler", 0)
    np.testing.assert_array_equal(again, state)        # keyed by (seed, step, index)
    with pytest.raises(ValueError, match="method: 'rk4' cannot integrate temperature"):
        eng.advance(again, 1, dt, "rk4", 1)


# ---- the blocks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", LOSSES)
def test_linearized_block_is_gradient_descent_on_the_affine_model(loss):
    X, y = problem(seed=15, loss=loss)
    depth, eta = 3, 0.05
    model = random_model(12, depth, seed=16)            # beta_0 != 0: f_0 enters fbar
    w0 = model.get_flat()
    J0 = np_jacobian(w0, X, depth)
    beta0 = w0[:12] ** depth - w0[12:] ** depth
    wbar = w0.copy()
    for _ in range(6):
        fbar = X @ beta0 + J0 @ (wbar - w0)
        wbar = wbar + eta * (J0.T @ np_residual(fbar, y, loss) / 30 - 0.05 * wbar)
    traj = train(model, X, y, 6 * eta, eta, loss=loss, weight_decay=0.05, linearized=True)
    np.testing.assert_allclose(traj.linearized_net.get_flat(), wbar, rtol=0, atol=1e-12)
    close(model.linearized_predict(traj.linearized_net, X)[:, 0], X @ beta0 + J0 @ (wbar - w0), np.float64)
    close(traj.linearized_predict(X)[:, 0], X @ beta0 + J0 @ (wbar - w0), np.float64)


def test_residual_dynamics_block_is_the_tangent_kernel_flow():
    X, y = problem(seed=17)
    model = random_model(12, 3, seed=18)
    w = model.get_flat()
    eng = engine(model, X, y, residual_dynamics=True, weight_decay=0.2)
    layout = eng.layout()
    g = np.random.default_rng(19).standard_normal(30)   # any g: the field uses its own residual y - g
    state = np.concatenate([w, g])
    J = np_jacobian(w, X, 3)
    want = J @ (J.T @ (y - g) / 30 - 0.2 * w)            # (1/n) K r(g) - lambda J w
    close(eng.field(state)[layout["residual"]:], want, np.float64)


@pytest.mark.parametrize("depth", [2, 3])
def test_tangent_kernel_is_J_J_transpose(depth):
    X, _ = problem(seed=20)
    X2 = np.random.default_rng(21).standard_normal((7, 12))
    model = random_model(12, depth, seed=22)
    J, J2 = np_jacobian(model.get_flat(), X, depth), np_jacobian(model.get_flat(), X2, depth)
    close(model.tangent_kernel(X), J @ J.T, np.float64)
    close(model.tangent_kernel(X, X2), J @ J2.T, np.float64)


# ---- the model ------------------------------------------------------------------------------------------

def test_model_interface():
    model = mf.DiagonalLinear(4, alpha=0.3, depth=3, dtype="float32")
    assert (model.d, model.outputs, model.n_params, model.dtype) == (4, 1, 8, np.float32)
    np.testing.assert_array_equal(model.beta, 0)
    rebuilt = mf.DiagonalLinear(**model.config())
    np.testing.assert_array_equal(rebuilt.get_flat(), model.get_flat())
    assert rebuilt.config() == model.config()
    w = np.arange(8, dtype=np.float64) / 8
    model.set_flat(w)
    np.testing.assert_array_equal(model.get_flat(), w.astype(np.float32))
    twin = model.copy()
    twin.w_plus[0] = 5.0
    assert model.w_plus[0] == 0.0
    X = np.random.default_rng(23).standard_normal((3, 4)).astype(np.float32)
    X_before = X.copy()
    close(model.predict(X)[:, 0], X.astype(np.float64) @ (w[:4] ** 3 - w[4:] ** 3), np.float32)
    np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(d=0), ValueError, "d: must be >= 1"),
    (dict(d=3, alpha=0.0), ValueError, "alpha: must be > 0"),
    (dict(d=3, alpha="big"), TypeError, "alpha: expected a number"),
    (dict(d=3, depth=1), ValueError, "depth: must be >= 2"),
    (dict(d=3, depth=2.5), TypeError, "depth: expected an int"),
    (dict(d=3, dtype="float16"), ValueError, "dtype: unsupported"),
    (dict(d=3, alpha=1e10, depth=3, dtype="float32"), ValueError, "alpha: alpha\\^\\(2 depth - 2\\)"),
    (dict(d=3, backend="gpu"), ValueError, "backend: unknown value"),
])
def test_bad_model_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        mf.DiagonalLinear(**kwargs)


def test_bad_simulate_arguments_are_named():
    X, y = problem(d=3, n=5)
    model = mf.DiagonalLinear(3)
    cases = [
        (dict(X=X[:, :2]), "data: inputs have d = 2 but the network has d = 3"),
        (dict(y=y[:4]), "data: X has 5 rows but y has 4"),
        (dict(y=np.stack([y, y], axis=1)), r"data.y: expected 1 output column\(s\)"),
        (dict(method="leapfrog"), "method: unknown value 'leapfrog'"),
        (dict(loss="hinge"), "loss: unknown value 'hinge'"),
        (dict(loss="logistic"), "data.y: the logistic loss needs labels"),
        (dict(temperature=0.1, method="rk4"), "method: temperature > 0 is integrated by Euler-Maruyama"),
        (dict(dt=0.0), "dt: must be > 0"),
        (dict(t_max=-1.0), "t_max: must be >= 0"),
        (dict(weight_decay=-1.0), "weight_decay: must be >= 0"),
        (dict(batch=4, linearized=True), "linearized: needs full-batch"),
    ]
    for change, match in cases:
        args = dict(X=X, y=y, t_max=1.0, dt=0.1)
        args.update(change)
        with pytest.raises(ValueError, match=match):
            train(model, args.pop("X"), args.pop("y"), **args)
    with pytest.raises(ValueError, match="w: contains NaN"):
        model.set_flat(np.array([0.0, 1.0, np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"w: expected shape \(6,\)"):
        model.set_flat(np.zeros(5))
    bad = model.copy()
    bad.w_minus[1] = np.inf
    with pytest.raises(ValueError, match="net.w_minus: contains inf"):
        train(bad, X, y, 1.0, 0.1)
    with pytest.raises(TypeError, match="net: expected an mfntk.TwoLayer or mfntk.DiagonalLinear, got dict"):
        mf.simulate(model.config(), (X, y), 1.0, 0.1)
    with pytest.raises(mf.DivergenceError, match="reduce dt"):
        train(mf.DiagonalLinear(3, alpha=3.0), X, 10 * y, 10.0, 1.0)


@pytest.mark.parametrize("field,value,match", [
    ("d", 0, "d: must be positive"), ("depth", 1, "depth: must be an integer >= 2"),
    ("threads", 0, "threads: must be at least 1"), ("weight_decay", -1.0, "weight_decay: must be finite"),
    ("temperature", float("nan"), "temperature: must be finite"),
])
def test_the_core_names_a_bad_option(field, value, match):
    options = _core.DiagonalOptions()
    options.d = 3
    setattr(options, field, value)
    with pytest.raises(ValueError, match=match):
        _core.DiagonalDynamics64(options)
    with pytest.raises(ValueError, match="loss: unknown value 'hinge'"):
        options.loss = "hinge"


def test_the_linearized_engine_needs_its_reference():
    X, y = problem(d=3, n=5)
    eng = engine(mf.DiagonalLinear(3), X, y, linearized=True)
    with pytest.raises(ValueError, match="linearized: reference not set"):
        eng.field(np.zeros(12))


# ---- kernel and rich regimes (Woodworth et al. 2020) ------------------------------------------------------
# (sparse recovery at small alpha and the minimum-l2 interpolant at large alpha, with the records
# that show the regimes: test_diagonal_simulate.py)
# Step sizes: the Hessian of the squared risk at w_+ = w_- = alpha 1 has largest eigenvalue
# 2 D^2 alpha^{2D-2} lambda_max(X X^T) / n; dt = 0.5 / that (capped at 0.02, where the late-time
# curvature, of order D^2 |beta|^{(2D-2)/D} lambda_max / n, takes over) keeps Euler stable.

def sparse_problem():
    d, s, n = 100, 5, 40
    teacher = SparseLinear(d, s, seed=0)
    X = np.random.default_rng(1).standard_normal((n, d))
    return X, X @ teacher.beta, teacher.beta


def increasing(values):
    return all(a < b for a, b in zip(values, values[1:]))


def decreasing(values):
    return all(a > b for a, b in zip(values, values[1:]))


def stable_dt(X, alpha, depth):
    curvature = 2 * depth ** 2 * alpha ** (2 * depth - 2) * np.linalg.eigvalsh(X @ X.T).max() / X.shape[0]
    return min(0.02, 0.5 / curvature)


def test_iterations_to_fit_grow_as_alpha_shrinks():
    # Gradient descent at a fixed learning rate, stable for every alpha here. The escape from the
    # saddle at w = 0 grows like log(1/alpha): the steps to a moderate risk grow down to tiny
    # alpha; to a small risk they grow over the range where the last phase does not speed up.
    X, y, _ = sparse_problem()
    eta = 0.02
    alphas = (1.0, 0.3, 0.1, 0.03, 0.01, 0.001)
    steps = {1e-2: [], 1e-4: []}
    for alpha in alphas:
        traj = train(mf.DiagonalLinear(100, alpha=alpha), X, y, 3000 * eta, eta, record_every=eta)
        for threshold, counts in steps.items():
            below = np.flatnonzero(traj.train_risk < threshold)
            assert below.size, (alpha, threshold)
            counts.append(int(traj.step[below[0]]))
    assert increasing(steps[1e-2]), steps
    assert increasing(steps[1e-4][:5]), steps


@pytest.mark.parametrize("depth", [2, 3])
def test_kernel_change_and_distance_to_the_linearization_shrink_as_alpha_grows(depth):
    X, y, _ = sparse_problem()
    kernel_change, distance = [], []
    for alpha in (0.1, 0.3, 1.0, 3.0, 10.0):
        dt = stable_dt(X, alpha, depth)
        model = mf.DiagonalLinear(100, alpha=alpha, depth=depth)
        K0 = model.tangent_kernel(X)
        traj = train(model, X, y, 1500 * dt, dt, linearized=True, record_every=10 * dt)
        kernel_change.append(np.linalg.norm(traj.net.tangent_kernel(X) - K0) / np.linalg.norm(K0))
        distance.append(traj.linearized_distance.max())
    assert decreasing(kernel_change), kernel_change
    assert decreasing(distance), distance
    assert kernel_change[0] > 1 and distance[0] > 0.1          # rich: the kernel moves, f leaves fbar
    assert kernel_change[-1] < 1e-4 and distance[-1] < 1e-6    # lazy: kernel and linearization hold
