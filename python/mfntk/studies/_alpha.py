"""The alpha sweep: the same student from the mean-field (alpha = 1) to the lazy (alpha >> sqrt(N)) regime."""
from __future__ import annotations

import dataclasses
import math
import time

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
    run_study,
    seed_for,
)

NET_DEFAULTS = {"activation": "tanh", "symmetric": True}   # symmetric: f(x; theta_0) = 0 for every alpha


def _methods():
    from .._registry import INTEGRATORS
    return INTEGRATORS


@dataclasses.dataclass(frozen=True)
class AlphaOptions(Options):
    """The options of the alpha sweep (:func:`alpha_sweep`)."""

    section = "study"

    alphas: tuple | None = option(None, "list[float]", "The scales alpha; None: 12 values log-spaced from 1 to "
                                  "16 sqrt(max(widths)).", minimum=0.0, strict=True, optional=True)
    widths: tuple = option((256,), "list[int]", "Widths N; with several, the table is the (alpha, N) phase "
                           "diagram.", minimum=1)
    t_max: float = option(20.0, "float", "Training time of every run.", minimum=0.0, strict=True,
                          unit="mean-field time")
    dt: float = option(0.1, "float", "Time step of every run.", minimum=0.0, strict=True, unit="mean-field time")
    method: str = option("euler", "choice", "Integrator of every run.", choices=_methods)
    kappa: float | None = option(None, "float", "Training-risk threshold of time_to_kappa; None: 1/20 of the "
                                 "initial risk (needs symmetric = true).", minimum=0.0, strict=True, optional=True)
    record_every: float | None = option(None, "float", "Time between records; None: t_max / 50.", minimum=0.0,
                                        strict=True, optional=True, unit="mean-field time")
    seed: int = option(0, "int", "Seed of the study; width N uses a seed derived from (seed, N), the same for "
                       "every alpha.", minimum=0)
    probe_size: int = option(128, "int", "Training points on which the kernel distance is computed.", minimum=1)
    lazy_from: float | None = option(None, "float", "Smallest alpha used in the lazy-regime fits; None: "
                                     "2 sqrt(max(widths)).", minimum=0.0, strict=True, optional=True)


def _alpha_task(spec):
    from .._network import TwoLayer
    from .._simulate import simulate
    net = TwoLayer(spec["d"], spec["width"], scaling=spec["alpha"], seed=spec["net_seed"], **spec["net"])
    start = time.perf_counter()
    tr = completed(simulate(net, spec["data"], spec["t_max"], spec["dt"], method=spec["method"],
                            record_every=spec["record_every"], threads=spec["threads"], diagnostics=True,
                            linearized=True, probe_size=spec["probe_size"], progress=False))
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


def lazy_theory(activation, symmetric):
    """The lazy-regime slopes (log-log against alpha) that theory predicts for a run, and
    why.

    In mean-field time the particles move by O(1/alpha) (SPEC 3), so the displacement
    scales like 1/alpha whatever the activation. The tangent kernel K_mu changes at first
    order in that displacement, and f - fbar (the Taylor remainder) at second order: both
    O(1/alpha) ([COB19]_). With the symmetric initialisation the particles come in pairs
    (a, w), (-a, w) that move as (a + da, w + dw), (-a + da, w - dw) up to O(1/alpha^2):
    their first-order kernel changes and their second-order Taylor terms cancel, which
    leaves O(1/alpha^2) for both, provided sigma is twice differentiable. With relu, the
    particles whose pre-activation changes sign on the data change the kernel by O(1)
    each, and no clean rate is known: no slope is given rather than a wrong one.

    Parameters
    ----------
    activation : str
        The student's activation (its smoothness is read from the registry).
    symmetric : bool
        Whether the initialisation is symmetric (f(x; theta_0) = 0).

    Returns
    -------
    theory : dict
        Quantity -> slope, or None where no slope is predicted (displacement,
        kernel_distance, max_linearized_distance).
    notes : list of str
        The reasoning, for the study's printed summary.
    """
    from .._registry import activation_info
    smooth = activation_info(activation).smooth
    second_order = -2.0 if (symmetric and smooth) else None
    theory = {"displacement": -1.0, "kernel_distance": second_order, "max_linearized_distance": second_order}
    notes = []
    if symmetric:
        notes.append("theory slope of the displacement: -1 (the particles move O(1/alpha) to move f by O(1), "
                     "whatever the activation)")
    if symmetric and smooth:
        notes.append(f"theory slopes of the kernel distance and the linearized distance: -2, not the generic -1 of "
                     f"Chizat-Oyallon-Bach (a centred model): with the symmetric initialisation the particles come "
                     f"in pairs (a, w), (-a, w) whose first-order kernel changes and second-order Taylor terms "
                     f"cancel, and {activation} is smooth")
    elif symmetric:
        notes.append(f"no theory slope for the kernel distance and the linearized distance: {activation} is not "
                     "smooth, so the cancellation within the pairs (a, w), (-a, w) that gives -2 for a smooth "
                     "activation does not hold (particles whose pre-activation changes sign change the kernel at "
                     "first order), and no other rate is established; use a smooth activation (tanh, erf) to "
                     "compare with -2")
    else:
        notes.append("symmetric=False: f(x; theta_0) = O(alpha / sqrt(N)) grows with alpha, so large alpha is "
                     "not the lazy limit of Chizat-Oyallon-Bach (which needs f(theta_0) bounded); only the "
                     "displacement slope is compared with theory, and it need not match")
    return theory, notes


@document(AlphaOptions)
def alpha_sweep(data=None, net=None, *, executor=None, workers=None, threads=None, progress=None, **options):
    """Lazy-to-rich sweep: the same student trained with alpha from 1 (mean-field) to >> sqrt(N) (lazy).

    For each width N and alpha, the student (same initial particles for every alpha,
    symmetric initialisation so that f(x; theta_0) = 0 whatever alpha) is trained for the
    same mean-field time; recorded: final test risk, relative kernel distance
    |K_t - K_0|_F / |K_0|_F, relative displacement |theta_t - theta_0| / |theta_0|, the
    distance to the linearized model |f - fbar| / |f_0 - y| (final and maximum over the
    run), and the time (and number of steps) to reach training risk ``kappa``. Slopes are
    fitted over alpha >= ``lazy_from`` (default 2 sqrt(max(widths))) and compared with the
    theory that applies to the run (:func:`lazy_theory`): the displacement scales like
    1/alpha; with the symmetric initialisation and a smooth activation the kernel distance
    and the linearized distance scale like 1/alpha^2 (the pairs (a, w), (-a, w) cancel the
    first-order kernel change and the second-order Taylor term; the generic rate of
    [COB19]_, for a centred model without pairs, is 1/alpha); with a non-smooth activation
    (relu) or without the symmetric initialisation no slope is predicted for them. With
    several widths the table is the (alpha, N) phase diagram
    (:func:`mfntk.plot.phase_diagram`, written as ``alpha_phase.png`` by
    :meth:`StudyResult.save`).

    Parameters
    ----------
    data, net :
        As in :func:`width` (``net`` defaults to activation "tanh" and symmetric=True here).
    {options}
    executor, workers, threads, progress :
        How the runs are executed (see :func:`run_tasks`).

    Returns
    -------
    StudyResult
        Table columns: width, alpha, alpha_over_sqrt_width, test_risk, train_risk,
        kernel_distance, displacement, linearized_distance, max_linearized_distance,
        time_to_kappa, steps_to_kappa, wall_time.

    Raises
    ------
    StudyInterrupted
        On Ctrl-C; its ``result`` holds the rows of the completed runs (see
        :mod:`mfntk.studies`).
    """
    start = time.perf_counter()
    opts = AlphaOptions.build("alpha_sweep", **options)
    data = check_data(data)
    widths = sorted(set(opts.widths))
    n_max = widths[-1]
    alphas = list(np.logspace(0, math.log10(16 * math.sqrt(n_max)), 12)) if opts.alphas is None else opts.alphas
    alphas = sorted(set(float(a) for a in alphas))
    net = net_options(net, NET_DEFAULTS)
    check_even(widths, net)
    symmetric = bool(net.get("symmetric", False))
    activation = net["activation"]
    t_max = opts.t_max
    kappa = opts.kappa
    if kappa is None:
        if not symmetric:
            raise ValueError("kappa: give the training-risk threshold (the default needs symmetric=True)")
        from .._losses import risk
        kappa = 0.05 * risk("squared", np.zeros_like(data.y), data.y)
    lazy_from = 2 * math.sqrt(n_max) if opts.lazy_from is None else opts.lazy_from
    record_every = t_max / 50 if opts.record_every is None else opts.record_every
    tasks = [{"d": data.d, "width": n, "alpha": a, "net_seed": seed_for(opts.seed, n), "net": net, "data": data,
              "t_max": t_max, "dt": opts.dt, "method": opts.method, "record_every": record_every, "kappa": kappa,
              "probe_size": opts.probe_size} for n in widths for a in alphas]
    settings = {"alphas": alphas, "widths": widths, "net": net, "t_max": t_max, "dt": opts.dt,
                "method": opts.method, "kappa": kappa, "record_every": record_every, "seed": opts.seed,
                "lazy_from": lazy_from, "data": data.description or data.name, "d": data.d, "n_train": data.n}
    theory, theory_notes = lazy_theory(activation, symmetric)

    def assemble(results):
        rows = [dict({"width": t["width"], "alpha": t["alpha"],
                      "alpha_over_sqrt_width": t["alpha"] / math.sqrt(t["width"])}, **res)
                for t, res in zip(tasks, results) if res is not None]
        fits, notes = [], []
        for n in widths:
            sel = [r for r in rows if r["width"] == n and r["alpha"] >= lazy_from]
            for q in ("displacement", "kernel_distance", "max_linearized_distance"):
                if len(sel) >= 2:
                    fits.append(fit_loglog([r["alpha"] for r in sel], [r[q] for r in sel], q, theory=theory[q],
                                           group=f"N={n}", note=f"lazy regime alpha >= {lazy_from:.3g}"))
            if len(sel) < 2:
                notes.append(f"N={n}: fewer than two alphas >= lazy_from = {lazy_from:.3g}; no lazy-regime fit")
        notes += theory_notes
        notes.append(f"kappa = {kappa:.4g} (training risk); time_to_kappa is in mean-field units, nan when not "
                     f"reached by t_max = {t_max:g}")
        notes.append("in mean-field time units the tangent kernel does not depend on alpha, so the early function "
                     "dynamics (and time_to_kappa in the lazy regime) are alpha-independent; gradient-descent steps "
                     "with learning rate eta correspond to dt = eta alpha^2 / N")
        return StudyResult("alpha", Table(rows), fits, settings, notes, time.perf_counter() - start)

    return run_study(_alpha_task, tasks, assemble, executor=executor, workers=workers, threads=threads,
                     progress=progress, desc="alpha sweep")


#: The quantities of the alpha figure's panels and their axis labels.
_PANELS = (("displacement", r"displacement $\|\theta_t-\theta_0\|/\|\theta_0\|$"),
           ("kernel_distance", r"kernel distance $\|K_t-K_0\|_F/\|K_0\|_F$"),
           ("max_linearized_distance", r"max over t of $\|f_t-\bar f_t\|/\|f_0-y\|$"))


def _fit_label(fit):
    if fit is None:
        return ""
    return f", slope {fit.slope:+.2f} " + (f"(theory {fit.theory:+.3g})" if fit.theory is not None else "(no theory)")


def figure(result):
    """Displacement, kernel distance, linearized distance and final risks against alpha, one
    curve per width; the lazy-regime fits dashed, their slopes (and the theory's, where one
    applies to the run's activation and initialisation) in the legends."""
    from .. import plot
    t = result.table
    widths = list(dict.fromkeys(t["width"].tolist())) if len(t) else []
    panels = [(q, yl) for q, yl in _PANELS if q in t.columns] if len(t) else list(_PANELS)
    fig, axes = plot._figure(1, len(panels) + 1, width=3.5, height=3.3)
    alphas = np.unique(t["alpha"].astype(float)) if len(t) else None
    with plot._style():
        for i, n in enumerate(widths):
            sel = t["width"] == n
            a = t["alpha"][sel].astype(float)
            for ax, (q, _) in zip(axes[0], panels):
                fit = next((f for f in result.fits if f.quantity == q and f.group == f"N={n}"), None)
                ax.plot(a, t[q][sel].astype(float), marker="o", color=f"C{i}", label=f"N = {n}{_fit_label(fit)}")
                if fit is not None:
                    xs = np.geomspace(fit.x.min(), fit.x.max(), 20)
                    ax.plot(xs, fit.predict(xs), ls="--", color=f"C{i}", lw=1.0)
            axes[0, -1].plot(a, t["test_risk"][sel].astype(float), marker="o", color=f"C{i}", label=f"N = {n}, test")
            axes[0, -1].plot(a, t["train_risk"][sel].astype(float), marker=".", ls=":", color=f"C{i}",
                             label=f"N = {n}, train")
            for ax in axes[0]:
                ax.axvline(math.sqrt(n), color=f"C{i}", lw=0.6, ls="-.")
        for ax, yl in zip(axes[0], [yl for _, yl in panels] + ["final risk"]):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(r"$\alpha$, log scale (dash-dot: $\alpha=\sqrt{N}$)")
            ax.set_ylabel(yl + ", log scale")
            plot.tidy_log_axes(ax, xvalues=alphas)
            if widths:
                ax.legend(fontsize=7)
        t_max = result.settings.get("t_max")
        act = (result.settings.get("net") or {}).get("activation")
        fig.suptitle("lazy-to-rich sweep" + (f", {act} student" if act else "")
                     + (f", at t = {t_max:g}" if t_max is not None else ""))
    return fig


def phase_figure(result):
    """The (alpha, N) phase diagram of the kernel distance (:func:`mfntk.plot.phase_diagram`)."""
    from .. import plot
    return plot.phase_diagram(result, "kernel_distance")


STUDY = Study(
    name="alpha", run=alpha_sweep, options=AlphaOptions, figure=figure, more_figures={"phase": phase_figure},
    net_defaults=NET_DEFAULTS,
    summary="lazy-to-rich sweep: test risk, kernel distance, displacement, linearized distance and time to reach "
            "a training risk kappa vs alpha (and N); also writes the (alpha, N) phase diagram")
