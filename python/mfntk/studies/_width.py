"""The width study: propagation of chaos, distance of N-particle runs to a coupled reference."""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from .._options import Options, option
from ._base import (
    Study,
    StudyResult,
    Table,
    check_data,
    check_even,
    completed,
    document,
    fit_loglog,
    net_options,
    particle_rows,
    run_study,
    seed_for,
)

NET_DEFAULTS = {"activation": "tanh"}     # the theory wants a smooth activation


def _methods():
    from .._registry import INTEGRATORS
    return INTEGRATORS


@dataclasses.dataclass(frozen=True)
class WidthOptions(Options):
    """The options of the width study (:func:`width`)."""

    section = "study"

    widths: tuple = option(tuple(2 ** p for p in range(6, 13)), "list[int]", "The widths N of the coupled runs.",
                           minimum=1)
    n_ref: int | None = option(None, "int", "Width of the reference; None: 16 max(widths). At least 2 max(widths), "
                               "so that the block used by w2_sampling is disjoint from the coupled particles.",
                               minimum=2, optional=True)
    scaling: Any = option("mf", "scaling", "The alpha of every run, the same for all widths so that the systems "
                          "are coupled: 'mf' or a number ('ntk' would change alpha with N).")
    t_max: float = option(5.0, "float", "Final time of every run.", minimum=0.0, strict=True,
                          unit="mean-field time")
    dt: float = option(0.05, "float", "Time step of every run (full batch, no noise).", minimum=0.0, strict=True,
                       unit="mean-field time")
    method: str = option("euler", "choice", "Integrator of every run.", choices=_methods)
    record_every: float | None = option(None, "float", "Time between records (the function and risk gaps are "
                                        "sup over records); None: t_max / 20.", minimum=0.0, strict=True,
                                        optional=True, unit="mean-field time")
    repeats: int = option(1, "int", "Independent repetitions (new initial particles and reference each); "
                          "distances are averaged in quadrature (RMS) over them.", minimum=1)
    seed: int = option(0, "int", "Seed of the study; repetition r uses a seed derived from (seed, r).", minimum=0)
    w2: bool = option(True, "bool", "Compute the Wasserstein-2 columns (needs POT; skipped with a note when it is "
                      "absent).")
    w2_max_width: int = option(2048, "int", "W2 only for N up to this (exact OT costs O(N^3)); larger N get nan.",
                               minimum=1)
    probe_size: int = option(256, "int", "Test inputs on which the function gap is measured.", minimum=1)

    def _check_together(self):
        n_max = max(self.widths)
        if self.n_ref is not None and self.n_ref < 2 * n_max:
            raise ValueError(f"n_ref: must be at least 2 max(widths) = {2 * n_max}, got {self.n_ref}")
        if self.scaling == "ntk":
            raise ValueError("scaling: the width study compares runs of different widths at the same alpha; use "
                             "'mf' or a number, not 'ntk'")


# ---------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------

def _coupled_net(spec, width):
    """The network of ``width`` particles whose particles are the reference's first ones."""
    from .._network import TwoLayer
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


def _tail_index(n, n_ref, symmetric):
    """The last n particles (the last n/2 of each half with symmetric=True): disjoint from _coupled_index."""
    if not symmetric:
        return np.arange(n_ref - n, n_ref)
    half, ref_half = n // 2, n_ref // 2
    return np.concatenate([np.arange(ref_half - half, ref_half), np.arange(n_ref - half, n_ref)])


def _width_task(spec):
    from .._simulate import Simulation
    width = spec["width"]
    net = _coupled_net(spec, width)
    sim = Simulation(net, spec["data"], spec["t_max"], spec["dt"], method=spec["method"],
                     record_every=spec["record_every"], threads=spec["threads"])
    probe = spec["probe"]
    keep = spec["keep"]            # how many leading particles to return at every record
    thetas, fs, idx = [], [], _coupled_index(min(keep, width), width, net.symmetric) if width > keep else None

    def record(s):
        rows = particle_rows(s)
        thetas.append(rows if idx is None else rows[idx])
        fs.append(s.net.predict(probe, threads=s.threads)[:, 0].astype(np.float64))

    start = time.perf_counter()
    traj = completed(sim.run(progress=False, callback=record))
    out = {"width": width, "t": traj.t, "train_risk": traj.train_risk, "theta": np.stack(thetas), "f": np.stack(fs),
           "wall_time": time.perf_counter() - start}
    if spec.get("tail"):
        # a block of `tail` particles disjoint from the coupled ones, at t_max: an independent
        # sample of (approximately) the limit measure
        out["tail"] = particle_rows(sim)[_tail_index(spec["tail"], width, net.symmetric)]
    return out


def _w2(X, Y):
    """W2 between the uniform empirical measures on the rows of X and Y (POT, exact OT)."""
    import ot
    a = np.full(len(X), 1.0 / len(X))
    b = np.full(len(Y), 1.0 / len(Y))
    M = ot.dist(X, Y)            # squared Euclidean costs
    return float(np.sqrt(max(ot.emd2(a, b, M, numItermax=10_000_000), 0.0)))


# ---------------------------------------------------------------------------------------
# the study
# ---------------------------------------------------------------------------------------

@document(WidthOptions)
def width(data=None, net=None, *, executor=None, workers=None, threads=None, progress=None, **options):
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
    net : dict, optional
        TwoLayer options other than d, width, scaling and seed (activation, bias, w_std,
        a_std, b_std, symmetric, ...); default activation "tanh" (the theory wants a smooth
        activation).
    {options}
    executor, workers, threads, progress :
        How the runs are executed (see :func:`run_tasks`); they do not change the numbers.

    Returns
    -------
    StudyResult
        Table columns: width, rms_distance, function_gap, risk_gap, w2_coupled,
        w2_sampling, wall_time, repeats (the repetitions averaged in the row); fits of each
        against the width.

    Raises
    ------
    StudyInterrupted
        On Ctrl-C; its ``result`` holds the rows of the completed runs (see
        :mod:`mfntk.studies`).
    """
    start = time.perf_counter()
    opts = WidthOptions.build("width", **options)
    data = check_data(data)
    widths = sorted(set(opts.widths))
    n_max = widths[-1]
    n_ref = 16 * n_max if opts.n_ref is None else opts.n_ref
    net = net_options(net, NET_DEFAULTS)
    check_even(widths + [n_ref], net)
    symmetric = bool(net.get("symmetric", False))
    scaling, t_max, repeats, w2 = opts.scaling, opts.t_max, opts.repeats, opts.w2
    notes = []
    have_ot = True
    if w2:
        try:
            import ot  # noqa: F401
        except ImportError:
            have_ot = False
            notes.append("POT is not installed (pip install pot, or mfntk[ot]): the Wasserstein-2 columns "
                         "were skipped")
    probe = (data.X_test if data.has_test else data.X)[:opts.probe_size]
    record_every = t_max / 20 if opts.record_every is None else opts.record_every

    tasks = []
    for r in range(repeats):
        base = {"d": data.d, "n_ref": n_ref, "alpha": scaling, "net_seed": seed_for(opts.seed, r), "net": net,
                "data": data, "t_max": t_max, "dt": opts.dt, "method": opts.method, "record_every": record_every,
                "probe": probe, "repeat": r}
        tasks.append(dict(base, width=n_ref, keep=n_max, tail=n_max if (w2 and have_ot) else 0))
        tasks += [dict(base, width=n, keep=n, tail=0) for n in widths]
    D = data.k + data.d + (1 if net.get("bias") else 0)
    settings = {"widths": widths, "n_ref": n_ref, "net": net, "scaling": scaling, "t_max": t_max, "dt": opts.dt,
                "method": opts.method, "record_every": record_every, "repeats": repeats, "seed": opts.seed,
                "data": data.description or data.name, "n_train": data.n, "d": data.d, "probe_size": len(probe),
                "w2_max_width": opts.w2_max_width, "D": D}

    def assemble(results):
        acc = {n: {"rms": [], "fgap": [], "rgap": [], "w2c": [], "w2s": [], "wall": []} for n in widths}
        ref_wall = 0.0
        for r in range(repeats):
            block = results[r * (len(widths) + 1):(r + 1) * (len(widths) + 1)]
            ref, runs = block[0], block[1:]
            if ref is None:                # a row needs the reference of its repetition
                continue
            ref_wall += ref["wall_time"]
            for res in runs:
                if res is None:
                    continue
                n, a = res["width"], acc[res["width"]]
                idx = _coupled_index(n, n_max, symmetric)
                dtheta = res["theta"] - ref["theta"][:, idx]
                per_record = np.sqrt(np.mean(np.sum(dtheta ** 2, axis=2), axis=1))
                a["rms"].append(per_record[-1])
                a["fgap"].append(np.max(np.abs(res["f"] - ref["f"])))
                a["rgap"].append(np.max(np.abs(res["train_risk"] - ref["train_risk"])))
                a["wall"].append(res["wall_time"])
                if w2 and have_ot and n <= opts.w2_max_width:
                    mine = res["theta"][-1]
                    a["w2c"].append(_w2(mine, ref["theta"][-1][idx]))
                    a["w2s"].append(_w2(mine, ref["tail"][idx]))
        rms = lambda v: float(np.sqrt(np.mean(np.square(v)))) if v else float("nan")  # noqa: E731
        rows = [{"width": n, "rms_distance": rms(acc[n]["rms"]), "function_gap": rms(acc[n]["fgap"]),
                 "risk_gap": rms(acc[n]["rgap"]), "w2_coupled": rms(acc[n]["w2c"]),
                 "w2_sampling": rms(acc[n]["w2s"]), "wall_time": float(np.sum(acc[n]["wall"])),
                 "repeats": len(acc[n]["rms"])} for n in widths if acc[n]["rms"]]
        table = Table(rows)
        fits, more = [], list(notes)
        for q, label in (("rms_distance", "RMS particle distance at t_max"),
                         ("function_gap", "sup over records and probe inputs of |f_N - f_ref|"),
                         ("risk_gap", "sup over records of |R_N - R_ref| (training risk)"),
                         ("w2_coupled", "W2(mu_N, coupled block of the reference) at t_max")):
            if rows and np.isfinite(table[q].astype(float)).sum() >= 2:
                fits.append(fit_loglog(table["width"], table[q].astype(float), q,
                                       theory=-0.5 if scaling == "mf" else None, note=label))
        if rows and np.isfinite(table["w2_sampling"].astype(float)).sum() >= 2:
            fits.append(fit_loglog(table["width"], table["w2_sampling"].astype(float), "w2_sampling", theory=-1.0 / D,
                                   note=f"W2 between two independent empirical measures in D = {D} dimensions: "
                                        f"sampling rate N^-1/D (Fournier-Guillin), not the propagation-of-chaos "
                                        f"rate"))
            more.append(f"w2_sampling: the empirical measure of N points in D = {D} >= 3 dimensions is at W2 "
                        f"distance ~ N^-1/{D} from its law, whatever the dynamics; its slope says nothing about "
                        "the coupling. w2_coupled (<= rms_distance) is the propagation-of-chaos quantity.")
        more.append(f"reference width n_ref = {n_ref} = {n_ref / n_max:g} x max(widths): a measured distance is "
                    f"about sqrt(C/N + C/n_ref), so the last point is inflated by at most "
                    f"{100 * (math.sqrt(1 + n_max / n_ref) - 1):.1f} %")
        if scaling != "mf":
            more.append(f"scaling = {scaling!r}: the N^-1/2 rate is the mean-field prediction; no theory slope "
                        "given")
        return StudyResult("width", table, fits, dict(settings, reference_wall_time=ref_wall), more,
                           time.perf_counter() - start)

    return run_study(_width_task, tasks, assemble, executor=executor, workers=workers, threads=threads,
                     progress=progress, desc="width study")


# ---------------------------------------------------------------------------------------
# the figure
# ---------------------------------------------------------------------------------------

def figure(result):
    """Distances to the reference against N (left) and the Wasserstein-2 distances (right)."""
    from .. import plot
    t = result.table
    fits = {f.quantity: f for f in result.fits if f.group is None}
    fig, axes = plot._figure(1, 2, width=4.4, height=3.4)
    main = {q: t[q].astype(float) for q in ("rms_distance", "function_gap", "risk_gap")}
    n_ref = result.settings.get("n_ref")
    plot.convergence(t["width"], main, fits, xlabel="width N", ylabel="distance to the reference", ax=axes[0, 0],
                     title="propagation of chaos" + (f" (N_ref = {n_ref})" if n_ref is not None else ""))
    w2 = {q: t[q].astype(float) for q in ("w2_coupled", "w2_sampling") if np.isfinite(t[q].astype(float)).any()}
    ax = axes[0, 1]
    if w2:
        plot.convergence(t["width"], w2, fits, xlabel="width N", ylabel="Wasserstein-2 distance at t_max", ax=ax,
                         title=f"W2 (sampling rate N^-1/D, D = {result.settings.get('D')})")
    else:
        with plot._style():
            ax.text(0.5, 0.5, "W2 skipped (POT not installed)", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
    return fig


STUDY = Study(
    name="width", run=width, options=WidthOptions, figure=figure, net_defaults=NET_DEFAULTS,
    summary="propagation of chaos: distance of N-particle runs to a coupled reference of n_ref >> N particles, "
            "slope about -1/2 in N (plus Wasserstein-2 with POT)")
