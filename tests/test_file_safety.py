"""Reading a trajectory file never runs code from it: built-in samplers are stored as
numbers, a pickle is written and read only with trust=True, and a crafted pickle is
refused (by mf.resume and by `mfntk resume`) without being executed."""
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


def test_user_sampler_is_not_pickled_without_trust(tmp_path, monkeypatch):
    ds = _online_data("quadratic")
    ds.sampler = _UserSampler(ds.sampler)
    path = tmp_path / "run.h5"
    _interrupted_run(path, ds, monkeypatch)
    with h5py.File(path, "r") as f:
        assert "sampler_pickle" not in f["data"].attrs and "sampler" not in f["data"]
        assert "trust=True" in f["data"].attrs["sampler_note"]
    with pytest.raises(ValueError, match="data"):
        mf.resume(path)
    ref = mf.simulate(_student(), ds, **RUN)
    _same(ref, mf.resume(path, data=ds))


def test_user_sampler_with_trust_on_both_sides(tmp_path, monkeypatch):
    ds = _online_data("quadratic")
    ds.sampler = _UserSampler(ds.sampler)
    path = tmp_path / "run.h5"
    _interrupted_run(path, ds, monkeypatch, trust=True)
    with pytest.raises(ValueError, match="trust: .*pickle.*runs any code"):
        mf.resume(path)
    ref = mf.simulate(_student(), ds, **RUN)
    _same(ref, mf.resume(path, trust=True))


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
    return path


def test_crafted_pickle_is_refused_by_resume_and_load(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = _crafted_file(tmp_path, monkeypatch, marker)
    mf.load(path)
    with pytest.raises(ValueError, match="trust"):
        mf.resume(path)
    assert not marker.exists()
    # the opt-in does what it says: the payload runs (and then fails to be a sampler)
    with pytest.raises(Exception):
        mf.resume(path, trust=True)
    assert marker.exists()


def test_crafted_pickle_is_refused_by_the_command_line(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = _crafted_file(tmp_path, monkeypatch, marker)
    proc = subprocess.run([sys.executable, "-m", "mfntk.cli", "resume", str(path), "--quiet"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 2
    assert "--trust" in proc.stderr and "pickle" in proc.stderr
    assert not marker.exists()


def test_full_batch_resume_drops_a_pickle_without_running_it(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = _crafted_file(tmp_path, monkeypatch, marker, online=False)
    traj = mf.resume(path, t_max=0.8)
    assert traj.complete and not marker.exists()
    with h5py.File(path, "r") as f:
        assert "sampler_pickle" not in f["data"].attrs
