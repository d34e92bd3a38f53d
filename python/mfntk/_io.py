"""Trajectories on disk (HDF5): the writer of runs and checkpoints, and the readers.

This module only reads and writes; running (and resuming) a simulation is
:mod:`mfntk._simulate`'s.

File layout (``format = "mfntk-trajectory"``, ``format_version = 1``)
--------------------------------------------------------------------
root attributes
    ``format``, ``format_version``, ``mfntk_version``, ``config`` (JSON of
    :meth:`Simulation.config`), ``seeds`` (JSON: network, run, data), ``machine`` (JSON:
    host, platform, CPU count, Python / numpy / h5py versions), ``created``, ``updated``,
    ``complete`` (the run reached t_max), ``interrupted`` (stopped by Ctrl-C),
    ``checkpoint_steps``, ``snapshot_steps``.
``/series/<name>``
    The recorded time series (``t``, ``step``, ``train_risk``, ... as in
    :class:`~mfntk.Trajectory`), float64 / int64, one entry per record.
``/snapshots``
    ``t`` (m,), ``step`` (m,), ``theta`` (m, P): the particles [a | W | b] (layout of
    ``TwoLayer.get_flat``) at the snapshot times; ``theta`` is chunked one snapshot per
    chunk and compressed (gzip + shuffle).
``/net0``
    ``theta`` (P,) the initial particles, attribute ``config`` (JSON of ``TwoLayer.config``).
``/checkpoint``
    Everything :meth:`Simulation.state_dict` returns, stored losslessly: ``state`` (the
    engine's state vector in the network's dtype), ``K0``, ``prev_a`` / ``prev_W`` /
    ``prev_b``; attributes ``step``, ``record_steps``, ``rng`` (JSON of the numpy
    bit-generator state), ``prev_risk``, ``wall_time``.
``/data``
    ``X``, ``y`` (training set, float64) and ``X_test``, ``y_test`` (the test set the run
    evaluates on: the data's split, or the sample it drew from the sampler); attributes
    ``name``, ``task``, ``description``, ``sampler_repr``. A built-in sampler (a
    built-in teacher or mixture; needed by :func:`resume` for online runs) is stored as
    data in the group ``/data/sampler``: its ``kind`` and numbers as JSON attributes, its
    arrays as datasets, a nested spec as a subgroup (see
    :func:`mfntk.datasets.sampler_spec`). Any other sampler is stored only when the run
    was started with ``trust=True``, as a pickle in the attribute ``sampler_pickle``.

Checkpoints
-----------
A checkpoint is written at a record (the run's only synchronisation points), so the
interval ``checkpoint_every`` is rounded up to a whole number of record intervals. Each
checkpoint writes a new file ``<file>.partial`` (the unchanging groups copied from the last
checkpoint, the snapshots appended, the records and the state written), flushes it to disk
(fsync) and renames it over ``<file>``
(``os.replace``, atomic on POSIX and Windows). A process killed at any moment (``kill -9``
included) leaves either the previous or the new checkpoint, never a half-written file: at
most one interval of work is lost, and :func:`resume` redoes it with the same numbers. The
copy makes a checkpoint cost O(file size); with large data sets or many snapshots choose
``checkpoint_every`` so that this stays a small fraction of the run.

Security: reading a file never runs code from it. :func:`load` reads arrays and JSON
only; :func:`resume` rebuilds a built-in sampler from its stored numbers, and unpickles a
``sampler_pickle`` only when called with ``trust=True`` (``mfntk resume --trust``) for an
online run that needs it; without ``trust`` it refuses with a message saying why, and the
pickle is dropped from the file it updates. See SECURITY.md.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import platform
import sys
import time

import numpy as np

FORMAT = "mfntk-trajectory"
FORMAT_VERSION = 1

__all__ = ["load", "load_data", "read_run", "TrajectoryWriter", "Snapshots", "TrajectoryFileError", "StoredRun"]


class TrajectoryFileError(ValueError):
    """A file is not a readable mfntk trajectory (corrupt, truncated, or another format)."""


class Snapshots:
    """Particle snapshots of a run written to disk.

    Attributes
    ----------
    t : ndarray (m,)
        Times (mean-field units).
    step : ndarray (m,)
        Step indices.
    theta : ndarray (m, P)
        The particles at each snapshot, laid out as ``TwoLayer.get_flat()``.
    """

    def __init__(self, t, step, theta, net_config):
        self.t, self.step, self.theta = np.asarray(t, float), np.asarray(step, np.int64), np.asarray(theta)
        self._config = net_config

    def __len__(self):
        return len(self.t)

    def net(self, i):
        """The network at snapshot ``i`` (a :class:`~mfntk.TwoLayer`)."""
        net = _net_from_config(self._config)
        net.set_flat(self.theta[i])
        return net

    def nets(self):
        """Pairs (t, TwoLayer) for every snapshot."""
        return [(float(self.t[i]), self.net(i)) for i in range(len(self))]

    def __repr__(self):
        span = f", t = {self.t[0]:.4g} .. {self.t[-1]:.4g}" if len(self) else ""
        return f"Snapshots({len(self)} snapshots of {self.theta.shape[-1]} parameters{span})"


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def _h5py():
    import h5py
    return h5py


def _json(obj):
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return repr(obj)


def _machine():
    import h5py
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cpus = os.cpu_count()
    return {
        "host": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor(), "cpus": cpus, "python": sys.version.split()[0],
        "numpy": np.__version__, "h5py": h5py.__version__,
    }


def _net_from_config(cfg):
    from ._network import TwoLayer
    return TwoLayer(**cfg)


def _check_path(path, name="path"):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{name}: expected a file path, got {type(path).__name__}")
    return os.fsdecode(path)


def _steps_of(interval, sim, name):
    """A time interval as a whole number of record intervals (rounded up), in steps; None stays None."""
    if interval is None:
        return None
    from ._validation import check_float
    interval = check_float(interval, name, minimum=0.0, strict=True)
    records = max(1, int(math.ceil(interval / (sim.record_steps * sim.dt) - 1e-9)))
    return records * sim.record_steps


def _fsync_dir(directory):
    if os.name != "posix":  # pragma: no cover
        return
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------

class TrajectoryWriter:
    """Writes a run to ``path``: the first file at t = 0, then checkpoints (see the module doc).

    Called with the simulation after every record; :meth:`finish` writes the closing
    checkpoint. Make one with :meth:`create` (a new file) or :meth:`reopen` (a resumed run).
    """

    @classmethod
    def create(cls, sim, output):
        """A writer of a new file for the output options ``output`` (an OutputOptions)."""
        directory = os.path.dirname(os.path.abspath(output.out))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"out: the folder {directory} does not exist")
        ckpt = _steps_of(output.checkpoint_every, sim, "checkpoint_every")
        snap = _steps_of(output.snapshot_every, sim, "snapshot_every") if output.snapshot_every is not None else ckpt
        return cls(sim, output.out, ckpt, snap, fresh=True, trust=output.trust)

    @classmethod
    def reopen(cls, sim, stored, trust=False):
        """A writer that continues the file of ``stored`` (a :class:`StoredRun`) for a resumed ``sim``."""
        writer = cls(sim, stored.path, stored.checkpoint_steps, stored.snapshot_steps, fresh=False, trust=trust)
        writer.last_step = sim.step
        return writer

    def __init__(self, sim, path, checkpoint_steps, snapshot_steps, fresh=True, trust=False):
        self.sim, self.path, self.trust = sim, path, bool(trust)
        self.tmp = path + ".partial"
        self.checkpoint_steps, self.snapshot_steps = checkpoint_steps, snapshot_steps
        self.pending = []          # snapshots taken since the last checkpoint: (t, step, theta)
        self.written_records = 0   # records already in the file
        self.last_step = None      # step of the checkpoint in the file
        self.fresh = fresh
        # Simulation.run adds its wall time only when it returns: count it here for the checkpoints
        self._clock0, self._wall0 = time.perf_counter(), sim.wall_time

    # called by Simulation.run after every record
    def __call__(self, sim):
        step = sim.step
        final = step >= sim.steps_total
        if step == 0 or final or (self.snapshot_steps and step % self.snapshot_steps == 0):
            self.pending.append((step * sim.dt, step, sim.state[:sim.layout["particles"]].copy()))
        if self.fresh:
            self.write(first=True)
            self.fresh = False
        elif final or (self.checkpoint_steps and step % self.checkpoint_steps == 0):
            self.write()

    def finish(self, interrupted):
        """The closing checkpoint (after the last record, or after Ctrl-C)."""
        sim = self.sim
        if self.last_step != sim.step or self.pending or interrupted:
            if not self.pending or self.pending[-1][1] != sim.step:
                self.pending.append((sim.step * sim.dt, sim.step, sim.state[:sim.layout["particles"]].copy()))
            self.write(interrupted=interrupted)

    def write(self, first=False, interrupted=False):
        h5py = _h5py()
        sim = self.sim
        sd = sim.state_dict()
        sd["wall_time"] = self._wall0 + (time.perf_counter() - self._clock0)
        if os.path.exists(self.tmp):
            os.remove(self.tmp)
        with h5py.File(self.tmp, "w") as f:
            if first:
                self._write_static(f)
            else:
                # a fresh file with the unchanging groups copied (H5Ocopy: no re-encoding, and no
                # free space left behind as rewriting datasets in place would)
                with h5py.File(self.path, "r") as old:
                    for key, value in old.attrs.items():
                        f.attrs[key] = value
                    for group in ("net0", "data", "snapshots"):
                        old.copy(old[group], f, group)
                if not self.trust and "sampler_pickle" in f["data"].attrs:
                    del f["data"].attrs["sampler_pickle"]   # never carry code along unasked
            self._write_series(f, sd["series"])
            self._append_snapshots(f)
            self._write_checkpoint(f, sd, sim.layout)
            f.attrs["config"] = _json(sim.config())
            f.attrs["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            f.attrs["complete"] = bool(sim.step >= sim.steps_total)
            f.attrs["interrupted"] = bool(interrupted)
        _fsync_file(self.tmp)
        os.replace(self.tmp, self.path)
        _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        self.pending = []
        self.last_step = sim.step

    def _write_static(self, f):
        from . import __version__
        sim = self.sim
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["mfntk_version"] = __version__
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        f.attrs["machine"] = _json(_machine())
        f.attrs["seeds"] = _json({"net": sim.net0.seed, "run": sim.seed, "data": sim.data.info.get("seed")})
        f.attrs["checkpoint_steps"] = int(self.checkpoint_steps or 0)
        f.attrs["snapshot_steps"] = int(self.snapshot_steps or 0)
        g = f.create_group("net0")
        g.create_dataset("theta", data=sim.net0.get_flat())
        g.attrs["config"] = _json(sim.net0.config())
        _write_data(f.create_group("data"), sim, self.trust)
        P = sim.layout["particles"]
        s = f.create_group("snapshots")
        s.create_dataset("t", shape=(0,), maxshape=(None,), dtype="f8", chunks=(256,))
        s.create_dataset("step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(256,))
        s.create_dataset("theta", shape=(0, P), maxshape=(None, P), dtype=sim.net0.dtype, chunks=(1, P),
                         compression="gzip", compression_opts=4, shuffle=True)

    @staticmethod
    def _write_series(f, series):
        g = f.create_group("series")
        for name, values in series.items():
            arr = np.asarray(values)
            if arr.dtype == object:  # pragma: no cover - defensive
                raise TypeError(f"series {name!r}: cannot be stored (ragged)")
            g.create_dataset(name, data=arr)

    def _append_snapshots(self, f):
        if not self.pending:
            return
        s = f["snapshots"]
        m0, m = s["t"].shape[0], len(self.pending)
        for key in ("t", "step", "theta"):
            s[key].resize(m0 + m, axis=0)
        s["t"][m0:] = [p[0] for p in self.pending]
        s["step"][m0:] = [p[1] for p in self.pending]
        s["theta"][m0:] = np.stack([p[2] for p in self.pending])

    @staticmethod
    def _write_checkpoint(f, sd, layout):
        g = f.create_group("checkpoint")
        g.attrs["layout"] = _json(dict(layout))
        g.create_dataset("state", data=sd["state"])
        if sd["K0"] is not None:
            g.create_dataset("K0", data=sd["K0"])
        if sd["prev"] is not None:
            for key in ("a", "W", "b"):
                if sd["prev"][key] is not None:
                    g.create_dataset(f"prev_{key}", data=sd["prev"][key])
            g.attrs["prev_risk"] = sd["prev"]["risk"]
        g.attrs["step"] = sd["step"]
        g.attrs["record_steps"] = sd["record_steps"]
        g.attrs["rng"] = _json(sd["rng"])
        g.attrs["wall_time"] = sd["wall_time"]


def _write_data(g, sim, trust):
    data = sim.data
    g.create_dataset("X", data=np.asarray(data.X, np.float64))
    g.create_dataset("y", data=np.asarray(data.y, np.float64))
    if data.has_test:
        g.create_dataset("X_test", data=np.asarray(data.X_test, np.float64))
        g.create_dataset("y_test", data=np.asarray(data.y_test, np.float64))
        g.attrs["test_source"] = "split"
    elif sim.X_test is not None:
        g.create_dataset("X_test", data=np.asarray(sim.X_test, np.float64))
        g.create_dataset("y_test", data=np.asarray(sim.Y_test, np.float64))
        g.attrs["test_source"] = "sampler"
    g.attrs["name"] = data.name
    g.attrs["task"] = data.task
    g.attrs["description"] = data.description
    g.attrs["sampler_repr"] = repr(data.sampler) if data.sampler is not None else ""
    if data.sampler is None:
        return
    from .datasets import sampler_spec
    spec = sampler_spec(data.sampler)
    if spec is not None:
        _write_spec(g.create_group("sampler"), spec)
        return
    note = "resume an online run with mfntk.resume(path, data=...)"
    if not trust:
        g.attrs["sampler_note"] = ("the sampler is not a built-in one and was not stored (a pickle is stored "
                                   "only with trust=True); " + note)
        return
    try:
        blob = pickle.dumps(data.sampler, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        g.attrs["sampler_note"] = "the sampler could not be pickled; " + note
    else:
        g.attrs["sampler_pickle"] = np.void(blob)


_SPEC_DEPTH = 4   # a sampler spec nests a teacher spec: deeper trees are not mfntk's


def _write_spec(g, spec):
    """A sampler spec as HDF5: numbers and names as JSON attributes, arrays as datasets, dicts as groups."""
    for key, value in spec.items():
        if isinstance(value, dict):
            _write_spec(g.create_group(key), value)
        elif isinstance(value, np.ndarray):
            g.create_dataset(key, data=value)
        else:
            g.attrs[key] = _json(value)


def _read_spec(g, depth=0):
    """The inverse of :func:`_write_spec`: JSON and numeric arrays only, never code."""
    h5py = _h5py()
    if depth > _SPEC_DEPTH:
        raise ValueError("the sampler spec nests too deep")
    spec = {}
    for key, value in g.attrs.items():
        if not isinstance(value, str):
            raise ValueError(f"sampler attribute {key!r} is not JSON text")
        spec[key] = json.loads(value)
    for key, item in g.items():
        if isinstance(item, h5py.Group):
            spec[key] = _read_spec(item, depth + 1)
        elif item.dtype.kind in "fiu" and item.ndim <= 2:
            spec[key] = item[()]
        else:
            raise ValueError(f"sampler dataset {key!r} is not a numeric vector or matrix")
    return spec


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------

def _open(path):
    h5py = _h5py()
    path = _check_path(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such file: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise TrajectoryFileError(f"{path}: not a readable HDF5 file (corrupt or truncated?): {exc}") from None
    try:
        if f.attrs.get("format") != FORMAT:
            raise TrajectoryFileError(f"{path}: not an mfntk trajectory file (no format = {FORMAT!r} attribute)")
        version = int(f.attrs.get("format_version", -1))
        if version > FORMAT_VERSION or version < 1:
            raise TrajectoryFileError(f"{path}: trajectory format version {version} is not supported "
                                      f"(this mfntk reads up to {FORMAT_VERSION})")
        for group in ("series", "net0", "checkpoint", "snapshots"):
            if group not in f:
                raise TrajectoryFileError(f"{path}: the group /{group} is missing (truncated or corrupt file)")
    except TrajectoryFileError:
        f.close()
        raise
    except Exception as exc:  # h5py raises KeyError/OSError/RuntimeError on damaged metadata
        f.close()
        raise TrajectoryFileError(f"{path}: unreadable trajectory file (corrupt?): {exc}") from None
    return f


def _read(f, what, fn):
    try:
        return fn()
    except (KeyError, OSError, RuntimeError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise TrajectoryFileError(f"{f.filename}: cannot read {what} (corrupt file?): {exc}") from None


def _read_state_dict(f):
    g = f["checkpoint"]
    prev = None
    if "prev_risk" in g.attrs:
        prev = {"a": g["prev_a"][()], "W": g["prev_W"][()], "b": g["prev_b"][()] if "prev_b" in g else None,
                "risk": float(g.attrs["prev_risk"])}
    series = {}
    for name, ds in f["series"].items():
        arr = ds[()]
        series[name] = list(arr) if arr.ndim > 1 else arr.tolist()
    return {
        "state": g["state"][()], "step": int(g.attrs["step"]), "record_steps": int(g.attrs["record_steps"]),
        "series": series, "rng": json.loads(g.attrs["rng"]), "K0": g["K0"][()] if "K0" in g else None,
        "prev": prev, "wall_time": float(g.attrs["wall_time"]),
    }


def load(path):
    """Read a trajectory written by ``simulate(..., out=path)``.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    Trajectory
        The same object :func:`simulate` returns (``t``, ``train_risk``, ``test_risk``,
        ``net``, ``net0``, ``config``, the diagnostics ...), plus ``snapshots``
        (:class:`Snapshots`), ``path``, ``complete`` (the run reached t_max) and ``meta``
        (version, seeds, machine, times). A file whose run was killed gives the trajectory
        up to its last checkpoint (``complete`` False).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    TrajectoryFileError (a ValueError)
        When it is not a readable mfntk trajectory (corrupt, truncated, other format); the
        message names the file.
    """
    from ._trajectory import Trajectory
    with _open(path) as f:
        sd = _read(f, "the checkpoint", lambda: _read_state_dict(f))
        config = _read(f, "the configuration", lambda: json.loads(f.attrs["config"]))
        net_cfg = _read(f, "the initial network", lambda: json.loads(f["net0"].attrs["config"]))
        theta0 = _read(f, "the initial network", lambda: f["net0/theta"][()])
        snaps = _read(f, "the snapshots", lambda: Snapshots(f["snapshots/t"][()], f["snapshots/step"][()],
                                                            f["snapshots/theta"][()], net_cfg))
        meta = {k: f.attrs[k] for k in ("mfntk_version", "created", "updated") if k in f.attrs}
        meta.update({k: json.loads(f.attrs[k]) for k in ("machine", "seeds") if k in f.attrs})
        complete, interrupted = bool(f.attrs.get("complete", False)), bool(f.attrs.get("interrupted", False))
        layout = _read(f, "the state layout", lambda: json.loads(f["checkpoint"].attrs["layout"]))
        fname = f.filename
    net0 = _net_from_config(net_cfg)
    net0.set_flat(theta0)
    try:
        traj = Trajectory.from_state(sd["series"], sd["state"], layout, net0, config, sd["wall_time"], interrupted)
    except ValueError as exc:
        raise TrajectoryFileError(f"{fname}: {exc} (corrupt file)") from None
    traj.snapshots, traj.path, traj.complete, traj.meta = snaps, fname, complete, meta
    return traj


def load_data(path):
    """The training data stored in a trajectory file, as a :class:`~mfntk.datasets.Dataset` (no sampler)."""
    with _open(path) as f:
        return _read(f, "the data", lambda: _dataset_from_group(f["data"], sampler=None))


def _dataset_from_group(g, sampler):
    from .datasets import Dataset
    X_test = g["X_test"][()] if "X_test" in g else None
    y_test = g["y_test"][()] if "y_test" in g else None
    return Dataset(g["X"][()], g["y"][()], X_test, y_test, sampler=sampler, name=str(g.attrs["name"]),
                   task=str(g.attrs["task"]), description=str(g.attrs["description"]))


# ---------------------------------------------------------------------------------------
# resume
# ---------------------------------------------------------------------------------------

class StoredRun:
    """What :func:`read_run` returns: the pieces of a stored run that resuming it needs."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def read_run(path, data=None, trust=False):
    """The stored run of ``path`` for resuming it (see :func:`mfntk.resume` for ``data`` and ``trust``).

    Returns
    -------
    StoredRun
        ``path``, ``config`` (the run's options), ``net_config``, ``theta0`` (the particles
        at t = 0), ``state`` (the checkpoint, as ``Simulation.state_dict`` gives it),
        ``data`` (a Dataset), ``checkpoint_steps``, ``snapshot_steps``.
    """
    path = _check_path(path)
    with _open(path) as f:
        sd = _read(f, "the checkpoint", lambda: _read_state_dict(f))
        config = _read(f, "the configuration", lambda: json.loads(f.attrs["config"]))
        net_cfg = _read(f, "the initial network", lambda: json.loads(f["net0"].attrs["config"]))
        theta0 = _read(f, "the initial network", lambda: f["net0/theta"][()])
        ckpt_steps = int(f.attrs.get("checkpoint_steps", 0)) or None
        snap_steps = int(f.attrs.get("snapshot_steps", 0)) or None
        needs_pickle = data is None and bool(config.get("online")) and _read(
            f, "the data", lambda: "sampler" not in f["data"] and "sampler_pickle" in f["data"].attrs)
        if needs_pickle and not trust:
            raise ValueError(
                f"trust: the sampler of the online run in {path} is stored as a Python pickle, and unpickling "
                "runs any code the file holds. Pass the same data again (mfntk.resume(path, data=...)), or "
                "trust=True (mfntk resume --trust) only for a file you made yourself or fully trust.")
        stored = _read(f, "the data", lambda: _stored_data(f["data"], config, data, path, trust))
    return StoredRun(path=path, config=config, net_config=net_cfg, theta0=theta0, state=sd, data=stored,
                     checkpoint_steps=ckpt_steps, snapshot_steps=snap_steps)


def _stored_data(g, config, data, path, trust):
    from .datasets import as_dataset, sampler_from_spec
    if data is not None:
        data = as_dataset(data, name="data")
        X, y = g["X"][()], g["y"][()]
        if data.X.shape != X.shape or data.y.shape != y.shape or not (np.array_equal(data.X, X)
                                                                     and np.array_equal(data.y, y)):
            raise ValueError(f"data: does not hold the training set stored in {path} "
                             f"(stored X {X.shape}, y {y.shape}; given X {data.X.shape}, y {data.y.shape})")
        return data
    sampler = None
    if "sampler" in g:
        sampler = sampler_from_spec(_read_spec(g["sampler"]))
    elif config.get("online") and trust and "sampler_pickle" in g.attrs:
        try:
            sampler = pickle.loads(g.attrs["sampler_pickle"].tobytes())
        except Exception as exc:  # an unpicklable class (module gone, renamed): say what to do
            raise ValueError(f"data: the sampler stored in {path} cannot be restored ({exc}); pass the "
                             "same data set again: mfntk.resume(path, data=...)") from None
    if config.get("online") and sampler is None:
        raise ValueError(f"data: the run in {path} draws fresh samples (online) but its sampler "
                         f"({g.attrs.get('sampler_repr', '?')}) was not stored; pass the same data set again: "
                         "mfntk.resume(path, data=...)")
    return _dataset_from_group(g, sampler)
