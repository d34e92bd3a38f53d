"""Records of a run: classification errors, progress off a terminal, exports to pandas and xarray."""
import numpy as np
import pytest

import mfntk as mf
from mfntk import _simulate
from mfntk._recorder import classification_error


def test_classification_error_by_sign_and_by_argmax():
    F = np.array([[0.3], [-0.2], [0.1], [-1.0]])
    Y = np.array([[1.0], [1.0], [-1.0], [-1.0]])
    assert classification_error(F, Y) == 0.5
    F = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.2, 0.6]])
    Y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert classification_error(F, Y) == pytest.approx(1 / 3)


def test_classification_runs_record_their_errors():
    data = mf.datasets.gaussian_mixture(6, 60, 40, delta=0.6, seed=1)
    net = mf.TwoLayer(6, 32, "relu", seed=2)
    traj = mf.simulate(net, data, t_max=2.0, dt=0.1, loss="logistic", threads=1, progress=False)
    assert traj.train_error.shape == traj.t.shape and traj.test_error.shape == traj.t.shape
    F = traj.net.predict(data.X)
    assert traj.train_error[-1] == np.mean(np.sign(F[:, 0]) != data.y[:, 0])
    regression = mf.simulate(net, mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(6), 6, 20), t_max=0.2,
                             dt=0.1, threads=1, progress=False)
    assert regression.train_error is None


def test_one_hot_classification_uses_the_argmax():
    X = np.random.default_rng(0).standard_normal((30, 4))
    labels = np.argmax(X[:, :3], axis=1)
    data = mf.datasets.Dataset(X, np.eye(3)[labels], task="classification", name="blobs")
    traj = mf.simulate(mf.TwoLayer(4, 16, "tanh", outputs=3, seed=1), data, t_max=0.5, dt=0.1, threads=1,
                       progress=False)
    F = traj.net.predict(X)
    assert traj.train_error[-1] == np.mean(np.argmax(F, axis=1) != labels)
    assert traj.test_error is None


def test_progress_lines_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(_simulate, "_LOG_SECONDS", 0.0)
    data = mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(3), 3, 20)
    mf.simulate(mf.TwoLayer(3, 8), data, t_max=0.3, dt=0.1, record_every=0.1, threads=1)   # progress=None
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("simulate: started: step 0/3")
    assert any(line.startswith("simulate: running: step") for line in lines)
    assert lines[-1].startswith("simulate: finished: step 3/3 (100%)")
    mf.simulate(mf.TwoLayer(3, 8), data, t_max=0.3, dt=0.1, threads=1, progress=False)
    assert capsys.readouterr().err == ""


def test_exports_to_pandas_and_xarray():
    data = mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(3), 3, 20, 10)
    traj = mf.simulate(mf.TwoLayer(3, 8, scaling="ntk", symmetric=True), data, t_max=0.4, dt=0.1,
                       record_every=0.1, residual_dynamics=True, diagnostics=True, threads=1, progress=False)
    frame = traj.to_pandas()
    np.testing.assert_array_equal(frame.index.to_numpy(), traj.t)
    np.testing.assert_array_equal(frame["train_risk"].to_numpy(), traj.train_risk)
    assert "rd_residual" not in frame and "kernel_distance" in frame
    ds = traj.to_xarray()
    np.testing.assert_array_equal(ds["rd_residual"].values, traj.rd_residual)
    assert ds["rd_residual"].dims == ("t", "sample", "output")
    np.testing.assert_array_equal(ds["step"].values, traj.step)
    assert "kernel" in ds["kernel_distance"].attrs["description"]
    assert '"dt": 0.1' in ds.attrs["config"]


def test_error_figure_is_written_for_classification_runs(tmp_path):
    from mfntk import plot
    data = mf.datasets.gaussian_mixture(4, 40, 20, seed=1)
    path = tmp_path / "run.h5"
    traj = mf.simulate(mf.TwoLayer(4, 16, seed=1), data, t_max=0.5, dt=0.1, loss="logistic", threads=1,
                       progress=False, out=path)
    written = plot.trajectory_figures(traj, tmp_path / "figs", threads=1)
    assert str(tmp_path / "figs" / "error.png") in written
    assert (tmp_path / "figs" / "error.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="classification"):
        plot.classification_error(mf.simulate(mf.TwoLayer(4, 8), (data.X, data.X[:, :1]), t_max=0.1, dt=0.1,
                                              threads=1, progress=False))
