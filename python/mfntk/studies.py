"""Scripted convergence studies: width (propagation of chaos), time step, alpha sweep.

Each study runs a sweep of simulations, possibly in parallel processes, and returns a
:class:`StudyResult`: a tidy :class:`Table` (one row per run or per swept value, exportable
to CSV and JSON), least-squares fits in log-log coordinates (:class:`Fit`, with the points
used and the slope theory predicts), the settings, notes on how to read the numbers, and a
figure (:meth:`StudyResult.figure`, through :mod:`mfntk.plot`).

Parallel runs
-------------
The runs of a sweep are independent tasks (picklable dicts handed to a module-level
function). ``executor`` may be anything with the :mod:`concurrent.futures` interface
(``submit`` returning futures): a ``ProcessPoolExecutor``, a ``ThreadPoolExecutor``, or a
cluster executor (dask.distributed's ``Client.get_executor()``, mpi4py.futures, ...). Without
one, ``workers`` processes are started with the "spawn" method (safe with OpenMP; a script
that runs a study must then guard its top level with ``if __name__ == "__main__":``), and
each run gets ``threads // workers`` OpenMP threads (at least one), so that the machine's
cores are split instead of oversubscribed. ``workers=1`` runs everything in this process.
Every run's seeds are fixed by the study's ``seed`` and the run's place in the sweep, so the
results do not depend on the executor, the number of workers or the order of completion.

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
import io
import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from ._registry import INTEGRATORS, check_integrator, integrator_info
from ._validation import check_float, check_int, resolve_threads

__all__ = ["Table", "Fit", "StudyResult", "fit_loglog", "width", "time_step", "alpha_sweep", "default_data",
           "run_tasks", "STUDIES"]

_NET_KEYS = ("activation", "bias", "outputs", "w_std", "a_std", "b_std", "symmetric", "dtype", "a_init", "c0")


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


class StudyResult:
    """What a study returns: a tidy table, fits, settings, notes and a figure.

    Attributes
    ----------
    name : str
        "width", "dt" or "alpha".
    table : Table
    fits : list of Fit
    settings : dict
        Everything needed to reproduce the study.
    notes : list of str
        How the numbers were obtained and how to read them.
    wall_time : float
    """

    def __init__(self, name, table, fits, settings, notes, wall_time=0.0):
        self.name, self.table, self.fits, self.settings, self.notes = name, table, fits, settings, notes
        self.wall_time = wall_time

    def fit(self, quantity, group=None):
        """The fit of one quantity (and group, e.g. the integrator in the time-step study)."""
        for f in self.fits:
            if f.quantity == quantity and (group is None or f.group == group):
                return f
        raise KeyError(f"no fit of {quantity!r}" + (f" for {group!r}" if group else ""))

    def figure(self):
        """The study's figure (a matplotlib Figure)."""
        from . import plot
        return plot.study(self)

    def to_json(self, path=None):
        """Table, fits, settings and notes as one JSON document."""
        doc = {"study": self.name, "rows": self.table.records(), "columns": self.table.columns,
               "fits": [f.as_dict() for f in self.fits], "settings": self.settings, "notes": self.notes,
               "wall_time": self.wall_time}
        text = json.dumps(doc, indent=1, default=_plain)
        if path is None:
            return text
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return os.fspath(path)

    def to_csv(self, path=None):
        return self.table.to_csv(path)

    def save(self, out):
        """Write ``<name>.csv``, ``<name>.json`` and ``<name>.png`` into the folder ``out``; return the paths."""
        from . import plot
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        paths = [self.to_csv(os.path.join(out, f"{self.name}.csv")), self.to_json(os.path.join(out, f"{self.name}.json"))]
        paths.append(plot.save(self.figure(), os.path.join(out, f"{self.name}.png")))
        return paths

    def summary(self):
        """A printable report: the table, the fits and the notes."""
        lines = [f"study {self.name} ({self.wall_time:.1f} s)", str(self.table), "", "fits (least squares in log-log):"]
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
        return f"StudyResult({self.name!r}, {len(self.table)} rows, fits: {self.fits})"


# ---------------------------------------------------------------------------------------
# running tasks
# ---------------------------------------------------------------------------------------

def _split(n_tasks, workers, threads):
    """(workers, threads per run) for n_tasks runs on ``threads`` cores in all."""
    total = resolve_threads(threads)
    if workers is None:
        workers = max(1, min(n_tasks, total))
    else:
        workers = check_int(workers, "workers")
    return workers, max(1, total // workers)


def run_tasks(fn, tasks, executor=None, workers=None, threads=None, progress=None, desc="runs"):
    """Run ``fn(task)`` for every task and return the results in the order of ``tasks``.

    Parameters
    ----------
    fn : callable
        A module-level function (picklable) taking one task dict.
    tasks : list of dict
        Each gets a ``"threads"`` entry: the OpenMP threads of that run.
    executor : concurrent.futures.Executor-like, optional
        Anything with ``submit(fn, *args)`` returning futures. Default: a process pool of
        ``workers`` processes (spawn), or this process when ``workers == 1``.
    workers : int, optional
        Number of parallel processes (default: min(len(tasks), threads)).
    threads : int, optional
        Cores to use in all (default: all available); each run gets threads // workers.
    progress : bool or None
        A progress bar over completed runs (None: only on a terminal).
    """
    from concurrent.futures import as_completed

    from tqdm.auto import tqdm

    tasks = list(tasks)
    if executor is not None and not hasattr(executor, "submit"):
        raise TypeError(f"executor: expected an object with the concurrent.futures interface (submit), "
                        f"got {type(executor).__name__}")
    workers, per_run = _split(len(tasks), workers, threads)
    for t in tasks:
        t.setdefault("threads", per_run)
    bar = tqdm(total=len(tasks), disable=(None if progress is None else not progress), desc=desc, unit="run",
               leave=False, file=sys.stderr)
    try:
        if executor is None and workers == 1:
            results = []
            for t in tasks:
                results.append(fn(t))
                bar.update(1)
            return results
        own = executor is None
        if own:
            executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {executor.submit(fn, t): i for i, t in enumerate(tasks)}
            results = [None] * len(tasks)
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
            return results
        except BrokenProcessPool:
            if not own:
                raise
            raise RuntimeError(
                "studies: a worker process died before finishing. Workers start with 'spawn' and import "
                "the calling script again: in a script, call the study under `if __name__ == \"__main__\":`, "
                "or pass workers=1 to run in this process") from None
        finally:
            if own:
                executor.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()


def _seed(seed, *key):
    """A deterministic 32-bit seed for the run identified by ``key`` within a study seeded by ``seed``."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1)[0])


def default_data(d=5, n_train=200, n_test=500, activation="tanh", seed=0):
    """The studies' default problem: a single-neuron teacher y = sigma(<w*, x>), Gaussian inputs."""
    from . import datasets
    return datasets.teacher_dataset(datasets.SingleNeuron(d, activation, seed=seed), d, n_train, n_test,
                                    seed=seed + 1)


def _net_options(net, name="net"):
    net = {} if net is None else dict(net)
    for key in net:
        if key not in _NET_KEYS:
            raise ValueError(f"{name}: unknown option {key!r}; expected some of {', '.join(_NET_KEYS)} "
                             "(d, width, scaling and seed are set by the study)")
    net.setdefault("activation", "tanh")
    return net


def _check_data(data):
    from .datasets import as_dataset
    return default_data() if data is None else as_dataset(data, name="data")


def _check_list(values, name, kind=float, minimum=0.0):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name}: expected a list of numbers, got {type(values).__name__}")
    values = list(values)
    if not values:
        raise ValueError(f"{name}: is empty")
    out = []
    for v in values:
        if kind is int:
            out.append(check_int(v, name, minimum=int(minimum)))
        else:
            out.append(check_float(v, name, minimum=minimum, strict=True))
    return out


# ---------------------------------------------------------------------------------------
# width study: propagation of chaos
# ---------------------------------------------------------------------------------------

def _particle_rows(flat, N, k, d, bias):
    """Flat [a | W | b] -> (N, k + d [+ 1]) rows theta_j."""
    a = flat[: N * k].reshape(N, k)
    W = flat[N * k: N * (k + d)].reshape(N, d)
    parts = [a, W] + ([flat[N * (k + d):].reshape(N, 1)] if bias else [])
    return np.hstack(parts)


def _coupled_net(spec, width):
    """The network of ``width`` particles whose particles are the reference's first ones."""
    from ._network import TwoLayer
    ref = TwoLayer(spec["d"], spec["n_ref"], scaling=spec["alpha"], seed=spec["net_seed"], **spec["net"])
    if width == spec["n_ref"]:
        return ref
    idx = _coupled_index(width, spec["n_ref"], ref.symmetric)
    net = TwoLayer(spec["d"], width, scaling=spec["alpha"], seed=spec["net_seed"], **spec["net"])
    net.a, net.W = np.ascontiguousarray(ref.a[idx]), np.ascontiguousarray(ref.W[idx])
    if ref.b is not None:
        net.b = np.ascontiguousarray(ref.b[idx])
    return net


def _coupled_index(width, n_ref, symmetric):
    if not symmetric:
        return np.arange(width)
    half, ref_half = width // 2, n_ref // 2
    return np.concatenate([np.arange(half), ref_half + np.arange(half)])


def _width_task(spec):
    from ._simulate import Simulation
    width = spec["width"]
    net = _coupled_net(spec, width)
    sim = Simulation(net, spec["data"], spec["t_max"], spec["dt"], method=spec["method"],
                     record_every=spec["record_every"], threads=spec["threads"])
    probe = spec["probe"]
    keep = spec["keep"]            # how many leading particles to return at every record
    k, d, bias = net.outputs, net.d, net.bias
    thetas, fs, idx = [], [], _coupled_index(min(keep, width), width, net.symmetric) if width > keep else None

    def record(s):
        rows = _particle_rows(s.state[: s.layout["particles"]], width, k, d, bias)
        thetas.append(rows if idx is None else rows[idx])
        fs.append(s.net.predict(probe, threads=s.threads)[:, 0].astype(np.float64))

    start = time.perf_counter()
    traj = sim.run(progress=False, callback=record)
    out = {"width": width, "t": traj.t, "train_risk": traj.train_risk, "theta": np.stack(thetas), "f": np.stack(fs),
           "wall_time": time.perf_counter() - start}
    if spec.get("tail"):
        # a block of `tail` particles disjoint from the coupled ones, at t_max: an independent
        # sample of (approximately) the limit measure
        rows = _particle_rows(sim.state[: sim.layout["particles"]], width, k, d, bias)
        out["tail"] = rows[_tail_index(spec["tail"], width, net.symmetric)]
    return out


def _tail_index(n, n_ref, symmetric):
    """The last n particles (the last n/2 of each half with symmetric=True): disjoint from _coupled_index."""
    if not symmetric:
        return np.arange(n_ref - n, n_ref)
    half, ref_half = n // 2, n_ref // 2
    return np.concatenate([np.arange(ref_half - half, ref_half), np.arange(n_ref - half, n_ref)])


def _w2(X, Y):
    """W2 between the uniform empirical measures on the rows of X and Y (POT, exact OT)."""
    import ot
    a = np.full(len(X), 1.0 / len(X))
    b = np.full(len(Y), 1.0 / len(Y))
    M = ot.dist(X, Y)            # squared Euclidean costs
    return float(np.sqrt(max(ot.emd2(a, b, M, numItermax=10_000_000), 0.0)))


def width(data=None, widths=tuple(2 ** p for p in range(6, 13)), n_ref=None, net=None, scaling="mf", t_max=5.0,
          dt=0.05, method="euler", record_every=None, repeats=1, seed=0, w2=True, w2_max_width=2048,
          probe_size=256, executor=None, workers=None, threads=None, progress=None):
    """Propagation of chaos: distance of N-particle runs to a coupled reference run, against N.

    Each N-system starts from the first N particles of a reference system of ``n_ref`` >> N
    particles (synchronous coupling: same initial particles, same data, same deterministic
    full-batch dynamics). In the mean-field scaling, each particle of the N-system stays
    within O(N^-1/2) of its twin in the limit dynamics ([MMN18]_, Thm. 3), so

    * the RMS particle distance (1/N sum_j |theta_j^N(t) - theta_j^ref(t)|^2)^1/2 at t_max,
    * the sup over records and probe inputs of |f_N(x, t) - f_ref(x, t)|,
    * the sup over records of |R_N(t) - R_ref(t)| (training risk)

    decay like N^-1/2 (fitted slope about -0.5). The reference carries its own
    finite-size error, independent of the N-system's to first order, so a measured
    distance is about sqrt(C/N + C/n_ref): with the default n_ref = 16 max(widths) the
    largest-N point is inflated by sqrt(1 + 1/16), about 3 %, which changes the fitted
    slope by less than 0.01.

    With POT installed (``pip install pot``) two Wasserstein-2 distances at t_max are added:
    ``w2_coupled`` = W2(mu_N, mu_ref restricted to its first N particles), bounded by the
    RMS distance (rate N^-1/2); and ``w2_sampling`` = W2(mu_N, an independent N-particle
    block of the reference), the distance between two empirical measures of the same law,
    which converges only like N^-1/D in D = k + d (+1) >= 3 dimensions ([FG15]_): it
    measures sampling, not the dynamics, and is reported with that caveat.

    Parameters
    ----------
    data : Dataset or (X, y), optional
        Training data (default :func:`default_data`: tanh single-neuron teacher, d = 5).
    widths : list of int
        The widths N (default 2^6 .. 2^12).
    n_ref : int, optional
        Width of the reference (default 16 max(widths)); must be >= 2 max(widths) so that
        the block used by ``w2_sampling`` is disjoint from the coupled particles.
    net : dict, optional
        TwoLayer options (activation, bias, w_std, a_std, b_std, symmetric, ...); default
        activation "tanh" (the theory wants a smooth activation).
    scaling : "mf" or float
        The alpha of every run (the same for all widths, so that the systems are coupled).
    t_max, dt, method, record_every :
        Of every run (see :func:`mfntk.simulate`); full batch, no noise.
    repeats : int
        Independent repetitions (new initial particles and reference each); distances are
        averaged in quadrature (RMS) over them.
    seed : int
        Seed of the study; repetition r uses a seed derived from (seed, r).
    w2 : bool
        Compute the W2 columns (needs POT; skipped with a note when it is absent).
    w2_max_width : int
        W2 only for N up to this (exact OT costs O(N^3)); larger N get nan.
    probe_size : int
        Test inputs on which the function gap is measured.
    executor, workers, threads, progress :
        See :func:`run_tasks`.

    Returns
    -------
    StudyResult
        Table columns: width, rms_distance, function_gap, risk_gap, w2_coupled,
        w2_sampling, wall_time; fits of each against the width.
    """
    start = time.perf_counter()
    data = _check_data(data)
    widths = sorted(set(_check_list(widths, "widths", kind=int, minimum=1)))
    n_max = widths[-1]
    n_ref = 16 * n_max if n_ref is None else check_int(n_ref, "n_ref")
    if n_ref < 2 * n_max:
        raise ValueError(f"n_ref: must be at least 2 max(widths) = {2 * n_max}, got {n_ref}")
    net = _net_options(net)
    if net.get("symmetric") and any(n % 2 for n in widths + [n_ref]):
        raise ValueError("widths: symmetric=True needs even widths")
    if isinstance(scaling, str) and scaling != "mf":
        raise ValueError(f"scaling: the width study compares runs of different widths at the same alpha; use "
                         f"'mf' or a number, not {scaling!r}")
    repeats = check_int(repeats, "repeats")
    seed = check_int(seed, "seed", minimum=0)
    check_float(t_max, "t_max", minimum=0.0, strict=True)
    check_float(dt, "dt", minimum=0.0, strict=True)
    check_integrator(method)
    notes = []
    have_ot = True
    if w2:
        try:
            import ot  # noqa: F401
        except ImportError:
            have_ot = False
            notes.append("POT is not installed (pip install pot, or mfntk[ot]): the Wasserstein-2 columns "
                         "were skipped")
    probe = (data.X_test if data.has_test else data.X)[:check_int(probe_size, "probe_size")]
    record_every = t_max / 20 if record_every is None else record_every

    tasks = []
    for r in range(repeats):
        base = {"d": data.d, "n_ref": n_ref, "alpha": scaling, "net_seed": _seed(seed, r), "net": net,
                "data": data, "t_max": t_max, "dt": dt, "method": method, "record_every": record_every,
                "probe": probe, "repeat": r}
        tasks.append(dict(base, width=n_ref, keep=n_max, tail=n_max if (w2 and have_ot) else 0))
        tasks += [dict(base, width=n, keep=n, tail=0) for n in widths]
    results = run_tasks(_width_task, tasks, executor, workers, threads, progress, desc="width study")

    acc = {n: {"rms": [], "fgap": [], "rgap": [], "w2c": [], "w2s": [], "wall": []} for n in widths}
    ref_wall = 0.0
    for r in range(repeats):
        block = results[r * (len(widths) + 1):(r + 1) * (len(widths) + 1)]
        ref, runs = block[0], block[1:]
        ref_wall += ref["wall_time"]
        for res in runs:
            n, a = res["width"], acc[res["width"]]
            dtheta = res["theta"] - ref["theta"][:, _coupled_index(n, n_max, net.get("symmetric", False))]
            per_record = np.sqrt(np.mean(np.sum(dtheta ** 2, axis=2), axis=1))
            a["rms"].append(per_record[-1])
            a["fgap"].append(np.max(np.abs(res["f"] - ref["f"])))
            a["rgap"].append(np.max(np.abs(res["train_risk"] - ref["train_risk"])))
            a["wall"].append(res["wall_time"])
            if w2 and have_ot and n <= w2_max_width:
                mine = res["theta"][-1]
                a["w2c"].append(_w2(mine, ref["theta"][-1][_coupled_index(n, n_max, net.get("symmetric", False))]))
                a["w2s"].append(_w2(mine, ref["tail"][_coupled_index(n, n_max, net.get("symmetric", False))]))
    rms = lambda v: float(np.sqrt(np.mean(np.square(v)))) if v else float("nan")  # noqa: E731
    rows = [{"width": n, "rms_distance": rms(acc[n]["rms"]), "function_gap": rms(acc[n]["fgap"]),
             "risk_gap": rms(acc[n]["rgap"]), "w2_coupled": rms(acc[n]["w2c"]), "w2_sampling": rms(acc[n]["w2s"]),
             "wall_time": float(np.sum(acc[n]["wall"]))} for n in widths]
    table = Table(rows)
    D = data.k + data.d + (1 if net.get("bias") else 0)
    fits = []
    for q, label in (("rms_distance", "RMS particle distance at t_max"),
                     ("function_gap", "sup over records and probe inputs of |f_N - f_ref|"),
                     ("risk_gap", "sup over records of |R_N - R_ref| (training risk)"),
                     ("w2_coupled", "W2(mu_N, coupled block of the reference) at t_max")):
        if np.isfinite(table[q].astype(float)).sum() >= 2:
            fits.append(fit_loglog(table["width"], table[q].astype(float), q, theory=-0.5 if scaling == "mf" else None,
                                   note=label))
    if np.isfinite(table["w2_sampling"].astype(float)).sum() >= 2:
        fits.append(fit_loglog(table["width"], table["w2_sampling"].astype(float), "w2_sampling", theory=-1.0 / D,
                               note=f"W2 between two independent empirical measures in D = {D} dimensions: "
                                    f"sampling rate N^-1/D (Fournier-Guillin), not the propagation-of-chaos rate"))
        notes.append(f"w2_sampling: the empirical measure of N points in D = {D} >= 3 dimensions is at W2 "
                     f"distance ~ N^-1/{D} from its law, whatever the dynamics; its slope says nothing about "
                     "the coupling. w2_coupled (<= rms_distance) is the propagation-of-chaos quantity.")
    notes.append(f"reference width n_ref = {n_ref} = {n_ref / n_max:g} x max(widths): a measured distance is about "
                 f"sqrt(C/N + C/n_ref), so the last point is inflated by at most "
                 f"{100 * (math.sqrt(1 + n_max / n_ref) - 1):.1f} %")
    if scaling != "mf":
        notes.append(f"scaling = {scaling!r}: the N^-1/2 rate is the mean-field prediction; no theory slope given")
    settings = {"widths": widths, "n_ref": n_ref, "net": net, "scaling": scaling, "t_max": t_max, "dt": dt,
                "method": method, "record_every": record_every, "repeats": repeats, "seed": seed,
                "data": data.description or data.name, "n_train": data.n, "d": data.d, "probe_size": len(probe),
                "reference_wall_time": ref_wall, "w2_max_width": w2_max_width, "D": D}
    return StudyResult("width", table, fits, settings, notes, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------
# time-step study: observed order of each integrator
# ---------------------------------------------------------------------------------------

#: The order of each integrator of the core (the slope the time-step study expects).
ORDERS = {name: integrator_info(name).order for name in INTEGRATORS}


def _dt_task(spec):
    from ._network import TwoLayer
    from ._simulate import simulate
    net = TwoLayer(spec["d"], spec["width"], scaling=spec["alpha"], seed=spec["net_seed"], **spec["net"])
    start = time.perf_counter()
    traj = simulate(net, spec["data"], spec["t_max"], spec["dt"], method=spec["method"], record_every=spec["t_max"],
                    threads=spec["threads"], progress=False)
    return {"theta": traj.net.get_flat().astype(np.float64), "f": traj.net.predict(spec["probe"])[:, 0].astype(float),
            "steps": int(traj.step[-1]), "wall_time": time.perf_counter() - start}


def time_step(data=None, methods=None, dts=None, width=256, net=None, scaling="mf", t_max=1.0,
              dt_ref=None, seed=0, probe_size=256, floor=1e-11, executor=None, workers=None, threads=None,
              progress=None):
    """Observed order of each fixed-step integrator: error at t_max against dt, log-log.

    Every run starts from the same particles and integrates the same full-batch dynamics to
    ``t_max``; the error is the relative distance of the final particles to a reference
    solution computed with rk4 at ``dt_ref`` (default min(dts) / 8), and the same for the
    function on probe inputs. The fitted slope is the observed order (theory: euler 1,
    heun 2, rk4 4). Points whose error is below ``floor`` (rounding, and the reference's
    own error) are left out of the fit and the table says so.

    Euler-Maruyama with temperature > 0 is not studied: runs at different dt draw
    different Brownian increments (the noise is keyed by step), so their strong error
    cannot be compared path by path.

    Parameters
    ----------
    methods : list of str, optional
        Integrators of the core (``mfntk._registry.INTEGRATORS``: euler, heun, rk4); default all.
    dts : list of float, optional
        Time steps (default t_max / 2^k, k = 2..6, i.e. 0.25 .. 0.0156 for t_max = 1).
    width : int
        Width of the student.
    dt_ref : float, optional
        Step of the rk4 reference.
    floor : float
        Relative errors below this are not used in the fits.
    data, net, scaling, t_max, seed, probe_size, executor, workers, threads, progress :
        As in :func:`width`.

    Returns
    -------
    StudyResult
        Table columns: method, dt, steps, error (particles), function_error, used_in_fit,
        wall_time; one fit per method (group = method).
    """
    start = time.perf_counter()
    data = _check_data(data)
    methods = INTEGRATORS if methods is None else [methods] if isinstance(methods, str) else methods
    methods = [check_integrator(m, "methods") for m in methods]
    t_max = check_float(t_max, "t_max", minimum=0.0, strict=True)
    dts = [t_max / 2 ** k for k in range(2, 7)] if dts is None else _check_list(dts, "dts")
    dts = sorted(set(dts), reverse=True)
    dt_ref = min(dts) / 8 if dt_ref is None else check_float(dt_ref, "dt_ref", minimum=0.0, strict=True)
    net = _net_options(net)
    width = check_int(width, "width")
    seed = check_int(seed, "seed", minimum=0)
    probe = (data.X_test if data.has_test else data.X)[:check_int(probe_size, "probe_size")]
    base = {"d": data.d, "width": width, "alpha": scaling, "net_seed": _seed(seed, 0), "net": net, "data": data,
            "t_max": t_max, "probe": probe}
    tasks = [dict(base, method="rk4", dt=dt_ref)] + [dict(base, method=m, dt=h) for m in methods for h in dts]
    results = run_tasks(_dt_task, tasks, executor, workers, threads, progress, desc="time-step study")
    ref = results[0]
    scale, fscale = np.linalg.norm(ref["theta"]), max(np.linalg.norm(ref["f"]), 1e-300)
    rows = []
    for task, res in zip(tasks[1:], results[1:]):
        err = float(np.linalg.norm(res["theta"] - ref["theta"]) / scale)
        ferr = float(np.linalg.norm(res["f"] - ref["f"]) / fscale)
        rows.append({"method": task["method"], "dt": task["dt"], "steps": res["steps"], "error": err,
                     "function_error": ferr, "used_in_fit": bool(err > floor), "wall_time": res["wall_time"]})
    table = Table(rows)
    fits, notes = [], []
    for m in methods:
        sel = [r for r in rows if r["method"] == m and r["used_in_fit"]]
        if len(sel) >= 2:
            fits.append(fit_loglog([r["dt"] for r in sel], [r["error"] for r in sel], "error", theory=ORDERS[m],
                                   group=m, note=f"relative particle error at t_max vs dt ({m})"))
        else:
            notes.append(f"{m}: fewer than two errors above the floor {floor:g}; no order fitted (use larger dts)")
    notes.append(f"reference: rk4 with dt_ref = {dt_ref:g}; its own error is about (dt_ref/dt)^4 times rk4's at dt, "
                 "negligible for the lower-order methods")
    notes.append("Euler-Maruyama (temperature > 0) is not studied: the noise is keyed by step, so runs at different "
                 "dt see different Brownian paths")
    settings = {"methods": methods, "dts": dts, "dt_ref": dt_ref, "width": width, "net": net, "scaling": scaling,
                "t_max": t_max, "seed": seed, "floor": floor, "data": data.description or data.name, "d": data.d,
                "n_train": data.n}
    return StudyResult("dt", table, fits, settings, notes, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------
# alpha sweep: lazy to rich
# ---------------------------------------------------------------------------------------

def _alpha_task(spec):
    from ._network import TwoLayer
    from ._simulate import simulate
    net = TwoLayer(spec["d"], spec["width"], scaling=spec["alpha"], seed=spec["net_seed"], **spec["net"])
    start = time.perf_counter()
    tr = simulate(net, spec["data"], spec["t_max"], spec["dt"], method=spec["method"], record_every=spec["record_every"],
                  threads=spec["threads"], diagnostics=True, linearized=True, probe_size=spec["probe_size"],
                  progress=False)
    hit = np.flatnonzero(tr.train_risk <= spec["kappa"])
    return {
        "test_risk": float(tr.test_risk[-1]) if tr.test_risk is not None else float("nan"),
        "train_risk": float(tr.train_risk[-1]), "kernel_distance": float(tr.kernel_distance[-1]),
        "displacement": float(tr.displacement[-1]), "linearized_distance": float(tr.linearized_distance[-1]),
        "max_linearized_distance": float(np.max(tr.linearized_distance)),
        "time_to_kappa": float(tr.t[hit[0]]) if len(hit) else float("nan"),
        "steps_to_kappa": int(tr.step[hit[0]]) if len(hit) else -1,
        "wall_time": time.perf_counter() - start,
    }


def alpha_sweep(data=None, alphas=None, widths=(256,), net=None, t_max=20.0, dt=0.1, method="euler", kappa=None,
                record_every=None, seed=0, probe_size=128, lazy_from=None, executor=None, workers=None, threads=None,
                progress=None):
    """Lazy-to-rich sweep: the same student trained with alpha from 1 (mean-field) to >> sqrt(N) (lazy).

    For each width N and alpha, the student (same initial particles for every alpha,
    symmetric initialisation so that f(x; theta_0) = 0 whatever alpha) is trained for the
    same mean-field time; recorded: final test risk, relative kernel distance
    |K_t - K_0|_F / |K_0|_F, relative displacement |theta_t - theta_0| / |theta_0|, the
    distance to the linearized model |f - fbar| / |f_0 - y| (final and maximum over the
    run), and the time (and number of steps) to reach training risk ``kappa``. In the lazy
    regime the displacement, the kernel distance and the linearized distance all scale
    like 1/alpha ([COB19]_): slopes fitted over alpha >= ``lazy_from`` (default
    2 sqrt(max(widths))) are compared with -1. With several widths the table is the
    (alpha, N) phase diagram (:func:`mfntk.plot.phase_diagram`).

    Parameters
    ----------
    alphas : list of float, optional
        Default: 12 values log-spaced from 1 to 16 sqrt(max(widths)).
    widths : list of int
        Widths N (default [256]).
    kappa : float, optional
        Training-risk threshold (default: 1/20 of the initial risk).
    lazy_from : float, optional
        Smallest alpha used in the lazy-regime fits.
    data, net, t_max, dt, method, record_every, seed, probe_size, executor, workers, threads, progress :
        As in :func:`width` (``net`` defaults to symmetric=True here).

    Returns
    -------
    StudyResult
        Table columns: width, alpha, alpha_over_sqrt_width, test_risk, train_risk,
        kernel_distance, displacement, linearized_distance, max_linearized_distance,
        time_to_kappa, steps_to_kappa, wall_time.
    """
    start = time.perf_counter()
    data = _check_data(data)
    widths = sorted(set(_check_list(widths, "widths", kind=int, minimum=1)))
    n_max = widths[-1]
    alphas = list(np.logspace(0, math.log10(16 * math.sqrt(n_max)), 12)) if alphas is None else \
        _check_list(alphas, "alphas")
    alphas = sorted(set(float(a) for a in alphas))
    net = _net_options(net)
    net.setdefault("symmetric", True)
    if net["symmetric"] and any(n % 2 for n in widths):
        raise ValueError("widths: symmetric=True needs even widths")
    seed = check_int(seed, "seed", minimum=0)
    t_max = check_float(t_max, "t_max", minimum=0.0, strict=True)
    if kappa is None:
        from ._losses import risk
        kappa = 0.05 * risk("squared", np.zeros_like(data.y), data.y) if net["symmetric"] else None
        if kappa is None:
            raise ValueError("kappa: give the training-risk threshold (the default needs symmetric=True)")
    kappa = check_float(kappa, "kappa", minimum=0.0, strict=True)
    lazy_from = 2 * math.sqrt(n_max) if lazy_from is None else check_float(lazy_from, "lazy_from", minimum=0.0)
    record_every = t_max / 50 if record_every is None else record_every
    tasks = [{"d": data.d, "width": n, "alpha": a, "net_seed": _seed(seed, n), "net": net, "data": data,
              "t_max": t_max, "dt": dt, "method": method, "record_every": record_every, "kappa": kappa,
              "probe_size": probe_size} for n in widths for a in alphas]
    results = run_tasks(_alpha_task, tasks, executor, workers, threads, progress, desc="alpha sweep")
    rows = [dict({"width": t["width"], "alpha": t["alpha"], "alpha_over_sqrt_width": t["alpha"] / math.sqrt(t["width"])},
                 **res) for t, res in zip(tasks, results)]
    table = Table(rows)
    fits, notes = [], []
    symmetric = bool(net["symmetric"])
    theory = {"displacement": -1.0, "kernel_distance": -2.0 if symmetric else None,
              "max_linearized_distance": -2.0 if symmetric else None}
    for n in widths:
        sel = [r for r in rows if r["width"] == n and r["alpha"] >= lazy_from]
        for q in ("displacement", "kernel_distance", "max_linearized_distance"):
            if len(sel) >= 2:
                fits.append(fit_loglog([r["alpha"] for r in sel], [r[q] for r in sel], q, theory=theory[q],
                                       group=f"N={n}", note=f"lazy regime alpha >= {lazy_from:.3g}"))
        if len(sel) < 2:
            notes.append(f"N={n}: fewer than two alphas >= lazy_from = {lazy_from:.3g}; no lazy-regime fit")
    if symmetric:
        notes.append("theory slopes in the lazy regime: displacement ~ 1/alpha (the particles move O(1/alpha) to "
                     "move f by O(1)); kernel distance and linearized distance ~ 1/alpha^2, not the generic "
                     "1/alpha of Chizat-Oyallon-Bach: with the symmetric initialisation the particles come in pairs "
                     "(a, w), (-a, w) whose first-order kernel changes and second-order Taylor terms cancel")
    else:
        notes.append("symmetric=False: f(x; theta_0) = O(alpha / sqrt(N)) grows with alpha, so large alpha is not "
                     "the lazy limit of Chizat-Oyallon-Bach (which needs f(theta_0) bounded); only the "
                     "displacement slope is compared with theory, and it need not match")
    notes.append(f"kappa = {kappa:.4g} (training risk); time_to_kappa is in mean-field units, nan when not reached "
                 f"by t_max = {t_max:g}")
    notes.append("in mean-field time units the tangent kernel does not depend on alpha, so the early function "
                 "dynamics (and time_to_kappa in the lazy regime) are alpha-independent; gradient-descent steps "
                 "with learning rate eta correspond to dt = eta alpha^2 / N")
    settings = {"alphas": alphas, "widths": widths, "net": net, "t_max": t_max, "dt": dt, "method": method,
                "kappa": kappa, "record_every": record_every, "seed": seed, "lazy_from": lazy_from,
                "data": data.description or data.name, "d": data.d, "n_train": data.n}
    return StudyResult("alpha", table, fits, settings, notes, time.perf_counter() - start)


#: The studies by command-line name.
STUDIES = {"width": width, "dt": time_step, "alpha": alpha_sweep}
