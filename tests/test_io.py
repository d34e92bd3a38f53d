"""Trajectories on disk: save/load round trip, checkpoint + resume bit for bit (full batch,
minibatch, online, Langevin), a run killed with SIGKILL, corrupt and truncated files."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import mfntk as mf
from mfntk import _io

D = 6
WIDTH = 32
RUN = dict(t_max=2.0, dt=0.05, method="euler", record_every=0.1, threads=1)   # 40 steps, 20 records
CHECKPOINT = 0.4                                                               # every 8 steps
KILL_STEP = 28   # a record between the checkpoints at steps 24 and 32

MODES = {
    "full_batch": dict(method="rk4", diagnostics=True, linearized=True, residual_dynamics=True),
    "minibatch": dict(batch=8, online=False, diagnostics=True),
    "online": dict(batch=8),
    "langevin": dict(batch=8, temperature=1e-3, weight_decay=1e-2),
}


def opts(mode, **extra):
    """The keyword arguments of simulate for one of MODES."""
    return {**RUN, **MODES[mode], **extra}


def data():
    return mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(D, "tanh", seed=1), D, 40, 30, noise=0.1, seed=2)


def student():
    return mf.TwoLayer(D, WIDTH, "tanh", scaling="mf", bias=True, b_std=0.5, seed=3)


class _Killed(Exception):
    pass


def assert_same_run(a, b):
    """Every recorded series and the final particles equal, bit for bit."""
    sa, sb = a.series(), b.series()
    assert set(sa) == set(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
    np.testing.assert_array_equal(a.net.get_flat(), b.net.get_flat())
    np.testing.assert_array_equal(a.net0.get_flat(), b.net0.get_flat())
    if a.linearized_net is not None:
        np.testing.assert_array_equal(a.linearized_net.get_flat(), b.linearized_net.get_flat())


def test_round_trip(tmp_path):
    path = tmp_path / "run.h5"
    ref = mf.simulate(student(), data(), **opts("full_batch"))
    traj = mf.simulate(student(), data(), **opts("full_batch"), out=path, checkpoint_every=CHECKPOINT)
    assert_same_run(ref, traj)
    loaded = _io.load(path)
    assert_same_run(ref, loaded)
    assert loaded.config == json.loads(json.dumps(ref.config))
    assert loaded.complete and not loaded.interrupted
    assert loaded.net.config() == ref.net.config()
    assert loaded.rd_residual.shape == ref.rd_residual.shape
    # snapshots at every checkpoint: t = 0, 0.4, ..., 2.0
    np.testing.assert_allclose(loaded.snapshots.t, np.arange(6) * CHECKPOINT)
    np.testing.assert_array_equal(loaded.snapshots.theta[0], ref.net0.get_flat())
    np.testing.assert_array_equal(loaded.snapshots.net(-1).get_flat(), ref.net.get_flat())
    assert loaded.meta["mfntk_version"] == mf.__version__
    assert loaded.meta["seeds"] == {"net": 3, "run": 0, "data": 2}
    assert {"host", "platform", "cpus", "numpy"} <= set(loaded.meta["machine"])
    with h5py.File(path, "r") as f:
        assert f["snapshots/theta"].fletcher32
        assert f["snapshots/theta"].chunks == (1, student().n_params)
    assert not os.path.exists(str(path) + ".partial")


def test_snapshot_interval_and_no_checkpoints(tmp_path):
    path = tmp_path / "run.h5"
    traj = mf.simulate(student(), data(), **RUN, out=path)
    np.testing.assert_allclose(traj.snapshots.t, [0.0, 2.0])     # t = 0 and the end only
    sim = mf.Simulation(student(), data(), **RUN)
    traj = sim.run(out=path, checkpoint_every=1.0, snapshot_every=0.25)
    np.testing.assert_allclose(traj.snapshots.t, [0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.0])  # 0.25 -> 3 records


def _run_until_killed(monkeypatch, path, ds, mode):
    """Write a run to path that fails right after the record of step KILL_STEP."""
    record = mf.Simulation._record

    def record_then_die(sim):
        record(sim)
        if sim.step == KILL_STEP:
            raise _Killed

    monkeypatch.setattr(mf.Simulation, "_record", record_then_die)
    with pytest.raises(_Killed):
        mf.simulate(student(), ds, **opts(mode), out=path, checkpoint_every=CHECKPOINT)
    monkeypatch.undo()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_resume_is_bit_identical(tmp_path, monkeypatch, mode):
    path = tmp_path / "run.h5"
    ref = mf.simulate(student(), data(), **opts(mode))
    _run_until_killed(monkeypatch, path, data(), mode)
    partial = _io.load(path)
    assert not partial.complete
    assert partial.step[-1] == 24          # the last checkpoint before the failure
    resumed = mf.resume(path)
    assert resumed.complete
    assert_same_run(ref, resumed)
    assert_same_run(ref, _io.load(path))
    np.testing.assert_allclose(resumed.snapshots.t, np.arange(6) * CHECKPOINT)


def test_resume_of_complete_run_and_extension(tmp_path):
    path = tmp_path / "run.h5"
    ref = mf.simulate(student(), data(), **opts("online", t_max=3.0))
    mf.simulate(student(), data(), **opts("online"), out=path, checkpoint_every=CHECKPOINT)
    again = mf.resume(path)
    assert len(again) == 21
    longer = mf.resume(path, t_max=3.0)
    # 2.0 is a record of the longer run too, so the records coincide
    assert_same_run(ref, longer)
    with pytest.raises(ValueError, match="t_max"):
        mf.resume(path, t_max=1.0)


def test_resume_needs_data_when_the_sampler_cannot_be_stored(tmp_path, monkeypatch):
    base = data()
    sampler = base.sampler
    ds = mf.datasets.Dataset(base.X, base.y, sampler=lambda rng, m: sampler(rng, m), name="lambda")
    path = tmp_path / "run.h5"
    ref = mf.simulate(student(), ds, **opts("online"))
    _run_until_killed(monkeypatch, path, ds, "online")
    with pytest.raises(ValueError, match="data"):
        mf.resume(path)
    with pytest.raises(ValueError, match="data: does not hold the training set"):
        mf.resume(path, data=(base.X[:-1], base.y[:-1]))
    assert_same_run(ref, mf.resume(path, data=ds))


_CHILD = textwrap.dedent("""
    import os, sys, time
    import mfntk as mf
    _replace = os.replace
    def slow_replace(src, dst):
        _replace(src, dst)
        time.sleep(0.4)    # slow checkpoints down so that the parent kills the run mid-way
    os.replace = slow_replace
    D = {D}
    data = mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(D, "tanh", seed=1), D, 40, 30, noise=0.1, seed=2)
    net = mf.TwoLayer(D, {WIDTH}, "tanh", scaling="mf", bias=True, b_std=0.5, seed=3)
    mf.simulate(net, data, out=sys.argv[1], checkpoint_every={CHECKPOINT}, progress=False, **{OPTS})
""")


def test_sigkill_then_resume(tmp_path):
    path = tmp_path / "killed.h5"
    script = _CHILD.format(D=D, WIDTH=WIDTH, CHECKPOINT=CHECKPOINT, OPTS=opts("langevin"))
    child = subprocess.Popen([sys.executable, "-c", script, str(path)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while True:
            assert child.poll() is None, f"the run ended before it could be killed: {child.stderr.read()!r}"
            assert time.monotonic() < deadline, "no checkpoint after t = 0 appeared"
            if path.exists():
                with h5py.File(path, "r") as f:     # only complete files ever appear under this name
                    if f["checkpoint"].attrs["step"] > 0:
                        break
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    partial = _io.load(path)
    assert not partial.complete and 0 < partial.step[-1] < 40
    ref = mf.simulate(student(), data(), **opts("langevin"))
    resumed = mf.resume(path)
    assert_same_run(ref, resumed)


def test_missing_corrupt_and_truncated_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        _io.load(tmp_path / "absent.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"this is not HDF5" * 100)
    with pytest.raises(_io.TrajectoryFileError, match="garbage.h5.*corrupt or truncated"):
        _io.load(garbage)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(_io.TrajectoryFileError, match="not an mfntk trajectory"):
        _io.load(other)
    path = tmp_path / "run.h5"
    mf.simulate(student(), data(), **RUN, out=path)
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(_io.TrajectoryFileError, match="truncated.h5"):
        _io.load(truncated)
    with pytest.raises(_io.TrajectoryFileError):
        mf.resume(truncated)
    assert issubclass(_io.TrajectoryFileError, ValueError)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(raw)
    with h5py.File(broken, "a") as f:
        del f["checkpoint"]
    with pytest.raises(_io.TrajectoryFileError, match="/checkpoint is missing"):
        _io.load(broken)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every"):
        mf.simulate(student(), data(), **RUN, checkpoint_every=1.0)
    with pytest.raises(TypeError, match="out"):
        mf.simulate(student(), data(), **RUN, out=3)
    with pytest.raises(FileNotFoundError, match="out"):
        mf.simulate(student(), data(), **RUN, out=tmp_path / "no" / "such" / "dir.h5")
    with pytest.raises(ValueError, match="checkpoint_every"):
        mf.simulate(student(), data(), **RUN, out=tmp_path / "r.h5", checkpoint_every=-1.0)
    with pytest.raises(TypeError, match="path"):
        _io.load(None)


# ---- checkpoints whose cost does not grow with the run -----------------------------------------

def _checkpoint_sizes(monkeypatch, path, **run):
    """Run to completion, recording the size of the file and of its parts folder after each checkpoint."""
    sizes = []
    write = _io.TrajectoryWriter.write

    def write_and_measure(self, *args, **kwargs):
        write(self, *args, **kwargs)
        parts = [os.path.join(self.parts_dir, n) for n in self.parts]
        sizes.append((os.path.getsize(self.path), sum(os.path.getsize(p) for p in parts), len(self.parts)))

    monkeypatch.setattr(_io.TrajectoryWriter, "write", write_and_measure)
    traj = mf.simulate(mf.TwoLayer(D, 512, "tanh", seed=3), data(), **run)
    monkeypatch.undo()
    return traj, sizes


def test_checkpoints_do_not_rewrite_the_snapshots(tmp_path, monkeypatch):
    path = tmp_path / "long.h5"
    run = dict(RUN, t_max=4.0, record_every=0.05, out=path, checkpoint_every=0.05, progress=False)
    traj, sizes = _checkpoint_sizes(monkeypatch, path, **run)
    during = sizes[1:-1]                       # the first checkpoint and the completing one aside
    assert len(during) >= 70 and during[-1][2] == len(during) + 1     # one part per checkpoint
    main = [s[0] for s in during]
    # the rewritten file holds no snapshot: it grows only by the records (a few bytes each)
    assert max(main) - min(main) < 0.2 * min(main)
    assert during[-1][1] > 20 * (max(main) - min(main))               # the snapshots went to the parts
    # complete: one self-contained file again
    assert not os.path.exists(str(path) + ".parts") and sizes[-1][2] == 0
    ref = mf.simulate(mf.TwoLayer(D, 512, "tanh", seed=3), data(), **dict(run, out=None, checkpoint_every=None))
    assert_same_run(ref, traj)
    assert len(traj.snapshots) == len(during) + 2
    np.testing.assert_array_equal(traj.snapshots.theta[-1], ref.net.get_flat())


def test_a_killed_run_keeps_its_parts_and_resumes(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    ref = mf.simulate(student(), data(), **opts("minibatch"))
    _run_until_killed(monkeypatch, path, data(), "minibatch")
    parts = sorted(os.listdir(str(path) + ".parts"))
    assert len(parts) == 4                     # steps 0, 8, 16, 24
    orphan = os.path.join(str(path) + ".parts", "snapshots-000000000099-000000000099.h5")
    with open(orphan, "wb") as fh:             # written by a run killed before its checkpoint committed
        fh.write(b"never listed")
    partial = mf.load(path)
    np.testing.assert_array_equal(partial.snapshots.step, [0, 8, 16, 24])
    resumed = mf.resume(path)
    assert_same_run(ref, resumed)
    np.testing.assert_array_equal(resumed.snapshots.step, [0, 8, 16, 24, 32, 40])
    assert not os.path.exists(str(path) + ".parts")


def test_a_missing_part_is_a_file_error(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    _run_until_killed(monkeypatch, path, data(), "minibatch")
    os.remove(os.path.join(str(path) + ".parts", sorted(os.listdir(str(path) + ".parts"))[1]))
    with pytest.raises(_io.TrajectoryFileError, match="missing from .*copy the folder with the file"):
        mf.load(path)
    with pytest.raises(_io.TrajectoryFileError):
        mf.resume(path)


def test_extending_a_complete_run_unfolds_and_refolds_its_snapshots(tmp_path):
    path = tmp_path / "run.h5"
    ref = mf.simulate(student(), data(), **opts("minibatch", t_max=3.0))
    mf.simulate(student(), data(), **opts("minibatch"), out=path, checkpoint_every=CHECKPOINT)
    longer = mf.resume(path, t_max=3.0)
    assert_same_run(ref, longer)
    np.testing.assert_array_equal(longer.snapshots.step, [0, 8, 16, 24, 32, 40, 48, 56, 60])
    assert not os.path.exists(str(path) + ".parts")
