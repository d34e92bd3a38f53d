"""The time-step study: the observed order of each fixed-step integrator."""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from .._options import Options, option
from .._registry import INTEGRATORS, integrator_info
from ._base import (
    Study,
    StudyResult,
    Table,
    check_data,
    completed,
    document,
    fit_loglog,
    net_options,
    run_study,
    seed_for,
)

#: The order of each integrator (theory slope of the error against dt).
#: The order of each integrator of the core (the slope the time-step study expects).
ORDERS = {name: integrator_info(name).order for name in INTEGRATORS}
NET_DEFAULTS = {"activation": "tanh"}


@dataclasses.dataclass(frozen=True)
class TimeStepOptions(Options):
    """The options of the time-step study (:func:`time_step`)."""

    section = "study"

    methods: tuple = option(tuple(ORDERS), "list[choice]", "Integrators of the core (mfntk._registry.INTEGRATORS).",
                            choices=lambda: tuple(ORDERS))
    dts: tuple | None = option(None, "list[float]", "Time steps; None: t_max / 2^k for k = 2..6.", minimum=0.0,
                               strict=True, optional=True, unit="mean-field time")
    width: int = option(256, "int", "Width N of the student.", minimum=1)
    scaling: Any = option("mf", "scaling", "The alpha of every run.")
    t_max: float = option(1.0, "float", "Time at which the errors are measured.", minimum=0.0, strict=True,
                          unit="mean-field time")
    dt_ref: float | None = option(None, "float", "Step of the rk4 reference; None: min(dts) / 8.", minimum=0.0,
                                  strict=True, optional=True, unit="mean-field time")
    seed: int = option(0, "int", "Seed of the initial particles.", minimum=0)
    probe_size: int = option(256, "int", "Test inputs on which the function error is measured.", minimum=1)
    floor: float = option(1e-11, "float", "Relative errors below this (rounding, the reference's own error) are "
                          "not used in the fits.", minimum=0.0, strict=True)


def _dt_task(spec):
    from .._network import TwoLayer
    from .._simulate import simulate
    net = TwoLayer(spec["d"], spec["width"], scaling=spec["alpha"], seed=spec["net_seed"], **spec["net"])
    start = time.perf_counter()
    traj = completed(simulate(net, spec["data"], spec["t_max"], spec["dt"], method=spec["method"],
                              record_every=spec["t_max"], threads=spec["threads"], progress=False))
    return {"theta": traj.net.get_flat().astype(np.float64), "f": traj.net.predict(spec["probe"])[:, 0].astype(float),
            "steps": int(traj.step[-1]), "wall_time": time.perf_counter() - start}


@document(TimeStepOptions)
def time_step(data=None, net=None, *, executor=None, workers=None, threads=None, progress=None, **options):
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
    data, net :
        As in :func:`width`.
    {options}
    executor, workers, threads, progress :
        How the runs are executed (see :func:`run_tasks`).

    Returns
    -------
    StudyResult
        Table columns: method, dt, steps, error (particles), function_error, used_in_fit,
        wall_time; one fit per method (group = method).

    Raises
    ------
    StudyInterrupted
        On Ctrl-C; its ``result`` holds the rows of the completed runs, none if the
        reference did not complete (see :mod:`mfntk.studies`).
    """
    start = time.perf_counter()
    if isinstance(options.get("methods"), str):
        options["methods"] = [options["methods"]]
    opts = TimeStepOptions.build("time_step", **options)
    data = check_data(data)
    methods = list(dict.fromkeys(opts.methods))
    t_max = opts.t_max
    dts = [t_max / 2 ** k for k in range(2, 7)] if opts.dts is None else list(opts.dts)
    dts = sorted(set(dts), reverse=True)
    dt_ref = min(dts) / 8 if opts.dt_ref is None else opts.dt_ref
    net = net_options(net, NET_DEFAULTS)
    probe = (data.X_test if data.has_test else data.X)[:opts.probe_size]
    base = {"d": data.d, "width": opts.width, "alpha": opts.scaling, "net_seed": seed_for(opts.seed, 0), "net": net,
            "data": data, "t_max": t_max, "probe": probe}
    tasks = [dict(base, method="rk4", dt=dt_ref)] + [dict(base, method=m, dt=h) for m in methods for h in dts]
    settings = {"methods": methods, "dts": dts, "dt_ref": dt_ref, "width": opts.width, "net": net,
                "scaling": opts.scaling, "t_max": t_max, "seed": opts.seed, "floor": opts.floor,
                "data": data.description or data.name, "d": data.d, "n_train": data.n}

    def assemble(results):
        ref, rows = results[0], []
        if ref is not None:                # every row is measured against the reference
            scale, fscale = np.linalg.norm(ref["theta"]), max(np.linalg.norm(ref["f"]), 1e-300)
            for task, res in zip(tasks[1:], results[1:]):
                if res is None:
                    continue
                err = float(np.linalg.norm(res["theta"] - ref["theta"]) / scale)
                ferr = float(np.linalg.norm(res["f"] - ref["f"]) / fscale)
                rows.append({"method": task["method"], "dt": task["dt"], "steps": res["steps"], "error": err,
                             "function_error": ferr, "used_in_fit": bool(err > opts.floor),
                             "wall_time": res["wall_time"]})
        fits, notes = [], []
        for m in methods:
            sel = [r for r in rows if r["method"] == m and r["used_in_fit"]]
            if len(sel) >= 2:
                fits.append(fit_loglog([r["dt"] for r in sel], [r["error"] for r in sel], "error", theory=ORDERS[m],
                                       group=m, note=f"relative particle error at t_max vs dt ({m})"))
            else:
                notes.append(f"{m}: fewer than two errors above the floor {opts.floor:g}; no order fitted (use "
                             "larger dts)")
        notes.append(f"reference: rk4 with dt_ref = {dt_ref:g}; its own error is about (dt_ref/dt)^4 times rk4's at "
                     "dt, negligible for the lower-order methods")
        notes.append("Euler-Maruyama (temperature > 0) is not studied: the noise is keyed by step, so runs at "
                     "different dt see different Brownian paths")
        return StudyResult("dt", Table(rows), fits, settings, notes, time.perf_counter() - start)

    return run_study(_dt_task, tasks, assemble, executor=executor, workers=workers, threads=threads,
                     progress=progress, desc="time-step study")


def figure(result):
    """Relative particle error at t_max against dt, one curve and fitted order per integrator
    (the time steps of the study label the horizontal axis)."""
    from .. import plot
    t = result.table
    fig, axes = plot._figure(1, 1, width=4.6, height=3.6)
    ax = axes[0, 0]
    methods = list(dict.fromkeys(t["method"].tolist())) if len(t) else []
    with plot._style():
        for i, m in enumerate(methods):
            sel = t["method"] == m
            dt, err = t["dt"][sel].astype(float), t["error"][sel].astype(float)
            fit = next((f for f in result.fits if f.group == m), None)
            label = m if fit is None else f"{m}: order {fit.slope:.2f} (theory {fit.theory:g})"
            keep = np.isfinite(err) & (err > 0)
            ax.plot(dt[keep], err[keep], marker="o", color=f"C{i}", label=label)
            if fit is not None:
                xs = np.geomspace(fit.x.min(), fit.x.max(), 20)
                ax.plot(xs, fit.predict(xs), ls="--", color=f"C{i}", lw=1.0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("time step dt (mean-field units), log scale")
        ax.set_ylabel("relative particle error at t_max, log scale")
        plot.tidy_log_axes(ax, xvalues=t["dt"].astype(float) if len(t) else None)
        dt_ref = result.settings.get("dt_ref")
        ax.set_title("observed order of the integrators" + (f" (reference rk4, dt = {dt_ref:.3g})"
                                                             if dt_ref is not None else ""))
        if methods:
            ax.legend()
    return fig


STUDY = Study(
    name="dt", run=time_step, options=TimeStepOptions, figure=figure, net_defaults=NET_DEFAULTS,
    summary="observed order of the integrators " + ", ".join(f"{m} ({o})" for m, o in ORDERS.items())
            + ": error at t_max against dt")
