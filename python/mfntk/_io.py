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
    ``checkpoint_steps``, ``snapshot_steps``, ``snapshot_parts`` (JSON list of the part
    files of a run that has not completed, see Checkpoints), ``crc32`` (of the others).
``/series/<name>``
    The recorded time series (``t``, ``step``, ``train_risk``, ... as in
    :class:`~mfntk.Trajectory`), float64 / int64, one entry per record.
``/snapshots``
    ``t`` (m,), ``step`` (m,), ``theta`` (m, P): the parameters (the layout of the model's
    ``get_flat``: [a | W | b (| c)] for a TwoLayer, [w_+ | w_-] for a DiagonalLinear) at the
    snapshot times; ``theta`` is chunked one snapshot per chunk (files of 0.1.0 compressed
    it with gzip; particles hardly compress).
``/net0``
    ``theta`` (P,) the initial parameters; attributes ``config`` (JSON of the model's
    ``config()``, its constructor arguments) and ``model`` (its kind in
    :data:`mfntk._models.MODELS`: ``two_layer`` or ``diagonal_linear``; a file without it,
    written before the diagonal model, holds a two-layer run). The reader rebuilds the model
    as ``MODELS[kind](**config)`` for a kind of the registry only.
``/checkpoint``
    Everything :meth:`Simulation.state_dict` returns, stored losslessly: ``state`` (the
    engine's state vector in the model's dtype), ``K0``, ``prev_<block>`` for each of the
    model's parameter blocks (``prev_a`` / ``prev_W`` / ``prev_b``, or ``prev_w_plus`` /
    ``prev_w_minus``); attributes ``step``, ``record_steps``, ``rng`` (JSON of the numpy
    bit-generator state), ``prev_risk``, ``wall_time``.
``/data``
    ``X``, ``y`` (training set, float64) and ``X_test``, ``y_test`` (the test set the run
    evaluates on: the data's split, or the sample it drew from the sampler); attributes
    ``name``, ``task``, ``description``, ``sampler_repr``. A built-in sampler (a
    built-in teacher or mixture; needed by :func:`resume` for online runs) is stored as
    data in the group ``/data/sampler``: its ``kind`` and numbers as JSON attributes, its
    arrays as datasets, a nested spec as a subgroup (see
    :func:`mfntk.datasets.sampler_spec`). Any other sampler is stored only when the run
    is not stored: an online run with one is resumed with ``resume(path, data=...)``.

Checkpoints
-----------
A checkpoint is written at a record (the run's only synchronisation points), so the
interval ``checkpoint_every`` is rounded up to a whole number of record intervals. While a
run goes on, the snapshots taken since the last checkpoint go to a part file of their own,
``<file>.parts/snapshots-<first step>-<last step>.h5`` (written as ``.partial``, flushed
(fsync) and renamed); then a new ``<file>.partial`` is written (the unchanging groups
copied from the last checkpoint, the records, the state, the list of parts), flushed and
renamed over ``<file>`` (``os.replace``, atomic on POSIX and Windows). A checkpoint thus
costs the size of the state, the records and the data, however many snapshots the run has
taken. When the run completes, the parts are folded into the file (their stored chunks
copied as they are) and the folder is removed: a finished run is one file. A process
killed at any moment (``kill -9`` included) leaves the previous or the new checkpoint and
the parts it lists, never a half-written file: at most one interval of work is lost, and
:func:`resume` redoes it with the same numbers (parts no checkpoint lists are removed).
Copy the ``.parts`` folder with the file of an unfinished run.

Every dataset carries a Fletcher32 checksum, every group's attributes a CRC, and HDF5
checksums its own metadata: damage is detected on reading (:class:`TrajectoryFileError`).
One process writes a file at a time: the writer holds an exclusive lock on ``<file>.lock``.

Security: reading a file never runs code from it. :func:`load` reads arrays and JSON
only; :func:`resume` rebuilds a built-in sampler from its stored numbers. Nothing is
unpickled: a ``sampler_pickle`` attribute (written by 0.1.0) is never read, an online run
that needs it is refused with a message saying why (pass the data again), and it is dropped
from the file resume updates. See SECURITY.md.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import time
import zlib

import numpy as np

from ._validation import available_memory

FORMAT = "mfntk-trajectory"
FORMAT_VERSION = 1

__all__ = ["load", "load_data", "read_run", "TrajectoryWriter", "Snapshots", "TrajectoryFileError", "StoredRun",
           "OutputLockedError"]


class TrajectoryFileError(ValueError):
    """A file is not a readable mfntk trajectory (corrupt, truncated, or another format)."""


class Snapshots:
    """Particle snapshots of a run written to disk.

    Attributes
    ----------
    t : ndarray (m,)
        Times (the run's units).
    step : ndarray (m,)
        Step indices.
    theta : ndarray (m, P)
        The parameters at each snapshot, laid out as the model's ``get_flat()``.
    """

    def __init__(self, t, step, theta, net_config, kind):
        self.t, self.step, self.theta = np.asarray(t, float), np.asarray(step, np.int64), np.asarray(theta)
        self._config = net_config
        self._kind = kind

    def __len__(self):
        return len(self.t)

    def net(self, i):
        """The model at snapshot ``i`` (a :class:`~mfntk.TwoLayer` or :class:`~mfntk.DiagonalLinear`)."""
        from ._models import model_class
        net = model_class(self._kind)(**self._config)
        net.set_flat(self.theta[i])
        return net

    def nets(self):
        """Pairs (t, model) for every snapshot."""
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


_CHECKSUM = "crc32"   # attribute holding the checksum of the other attributes of a group


def _attr_bytes(value):
    if isinstance(value, np.void):
        return value.tobytes()
    if isinstance(value, np.ndarray):
        return value.tobytes()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value
    return repr(value).encode()


def _attrs_checksum(obj):
    crc = 0
    for key in sorted(k for k in obj.attrs if k != _CHECKSUM):
        crc = zlib.crc32(key.encode() + b"=" + _attr_bytes(obj.attrs[key]) + b";", crc)
    return int(crc)


def _seal(obj):
    """Store the checksum of the attributes of a group (datasets carry Fletcher32 checksums)."""
    obj.attrs[_CHECKSUM] = _attrs_checksum(obj)


def _verify_attrs(obj, path):
    if _CHECKSUM in obj.attrs and int(obj.attrs[_CHECKSUM]) != _attrs_checksum(obj):
        raise TrajectoryFileError(f"{path}: the attributes of {obj.name} do not match their checksum "
                                  "(the file is damaged)")


def _check_path(path, name="path"):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{name}: expected a file path, got {type(path).__name__}")
    return os.fsdecode(path)


def _create(g, name, data=None, **kw):
    """A dataset with a Fletcher32 checksum (HDF5 verifies it on every read)."""
    shape = kw.get("shape", None if data is None else np.shape(data))
    if shape and all(shape) or kw.get("maxshape"):
        kw.setdefault("fletcher32", True)
    return g.create_dataset(name, data=data, **kw)


class OutputLockedError(RuntimeError):
    """Another process is writing the same trajectory file."""


class _Lock:
    """An exclusive advisory lock on ``<path>.lock`` (released by the system if the process dies)."""

    def __init__(self, path):
        self.path = path + ".lock"
        self.fd = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputLockedError(f"out: another process is writing {path} (it holds {self.path}); two runs "
                                    "writing one file would destroy it: choose another file or wait") from None
        self.fd = fd

    def release(self):
        if self.fd is None:
            return
        try:
            os.remove(self.path)
        except OSError:  # pragma: no cover
            pass
        os.close(self.fd)   # closing releases the lock
        self.fd = None


PARTS_SUFFIX = ".parts"          # the folder of a running file's snapshot parts: <file>.parts/
PART_FORMAT = "mfntk-snapshots"
_PART_NAME = re.compile(r"^snapshots-\d{12}-\d{12}\.h5$")


def _part_name(first_step, last_step):
    return f"snapshots-{int(first_step):012d}-{int(last_step):012d}.h5"


def _remove_parts(folder, keep):
    """Remove from ``folder`` every part (and unfinished part) not in ``keep``; the folder when empty."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if name not in keep and (name.endswith(".partial") or _PART_NAME.match(name)):
            os.remove(os.path.join(folder, name))
    if not os.listdir(folder):
        os.rmdir(folder)


def _is_trajectory(path):
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT
    except Exception:
        return False


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

def _row_length(block):
    """Values per particle of a particle block ((N,) or (N, w))."""
    return 1 if block.ndim == 1 else int(block.shape[1])


def _rows_target(dataset):
    """A ``target`` of :meth:`_FileVectors.write` for a dataset of particle rows: a slice of the
    flattened block that covers whole rows."""
    width = _row_length(dataset)
    return lambda index, values: dataset.__setitem__(slice(index.start // width, index.stop // width),
                                                     values.reshape((-1,) + dataset.shape[1:]))


def row_segments(shard, width):
    """Where a shard's rows of a particle block of ``width`` values per particle lie in the whole
    block, flattened: [(offset in the whole, offset here, length)]."""
    return [(shard.particle_begin * width, 0, shard.local_width * width)]


class _FileVectors:
    """The flat vectors of a run (the parameters, the state) as files hold them: in the layout of
    the whole network, written by one process.

    In one process a vector is written as it is. In a run sharded over MPI ranks, rank 0 writes
    every file: it receives each rank's part of a vector in turn (never more than one part at a
    time in its memory) and writes its blocks where they lie in the whole vector; the other
    ranks only send their parts, in the order rank 0 writes the vectors.
    """

    def __init__(self, sim):
        self.sim, net = sim, sim.net0
        self.sharded = bool(getattr(net, "sharded", False))
        self.backend = net.backend if self.sharded else None
        self.root = not self.sharded or self.backend.rank == 0
        self.state_layout = sim.state_segments()[0]
        self.params = self.state_layout["particles"]

    def rows(self, block):
        """Rows of the whole network's particle block of which ``block`` holds this process's part."""
        return self.sim.net0.width if self.sharded else block.shape[0]

    def _segments(self, kind, rank):
        net = self.sim.net0
        shard = self.backend.shard_of_rank(net.width, net.particle_chunk, rank)
        if kind == "params":
            return net.flat_segments(shard)
        if kind == "state":
            return self.sim.state_segments(shard)[1]
        return row_segments(shard, kind)

    def write(self, target, local, kind):
        """The vector of ``kind`` ("params", "state", or an int: the row length of a particle block
        such as W, flattened) whose part here is ``local``: written through
        ``target(index, values)`` (``index`` a slice of the whole vector) on rank 0, sent there
        from the others."""
        if not self.sharded:
            target(slice(0, local.size), local)
        elif not self.root:
            self.backend.send_to_root(local)
        else:
            for rank in range(self.backend.size):
                segments = self._segments(kind, rank)
                part = local if rank == 0 else self.backend.receive(
                    rank, sum(length for _, _, length in segments), local.dtype)
                for at, here, length in segments:
                    if length:
                        target(slice(at, at + length), part[here:here + length])


class TrajectoryWriter:
    """Writes a run to ``path``: the first file at t = 0, then checkpoints (see the module doc).

    Called with the simulation after every record; :meth:`finish` writes the closing
    checkpoint. Make one with :meth:`create` (a new file) or :meth:`reopen` (a resumed run).
    """

    @classmethod
    def create(cls, sim, output):
        """A writer of a new file for the output options ``output`` (an OutputOptions).

        An existing file is replaced only when it is an mfntk trajectory.
        """
        directory = os.path.dirname(os.path.abspath(output.out))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"out: the folder {directory} does not exist")
        if os.path.isdir(output.out):
            raise ValueError(f"out: {output.out} is a folder; name a file")
        if os.path.lexists(output.out) and not _is_trajectory(output.out):
            raise ValueError(f"out: {output.out} exists and is not an mfntk trajectory; refusing to overwrite it")
        ckpt = _steps_of(output.checkpoint_every, sim, "checkpoint_every")
        snap = _steps_of(output.snapshot_every, sim, "snapshot_every") if output.snapshot_every is not None else ckpt
        return cls(sim, output.out, ckpt, snap, fresh=True)

    @classmethod
    def reopen(cls, sim, stored):
        """A writer that continues the file of ``stored`` (a :class:`StoredRun`) for a resumed ``sim``."""
        writer = cls(sim, stored.path, stored.checkpoint_steps, stored.snapshot_steps, fresh=False,
                     parts=stored.snapshot_parts)
        writer.last_step = sim.step
        return writer

    def __init__(self, sim, path, checkpoint_steps, snapshot_steps, fresh=True, parts=()):
        self.sim, self.path = sim, path
        self.tmp = path + ".partial"
        self.parts_dir = path + PARTS_SUFFIX
        self.vectors = _FileVectors(sim)
        self.parts = [] if fresh else list(parts)   # the snapshot parts the file lists, in order
        self._lock, error = None, None
        if self.vectors.root:   # the one process that writes
            try:
                self._lock = _Lock(path)
                if os.path.exists(self.tmp):   # left by a run that was killed while writing: never complete
                    os.remove(self.tmp)
                _remove_parts(self.parts_dir, keep=self.parts)  # parts of an older run, or never committed
            except Exception as exc:
                error = exc
        if self.vectors.sharded and not self.vectors.backend.all(error is None):   # every rank stops
            self.close()
            raise error if error is not None else OutputLockedError(
                f"out: rank 0 cannot write {path} (its error says why); every rank stops")
        if error is not None:
            raise error
        self.checkpoint_steps, self.snapshot_steps = checkpoint_steps, snapshot_steps
        self.pending = []          # snapshots taken since the last checkpoint: (t, step, theta)
        self._last_snapshot = None if fresh else sim.step
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
            self._snapshot(sim)
        if self.fresh:
            self.write(first=True)
            self.fresh = False
        elif final or (self.checkpoint_steps and step % self.checkpoint_steps == 0):
            self.write()

    def finish(self, interrupted):
        """The closing checkpoint (after the last record, or after Ctrl-C); releases the file."""
        sim = self.sim
        try:
            if self.last_step != sim.step or self.pending or interrupted:
                self._snapshot(sim)
                self.write(interrupted=interrupted)
        finally:
            self.close()

    def _snapshot(self, sim):
        if self._last_snapshot != sim.step:
            self.pending.append((sim.step * sim.dt, sim.step, sim.state[:sim.layout["particles"]].copy()))
            self._last_snapshot = sim.step

    def close(self):
        """Release the file without writing (after a failure: the last checkpoint stays)."""
        if self._lock is None:
            return
        if os.path.exists(self.tmp):
            os.remove(self.tmp)
        self._lock.release()

    def write(self, first=False, interrupted=False):
        """One checkpoint. During a run the new snapshots go to a part file of their own and
        the file is rewritten without the snapshots, so that a checkpoint costs the same
        however long the run; when the run is complete they are folded into the file.
        The file is replaced atomically, after the parts it lists are on disk."""
        h5py = _h5py()
        sim = self.sim
        sd = sim.state_dict()
        if not self.vectors.root:   # a rank of a sharded run: its parts, in the order rank 0 writes them
            if first:
                self.vectors.write(None, sim.net0.get_flat(), "params")
            for _, _, theta in self.pending:
                self.vectors.write(None, theta, "params")
            self.vectors.write(None, sd["state"], "state")
            for key, block in (sd["prev"] or {}).items():
                if key != "risk" and block is not None:
                    self.vectors.write(None, block.ravel(), _row_length(block))
            self.pending = []
            self.last_step = sim.step
            return
        sd["wall_time"] = self._wall0 + (time.perf_counter() - self._clock0)
        complete = bool(sim.step >= sim.steps_total)
        if os.path.exists(self.tmp):
            os.remove(self.tmp)
        parts = list(self.parts)
        # libver v110: HDF5 keeps checksums of its own metadata too (object headers, indexes)
        with h5py.File(self.tmp, "w", libver=("v110", "latest")) as f:
            if first:
                self._write_static(f)
            else:
                # a fresh file with the unchanging groups copied (H5Ocopy: no re-encoding, and no
                # free space left behind as rewriting datasets in place would)
                with h5py.File(self.path, "r") as old:
                    for key, value in old.attrs.items():
                        f.attrs[key] = value
                    for group in ("net0", "data"):
                        old.copy(old[group], f, group)
                    if old["snapshots/t"].shape[0] and not complete:
                        # a completed run extended by resume: its folded snapshots become the first part
                        parts.insert(0, self._write_part_from(old["snapshots"]))
                        self._empty_snapshots(f)
                    else:
                        old.copy(old["snapshots"], f, "snapshots")
                if "sampler_pickle" in f["data"].attrs:   # a 0.1.0 file: never carry code along
                    del f["data"].attrs["sampler_pickle"]
                    _seal(f["data"])
            self._write_series(f, sd["series"])
            if complete:
                self._fold_snapshots(f, parts)
                parts = []
            elif self.pending:
                parts.append(self._write_part(self.pending))
            self._write_checkpoint(f, sd)
            f.attrs["config"] = _json(sim.config())
            f.attrs["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            f.attrs["complete"] = complete
            f.attrs["interrupted"] = bool(interrupted)
            f.attrs["snapshot_parts"] = _json(parts)
            _seal(f)
        _fsync_file(self.tmp)
        os.replace(self.tmp, self.path)
        _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        self.parts = parts
        _remove_parts(self.parts_dir, keep=parts)      # folded ones (after the file no longer lists them)
        self.pending = []
        self.last_step = sim.step

    # ---- snapshot parts -------------------------------------------------------------------
    def _write_part(self, pending):
        """Pending snapshots (t, step, theta) as a new part file (atomic); returns its name."""
        os.makedirs(self.parts_dir, exist_ok=True)
        name = _part_name(pending[0][1], pending[-1][1])
        path = os.path.join(self.parts_dir, name)
        with _h5py().File(path + ".partial", "w", libver=("v110", "latest")) as f:
            f.attrs["format"] = PART_FORMAT
            _create(f, "t", np.array([p[0] for p in pending], np.float64))
            _create(f, "step", np.array([p[1] for p in pending], np.int64))
            P = self.vectors.params
            theta = _create(f, "theta", shape=(len(pending), P), dtype=self.sim.net0.dtype, chunks=(1, P))
            self._write_snapshots(theta, 0)
            _seal(f)
        return self._commit_part(path)

    def _write_part_from(self, group):
        """The snapshots of ``group`` (an HDF5 group t, step, theta) as a new part file; its name."""
        os.makedirs(self.parts_dir, exist_ok=True)
        steps = group["step"]
        name = _part_name(int(steps[0]), int(steps[-1]))
        path = os.path.join(self.parts_dir, name)
        with _h5py().File(path + ".partial", "w", libver=("v110", "latest")) as f:
            f.attrs["format"] = PART_FORMAT
            for key in ("t", "step", "theta"):
                group.file.copy(group[key], f, key)
            _seal(f)
        return self._commit_part(path)

    def _commit_part(self, path):
        _fsync_file(path + ".partial")
        os.replace(path + ".partial", path)
        _fsync_dir(self.parts_dir)
        return os.path.basename(path)

    def _fold_snapshots(self, f, parts):
        """The snapshots of ``parts`` and the pending ones into the group /snapshots of ``f``
        (which holds the snapshots already folded), one snapshot at a time."""
        s = f["snapshots"]
        for name in parts:
            with _h5py().File(os.path.join(self.parts_dir, name), "r") as part:
                m0, m = s["t"].shape[0], part["t"].shape[0]
                for key in ("t", "step", "theta"):
                    s[key].resize(m0 + m, axis=0)
                s["t"][m0:], s["step"][m0:] = part["t"][()], part["step"][()]
                # the parts have the file's chunks (one snapshot each) and filters: copy the stored
                # (compressed, checksummed) chunks as they are, without decoding them
                source, target = part["theta"].id, s["theta"].id
                for i in range(m):
                    mask, chunk = source.read_direct_chunk((i, 0))
                    target.write_direct_chunk((m0 + i, 0), chunk, mask)
        if self.pending:
            m0, m = s["t"].shape[0], len(self.pending)
            for key in ("t", "step", "theta"):
                s[key].resize(m0 + m, axis=0)
            s["t"][m0:] = [p[0] for p in self.pending]
            s["step"][m0:] = [p[1] for p in self.pending]
            self._write_snapshots(s["theta"], m0)

    def _write_snapshots(self, theta, first_row):
        """The pending snapshots into the rows of ``theta`` from ``first_row`` on, one at a time."""
        for i, (_, _, values) in enumerate(self.pending):
            self.vectors.write(lambda index, v, row=first_row + i: theta.__setitem__((row, index), v), values,
                               "params")

    def _empty_snapshots(self, f):
        P = self.vectors.params
        s = f.create_group("snapshots")
        _create(s, "t", shape=(0,), maxshape=(None,), dtype="f8", chunks=(256,))
        _create(s, "step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(256,))
        # not compressed: particles are noise to gzip (3% smaller at 20 MB/s), checksummed all the same
        _create(s, "theta", shape=(0, P), maxshape=(None, P), dtype=self.sim.net0.dtype, chunks=(1, P))

    def _write_static(self, f):
        from . import __version__
        sim = self.sim
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["mfntk_version"] = __version__
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        f.attrs["machine"] = _json(_machine())
        f.attrs["seeds"] = _json({"net": sim.net0.config().get("seed"), "run": sim.seed,
                                  "data": sim.data.info.get("seed")})
        f.attrs["checkpoint_steps"] = int(self.checkpoint_steps or 0)
        f.attrs["snapshot_steps"] = int(self.snapshot_steps or 0)
        g = f.create_group("net0")
        theta = _create(g, "theta", shape=(self.vectors.params,), dtype=sim.net0.dtype)
        self.vectors.write(theta.__setitem__, sim.net0.get_flat(), "params")
        g.attrs["config"] = _json(sim.net0.config())
        g.attrs["model"] = sim.net0.kind
        _seal(g)
        _write_data(f.create_group("data"), sim)
        self._empty_snapshots(f)

    @staticmethod
    def _write_series(f, series):
        g = f.create_group("series")
        for name, values in series.items():
            arr = np.asarray(values)
            if arr.dtype == object:  # pragma: no cover - defensive
                raise TypeError(f"series {name!r}: cannot be stored (ragged)")
            _create(g, name, arr)

    def _write_checkpoint(self, f, sd):
        g = f.create_group("checkpoint")
        layout = self.vectors.state_layout
        g.attrs["layout"] = _json(layout)
        state = _create(g, "state", shape=(layout["size"],), dtype=sd["state"].dtype)
        self.vectors.write(state.__setitem__, sd["state"], "state")
        if sd["K0"] is not None:
            _create(g, "K0", sd["K0"])
        if sd["prev"] is not None:
            for key, block in sd["prev"].items():
                if key != "risk" and block is not None:
                    stored = _create(g, f"prev_{key}", shape=(self.vectors.rows(block),) + block.shape[1:],
                                     dtype=block.dtype)
                    self.vectors.write(_rows_target(stored), block.ravel(), _row_length(block))
            g.attrs["prev_risk"] = sd["prev"]["risk"]
        g.attrs["step"] = sd["step"]
        g.attrs["record_steps"] = sd["record_steps"]
        g.attrs["rng"] = _json(sd["rng"])
        g.attrs["wall_time"] = sd["wall_time"]
        _seal(g)


def _write_data(g, sim):
    _write_data_fields(g, sim)
    _seal(g)


def _write_data_fields(g, sim):
    data = sim.data
    _create(g, "X", np.asarray(data.X, np.float64))
    _create(g, "y", np.asarray(data.y, np.float64))
    if data.has_test:
        _create(g, "X_test", np.asarray(data.X_test, np.float64))
        _create(g, "y_test", np.asarray(data.y_test, np.float64))
        g.attrs["test_source"] = "split"
    elif sim.X_test is not None:
        _create(g, "X_test", np.asarray(sim.X_test, np.float64))
        _create(g, "y_test", np.asarray(sim.Y_test, np.float64))
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
    g.attrs["sampler_note"] = ("the sampler is not a built-in one and is not stored (files hold data, never "
                               "code); resume an online run with mfntk.resume(path, data=...)")


_SPEC_DEPTH = 4   # a sampler spec nests a teacher spec: deeper trees are not mfntk's


def _write_spec(g, spec):
    """A sampler spec as HDF5: numbers and names as JSON attributes, arrays as datasets, dicts as groups."""
    for key, value in spec.items():
        if isinstance(value, dict):
            _write_spec(g.create_group(key), value)
        elif isinstance(value, np.ndarray):
            _create(g, key, value)
        else:
            g.attrs[key] = _json(value)
    _seal(g)


def _read_spec(g, depth=0):
    """The inverse of :func:`_write_spec`: JSON and numeric arrays only, never code."""
    h5py = _h5py()
    if depth > _SPEC_DEPTH:
        raise ValueError("the sampler spec nests too deep")
    _verify_attrs(g, g.file.filename)
    spec = {}
    for key, value in g.attrs.items():
        if key == _CHECKSUM:
            continue
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
    if os.path.isdir(path):
        raise TrajectoryFileError(f"{path}: is a folder, not a trajectory file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise TrajectoryFileError(f"{path}: not a readable HDF5 file (corrupt or truncated?): {exc}") from None
    try:
        if f.attrs.get("format") != FORMAT:
            raise TrajectoryFileError(f"{path}: not an mfntk trajectory file (no format = {FORMAT!r} attribute)")
        version = f.attrs.get("format_version", -1)
        if not isinstance(version, (int, np.integer)) or not 1 <= int(version) <= FORMAT_VERSION:
            raise TrajectoryFileError(f"{path}: trajectory format version {version!r} is not supported "
                                      f"(this mfntk reads versions 1 to {FORMAT_VERSION})")
        for group in ("series", "net0", "checkpoint", "snapshots", "data"):
            if group not in f or not isinstance(f[group], h5py.Group):
                raise TrajectoryFileError(f"{path}: the group /{group} is missing (truncated or corrupt file)")
        for obj in (f, f["net0"], f["checkpoint"], f["data"]):
            _verify_attrs(obj, path)
    except TrajectoryFileError:
        f.close()
        raise
    except Exception as exc:  # h5py raises KeyError/OSError/RuntimeError/... on damaged metadata
        f.close()
        raise TrajectoryFileError(f"{path}: unreadable trajectory file (corrupt?): {exc}") from None
    return f


def _read(f, what, fn):
    """fn() with every failure caused by the file's contents reported as TrajectoryFileError."""
    try:
        return fn()
    except TrajectoryFileError:
        raise
    except MemoryError as exc:
        raise MemoryError(f"{f.filename}: reading {what}: {exc}") from None
    except Exception as exc:  # damaged files raise anything from h5py, json, numpy or a constructor
        raise TrajectoryFileError(f"{f.filename}: cannot read {what} (corrupt file?): "
                                  f"{type(exc).__name__}: {exc}") from None


def _bad(f, what):
    raise TrajectoryFileError(f"{f.filename}: {what} (corrupt file?)")


def _json_attr(f, obj, key, kind=dict):
    value = obj.attrs.get(key)
    if not isinstance(value, str):
        _bad(f, f"the attribute {key!r} of {obj.name} is missing or not text")
    out = json.loads(value)
    if not isinstance(out, kind):
        _bad(f, f"the attribute {key!r} of {obj.name} is not a JSON {kind.__name__}")
    return out


def _int_attr(f, obj, key, minimum):
    value = obj.attrs.get(key)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        _bad(f, f"the attribute {key!r} of {obj.name} is {value!r}, not an integer >= {minimum}")
    return int(value)


def _float_attr(f, obj, key):
    value = obj.attrs.get(key)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (float, int, np.floating, np.integer)) \
            or not math.isfinite(float(value)):
        _bad(f, f"the attribute {key!r} of {obj.name} is {value!r}, not a finite number")
    return float(value)


def _dataset(f, path, shape=None, kinds="f", dtype=None):
    """The dataset at ``path`` checked (numeric kind, shape with -1 for any) before reading it."""
    h5py = _h5py()
    if path not in f or not isinstance(f[path], h5py.Dataset):
        _bad(f, f"the dataset /{path} is missing")
    ds = f[path]
    if ds.dtype.kind not in kinds or (dtype is not None and ds.dtype != dtype):
        _bad(f, f"the dataset /{path} has dtype {ds.dtype}")
    if shape is not None and (len(ds.shape) != len(shape)
                              or any(w not in (-1, g) for w, g in zip(shape, ds.shape))):
        _bad(f, f"the dataset /{path} has shape {ds.shape}, expected {tuple(shape)}")
    return ds


def _fits_in_memory(f, datasets, what):
    """MemoryError before reading datasets whose declared sizes cannot fit in the available memory."""
    need = sum(int(np.prod(ds.shape, dtype=np.float64)) * ds.dtype.itemsize for ds in datasets)
    free = available_memory()
    if free is not None and need > free:
        raise MemoryError(f"{f.filename}: {what} declares {need / 2 ** 30:.3g} GiB of arrays; only "
                          f"{free / 2 ** 30:.3g} GiB of memory are available")


class _Header:
    """The validated small part of a file: configurations, layout, counters (no large arrays read)."""


def _read_header(f):
    from ._models import DEFAULT_KIND, MODELS
    from ._options import RunOptions
    h = _Header()
    h.path = f.filename
    h.config = _json_attr(f, f, "config")
    h.net_config = _json_attr(f, f["net0"], "config")
    # files written before the diagonal model name no kind: they hold two-layer runs
    h.kind = f["net0"].attrs.get("model", DEFAULT_KIND)
    if not isinstance(h.kind, str) or h.kind not in MODELS:
        _bad(f, f"the model kind {h.kind!r} of /net0 is not one of {', '.join(map(repr, MODELS))}")
    if h.config.get("model", DEFAULT_KIND) != h.kind:
        _bad(f, f"the run's configuration names the model {h.config.get('model', DEFAULT_KIND)!r} but /net0 "
                f"holds a {h.kind!r}")
    h.model_class = MODELS[h.kind]
    try:
        layout, dtype = h.model_class.layout_of(h.net_config)
        run = RunOptions.from_dict(h.config, ignore_unknown=True)
    except (TypeError, ValueError, KeyError) as exc:
        _bad(f, f"the stored configuration is invalid: {type(exc).__name__}: {exc}")
    h.run_options = run
    P = layout.size
    h.P = P
    h.theta0 = _dataset(f, "net0/theta", (P,), dtype=dtype)
    g = f["checkpoint"]
    h.layout = _json_attr(f, g, "layout")
    h.state = _dataset(f, "checkpoint/state", (-1,), dtype=dtype)
    size = h.state.shape[0]
    if h.layout.get("particles") != P or h.layout.get("size") != size:
        _bad(f, f"the state layout {h.layout} does not fit {P} parameters and a state of {size} values")
    for block in ("residual", "linearized"):
        off = h.layout.get(block, 0)
        if not isinstance(off, int) or not 0 <= off <= size:
            _bad(f, f"the state layout's {block} offset {off!r} is outside the state")
    if run.linearized and h.layout.get("linearized", 0) + P > size:
        _bad(f, "the state holds no linearized block")
    h.step = _int_attr(f, g, "step", 0)
    h.record_steps = _int_attr(f, g, "record_steps", 1)
    steps_total = int(math.ceil(run.t_max / run.dt - 1e-9)) if run.t_max > 0 else 0
    if h.step > steps_total:
        _bad(f, f"the checkpoint's step {h.step} is past t_max = {run.t_max} ({steps_total} steps)")
    h.rng = _json_attr(f, g, "rng")
    h.wall_time = _float_attr(f, g, "wall_time")
    h.checkpoint_steps = _int_attr(f, f, "checkpoint_steps", 0) or None
    h.snapshot_steps = _int_attr(f, f, "snapshot_steps", 0) or None
    h.series = {}
    lengths = set()
    for name, ds in f["series"].items():
        ds = _dataset(f, f"series/{name}", None, kinds="fi")
        h.series[name] = ds
        lengths.add(ds.shape[0] if ds.shape else -1)
    if not {"t", "step", "train_risk"} <= set(h.series) or len(lengths) != 1 or -1 in lengths:
        _bad(f, f"the series {sorted(h.series)} are missing some of t, step, train_risk or differ in length")
    h.records = lengths.pop()
    h.K0 = _dataset(f, "checkpoint/K0", (-1, -1), kinds="f") if "K0" in g else None
    h.prev = None
    if "prev_risk" in g.attrs:
        h.prev = {name: None if shape is None else _dataset(f, f"checkpoint/prev_{name}", shape, dtype=dtype)
                  for name, shape in layout.shapes().items()}
        h.prev["risk"] = _float_attr(f, g, "prev_risk")
    h.snap_t = _dataset(f, "snapshots/t", (-1,))
    m = h.snap_t.shape[0]
    h.snap_step = _dataset(f, "snapshots/step", (m,), kinds="i")
    h.snap_theta = _dataset(f, "snapshots/theta", (m, P), dtype=dtype)
    h.snapshot_parts = _json_attr(f, f, "snapshot_parts", list) if "snapshot_parts" in f.attrs else []
    for name in h.snapshot_parts:
        if not isinstance(name, str) or not _PART_NAME.match(name):
            _bad(f, f"the snapshot part name {name!r} is not one mfntk writes")
    X = _dataset(f, "data/X", (-1, layout.d))
    _dataset(f, "data/y", (X.shape[0], layout.outputs))
    h.complete = bool(f.attrs.get("complete", False))
    h.interrupted = bool(f.attrs.get("interrupted", False))
    return h


def _read_snapshots(f, h, read=True):
    """(t, step, theta) of every snapshot: those folded into the file, then those of its parts
    (<file>.parts/, a run that has not completed), each part validated before it is read
    (with ``read`` False: validated only)."""
    h5py = _h5py()
    folder = f.filename + PARTS_SUFFIX
    parts = []
    try:
        for name in h.snapshot_parts:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                _bad(f, f"the snapshot part {name} is missing from {folder} (copy the folder with the file)")
            part = h5py.File(path, "r")
            parts.append(part)
            if part.attrs.get("format") != PART_FORMAT:
                _bad(f, f"{path} is not an mfntk snapshot part")
            _verify_attrs(part, path)
            m = _dataset(part, "t", (-1,)).shape[0]
            _dataset(part, "step", (m,), kinds="i")
            _dataset(part, "theta", (m, h.P), dtype=h.snap_theta.dtype)
        if not read:
            return None
        _fits_in_memory(f, [h.snap_theta, *(p["theta"] for p in parts)], "the snapshots")
        t = np.concatenate([h.snap_t[()]] + [p["t"][()] for p in parts])
        step = np.concatenate([h.snap_step[()]] + [p["step"][()] for p in parts])
        theta = np.concatenate([h.snap_theta[()]] + [p["theta"][()] for p in parts])
    finally:
        for part in parts:
            part.close()
    if len(step) > 1 and np.any(np.diff(step) <= 0):
        _bad(f, "the snapshots' steps are not increasing")
    return t, step, theta


def _read_state_dict(f, h, shard=None):
    """The checkpoint as :meth:`Simulation.state_dict` gives it (arrays read after their sizes are
    checked). With the ``shard`` of a sharded network, its ``state`` is None (this rank's part is
    read by :func:`read_state`) and the particle blocks are this rank's rows."""
    arrays = ([h.state] if shard is None else []) + [*h.series.values()] + ([h.K0] if h.K0 is not None else [])
    rows = slice(None) if shard is None else slice(shard.particle_begin, shard.particle_end)
    if h.prev is not None and shard is None:
        arrays += [v for k, v in h.prev.items() if k != "risk" and v is not None]
    _fits_in_memory(f, arrays, "the checkpoint")
    series = {}
    for name, ds in h.series.items():
        arr = ds[()]
        series[name] = list(arr) if arr.ndim > 1 else arr.tolist()
    if not series["step"] or series["step"][-1] != h.step:
        _bad(f, f"the last record (step {series['step'][-1] if series['step'] else None}) is not the "
                f"checkpoint's step {h.step}")
    prev = None
    if h.prev is not None:
        prev = {k: (v if k == "risk" or v is None else v[rows]) for k, v in h.prev.items()}
    return {"state": h.state[()] if shard is None else None, "step": h.step, "record_steps": h.record_steps, "series": series, "rng": h.rng,
            "K0": h.K0[()] if h.K0 is not None else None, "prev": prev, "wall_time": h.wall_time}


def _net0(f, h, comm=None):
    """The model at t = 0; with ``comm``, sharded over its ranks, each reading its own rows."""
    if comm is None:
        net0 = h.model_class(**h.net_config)
        net0.set_flat(h.theta0[()])
        return net0
    if not hasattr(h.model_class, "shard_over"):
        raise ValueError(f"comm: the {h.kind} run in {h.path} cannot be sharded over MPI ranks")
    net0 = h.model_class(**h.net_config, comm=comm)
    net0.set_flat(_read_segments(h.theta0, net0.flat_segments(), net0.n_params))
    return net0


def _read_segments(dataset, segments, size):
    """A flat vector of ``size`` values from the (whole offset, offset here, length) ``segments`` of ``dataset``."""
    out = np.empty(size, dtype=dataset.dtype)
    for at, here, length in segments:
        out[here:here + length] = dataset[at:at + length]
    return out


def read_state(path, segments, size):
    """A sharded run's part of the checkpoint's state in ``path``: ``size`` values from the
    (whole offset, offset here, length) ``segments`` of ``Simulation.state_segments``."""
    with _open(path) as f:
        return _read(f, "the checkpoint", lambda: _read_segments(_read_header(f).state, segments, size))


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
        When it is not a readable mfntk trajectory (corrupt, truncated, other format, a
        checksum that does not match, fields that contradict each other); the message
        names the file.
    MemoryError
        When the arrays it declares cannot fit in the available memory (checked before
        reading them).
    """
    from ._trajectory import Trajectory
    with _open(path) as f:
        h = _read(f, "the header", lambda: _read_header(f))
        sd = _read(f, "the checkpoint", lambda: _read_state_dict(f, h))
        snaps = _read(f, "the snapshots", lambda: Snapshots(*_read_snapshots(f, h), h.net_config, h.kind))
        meta = _read(f, "the metadata", lambda: {
            **{k: str(f.attrs[k]) for k in ("mfntk_version", "created", "updated") if k in f.attrs},
            **{k: _json_attr(f, f, k) for k in ("machine", "seeds") if k in f.attrs}})
        net0 = _read(f, "the initial network", lambda: _net0(f, h))
        traj = _read(f, "the trajectory", lambda: Trajectory.from_state(
            sd["series"], sd["state"], h.layout, net0, h.config, sd["wall_time"], h.interrupted))
        fname = f.filename
    traj.snapshots, traj.path, traj.complete, traj.meta = snaps, fname, h.complete, meta
    return traj


def load_data(path):
    """The training data stored in a trajectory file, as a :class:`~mfntk.datasets.Dataset` (no sampler)."""
    with _open(path) as f:
        return _read(f, "the data", lambda: _dataset_from_group(f, sampler=None))


def _dataset_from_group(f, sampler):
    from .datasets import Dataset
    g = f["data"]
    X = _dataset(f, "data/X", (-1, -1))
    y = _dataset(f, "data/y", (X.shape[0], -1))
    arrays = [X, y]
    X_test = y_test = None
    if "X_test" in g:
        X_test = _dataset(f, "data/X_test", (-1, X.shape[1]))
        y_test = _dataset(f, "data/y_test", (X_test.shape[0], y.shape[1]))
        arrays += [X_test, y_test]
    _fits_in_memory(f, arrays, "the data")
    return Dataset(X[()], y[()], None if X_test is None else X_test[()], None if y_test is None else y_test[()],
                   sampler=sampler, name=str(g.attrs.get("name", "data")), task=str(g.attrs.get("task", "regression")),
                   description=str(g.attrs.get("description", "")))


# ---------------------------------------------------------------------------------------
# resume
# ---------------------------------------------------------------------------------------

class StoredRun:
    """What :func:`read_run` returns: the pieces of a stored run that resuming it needs."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def read_run(path, data=None, comm=None):
    """The stored run of ``path`` for resuming it (see :func:`mfntk.resume` for ``data``).

    Returns
    -------
    StoredRun
        ``path``, ``config`` (the run's options), ``net0`` (the model at t = 0),
        ``state`` (the checkpoint, as ``Simulation.state_dict`` gives it; with ``comm``, when
        the network is sharded, without its ``state``: read each rank's part with
        :func:`read_state`), ``data`` (a Dataset), ``checkpoint_steps``, ``snapshot_steps``.

    Raises
    ------
    TrajectoryFileError
        For a damaged file (see :func:`load`).
    ValueError
        When ``data`` does not hold the stored training set, or the run needs a sampler
        that the file does not hold as numbers.
    """
    from .datasets import as_dataset, sampler_from_spec
    path = _check_path(path)
    if data is not None:
        data = as_dataset(data, name="data")
    with _open(path) as f:
        h = _read(f, "the header", lambda: _read_header(f))
        net0 = _read(f, "the initial network", lambda: _net0(f, h, comm))
        sharded = bool(getattr(net0, "sharded", False))
        sd = _read(f, "the checkpoint", lambda: _read_state_dict(f, h, net0.shard if sharded else None))
        _read(f, "the snapshots", lambda: _read_snapshots(f, h, read=False))
        stored = _read(f, "the data", lambda: _dataset_from_group(f, sampler=None))
        g = f["data"]
        online = bool(h.config.get("online"))
        sampler = None
        if data is None and online:
            if _read(f, "the sampler", lambda: "sampler" in g):
                sampler = _read(f, "the sampler", lambda: sampler_from_spec(_read_spec(g["sampler"])))
            elif "sampler_pickle" in g.attrs:
                raise ValueError(
                    f"data: the sampler of the online run in {path} is stored as a Python pickle (mfntk 0.1.0); "
                    "mfntk never unpickles a file, since that would run whatever code it holds. Pass the same "
                    "data set again: mfntk.resume(path, data=...)")
            else:
                raise ValueError(f"data: the run in {path} draws fresh samples (online) but its sampler "
                                 f"({g.attrs.get('sampler_repr', '?')}) was not stored; pass the same data set "
                                 "again: mfntk.resume(path, data=...)")
    if data is not None:
        if data.X.shape != stored.X.shape or data.y.shape != stored.y.shape or not (
                np.array_equal(data.X, stored.X) and np.array_equal(data.y, stored.y)):
            raise ValueError(f"data: does not hold the training set stored in {path} (stored X {stored.X.shape}, "
                             f"y {stored.y.shape}; given X {data.X.shape}, y {data.y.shape})")
    else:
        data = stored
        data.sampler = sampler
    return StoredRun(path=path, config=h.config, net0=net0, state=sd, data=data,
                     checkpoint_steps=h.checkpoint_steps, snapshot_steps=h.snapshot_steps,
                     snapshot_parts=h.snapshot_parts)
