"""Reading a trajectory file never runs code from it: built-in samplers are stored as
numbers, any other sampler is not stored at all, and a crafted pickle is refused (by
mf.resume and by `mfntk resume`) without being executed."""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import mfntk as mf
from mfntk import _io, datasets

D = 4
RUN = dict(t_max=0.6, dt=0.05, method="euler", record_every=0.1, batch=6, threads=1, progress=False)


class _Payload:
    """Unpickling this creates the file ``marker``: the stand-in for an attacker's code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


class _UserSampler:
    """A sampler that is not a built-in one (importable, so it pickles)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, rng, m):
        return self.base(rng, m)


def _student():
    return mf.TwoLayer(D, 8, "tanh", bias=True, seed=1)


TEACHERS = {
    "single_neuron": lambda: datasets.SingleNeuron(D, "quadratic", c0=-1.0, seed=1),
    "two_layer": lambda: datasets.TwoLayerTeacher(D, 3, "tanh", seed=2, a=[[1.0], [-0.5], [2.0]]),
    "quadratic": lambda: datasets.Quadratic(D, seed=3),
    "low_dim": lambda: datasets.LowDim(D, 2, seed=4),
    "sparse_linear": lambda: datasets.SparseLinear(D, 2, seed=5),
}


def _online_data(kind):
    if kind == "mixture":
        return datasets.gaussian_mixture(D, 20, 0, delta=0.3, seed=6)
    return datasets.teacher_dataset(TEACHERS[kind](), D, 20, 0, inputs="sphere", noise=0.1, seed=7)


def _interrupted_run(path, ds, monkeypatch, **extra):
    """An online run written to path that stops after its checkpoint at step 4 (t = 0.2)."""
    record = mf.Simulation._record

    def record_then_die(sim):
        record(sim)
        if sim.step == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(mf.Simulation, "_record", record_then_die)
    with pytest.raises(KeyboardInterrupt):
        mf.simulate(_student(), ds, **RUN, out=path, checkpoint_every=0.2, **extra)
    monkeypatch.undo()


def _same(a, b):
    for key, value in a.series().items():
        np.testing.assert_array_equal(value, b.series()[key], err_msg=key)
    np.testing.assert_array_equal(a.net.get_flat(), b.net.get_flat())


@pytest.mark.parametrize("kind", sorted(TEACHERS) + ["mixture"])
def test_builtin_samplers_are_stored_as_numbers_and_resume_bit_for_bit(tmp_path, monkeypatch, kind):
    path = tmp_path / "run.h5"
    ref = mf.simulate(_student(), _online_data(kind), **RUN)
    _interrupted_run(path, _online_data(kind), monkeypatch)
    with h5py.File(path, "r") as f:
        assert "sampler_pickle" not in f["data"].attrs
        assert "sampler" in f["data"]
    _same(ref, mf.resume(path))


def test_spec_round_trip_draws_the_same_samples():
    for kind in sorted(TEACHERS) + ["mixture"]:
        sampler = _online_data(kind).sampler
        copy = datasets.sampler_from_spec(datasets.sampler_spec(sampler))
        for a, b in zip(sampler(np.random.default_rng(1), 9), copy(np.random.default_rng(1), 9)):
            np.testing.assert_array_equal(a, b)
    user = datasets.teacher_dataset(datasets.SingleNeuron(D, np.sin), D, 5).sampler
    assert datasets.sampler_spec(user) is None
    assert datasets.sampler_spec(lambda rng, m: None) is None
    with pytest.raises(ValueError, match="unknown kind 'os.system'"):
        datasets.sampler_from_spec({"kind": "os.system"})
    with pytest.raises(ValueError, match="lacks the field 'sd_minus'"):
        datasets.sampler_from_spec({"kind": "mixture", "sd_plus": np.ones(3)})


def test_a_user_sampler_is_never_pickled(tmp_path, monkeypatch):
    ds = _online_data("quadratic")
    ds.sampler = _UserSampler(ds.sampler)
    path = tmp_path / "run.h5"
    _interrupted_run(path, ds, monkeypatch)
    with h5py.File(path, "r") as f:
        assert "sampler_pickle" not in f["data"].attrs and "sampler" not in f["data"]
        assert "data=" in f["data"].attrs["sampler_note"]
    with pytest.raises(ValueError, match="data"):
        mf.resume(path)
    ref = mf.simulate(_student(), ds, **RUN)
    _same(ref, mf.resume(path, data=ds))


def _crafted_file(tmp_path, monkeypatch, marker, online=True):
    """A trajectory whose sampler was replaced by a pickle that creates ``marker`` when loaded."""
    path = tmp_path / "crafted.h5"
    if online:
        _interrupted_run(path, _online_data("quadratic"), monkeypatch)
    else:
        run = {**RUN, "batch": None}
        mf.simulate(_student(), _online_data("quadratic"), **run, out=path)
    with h5py.File(path, "a") as f:
        del f["data/sampler"]
        f["data"].attrs["sampler_pickle"] = np.void(pickle.dumps(_Payload(marker)))
        _io._seal(f["data"])   # an attacker writes a consistent file: the checksum is no defence
    return path


def test_crafted_pickle_is_refused_by_resume_and_load(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = _crafted_file(tmp_path, monkeypatch, marker)
    mf.load(path)
    with pytest.raises(ValueError, match="pickle.*never unpickles.*data="):
        mf.resume(path)
    assert not marker.exists()
    # the data given again resumes the run; the pickle is neither read nor kept
    resumed = mf.resume(path, data=_online_data("quadratic"))
    assert resumed.complete and not marker.exists()
    with h5py.File(path, "r") as f:
        assert "sampler_pickle" not in f["data"].attrs


def test_crafted_pickle_is_refused_by_the_command_line(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = _crafted_file(tmp_path, monkeypatch, marker)
    proc = subprocess.run([sys.executable, "-m", "mfntk.cli", "resume", str(path), "--quiet"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 2
    assert "never unpickles" in proc.stderr and "data=" in proc.stderr
    assert not marker.exists()


def test_full_batch_resume_drops_a_pickle_without_running_it(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = _crafted_file(tmp_path, monkeypatch, marker, online=False)
    traj = mf.resume(path, t_max=0.8)
    assert traj.complete and not marker.exists()
    with h5py.File(path, "r") as f:
        assert "sampler_pickle" not in f["data"].attrs


# ---- damaged files, concurrent writers, paths --------------------------------------------------

def _good_file(tmp_path, name="good.h5"):
    path = tmp_path / name
    run = {**RUN, "batch": None, "diagnostics": True, "linearized": True}
    mf.simulate(_student(), _online_data("quadratic"), **run, out=path, checkpoint_every=0.2)
    return path


def _mutate(path, fn, reseal=True):
    with h5py.File(path, "a") as f:
        obj = fn(f)
        if reseal and obj is not None:
            _io._seal(obj)


def _set(where, key, value):
    def fn(f):
        f[where].attrs[key] = value
        return f[where]
    return fn


def _delete(name):
    def fn(f):
        parent = f[name].parent
        del f[name]
        return None if parent.name == "/" and False else None
    return fn


def _del_attr(where, key):
    def fn(f):
        del f[where].attrs[key]
        return f[where]
    return fn


def _replace_dataset(name, data):
    def fn(f):
        del f[name]
        f[name] = data
        return None
    return fn


def _config_with(**changes):
    def fn(f):
        import json
        cfg = json.loads(f.attrs["config"])
        cfg.update(changes)
        f.attrs["config"] = json.dumps(cfg)
        return f["/"]
    return fn


def _net_config_with(**changes):
    def fn(f):
        import json
        cfg = json.loads(f["net0"].attrs["config"])
        cfg.update(changes)
        f["net0"].attrs["config"] = json.dumps(cfg)
        return f["net0"]
    return fn


VARIANTS = {
    "step -5": _set("checkpoint", "step", -5),
    "step past t_max": _set("checkpoint", "step", 10 ** 6),
    "step as text": _set("checkpoint", "step", "four"),
    "record_steps 0": _set("checkpoint", "record_steps", 0),
    "rng not JSON": _set("checkpoint", "rng", "{not json"),
    "rng a list": _set("checkpoint", "rng", "[1, 2]"),
    "wall_time nan": _set("checkpoint", "wall_time", float("nan")),
    "layout bad": _set("checkpoint", "layout", '{"particles": 3}'),
    "no layout": _del_attr("checkpoint", "layout"),
    "no step": _del_attr("checkpoint", "step"),
    "no config": _del_attr("/", "config"),
    "config width 1e8": _net_config_with(width=10 ** 8),
    "config width text": _net_config_with(width="wide"),
    "config unknown activation": _net_config_with(activation="gelu"),
    "config dt negative": _config_with(dt=-0.1),
    "config method unknown": _config_with(method="leapfrog"),
    "format version 99": _set("/", "format_version", 99),
    "format version text": _set("/", "format_version", "one"),
    "no state": _delete("checkpoint/state"),
    "state truncated": _replace_dataset("checkpoint/state", np.zeros(3)),
    "state as text": _replace_dataset("checkpoint/state", np.array([b"x"] * 10)),
    "theta0 wrong shape": _replace_dataset("net0/theta", np.zeros(5)),
    "series ragged": _replace_dataset("series/train_risk", np.zeros(2)),
    "no series t": _delete("series/t"),
    "no X": _delete("data/X"),
    "y rows differ": _replace_dataset("data/y", np.zeros((3, 1))),
    "snapshots theta wrong width": _replace_dataset("snapshots/theta", np.zeros((2, 3))),
    "no snapshots": _delete("snapshots"),
    "no net0": _delete("net0"),
    "K0 a vector": _replace_dataset("checkpoint/K0", np.zeros(4)),
    "prev_W wrong shape": _replace_dataset("checkpoint/prev_W", np.zeros((2, 2))),
    "attributes changed without the checksum": lambda f: (f["checkpoint"].attrs.__setitem__("step", 2), None)[1],
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_damaged_file_variants_raise_trajectory_file_error(tmp_path, variant):
    path = _good_file(tmp_path)
    _mutate(path, VARIANTS[variant])
    with pytest.raises(_io.TrajectoryFileError):
        mf.load(path)
    with pytest.raises(_io.TrajectoryFileError):
        mf.resume(path, t_max=1.0)
    from mfntk import cli
    proc_code = cli.main(["plot", str(path), "--out", str(tmp_path / "figs"), "--quiet"])
    assert proc_code == 2


def test_flipped_bits_never_give_other_numbers(tmp_path):
    """A flipped bit anywhere in the file is detected or harmless: never a silently different run."""
    path = _good_file(tmp_path)
    ref = mf.load(path)
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    outcomes = {"detected": 0, "harmless": 0}
    for pos in rng.choice(len(raw) * 8, size=120, replace=False):
        damaged = bytearray(raw)
        damaged[pos // 8] ^= 1 << (pos % 8)
        copy = tmp_path / "flipped.h5"
        copy.write_bytes(bytes(damaged))
        try:
            got = mf.load(copy)
        except (_io.TrajectoryFileError, MemoryError):
            outcomes["detected"] += 1
            continue
        for key, value in ref.series().items():
            np.testing.assert_array_equal(value, got.series()[key], err_msg=f"bit {pos}: {key}")
        np.testing.assert_array_equal(ref.net.get_flat(), got.net.get_flat(), err_msg=f"bit {pos}")
        np.testing.assert_array_equal(ref.snapshots.theta, got.snapshots.theta, err_msg=f"bit {pos}")
        assert got.config == ref.config, f"bit {pos}"
        outcomes["harmless"] += 1
    assert outcomes["detected"] > 0


def test_a_second_writer_is_refused(tmp_path):
    path = _good_file(tmp_path)
    lock = _io._Lock(str(path))          # what a running writer holds
    try:
        with pytest.raises(_io.OutputLockedError, match="another process is writing"):
            mf.simulate(_student(), _online_data("quadratic"), **{**RUN, "batch": None}, out=path)
        with pytest.raises(_io.OutputLockedError):
            mf.resume(path, t_max=1.0)
    finally:
        lock.release()
    assert mf.load(path).complete          # the file the first writer owns is intact
    assert not os.path.exists(str(path) + ".lock")


_WRITER = """
import os, sys, time
import mfntk as mf
_replace = os.replace
def slow_replace(src, dst):
    _replace(src, dst)
    time.sleep(0.3)
os.replace = slow_replace
X = __import__("numpy").random.default_rng(0).standard_normal((20, 4))
mf.simulate(mf.TwoLayer(4, 8, "tanh"), (X, X[:, :1]), t_max=2.0, dt=0.05, record_every=0.1, progress=False,
            out=sys.argv[1], checkpoint_every=0.1)
"""


def test_two_processes_on_one_file(tmp_path):
    path = tmp_path / "shared.h5"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], env=env, stderr=subprocess.PIPE)
    try:
        import time
        deadline = time.monotonic() + 60
        while not path.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.02)
        second = subprocess.run([sys.executable, "-c", _WRITER, str(path)], env=env, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode != 0 and "another process is writing" in second.stderr
    finally:
        assert first.wait(timeout=120) == 0
        first.stderr.close()
    assert mf.load(path).complete


def test_stale_partial_file_is_cleaned(tmp_path):
    path = _good_file(tmp_path)
    partial = tmp_path / "good.h5.partial"
    partial.write_bytes(b"half a checkpoint")
    mf.resume(path, t_max=0.8)
    assert not partial.exists()


def test_existing_non_trajectory_file_is_never_overwritten(tmp_path):
    precious = tmp_path / "thesis.h5"
    precious.write_bytes(b"years of work")
    with pytest.raises(ValueError, match="exists and is not an mfntk trajectory"):
        mf.simulate(_student(), _online_data("quadratic"), **{**RUN, "batch": None}, out=precious)
    assert precious.read_bytes() == b"years of work"


@pytest.mark.parametrize("name", ["../escaped.h5", "/tmp/absolute.h5", "sub/dir.h5", ".."])
def test_config_output_file_stays_inside_out(tmp_path, capsys, name):
    from mfntk import cli
    config = tmp_path / "c.toml"
    config.write_text('[data]\nkind = "teacher"\nd = 3\nn_train = 10\n[net]\nwidth = 4\n[run]\nt_max = 0.2\n'
                      f'dt = 0.1\n[output]\nfile = "{name}"\n')
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--out", str(out), "--quiet"]) == 2
    assert "output.file" in capsys.readouterr().err
    assert not (tmp_path / "escaped.h5").exists() and not os.path.exists("/tmp/absolute.h5")


def test_a_full_disk_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    """A checkpoint that fails to write (ENOSPC) stops the run with the OSError, leaves no
    temporary file and no lock, and the file keeps its previous checkpoint, which resumes."""
    import errno
    path = tmp_path / "run.h5"
    run = {**RUN, "batch": None}
    write = _io.TrajectoryWriter._write_checkpoint
    calls = []

    def fill_the_disk(self, f, sd):
        calls.append(sd["step"])
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, f, sd)

    monkeypatch.setattr(_io.TrajectoryWriter, "_write_checkpoint", fill_the_disk)
    with pytest.raises(OSError, match="No space left"):
        mf.simulate(_student(), _online_data("quadratic"), **run, out=path, checkpoint_every=0.2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("run.h5.parts")) == ["run.h5"]
    partial = mf.load(path)
    assert not partial.complete and partial.step[-1] == calls[1]
    ref = mf.simulate(_student(), _online_data("quadratic"), **run)
    _same(ref, mf.resume(path))


def test_the_command_line_reports_memory_errors_without_a_traceback(tmp_path, capsys):
    from mfntk import cli
    config = tmp_path / "c.toml"
    config.write_text('[data]\nkind = "teacher"\nd = 3\nn_train = 10\n[net]\nwidth = 100000000000\n[run]\n'
                      "t_max = 0.2\ndt = 0.1\n")
    assert cli.main(["run", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mfntk run: error: ") and "memory" in err and "Traceback" not in err
