"""mf.simulate on the diagonal linear network f_w(x) = <w_+^D - w_-^D, x>: Euler runs against
gradient descent written in NumPy (full batch and minibatch, squared and logistic loss), every
record against its NumPy definition, the centred model, files and resume, and the kernel and
rich regimes seen in the records."""
import pathlib

import h5py
import numpy as np
import pytest

import mfntk as mf
from mfntk import _io, _simulate, _validation
from mfntk._diagnostics import diagonal_tangent_change
from mfntk._options import RunOptions
from conftest import close, interrupt_after
from test_diagonal_linear import np_field, np_jacobian, problem, random_model, sparse_problem, stable_dt

QUIET = dict(threads=1, progress=False)


# ---- NumPy references ---------------------------------------------------------------------------------

def np_beta(w, D):
    d = w.size // 2
    return w[:d] ** D - w[d:] ** D


def np_risk(F, y, loss):
    """The mean loss: squared 1/2 (y - f)^2, logistic log(1 + exp(-y f))."""
    return np.mean(0.5 * (y - F) ** 2) if loss == "squared" else np.mean(np.logaddexp(0.0, -y * F))


def gd_path(w0, X, y, D, loss, eta, steps, weight_decay=0.0, batches=None, offset=None):
    """The iterates w_0, ..., w_steps of gradient descent w <- w - eta grad (risk + lambda/2 |w|^2)
    on the model f - offset, on the rows ``batches[s]`` at step s (None: every row)."""
    w, path = w0.copy(), [w0.copy()]
    for s in range(steps):
        rows = np.arange(len(y)) if batches is None else batches[s]
        o = 0.0 if offset is None else offset[rows]
        w = w + eta * np_field(w, X[rows], y[rows], D, loss, weight_decay, offset=o)
        path.append(w)
    return np.array(path)


def simulate_draws(n, batch, steps, seed):
    """The rows of simulate's minibatches: one generator seeded by SeedSequence([seed, 1]) draws
    ``batch`` rows without replacement at each step (mfntk._simulate._Batches)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    return [rng.choice(n, batch, replace=False) for _ in range(steps)]


def held_out(seed, n, d, loss):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X[:, 0] - 0.5 * X[:, 1]
    return X, (np.where(y > 0, 1.0, -1.0) if loss == "logistic" else y)


# ---- the flow --------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [None, 7])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_euler_runs_are_numpy_gradient_descent(loss, batch):
    n, d, D, eta, steps, every = 24, 10, 2, 0.05, 12, 3
    X, y = problem(seed=30, n=n, d=d, loss=loss)
    X_test, y_test = held_out(31, 9, d, loss)
    task = "classification" if loss == "logistic" else "regression"
    data = mf.datasets.Dataset(X, y, X_test, y_test, name="toy", task=task)
    model = random_model(d, D, seed=32)            # w_+ != w_-: every term of the field counts
    traj = mf.simulate(model, data, steps * eta, eta, method="euler", loss=loss, batch=batch, seed=5,
                       weight_decay=0.01, record_every=every * eta, **QUIET)
    batches = None if batch is None else simulate_draws(n, batch, steps, seed=5)
    path = gd_path(model.get_flat(), X, y, D, loss, eta, steps, weight_decay=0.01, batches=batches)
    np.testing.assert_allclose(traj.net.get_flat(), path[-1], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.get_flat(), path[0])          # the input model is left unchanged
    assert traj.step.tolist() == list(range(0, steps + 1, every))
    np.testing.assert_allclose(traj.t, traj.step * eta, rtol=1e-15)    # gradient-flow time: t = steps eta
    records = path[::every]
    close(traj.train_risk, [np_risk(X @ np_beta(w, D), y, loss) for w in records], np.float64)
    close(traj.test_risk, [np_risk(X_test @ np_beta(w, D), y_test, loss) for w in records], np.float64)
    if loss == "logistic":
        np.testing.assert_array_equal(traj.train_error, [np.mean(np.sign(X @ np_beta(w, D)) != y) for w in records])
        np.testing.assert_array_equal(traj.test_error,
                                      [np.mean(np.sign(X_test @ np_beta(w, D)) != y_test) for w in records])
    assert traj.config["model"] == "diagonal_linear" and traj.config["learning_rate"] == eta


def test_results_do_not_depend_on_the_chunks(monkeypatch):
    X, y = problem(seed=33, n=20, d=6)
    run = dict(t_max=0.6, dt=0.05, method="heun", batch=5, diagnostics=True, record_every=0.2, **QUIET)
    model = random_model(6, 3, seed=34)
    ref = mf.simulate(model, (X, y), **run)
    monkeypatch.setattr(_simulate, "_CHUNK_FLOPS", 1.0)                # one step per engine call
    got = mf.simulate(model, (X, y), **run)
    for key, value in ref.series().items():
        np.testing.assert_array_equal(value, got.series()[key], err_msg=key)
    np.testing.assert_array_equal(ref.net.get_flat(), got.net.get_flat())


# ---- the records -------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [2, 3])
def test_diagnostics_are_those_of_numpy_tangent_kernels(depth):
    n, d, eta, steps, every, m = 20, 8, 0.05, 20, 5, 12
    X, y = problem(seed=40, n=n, d=d)
    model = mf.DiagonalLinear(d, alpha=0.6, depth=depth)
    traj = mf.simulate(model, (X, y), steps * eta, eta, method="euler", diagnostics=True, probe_size=m,
                       record_every=every * eta, **QUIET)
    records = gd_path(model.get_flat(), X, y, depth, "squared", eta, steps)[::every]
    probe, y_probe = X[:m], y[:m]                  # the probe set: the first probe_size training points
    J = [np_jacobian(w, probe, depth) for w in records]
    K = [j @ j.T for j in J]
    risks = [np_risk(X @ np_beta(w, depth), y, "squared") for w in records]
    w0 = records[0]
    close(traj.kernel_distance, [np.linalg.norm(k - K[0]) / np.linalg.norm(K[0]) for k in K], np.float64)
    close(traj.alignment, [y_probe @ k @ y_probe / (np.linalg.norm(k) * (y_probe @ y_probe)) for k in K], np.float64)
    close(traj.displacement, [np.linalg.norm(w - w0) / np.linalg.norm(w0) for w in records], np.float64)
    close(traj.tangent_change, [0.0] + [np.linalg.norm(J[r] - J[r - 1]) / np.linalg.norm(J[r - 1])
                                        for r in range(1, len(J))], np.float64)
    close(traj.objective_change, [0.0] + [(risks[r - 1] - risks[r]) / risks[r - 1] for r in range(1, len(risks))],
          np.float64)
    assert traj.kernel_distance[-1] > 0.05 and traj.tangent_change[-1] > 1e-3   # the kernel moves: can fail
    # no layers: the per-layer displacements of a two-layer network are not recorded
    assert traj.displacement_a is None and traj.displacement_W is None and traj.displacement_b is None


@pytest.mark.parametrize("depth", [2, 3])
def test_tangent_change_keeps_its_digits_in_the_lazy_regime(depth):
    X = np.random.default_rng(41).standard_normal((9, 5))
    w = random_model(5, depth, seed=42).get_flat()
    v = np.random.default_rng(43).standard_normal(10)
    for h in (1e-2, 1e-12):
        now = w + h * v
        got = diagonal_tangent_change(depth, np.split(w, 2), np.split(now, 2), X)
        if h > 1e-6:     # the plain difference of NumPy Jacobians is accurate here
            want = np.linalg.norm(np_jacobian(now, X, depth) - np_jacobian(w, X, depth)) / np.linalg.norm(
                np_jacobian(w, X, depth))
            assert got == pytest.approx(want, rel=1e-10)
        else:            # here it would lose ~12 digits; the first-order change is exact to O(h)
            slope = np.hstack([X * (depth * (depth - 1) * w[:5] ** (depth - 2) * v[:5]),
                               -X * (depth * (depth - 1) * w[5:] ** (depth - 2) * v[5:])])
            want = h * np.linalg.norm(slope) / np.linalg.norm(np_jacobian(w, X, depth))
            assert got == pytest.approx(want, rel=1e-8)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_linearized_distance_is_that_of_the_numpy_affine_model(loss):
    n, d, D, eta, steps, every = 20, 8, 3, 0.04, 15, 5
    X, y = problem(seed=50, n=n, d=d, loss=loss)
    model = random_model(d, D, seed=51)            # beta_0 != 0: f_0 enters fbar and the scale
    traj = mf.simulate(model, (X, y), steps * eta, eta, method="euler", loss=loss, linearized=True,
                       record_every=every * eta, **QUIET)
    w0 = model.get_flat()
    beta0, J0 = np_beta(w0, D), np_jacobian(w0, X, D)
    wbar, bars = w0.copy(), [w0.copy()]
    for _ in range(steps):
        fbar = X @ beta0 + J0 @ (wbar - w0)
        r = y - fbar if loss == "squared" else y / (1.0 + np.exp(y * fbar))
        wbar = wbar + eta * J0.T @ r / n
        bars.append(wbar)
    path = gd_path(w0, X, y, D, loss, eta, steps)
    scale = np.linalg.norm(X @ beta0 - y)
    want = [np.linalg.norm(X @ np_beta(w, D) - X @ beta0 - J0 @ (b - w0)) / scale
            for w, b in zip(path[::every], bars[::every])]
    close(traj.linearized_distance, want, np.float64)
    np.testing.assert_allclose(traj.linearized_net.get_flat(), bars[-1], rtol=0, atol=1e-12)
    close(traj.linearized_predict(X)[:, 0], X @ beta0 + J0 @ (bars[-1] - w0), np.float64)
    assert want[-1] > 1e-3                          # the model and its linearization differ here


# ---- the centred model ---------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [None, 6])
def test_centring_is_a_no_op_at_the_standard_initialisation(batch):
    X, y = problem(seed=60, n=18, d=7)
    model = mf.DiagonalLinear(7, alpha=0.7, depth=3)
    np.testing.assert_array_equal(model.predict(X), 0.0)                # F_0 = 0 exactly
    full = batch is None
    run = dict(t_max=0.5, dt=0.05, batch=batch, diagnostics=True, linearized=full, residual_dynamics=full,
               record_every=0.1, **QUIET)
    plain = mf.simulate(model, (X, y), centered=False, **run)
    centred = mf.simulate(model, (X, y), centered=True, **run)
    assert centred.centered and not plain.centered
    assert set(plain.series()) == set(centred.series())
    for key, value in plain.series().items():
        np.testing.assert_array_equal(value, centred.series()[key], err_msg=key)
    np.testing.assert_array_equal(plain.net.get_flat(), centred.net.get_flat())
    np.testing.assert_array_equal(plain.predict(X), centred.predict(X))


def test_the_centred_run_trains_f_minus_f0():
    n, d, D, eta, steps = 20, 8, 2, 0.05, 10
    X, y = problem(seed=61, n=n, d=d)
    X_test, y_test = held_out(62, 6, d, "squared")
    model = random_model(d, D, seed=63)            # f_0 != 0: the offsets count
    w0 = model.get_flat()
    beta0, J0 = np_beta(w0, D), np_jacobian(w0, X, D)
    traj = mf.simulate(model, mf.datasets.Dataset(X, y, X_test, y_test), steps * eta, eta, method="euler",
                       centered=True, linearized=True, residual_dynamics=True, record_every=5 * eta, **QUIET)
    path = gd_path(w0, X, y, D, "squared", eta, steps, offset=X @ beta0)
    np.testing.assert_allclose(traj.net.get_flat(), path[-1], rtol=0, atol=1e-12)
    close(traj.train_risk, [np_risk(X @ (np_beta(w, D) - beta0), y, "squared") for w in path[::5]], np.float64)
    close(traj.test_risk, [np_risk(X_test @ (np_beta(w, D) - beta0), y_test, "squared") for w in path[::5]],
          np.float64)
    close(traj.predict(X_test)[:, 0], X_test @ (np_beta(path[-1], D) - beta0), np.float64)
    np.testing.assert_allclose(traj.rd_residual[0][:, 0], y)           # g_0 = F_0 = 0
    # the linearized centred model J_0 (wbar - w_0): gradient descent on it, distance over |F_0 - y| = |y|
    wbar = w0.copy()
    for _ in range(steps):
        wbar = wbar + eta * J0.T @ (y - J0 @ (wbar - w0)) / n
    close(traj.linearized_predict(X)[:, 0], J0 @ (wbar - w0), np.float64)
    F = X @ (np_beta(path[-1], D) - beta0)
    close(traj.linearized_distance[-1], np.linalg.norm(F - J0 @ (wbar - w0)) / np.linalg.norm(y), np.float64)


# ---- files and resume ------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    dict(method="rk4", linearized=True, residual_dynamics=True, diagnostics=True),
    dict(method="euler", batch=5, temperature=1e-4, diagnostics=True, loss="logistic"),
])
def test_a_file_round_trip_and_a_bit_identical_resume(tmp_path, monkeypatch, options):
    X, y = problem(seed=70, n=16, d=6, loss=options.get("loss", "squared"))
    model = mf.DiagonalLinear(6, alpha=0.5, depth=3)
    run = dict(t_max=1.2, dt=0.05, record_every=0.1, seed=4, **options, **QUIET)
    ref = mf.simulate(model, (X, y), **run)
    path = tmp_path / "run.h5"
    interrupt_after(monkeypatch, 14)
    with pytest.raises(KeyboardInterrupt):
        mf.simulate(model, (X, y), out=path, checkpoint_every=0.2, **run)
    monkeypatch.undo()
    partial = mf.load(path)
    assert not partial.complete and partial.step[-1] == 12 and isinstance(partial.net, mf.DiagonalLinear)
    resumed = mf.resume(path, threads=1)
    assert resumed.complete
    assert set(resumed.series()) == set(ref.series())
    for key, value in ref.series().items():
        np.testing.assert_array_equal(value, resumed.series()[key], err_msg=key)
    np.testing.assert_array_equal(resumed.net.get_flat(), ref.net.get_flat())
    if options.get("linearized"):
        np.testing.assert_array_equal(resumed.linearized_net.get_flat(), ref.linearized_net.get_flat())
        np.testing.assert_allclose(ref.rd_residual[0][:, 0], y - model.predict(X)[:, 0])
    loaded = mf.load(path)
    assert loaded.config["model"] == "diagonal_linear" and loaded.net0.config() == model.config()
    np.testing.assert_array_equal(loaded.net0.get_flat(), model.get_flat())
    first = loaded.snapshots.net(0)
    assert isinstance(first, mf.DiagonalLinear) and loaded.snapshots.step[0] == 0
    np.testing.assert_array_equal(first.get_flat(), model.get_flat())
    np.testing.assert_array_equal(loaded.snapshots.theta[-1], ref.net.get_flat())
    with h5py.File(path, "r") as f:
        assert f["net0"].attrs["model"] == "diagonal_linear"
        assert "prev_w_plus" in f["checkpoint"] and "prev_a" not in f["checkpoint"]


def _with_kind(source, target, kind):
    target.write_bytes(source.read_bytes())
    with h5py.File(target, "r+") as f:
        if kind is None:
            del f["net0"].attrs["model"]
        else:
            f["net0"].attrs["model"] = kind
        _io._seal(f["net0"])                       # a consistent checksum: the reader's own check speaks
    return target


@pytest.mark.parametrize("kind,match", [
    ("three_layer", r"the model kind 'three_layer' of /net0 is not one of 'two_layer', 'diagonal_linear'"),
    ("os.system", r"the model kind 'os.system' of /net0 is not one of"),
    ("two_layer", r"names the model 'diagonal_linear' but /net0 holds a 'two_layer'"),
    (None, r"names the model 'diagonal_linear' but /net0 holds a 'two_layer'"),  # no kind: a two-layer file
])
def test_the_reader_checks_the_model_kind(tmp_path, kind, match):
    X, y = problem(seed=71, n=10, d=4)
    path = tmp_path / "run.h5"
    mf.simulate(mf.DiagonalLinear(4), (X, y), 0.2, 0.1, out=path, **QUIET)
    damaged = _with_kind(path, tmp_path / "damaged.h5", kind)
    with pytest.raises(mf.TrajectoryFileError, match=match):
        mf.load(damaged)
    with pytest.raises(mf.TrajectoryFileError, match=match):
        mf.resume(damaged, t_max=1.0)


def test_two_layer_files_without_a_kind_still_read(tmp_path):
    X, y = problem(seed=72, n=10, d=4)
    path = tmp_path / "run.h5"
    ref = mf.simulate(mf.TwoLayer(4, 6, "tanh", seed=1), (X, y), 0.2, 0.1, out=path, **QUIET)
    with h5py.File(path, "r+") as f:               # as written before the diagonal model
        config = f.attrs["config"].replace(', "model": "two_layer"', "")
        assert config != f.attrs["config"]
        f.attrs["config"] = config
        _io._seal(f["/"])
    old = _with_kind(path, tmp_path / "old.h5", None)
    loaded = mf.load(old)
    assert isinstance(loaded.net, mf.TwoLayer) and "model" not in loaded.config
    np.testing.assert_array_equal(loaded.net.get_flat(), ref.net.get_flat())


# ---- sizes -------------------------------------------------------------------------------------------

def test_the_memory_check_counts_the_diagonal_state(monkeypatch):
    X, y = problem(seed=73, n=30, d=12)
    data = mf.datasets.as_dataset((X, y))
    model = mf.DiagonalLinear(12)
    P, s = 24, 8
    opts = RunOptions(t_max=1.0, dt=0.1)
    euler = _validation.check_simulation_memory(model, data, opts, 1)
    rk4 = _validation.check_simulation_memory(model, data, opts, 4)
    assert rk4 - euler == 4 * P * s                                     # three more stages and the tmp buffer
    lin = _validation.check_simulation_memory(model, data, opts.replace(linearized=True), 1)
    # at least the block in the state and the stage buffer, the reference w_0, fbar and its residual
    assert (3 * P + 2 * 30) * s <= lin - euler <= 10 * (P + 30) * s
    rd = _validation.check_simulation_memory(model, data, opts.replace(residual_dynamics=True), 1)
    assert 3 * 30 * s <= rd - euler <= 10 * (P + 30) * s                # at least g in state and stage, r(g)
    monkeypatch.setattr(_validation, "available_memory", lambda: euler - 1)
    monkeypatch.setattr(_validation, "_address_space_left", lambda: None)
    with pytest.raises(MemoryError, match=r"^net: a run of a diagonal linear network with d = 12 on 30 points "
                                          r"would need"):
        mf.Simulation(model, (X, y), 1.0, 0.1, method="euler")


# ---- kernel and rich regimes, through the records (Woodworth et al. 2020) ------------------------------------

def test_small_alpha_recovers_the_sparse_teacher_and_its_kernel_moves():
    X, y, b_star = sparse_problem()               # d = 100, s = 5, n = 40
    traj = mf.simulate(mf.DiagonalLinear(100, alpha=0.01), (X, y), 60.0, 0.02, method="euler", diagnostics=True,
                       linearized=True, **QUIET)
    assert traj.train_risk[-1] < 1e-4
    assert np.sum((traj.net.beta - b_star) ** 2) < 0.01
    assert traj.kernel_distance[-1] > 10 and traj.linearized_distance.max() > 0.1   # rich: far from the kernel


def test_large_alpha_ends_at_the_minimum_l2_interpolant_and_stays_lazy():
    X, y, b_star = sparse_problem()
    alpha = 10.0
    dt = stable_dt(X, alpha, 2)
    traj = mf.simulate(mf.DiagonalLinear(100, alpha=alpha), (X, y), 2000 * dt, dt, method="euler", diagnostics=True,
                       linearized=True, **QUIET)
    min_l2 = np.linalg.pinv(X) @ y
    assert np.linalg.norm(traj.net.beta - min_l2) < 1e-5 * np.linalg.norm(min_l2)
    n, d = X.shape
    # Gaussian x: the test risk is |beta - b*|^2; the min-l2 interpolant keeps the part of b* off
    # the n-dimensional row space of X, (1 - n/d) |b*|^2 on average (std about 0.07 here)
    assert abs(np.sum((traj.net.beta - b_star) ** 2) - (1 - n / d) * np.sum(b_star ** 2)) < 0.2
    assert traj.kernel_distance.max() < 1e-4 and traj.linearized_distance.max() < 1e-6   # lazy


def test_figures_of_a_diagonal_run(tmp_path):
    """The run's figures are those of its records; the two-layer particle and kernel figures refuse
    a diagonal run with a TypeError naming the model (no AttributeError deep inside)."""
    X, y = problem()
    traj = mf.simulate(mf.DiagonalLinear(X.shape[1], alpha=0.5), (X, y), t_max=0.5, dt=0.05, diagnostics=True,
                       linearized=True, progress=False, out=str(tmp_path / "run.h5"))
    written = {pathlib.Path(p).name for p in mf.plot.trajectory_figures(traj, tmp_path / "figs")}
    assert written == {"risk.png", "lazy_rich.png", "diagnostics.png"}
    for draw in (lambda: mf.plot.particles(traj), lambda: mf.plot.kernel(traj)):
        with pytest.raises(TypeError, match="DiagonalLinear"):
            draw()
