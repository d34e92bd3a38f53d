"""What every study shares: tidy tables, log-log fits, the result, the registry entry, the
executor of runs and the handling of Ctrl-C.

A study is one module of :mod:`mfntk.studies` that holds

* its options, a frozen dataclass of :func:`mfntk._options.option` declarations (the study
  function validates through it; the command line reads its TOML schema and its help from it),
* its run function, which plans independent runs (picklable task dicts handed to a
  module-level function), executes them with :func:`run_tasks` and assembles a
  :class:`StudyResult` from the completed runs,
* its figure, and
* a :class:`Study` entry naming all of these; ``mfntk.studies.STUDIES`` maps names to entries.

Parallel runs
-------------
The runs of a sweep are independent tasks. ``executor`` may be anything with the
:mod:`concurrent.futures` interface (``submit`` returning futures): a ``ProcessPoolExecutor``,
a ``ThreadPoolExecutor``, or a cluster executor. Without one, ``workers`` processes are
started with the "spawn" method (safe with OpenMP; a script that runs a study must then
guard its top level with ``if __name__ == "__main__":``), and each run gets
``threads // workers`` OpenMP threads (at least one), so that the machine's cores are split
instead of oversubscribed. ``workers=1`` runs everything in this process. Every run's seeds
are fixed by the study's ``seed`` and the run's place in the sweep, so the results do not
depend on the executor, the number of workers or the order of completion.

The test suite (``tests/test_cluster_executors.py``) checks that these cluster executors give
the tables of a ``workers=1`` run bit for bit, and that a run failing or interrupted on a
worker reaches the caller as from a process pool (its exception; :class:`StudyInterrupted`)
with the cluster's workers left alive:

* dask.distributed: ``Client(LocalCluster(...)).get_executor()``, tested on a
  ``LocalCluster`` of two worker processes; on a Slurm cluster the same client runs on a
  dask-jobqueue ``SLURMCluster``;
* mpi4py: ``mpi4py.futures.MPIPoolExecutor()`` in a script started by
  ``mpiexec -n K python -m mpi4py.futures script.py`` (``srun`` in place of ``mpiexec -n K``
  on a cluster): rank 0 runs the script, the K - 1 others the runs;
* Ray: :class:`~mfntk.studies.RayExecutor` (when Ray is installed).

An executor's workers may be on other machines: each run still gets
``threads // workers`` OpenMP threads, computed from the arguments (``threads`` defaults to
the cores of *this* machine), so set them to the cores of one worker slot, e.g.
``workers=1, threads=4`` for runs of 4 threads each. A cluster executor is the caller's: a
study cancels its pending runs on a failure or an interrupt, and never shuts it down.
Batch scripts for Slurm: the documentation's page "Running on a cluster" (``docs/cluster.md``).

Interruption (Ctrl-C)
---------------------
A run that was interrupted (a :class:`~mfntk.Trajectory` with ``interrupted`` set: Ctrl-C
inside :meth:`~mfntk.Simulation.run`) never enters a table: its task raises
KeyboardInterrupt instead of returning. A Ctrl-C anywhere in a study (in this process, in a
worker, or sent to this process only, as Jupyter's "interrupt kernel" does) stops it:

* the process pool the study started is stopped at once (pending runs cancelled, running
  workers terminated; their unfinished runs are thrown away). A pool passed as
  ``executor`` is the caller's: its pending runs are cancelled, running ones are left to it;
* the study raises :class:`StudyInterrupted` (a KeyboardInterrupt), whose ``result`` is a
  :class:`StudyResult` marked ``partial`` built from the completed runs only: rows whose
  runs all completed (in the width and time-step studies a row needs its reference run
  too, so an interrupted reference leaves no row at all), fits over those rows, and a first
  note saying how many runs completed. ``result`` is None when no row could be made.

``mfntk study`` writes such a partial result as ``NAME-partial.csv`` and
``NAME-partial.json`` (never under the names of a complete study, and without figures), says
so on stderr and exits with status 130.

References
----------
.. [MMN18] S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape of
   two-layer neural networks", PNAS 115(33), 2018 (propagation of chaos, Theorem 3).
.. [COB19] L. Chizat, E. Oyallon, F. Bach, "On lazy training in differentiable
   programming", NeurIPS 2019 (distance to the linearized model = O(1/alpha)).
.. [FG15] N. Fournier, A. Guillin, "On the rate of convergence in Wasserstein distance of
   the empirical measure", Probab. Theory Relat. Fields 162, 2015.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import multiprocessing
import os
import signal
import sys
import textwrap
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from .._options import NetOptions, Options, option
from .._validation import resolve_threads

__all__ = ["Table", "Fit", "StudyResult", "Study", "StudyInterrupted", "ParallelOptions", "fit_loglog",
           "run_tasks", "run_study", "default_data", "NET_SET_BY_STUDY", "net_keys"]

#: TwoLayer options that a study sets itself (the [net] table of a study file may not).
NET_SET_BY_STUDY = ("d", "width", "scaling", "seed")


def net_keys():
    """The network options a study accepts: :class:`~mfntk._options.NetOptions` minus
    :data:`NET_SET_BY_STUDY`."""
    return NetOptions.toml_keys(exclude=NET_SET_BY_STUDY)


# ---------------------------------------------------------------------------------------
# tables, fits, results
# ---------------------------------------------------------------------------------------

class Table:
    """A tidy table: one row per observation, one column per variable.

    Parameters
    ----------
    rows : list of dict
        Rows with the same keys; values are numbers or strings.
    columns : list of str, optional
        Column order (default: the keys of the first row).
    """

    def __init__(self, rows, columns=None):
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns) if columns is not None else (list(self.rows[0]) if self.rows else [])

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, column):
        """A column as a numpy array."""
        if column not in self.columns:
            raise KeyError(f"column {column!r} is not in the table (columns: {', '.join(self.columns)})")
        return np.array([r.get(column) for r in self.rows])

    def records(self):
        """The rows as a list of dicts with plain Python values (JSON-able)."""
        return [{c: _plain(r.get(c)) for c in self.columns} for r in self.rows]

    def to_csv(self, path=None):
        """Write the table as CSV (header + rows); return the text when ``path`` is None."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for r in self.records():
            writer.writerow(["" if r[c] is None else (repr(r[c]) if isinstance(r[c], float) else r[c])
                             for c in self.columns])
        text = buf.getvalue()
        if path is None:
            return text
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        return os.fspath(path)

    def to_json(self, path=None):
        """Write the rows as a JSON list of records; return the text when ``path`` is None."""
        text = json.dumps(self.records(), indent=1, allow_nan=True)
        if path is None:
            return text
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return os.fspath(path)

    def to_pandas(self):
        """The table as a pandas DataFrame (needs pandas)."""
        import pandas as pd
        return pd.DataFrame(self.records(), columns=self.columns)

    @classmethod
    def from_csv(cls, source):
        """The table written by :meth:`to_csv` (a path, or the text itself when it has a newline).

        Cells are read back as what :meth:`to_csv` wrote: int, float (nan and inf
        included), bool (True / False), None (an empty cell) or str.
        """
        if isinstance(source, str) and "\n" in source:
            text = source
        else:
            with open(source, encoding="utf-8", newline="") as fh:
                text = fh.read()
        reader = csv.reader(io.StringIO(text))
        try:
            columns = next(reader)
        except StopIteration:
            raise ValueError("source: an empty CSV file (no header)") from None
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(columns):
                raise ValueError(f"source: line {line} has {len(cells)} cells, the header {len(columns)}")
            rows.append({c: _parse_cell(v) for c, v in zip(columns, cells)})
        return cls(rows, columns)

    def __str__(self):
        recs = self.records()
        cells = [[_fmt(r[c]) for c in self.columns] for r in recs]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(self.columns, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
        return "\n".join(lines)

    def __repr__(self):
        return f"Table({len(self)} rows; columns: {', '.join(self.columns)})"


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _parse_cell(text):
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _fmt(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


class Fit:
    """A least-squares line log(y) = intercept + slope log(x), with the points it used.

    Attributes
    ----------
    quantity : str
        What was fitted (a column of the study's table).
    slope, intercept : float
        Fitted in natural logarithms.
    stderr : float
        Standard error of the slope (nan with fewer than three points).
    x, y : ndarray
        The points used (finite and positive).
    theory : float or None
        The slope theory predicts.
    note : str
        How to read it.
    """

    def __init__(self, quantity, slope, intercept, stderr, x, y, theory=None, note="", group=None):
        self.quantity, self.slope, self.intercept, self.stderr = quantity, slope, intercept, stderr
        self.x, self.y, self.theory, self.note, self.group = np.asarray(x), np.asarray(y), theory, note, group

    def predict(self, x):
        return np.exp(self.intercept) * np.asarray(x, float) ** self.slope

    def as_dict(self):
        return {"quantity": self.quantity, "group": self.group, "slope": self.slope, "intercept": self.intercept,
                "stderr": self.stderr, "theory": self.theory, "points": len(self.x),
                "x": self.x.tolist(), "y": self.y.tolist(), "note": self.note}

    @classmethod
    def from_dict(cls, doc):
        """The fit written by :meth:`as_dict`."""
        return cls(doc["quantity"], doc["slope"], doc["intercept"], doc["stderr"], doc["x"], doc["y"],
                   doc.get("theory"), doc.get("note", ""), doc.get("group"))

    def __repr__(self):
        th = f", theory {self.theory:+.3g}" if self.theory is not None else ""
        grp = f" [{self.group}]" if self.group is not None else ""
        return f"Fit({self.quantity}{grp}: slope {self.slope:+.3f} +- {self.stderr:.2g}{th}, {len(self.x)} points)"


def fit_loglog(x, y, quantity="y", theory=None, note="", group=None):
    """Least-squares fit of log y against log x over the points where both are finite and > 0.

    Returns
    -------
    Fit

    Raises
    ------
    ValueError
        With fewer than two usable points.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape:
        raise ValueError(f"x, y: shapes differ ({x.shape} vs {y.shape})")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    xs, ys = x[keep], y[keep]
    if len(xs) < 2:
        raise ValueError(f"{quantity}: fewer than two positive finite points to fit a slope")
    lx, ly = np.log(xs), np.log(ys)
    A = np.vstack([lx, np.ones_like(lx)]).T
    (slope, intercept), *_ = np.linalg.lstsq(A, ly, rcond=None)
    stderr = float("nan")
    if len(xs) > 2:
        resid = ly - (slope * lx + intercept)
        sxx = np.sum((lx - lx.mean()) ** 2)
        stderr = float(np.sqrt(np.sum(resid ** 2) / (len(xs) - 2) / sxx)) if sxx > 0 else float("nan")
    return Fit(quantity, float(slope), float(intercept), stderr, xs, ys, theory, note, group)


#: The registry of studies, name -> :class:`Study` (filled by the package with its study modules).
STUDIES = {}


class StudyResult:
    """What a study returns: a tidy table, fits, settings, notes and figures.

    Attributes
    ----------
    name : str
        The study's name in :data:`mfntk.studies.STUDIES` ("width", "dt", "alpha", ...).
    table : Table
    fits : list of Fit
    settings : dict
        Everything needed to reproduce the study.
    notes : list of str
        How the numbers were obtained and how to read them.
    wall_time : float
    partial : bool
        True for the result of an interrupted study (:class:`StudyInterrupted`): the rows of
        the completed runs only; the first note says how many runs completed.
    """

    def __init__(self, name, table, fits, settings, notes, wall_time=0.0, partial=False):
        self.name, self.table, self.fits, self.settings, self.notes = name, table, fits, settings, notes
        self.wall_time, self.partial = wall_time, bool(partial)

    @property
    def entry(self):
        """The study's :class:`Study` entry in the registry (KeyError for an unknown name)."""
        try:
            return STUDIES[self.name]
        except KeyError:
            raise KeyError(f"{self.name!r} is not a registered study (known: {', '.join(STUDIES)})") from None

    def fit(self, quantity, group=None):
        """The fit of one quantity (and group, e.g. the integrator in the time-step study)."""
        for f in self.fits:
            if f.quantity == quantity and (group is None or f.group == group):
                return f
        raise KeyError(f"no fit of {quantity!r}" + (f" for {group!r}" if group else ""))

    def figure(self):
        """The study's figure (a matplotlib Figure), drawn by its registry entry."""
        return self.entry.figure(self)

    def figures(self):
        """Every figure :meth:`save` writes: file stem -> matplotlib Figure."""
        out = {self.name: self.figure()}
        out.update({f"{self.name}_{stem}": fn(self) for stem, fn in self.entry.more_figures.items()})
        return out

    def to_json(self, path=None):
        """Table, fits, settings and notes as one JSON document (read back by :meth:`load`)."""
        doc = {"study": self.name, "partial": self.partial, "rows": self.table.records(),
               "columns": self.table.columns, "fits": [f.as_dict() for f in self.fits], "settings": self.settings,
               "notes": self.notes, "wall_time": self.wall_time}
        text = json.dumps(doc, indent=1, default=_plain)
        if path is None:
            return text
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return os.fspath(path)

    def to_csv(self, path=None):
        return self.table.to_csv(path)

    @property
    def stem(self):
        """The file stem of :meth:`save`: the name, with ``-partial`` for a partial result."""
        return self.name + ("-partial" if self.partial else "")

    def save(self, out):
        """Write the table and the figures into the folder ``out``; return the paths.

        A complete result writes ``NAME.csv``, ``NAME.json``, ``NAME.png`` and the study's
        further figures (``NAME_<stem>.png``, e.g. ``alpha_phase.png``); a partial one only
        ``NAME-partial.csv`` and ``NAME-partial.json`` (re-plot with :meth:`load`).
        """
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        paths = [self.to_csv(os.path.join(out, f"{self.stem}.csv")),
                 self.to_json(os.path.join(out, f"{self.stem}.json"))]
        if not self.partial:
            from .. import plot
            paths += [plot.save(fig, os.path.join(out, f"{stem}.png")) for stem, fig in self.figures().items()]
        return paths

    @classmethod
    def load(cls, path):
        """A result written by :meth:`save` (or :meth:`to_json` / :meth:`to_csv`), to re-plot it
        without running the study again.

        Parameters
        ----------
        path : str or path
            ``NAME.json``: everything (table, fits, settings, notes). ``NAME.csv``: the table
            only (no fits, no settings; the study's name is the file's stem, a ``-partial``
            suffix marks a partial result); the figures then lack what needs the settings.

        Returns
        -------
        StudyResult

        Examples
        --------
        >>> res = StudyResult.load("studies/alpha/alpha.json")          # doctest: +SKIP
        >>> res.figure().savefig("alpha.pdf")                          # doctest: +SKIP
        >>> mf.plot.phase_diagram(res, "test_risk")                    # doctest: +SKIP
        """
        path = os.fspath(path)
        stem, ext = os.path.splitext(os.path.basename(path))
        if ext.lower() == ".csv":
            partial = stem.endswith("-partial")
            name = stem[: -len("-partial")] if partial else stem
            return cls(name, Table.from_csv(path), [], {}, [f"table read from {path}: fits and settings are in the "
                                                            "JSON file written beside it"], 0.0, partial)
        if ext.lower() != ".json":
            raise ValueError(f"path: expected a .json or .csv file written by StudyResult.save, got {path!r}")
        with open(path, encoding="utf-8") as fh:
            try:
                doc = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"path: {path} is not JSON ({exc})") from None
        if not isinstance(doc, dict):
            doc = {}
        missing = [k for k in ("study", "rows", "columns", "fits") if k not in doc]
        if missing:
            raise ValueError(f"path: {path} is not a study result (no {missing[0]!r})")
        return cls(doc["study"], Table(doc["rows"], doc["columns"]), [Fit.from_dict(f) for f in doc["fits"]],
                   doc.get("settings", {}), doc.get("notes", []), doc.get("wall_time", 0.0), doc.get("partial", False))

    def summary(self):
        """A printable report: the table, the fits and the notes."""
        head = f"study {self.name} ({self.wall_time:.1f} s)" + (" PARTIAL (interrupted)" if self.partial else "")
        lines = [head, str(self.table), "", "fits (least squares in log-log):"]
        for f in self.fits:
            th = f"theory {f.theory:+.3g}" if f.theory is not None else "no theory"
            grp = f" [{f.group}]" if f.group is not None else ""
            lines.append(f"  {f.quantity}{grp}: slope {f.slope:+.3f} +- {f.stderr:.2g} ({th}; {len(f.x)} points, "
                         f"x = {', '.join(f'{v:.3g}' for v in f.x)})")
        if self.notes:
            lines.append("")
            lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self):
        flag = ", partial" if self.partial else ""
        return f"StudyResult({self.name!r}, {len(self.table)} rows{flag}, fits: {self.fits})"


# ---------------------------------------------------------------------------------------
# the registry entry
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class Study:
    """One study of the registry :data:`mfntk.studies.STUDIES`.

    Attributes
    ----------
    name : str
        Its name on the command line (``mfntk study NAME``) and in :attr:`StudyResult.name`.
    run : callable
        ``run(data=None, net=None, *, executor=None, workers=None, threads=None,
        progress=None, **options) -> StudyResult``.
    options : type
        Its option set (a frozen :class:`~mfntk._options.Options` dataclass): the keyword
        options of ``run``, the keys of a study file's [study] table and their help.
    figure : callable
        ``figure(result) -> matplotlib Figure``, written as ``NAME.png``. It imports
        matplotlib when called, never at import.
    summary : str
        One line for ``mfntk study --help``.
    more_figures : mapping of str -> callable
        Further figures written by :meth:`StudyResult.save` as ``NAME_<key>.png``.
    net_defaults : mapping
        The study's defaults for the network options (:func:`net_keys`), where they differ
        from :class:`~mfntk.TwoLayer`'s.
    """

    name: str
    run: Callable[..., StudyResult]
    options: type
    figure: Callable[[StudyResult], Any]
    summary: str
    more_figures: Mapping[str, Callable[[StudyResult], Any]] = dataclasses.field(default_factory=dict)
    net_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "more_figures", MappingProxyType(dict(self.more_figures)))
        object.__setattr__(self, "net_defaults", MappingProxyType(dict(self.net_defaults)))

    def describe(self, width=88):
        """The keys of the [study] table of this study's files, for ``--help``."""
        defaults = ", ".join(f"{k} = {v!r}" for k, v in self.net_defaults.items())
        lines = [f"[study] keys of '{self.name}':", self.options.describe(width=width),
                 ParallelOptions.describe(width=width)]
        if defaults:
            lines.append(f"  ([net] defaults of this study: {defaults})")
        return "\n".join(lines)

    def __repr__(self):
        return f"Study({self.name!r}: {self.summary})"


def document(options_cls):
    """Decorator of a study's run function: the signature and the docstring's option
    block (a line holding only ``{options}``) come from ``options_cls``."""
    import inspect

    def decorate(fn):
        sig = inspect.signature(fn)
        params = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
        head = [p for p in params if p.kind != inspect.Parameter.KEYWORD_ONLY]
        tail = [p for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY]
        fn.__signature__ = sig.replace(parameters=head + options_cls.parameters() + tail)
        if fn.__doc__:
            lines = fn.__doc__.splitlines()
            for i, line in enumerate(lines):
                if line.strip() == "{options}":
                    indent = line[: len(line) - len(line.lstrip())]
                    lines[i] = textwrap.indent(options_cls.numpydoc(), indent)
            fn.__doc__ = "\n".join(lines)
        return fn

    return decorate


# ---------------------------------------------------------------------------------------
# running tasks
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ParallelOptions(Options):
    """How a study's runs are executed (they do not change the results)."""

    section = "study"

    workers: int | None = option(None, "int", "Parallel processes; None: one per run, at most one per core. The "
                                 "cores are split among them (threads divided by workers per run).", minimum=1,
                                 optional=True)
    threads: int | None = option(None, "int", "Cores to use in all (None: all this process may use).", minimum=1,
                                 optional=True, toml=False)
    progress: bool | None = option(None, "bool", "A progress bar over completed runs (None: only on a terminal).",
                                   optional=True, toml=False)


class StudyInterrupted(KeyboardInterrupt):
    """A study stopped by Ctrl-C (a KeyboardInterrupt, so it stops a script or a cell).

    Attributes
    ----------
    result : StudyResult or None
        The rows of the completed runs, marked ``partial`` (None when no row could be made).
    completed, total : int
        Runs completed and planned.
    results : list
        The raw results of the runs, None for those not completed.
    notes : list of str
        Why no partial result could be made, when that happened.
    """

    def __init__(self, desc, results=()):
        self.desc, self.results, self.notes = desc, results, []
        self.completed, self.total = sum(r is not None for r in results), len(results)
        self.result = None
        super().__init__(f"{desc} interrupted after {self.completed} of {self.total} runs")


def _split(n_tasks, workers, threads):
    """(workers, threads per run) for n_tasks runs on ``threads`` cores in all."""
    total = resolve_threads(threads)
    if workers is None:
        workers = max(1, min(n_tasks, total))
    return workers, max(1, total // workers)


def completed(traj):
    """``traj``, or KeyboardInterrupt if its run was interrupted: an interrupted run must never
    reach a table. Every task function passes its trajectories through this."""
    if getattr(traj, "interrupted", False):
        raise KeyboardInterrupt(f"run interrupted at t = {traj.t[-1]:.6g}")
    return traj


def _ignore_sigint():
    """Initializer of the study's own worker processes: an idle worker ignores Ctrl-C (a busy
    one still stops its run, which Simulation.run arranges); the parent stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(executor):
    """Terminate the processes of a ProcessPoolExecutor at once (their runs are discarded)."""
    stop = getattr(executor, "terminate_workers", None)        # Python >= 3.14
    if stop is not None:
        stop()
        return
    procs = list((getattr(executor, "_processes", None) or {}).values())
    queue = getattr(executor, "_call_queue", None)
    if queue is not None:
        # a task still being fed to a terminated worker would block the pool's shutdown for ever
        # (Python 3.10 and 3.11 join the feeder thread of the call queue)
        queue.cancel_join_thread()
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():  # pragma: no cover - SIGTERM ignored
            p.kill()
            p.join(timeout=5)


class _RunInterrupted(Exception):
    """A run's KeyboardInterrupt on its way back from an executor's worker.

    Cluster executors do not all carry a KeyboardInterrupt raised by a task back to the
    caller: a dask.distributed worker dies of it (and the scheduler runs the task again on
    another worker), a Ray worker reports a cancelled task. An ordinary exception crosses
    every executor; :func:`run_tasks` raises KeyboardInterrupt again in its place.
    """


class _Call:
    """``fn(task)`` in an executor's worker, its KeyboardInterrupt turned into :class:`_RunInterrupted`.

    Each :func:`run_tasks` call makes its own: dask.distributed names a task by a hash of its
    function and arguments, and a task submitted under the name of one that an earlier call
    cancelled (after a failure or an interrupt) would come back cancelled too.
    """

    def __init__(self, fn):
        self.fn, self.token = fn, uuid.uuid4().hex

    def __call__(self, task):
        try:
            return self.fn(task)
        except KeyboardInterrupt as exc:
            raise _RunInterrupted(str(exc)) from None

    def __dask_tokenize__(self):
        return (type(self).__qualname__, self.token)


def run_tasks(fn, tasks, executor=None, workers=None, threads=None, progress=None, desc="runs"):
    """Run ``fn(task)`` for every task and return the results in the order of ``tasks``.

    Parameters
    ----------
    fn : callable
        A module-level function (picklable) taking one task dict and returning anything but
        None.
    tasks : list of dict
        Each gets a ``"threads"`` entry: the OpenMP threads of that run.
    executor : concurrent.futures.Executor-like, optional
        Anything with ``submit(fn, *args)`` returning :class:`concurrent.futures.Future`
        objects, e.g. ``distributed.Client.get_executor()``,
        ``mpi4py.futures.MPIPoolExecutor()`` or :class:`RayExecutor`. It is the caller's:
        it is never shut down here. Default: a process pool of ``workers`` processes
        (spawn), or this process when ``workers == 1``.
    workers : int, optional
        Number of parallel processes (default: min(len(tasks), threads)).
    threads : int, optional
        Cores to use in all (default: all available); each run gets threads // workers.
    progress : bool or None
        A progress bar over completed runs (None: only on a terminal).

    Raises
    ------
    StudyInterrupted
        On Ctrl-C (or a run that returns an interrupted trajectory), with the results of
        the completed runs (None for the others) in ``results``. A pool started here is
        stopped before it is raised.
    Exception
        The exception of the first run found failed (in the order of completion), as the
        run raised it; the runs not yet started are cancelled first.
    """
    from concurrent.futures import as_completed

    from tqdm.auto import tqdm

    tasks = list(tasks)
    if executor is not None and not hasattr(executor, "submit"):
        raise TypeError(f"executor: expected an object with the concurrent.futures interface (submit), "
                        f"got {type(executor).__name__}")
    par = ParallelOptions(workers=workers, threads=threads, progress=progress)
    workers, per_run = _split(len(tasks), par.workers, par.threads)
    for t in tasks:
        t.setdefault("threads", per_run)
    results = [None] * len(tasks)
    bar = tqdm(total=len(tasks), disable=(None if progress is None else not progress), desc=desc, unit="run",
               leave=False, file=sys.stderr)
    try:
        if executor is None and workers == 1:
            for i, t in enumerate(tasks):
                results[i] = fn(t)
                bar.update(1)
            return results
        own = executor is None
        if own:
            executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_ignore_sigint)
        futures, finished = {}, False
        try:
            call = _Call(fn)
            for i, t in enumerate(tasks):
                futures[executor.submit(call, t)] = i
            for fut in as_completed(futures):
                try:
                    results[futures[fut]] = fut.result()
                except _RunInterrupted as exc:
                    raise KeyboardInterrupt(str(exc)) from None
                bar.update(1)
            finished = True
            return results
        except BrokenProcessPool:
            if not own:
                raise
            raise RuntimeError(
                "studies: a worker process died before finishing. Workers start with 'spawn' and import "
                "the calling script again: in a script, call the study under `if __name__ == \"__main__\":`, "
                "or pass workers=1 to run in this process") from None
        except KeyboardInterrupt:
            for fut, i in futures.items():       # runs that completed while the interrupt was handled
                if results[i] is None and fut.done() and not fut.cancelled() and fut.exception() is None:
                    results[i] = fut.result()
            raise
        finally:
            if not finished:
                for fut in futures:
                    fut.cancel()
            if own:
                if not finished:
                    _stop_workers(executor)
                executor.shutdown(wait=True, cancel_futures=True)
    except KeyboardInterrupt:
        raise StudyInterrupted(desc, results) from None
    finally:
        bar.close()


def run_study(fn, tasks, assemble, *, executor, workers, threads, progress, desc):
    """:func:`run_tasks`, then ``assemble(results) -> StudyResult``.

    ``assemble`` skips the rows whose runs are missing (None): on an interrupt it is called
    with the completed runs only, its result is marked partial and attached to the
    :class:`StudyInterrupted` raised (None when it has no row).
    """
    try:
        results = run_tasks(fn, tasks, executor, workers, threads, progress, desc)
    except StudyInterrupted as exc:
        try:
            partial = assemble(exc.results)
        except Exception as err:  # the interrupt must get through whatever the partial rows hold
            exc.notes.append(f"no partial result: {type(err).__name__}: {err}")
        else:
            if len(partial.table):
                partial.partial = True
                partial.notes.insert(0, f"PARTIAL: {desc} interrupted after {exc.completed} of {exc.total} runs; "
                                        "the rows and fits use the completed runs only")
                exc.result = partial
        raise
    return assemble(results)


def seed_for(seed, *key):
    """A deterministic 32-bit seed for the run identified by ``key`` within a study seeded by ``seed``."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1)[0])


def default_data(d=5, n_train=200, n_test=500, activation="tanh", seed=0):
    """The studies' default problem: a single-neuron teacher y = sigma(<w*, x>), Gaussian inputs."""
    from .. import datasets
    return datasets.teacher_dataset(datasets.SingleNeuron(d, activation, seed=seed), d, n_train, n_test,
                                    seed=seed + 1)


def check_data(data):
    from ..datasets import as_dataset
    return default_data() if data is None else as_dataset(data, name="data")


def net_options(net, defaults=(), name="net"):
    """The validated network options of a study (a dict): ``defaults`` completed by ``net``."""
    net = {} if net is None else dict(net)
    allowed = net_keys()
    opts = NetOptions.opts()
    for key in net:
        if key not in allowed:
            raise ValueError(f"{name}: unknown option {key!r}; expected some of {', '.join(allowed)} "
                             f"({', '.join(NET_SET_BY_STUDY)} are set by the study)")
        net[key] = opts[key].check(net[key], f"{name}.{key}")
    return {**dict(defaults), **net}


def check_even(widths, net):
    if net.get("symmetric") and any(n % 2 for n in widths):
        raise ValueError("widths: symmetric=True needs even widths")


# ---------------------------------------------------------------------------------------
# particles of a running simulation
# ---------------------------------------------------------------------------------------

def _particles(sim):
    """(a, W, b) of a Simulation at its current step; b is None without bias."""
    return sim.particles()


def particle_rows(sim):
    """The particles of a running Simulation as rows theta_j = (a_j, w_j[, b_j]): an (N, k + d [+ 1]) copy."""
    a, W, b = _particles(sim)
    return np.hstack([a, W] + ([np.asarray(b).reshape(-1, 1)] if b is not None else []))
