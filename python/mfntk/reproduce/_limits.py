"""Entries of mfntk.reproduce: the two infinite-width limits and the kernels of linearized networks.

``mean-field-limit``
    Mei, Montanari, Nguyen (2018): at alpha = 1 the risk curve of an N-particle network
    converges to the large-N curve at rate N^-1/2 (propagation of chaos), on their isotropic
    Gaussians and on a teacher task, while the distribution of the neurons moves.
``ntk-limit``
    Jacot, Gabriel, Hongler (2018): in the NTK scaling the tangent kernel stays within
    O(N^-1/2) of its initial value over the whole run, and the network follows the frozen-kernel
    flow of its own initial kernel (:class:`mfntk.NTKLimit`) and the flow of the infinite-width
    analytic kernel.
``rf-nt-kernels``
    The lecture notes "Linearized networks": the empirical RF and NT kernels tend to their
    analytic limits at rate N^-1/2, the concentration scale sqrt((n + d) / (N d)) of
    Montanari-Zhong, and the polynomial staircase of kernel ridge regression on the sphere
    (Ghorbani-Mei-Misiakiewicz-Montanari): with n ~ d^l samples the degree <= l part of the
    target is learned and the test risk sits at the norm of the degree > l part.

Every table has one row per point of the figure (per seed where the seeds are few) and a ``series``
column that says which panel the row belongs to; the figures are drawn from the tables alone.
"""
from __future__ import annotations

import math

import numpy as np

from ..studies import Table, fit_loglog, run_tasks
from ..studies._base import seed_for
from ._base import Check, Entry, Reproduction, register, reproduce

__all__ = ["mean_field_limit", "ntk_limit", "rf_nt_kernels"]


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------

def _mean_sem(values):
    """(mean, standard error of the mean) of the values (SEM 0 for a single value)."""
    v = np.asarray(values, float)
    return float(np.mean(v)), (float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0)


def _rows(table, series, **match):
    return [r for r in table.rows if r["series"] == series and all(r[k] == v for k, v in match.items())]


def _grouped(rows, key, value):
    """{key: [value of every row with that key]}, keys sorted."""
    out = {}
    for r in rows:
        out.setdefault(r[key], []).append(r[value])
    return dict(sorted(out.items()))


def _seed_mean_fit(rows, key, value, quantity, theory=-0.5):
    """The log-log fit of the seed means of ``value`` against ``key``."""
    groups = _grouped(rows, key, value)
    return fit_loglog(list(groups), [np.mean(v) for v in groups.values()], quantity, theory=theory)


def _slope_sem(rows, key, value, seed_key="seed"):
    """The jackknife standard error, over seeds, of the slope of the seed means of ``value`` against ``key``."""
    groups = _grouped(rows, key, value)
    seeds = _grouped(rows, key, seed_key)
    values = [[v for _, v in sorted(zip(seeds[k], groups[k]))] for k in groups]
    return _jackknife_slope_sem(values, list(groups))


def _jackknife_slope_sem(values_by_width, widths):
    """Jackknife standard error of the slope of log(mean) against log(width) over the samples
    (values_by_width: (widths, samples); sample i is removed from every width at once); nan below 3 samples."""
    values = np.asarray(values_by_width, float)
    k = values.shape[1]
    if k < 3:
        return float("nan")
    slopes = np.array([fit_loglog(widths, np.delete(values, i, axis=1).mean(axis=1)).slope for i in range(k)])
    return float(math.sqrt((k - 1) / k * np.sum((slopes - slopes.mean()) ** 2)))


def _errorbars(ax, x, mean, sem, label, color, marker="o"):
    """Points with +- one standard error (the lower bar kept above 0 for a log axis)."""
    mean, sem = np.asarray(mean, float), np.asarray(sem, float)
    lower = np.minimum(sem, 0.9 * mean)
    ax.errorbar(x, mean, yerr=[lower, sem], fmt=marker, color=color, ms=4, capsize=2, label=label)


def _power_law(ax, fit, color, label=None):
    """The fitted line (dashed) and the theory slope through the fit's geometric centre (dotted for -1/2,
    dash-dotted otherwise)."""
    xs = np.geomspace(fit.x.min(), fit.x.max(), 20)
    ax.plot(xs, fit.predict(xs), ls="--", lw=1.0, color=color)
    if fit.theory is not None:
        lx, ly = np.mean(np.log(fit.x)), np.mean(np.log(fit.predict(fit.x)))
        ax.plot(xs, np.exp(ly + fit.theory * (np.log(xs) - lx)), ls=":" if fit.theory == -0.5 else "-.", lw=1.2,
                color="0.3", label=label)


def _run_threads(threads, width, n, d):
    """OpenMP threads for one run: 1 below about a million multiply-adds per step (a parallel region per
    step then costs more than it saves, and much more on a busy machine), else ``threads``. The
    numbers do not depend on it."""
    return 1 if width * n * d < 2 ** 20 else threads


def _slope_check(quantity, fit, tolerance, sem):
    extra = f"; jackknife standard error {sem:.2f}" if math.isfinite(sem) else ""
    return Check(f"{quantity} (fitted slope{extra})", fit.slope, fit.theory, tolerance)


# ---------------------------------------------------------------------------------------------
# mean-field-limit: Mei, Montanari, Nguyen (2018)
# ---------------------------------------------------------------------------------------------

_MF_SIZES = {
    "quick": {"d": 10, "n": 128, "widths": (32, 64, 128, 256, 512), "n_ref": 4096, "seeds": 3, "blocks": 8,
              "t_max": 10.0, "slope_tol": 0.15},
    "full": {"d": 20, "n": 512, "widths": (32, 64, 128, 256, 512, 1024, 2048), "n_ref": 16384, "seeds": 4,
             "blocks": 8, "t_max": 10.0, "slope_tol": 0.1},
}
#: Settings every size shares: the student, the integrator (mean-field time, SPEC 3), the problems.
_MF = {"net": {"activation": "relu", "bias": True, "b_std": 0.5, "symmetric": True}, "dt": 0.1, "method": "euler",
       "records": 20, "delta": 0.5, "teacher_width": 4, "density_times": (0.0, 1.0, 3.0, 10.0), "curve_widths": 3,
       "curve_every": 2, "bins": 20}
_MF_PROBLEMS = ("isotropic Gaussians", "teacher")


def _mf_data(problem, d, n, seed):
    from .. import datasets
    if problem == "isotropic Gaussians":
        return datasets.isotropic_gaussians(d, n, n_test=0, delta=_MF["delta"], seed=seed_for(seed, 0))
    teacher = datasets.TwoLayerTeacher(d, _MF["teacher_width"], activation="tanh", seed=seed_for(seed, 1))
    return datasets.teacher_dataset(teacher, d, n, n_test=0, seed=seed_for(seed, 2))


def _block_index(width, block, n_ref):
    """Particle indices of the ``block``-th N-system carved out of a symmetric reference of n_ref
    particles: N/2 consecutive pairs (a_j, w_j, b_j), (-a_j, w_j, b_j). Blocks are disjoint."""
    half, ref_half = width // 2, n_ref // 2
    first = np.arange(block * half, (block + 1) * half)
    return np.concatenate([first, ref_half + first])


def _mf_run(net, task, density):
    """Train ``net``; return the training-risk curve, the final particle rows and, with ``density``,
    |w_j| at the density times."""
    from .._simulate import Simulation
    from ..studies._base import completed, particle_rows
    data = task["data"]
    sim = Simulation(net, data, task["t_max"], task["dt"], method=task["method"], record_every=task["record_every"],
                     threads=_run_threads(task["threads"], net.width, data.n, data.d))
    norms = {}

    def record(s):
        t = s.step * s.dt
        for when in task["density_times"] if density else ():
            if abs(t - when) < 1e-9 * max(1.0, when):
                norms[when] = np.linalg.norm(s.particles()[1], axis=1).copy()

    traj = completed(sim.run(progress=False, callback=record))
    return {"t": traj.t, "train_risk": traj.train_risk, "theta": particle_rows(sim), "w_norms": norms}


def _mf_task(task):
    """One initial reference of n_ref particles and, for every width N, ``blocks`` disjoint
    N-systems made of its particles (each coupled to the reference: same initial particles,
    same data, same deterministic dynamics)."""
    from .._network import TwoLayer
    n_ref = task["n_ref"]
    ref_net = TwoLayer(task["d"], n_ref, scaling=1.0, seed=task["net_seed"], **_MF["net"])
    ref = _mf_run(ref_net, task, density=task["density"])
    out = {"ref": ref, "systems": []}
    for width in task["widths"]:
        for block in range(task["blocks"]):
            idx = _block_index(width, block, n_ref)
            net = TwoLayer(task["d"], width, scaling=1.0, seed=task["net_seed"], **_MF["net"])
            net.a, net.W = np.ascontiguousarray(ref_net.a[idx]), np.ascontiguousarray(ref_net.W[idx])
            net.b = np.ascontiguousarray(ref_net.b[idx])
            res = _mf_run(net, task, density=task["density"] and block == 0 and width == max(task["widths"]))
            rms = np.sqrt(np.mean(np.sum((res["theta"] - ref["theta"][idx]) ** 2, axis=1)))
            out["systems"].append({"width": width, "block": block, "train_risk": res["train_risk"],
                                   "sup_risk_gap": float(np.max(np.abs(res["train_risk"] - ref["train_risk"]))),
                                   "rms_particle_distance": float(rms), "w_norms": res["w_norms"]})
    return out


def _run_mean_field_limit(size, workers, threads, seed):
    from scipy.stats import wasserstein_distance
    p = _MF_SIZES[size]
    widths, n_ref, d, t_max = p["widths"], p["n_ref"], p["d"], p["t_max"]
    n_max = max(widths)
    if p["blocks"] * n_max > n_ref:
        raise ValueError("the blocks of the largest width must fit in the reference")
    tasks = []
    for i, problem in enumerate(_MF_PROBLEMS):
        data = _mf_data(problem, d, p["n"], seed_for(seed, i))
        tasks += [{"problem": problem, "seed": s, "data": data, "d": d, "n_ref": n_ref, "widths": widths,
                   "blocks": p["blocks"], "net_seed": seed_for(seed, 10 + i, s), "t_max": t_max, "dt": _MF["dt"],
                   "method": _MF["method"], "record_every": t_max / _MF["records"],
                   "density_times": _MF["density_times"], "density": i == 0 and s == 0}
                  for s in range(p["seeds"])]
    results = run_tasks(_mf_task, tasks, workers=workers, threads=threads, progress=False, desc="mean-field-limit")

    nan = float("nan")
    blank = {"t": nan, "train_risk": nan, "sup_risk_gap": nan, "sup_risk_gap_se": nan, "rms_particle_distance": nan,
             "rms_particle_distance_se": nan, "systems": 0, "w_norm": nan, "density": nan}
    rows, checks, samples = [], [], {}
    curve_widths = widths[::max(1, (len(widths) - 1) // (_MF["curve_widths"] - 1))][:_MF["curve_widths"]]
    for problem in _MF_PROBLEMS:
        mine = [(task, res) for task, res in zip(tasks, results) if task["problem"] == problem]
        gap = np.array([[sy["sup_risk_gap"] for _, res in mine for sy in res["systems"] if sy["width"] == n]
                        for n in widths])
        rms = np.array([[sy["rms_particle_distance"] for _, res in mine for sy in res["systems"] if sy["width"] == n]
                        for n in widths])
        samples[problem] = (gap, rms)
        for j, n in enumerate(widths):
            (g, g_se), (r, r_se) = _mean_sem(gap[j]), _mean_sem(rms[j])
            rows.append({**blank, "series": "gap", "problem": problem, "width": n, "sup_risk_gap": g,
                         "sup_risk_gap_se": g_se, "rms_particle_distance": r, "rms_particle_distance_se": r_se,
                         "systems": gap.shape[1]})
        res0 = mine[0][1]
        every = _MF["curve_every"]
        curves = [(n_ref, res0["ref"]["train_risk"])] + [
            (sy["width"], sy["train_risk"]) for sy in res0["systems"]
            if sy["block"] == 0 and sy["width"] in curve_widths]
        for n, risk in curves:
            rows += [{**blank, "series": "risk curve", "problem": problem, "width": n, "t": float(t),
                      "train_risk": float(r)} for t, r in zip(res0["ref"]["t"][::every], risk[::every])]
    # the radial law of the neurons: |w_j| of the reference and of the largest N-system (isotropic Gaussians, seed 0)
    res0 = results[0]
    norms_ref = res0["ref"]["w_norms"]
    norms_big = next(sy["w_norms"] for sy in res0["systems"] if sy["width"] == n_max and sy["block"] == 0)
    times = sorted(norms_ref)
    edges = np.linspace(0.0, np.quantile(np.concatenate(list(norms_ref.values())), 0.995), _MF["bins"] + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    for n, norms in ((n_ref, norms_ref), (n_max, norms_big)):
        for t in times:
            dens, _ = np.histogram(norms[t], bins=edges, density=True)
            rows += [{**blank, "series": "density", "problem": _MF_PROBLEMS[0], "width": n, "t": t,
                      "w_norm": float(c), "density": float(v)} for c, v in zip(centres, dens)]
    table = Table(rows, ["series", "problem", "width", "systems", "t", "train_risk", "sup_risk_gap",
                         "sup_risk_gap_se", "rms_particle_distance", "rms_particle_distance_se", "w_norm", "density"])

    for column, what in (("sup_risk_gap", "sup over t of |R_N(t) - R_ref(t)|"),
                         ("rms_particle_distance", "RMS distance of the particles to their twins at t_max")):
        for problem in _MF_PROBLEMS:
            fit = fit_loglog(widths, [r[column] for r in _rows(table, "gap", problem=problem)], column, theory=-0.5)
            sem = _jackknife_slope_sem(samples[problem][0 if column == "sup_risk_gap" else 1], widths)
            checks.append(_slope_check(f"{problem}: {what} against N", fit, p["slope_tol"], sem))
    for problem in _MF_PROBLEMS:
        curve = _rows(table, "risk curve", problem=problem, width=n_ref)
        ratio = float(curve[-1]["train_risk"] / curve[0]["train_risk"])
        checks.append(Check(f"{problem}: R_ref(t_max) / R_ref(0) of the reference network", ratio, None,
                            holds=bool(ratio < 0.5), condition="below 1/2 (the mean-field dynamics trains)"))
    moved = wasserstein_distance(norms_ref[times[0]], norms_ref[times[-1]])
    tracked = wasserstein_distance(norms_big[times[-1]], norms_ref[times[-1]])
    checks.append(Check(f"W1 between the laws of |w_j| of the N = {n_max} system and of the reference at t = "
                        f"{times[-1]:g}, over W1 between the reference's at t = 0 and t = {times[-1]:g}",
                        float(tracked / moved), None, holds=bool(tracked < 0.5 * moved),
                        condition="below 1/2 (the neurons move at order one and the N-system follows the "
                                  "limit law)"))
    systems = p["seeds"] * p["blocks"]
    notes = [
        f"two-layer ReLU networks with biases (b_std = {_MF['net']['b_std']:g}), alpha = 1 (mean-field scaling), "
        f"symmetric initialisation (f(x; theta_0) = 0 for every N), trained by full-batch gradient descent on the "
        f"squared loss (Euler, dt = {_MF['dt']:g} in mean-field time, t_max = {t_max:g}); risk = mean of "
        "(y - f)^2 / 2 on the training set",
        f"problems: MMN's isotropic Gaussians (d = {d}, Delta = {_MF['delta']:g}, labels +-1) and a two-layer tanh "
        f"teacher of width {_MF['teacher_width']} (Gaussian inputs, d = {d}); n = {p['n']} training points each",
        f"coupling: {p['seeds']} references of N_ref = {n_ref} particles (independent initialisations); from each, "
        f"{p['blocks']} disjoint N-systems per width N in {', '.join(map(str, widths))} start from blocks of its "
        f"particles (pairs of the symmetric initialisation kept together), so every point averages {systems} "
        "independent N-systems (error bars: one standard error). Only the first N particles are used by "
        "mfntk.studies.width; disjoint blocks give more systems per (expensive) reference",
        "a coupled gap estimates the distance to the limit times sqrt(1 - N / N_ref) (the block is part of the "
        f"reference): {100 * (1 - math.sqrt(1 - n_max / n_ref)):.0f} % smaller at the largest N, which steepens "
        "the fitted slope by less than 0.03",
        f"slope tolerance {p['slope_tol']:g}: a sup over time of a fluctuation has a large spread from system to "
        "system (the jackknife standard error of each slope is in its check), and the risk gap also has an O(1/N) "
        "part (the risk is quadratic in f)",
        "differences from the paper: MMN train by online SGD on fresh samples (population risk) with a fixed "
        "second layer and a piecewise-linear activation, and compare SGD with the solution of the PDE; here the "
        "second layer is trained, the dynamics is full-batch gradient flow on a fixed training set, and the "
        "large-N reference plays the part of the PDE",
        f"density panel: |w_j| of all {n_ref} reference particles (lines) and of an N = {n_max} system (points), "
        "isotropic Gaussians, first seed; W1 = 1-Wasserstein distance between the laws of |w_j|",
    ]
    return Reproduction("mean-field-limit", size, table, checks, _figure_mean_field_limit, notes)


def _figure_mean_field_limit(result):
    from .. import plot
    table = result.table
    fig, axes = plot._figure(2, 2, width=4.6, height=3.4)
    with plot._style():
        for ax, problem in zip(axes[0], _MF_PROBLEMS):
            curves = _rows(table, "risk curve", problem=problem)
            widths = sorted({r["width"] for r in curves})
            n_ref = widths[-1]
            ref = [r for r in curves if r["width"] == n_ref]
            ax.plot([r["t"] for r in ref], [r["train_risk"] for r in ref], color="k", lw=1.5,
                    label=f"reference N = {n_ref}")
            for i, n in enumerate(widths[:-1]):
                pts = [r for r in curves if r["width"] == n]
                ax.plot([r["t"] for r in pts], [r["train_risk"] for r in pts], ls="none",
                        marker="os^"[i % 3], ms=3.5, color=f"C{i}", label=f"N = {n}")
            ax.set_yscale("log")
            plot.tidy_log_axes(ax)
            ax.set_xlabel(plot.TIME_LABEL)
            ax.set_ylabel("training risk, mean of (y - f)^2 / 2, log scale")
            ax.set_title(f"{problem}: risk curves (seed 0)")
            ax.legend()
        ax = axes[1, 0]
        for i, problem in enumerate(_MF_PROBLEMS):
            rows = _rows(table, "gap", problem=problem)
            x = np.array([r["width"] for r in rows], float)
            fit = fit_loglog(x, [r["sup_risk_gap"] for r in rows], "sup_risk_gap", theory=-0.5)
            _errorbars(ax, x, [r["sup_risk_gap"] for r in rows], [r["sup_risk_gap_se"] for r in rows],
                       f"{problem}: slope {fit.slope:+.2f}", f"C{i}", marker="os"[i])
            _power_law(ax, fit, f"C{i}", label=r"slope $-1/2$" if i == 0 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        plot.tidy_log_axes(ax, xvalues=x)
        ax.set_xlabel("width N, log scale")
        ax.set_ylabel(r"$\sup_t |R_N(t) - R_{ref}(t)|$, log scale")
        ax.set_title(f"distance to the large-N risk curve ({rows[0]['systems']} systems per point)")
        ax.legend()
        ax = axes[1, 1]
        dens = _rows(table, "density")
        widths = sorted({r["width"] for r in dens})
        times = sorted({r["t"] for r in dens})
        cmap = plot._time_cmap()
        for j, t in enumerate(times):
            color = cmap(j / max(len(times) - 1, 1))
            ref = [r for r in dens if r["width"] == widths[-1] and r["t"] == t]
            ax.plot([r["w_norm"] for r in ref], [r["density"] for r in ref], color=color, lw=1.5,
                    label=f"t = {t:g}")
            small = [r for r in dens if r["width"] == widths[0] and r["t"] == t]
            ax.plot([r["w_norm"] for r in small], [r["density"] for r in small], ls="none", marker="o", ms=2.5,
                    color=color)
        ax.plot([], [], ls="none", marker="o", ms=2.5, color="0.4", label=f"N = {widths[0]}")
        ax.plot([], [], color="0.4", label=f"reference N = {widths[-1]}")
        ax.set_xlabel(r"$|w_j|$")
        ax.set_ylabel("density")
        ax.set_title(f"radial law of the neurons, {_MF_PROBLEMS[0]}")
        ax.legend()
    return fig


register(Entry(
    name="mean-field-limit", paper="Mei, Montanari, Nguyen (2018)",
    what="Theorem 3 on the isotropic Gaussians of Section 2.1",
    claim="At alpha = 1 the N-particle dynamics follows its N -> infinity limit (the distributional dynamics): "
          "the risk curve R_N(t) stays within O(N^-1/2) of the limit curve uniformly over bounded times, while "
          "the law of the neurons evolves at order one (feature learning).",
    seconds={"quick": 15, "full": 420}, run=_run_mean_field_limit))


def mean_field_limit(size="quick", out=None, workers=1, threads=None, seed=0):
    """The mean-field limit: risk curves converging to the large-N curve at rate N^-1/2.

    Two-layer ReLU networks at alpha = 1 are trained by gradient flow on the isotropic
    Gaussians of Mei-Montanari-Nguyen and on a two-layer teacher. Every N-system starts from the
    first N particles of a reference of N_ref >> N particles (the coupling of
    :func:`mfntk.studies.width`); the sup over time of |R_N(t) - R_ref(t)| and the RMS distance of
    the particles to their twins are fitted against N (slope -1/2), and the radial law of the
    neurons |w_j| is shown at a few times for the reference and for the largest N.

    Parameters
    ----------
    size : {"quick", "full"}
        "quick": d = 10, n = 256, N = 32 ... 512, N_ref = 4096, 6 seeds (about 15 s on 2 cores);
        "full": d = 20, n = 1024, N = 32 ... 2048, N_ref = 16384, 12 seeds (about 7 min).
    out : str or path, optional
        Folder for mean-field-limit.csv, .json, .png and .md.
    workers : int
        Processes for the independent runs.
    threads : int or None
        OpenMP threads in all (None: all available).
    seed : int
        Seed of the data and of the initial particles.

    Returns
    -------
    Reproduction

    References
    ----------
    S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape of two-layer neural
    networks", PNAS 115(33), 2018 (Section 2.1, the isotropic Gaussians; Theorem 3).
    """
    return reproduce("mean-field-limit", size=size, out=out, workers=workers, threads=threads, seed=seed)


# ---------------------------------------------------------------------------------------------
# ntk-limit: Jacot, Gabriel, Hongler (2018)
# ---------------------------------------------------------------------------------------------

_NTK_SIZES = {
    "quick": {"widths": (256, 1024, 4096, 16384), "seeds": 6, "slope_tol": 0.15},
    "full": {"widths": (256, 1024, 4096, 16384, 65536), "seeds": 12, "slope_tol": 0.1},
}
#: Settings every size shares: inputs on the circle of radius sqrt(d) = sqrt(2) (E x x^T = I), n
#: training angles, a smooth target, the networks (NTK scaling, symmetric: f(x; theta_0) = 0), the run
#: (rk4 in mean-field time, SPEC 3) and the grid of angles of the function and kernel panels.
_NTK = {"n": 8, "net": {"scaling": "ntk", "symmetric": True}, "t_max": 40.0, "dt": 0.5, "records": 20,
        "grid": 37}
#: Activations: relu (the paper's, drawn in the kernel and function panels) and a smooth one.
_NTK_ACTIVATIONS = ("relu", "tanh")
#: The rates of ntk-limit: table column, what it measures.
_NTK_RATES = (("sup_kernel_distance", "sup over t of |K_t - K_0|_F / |K_0|_F"),
              ("sup_gap_ntk_limit", "sup over t and the circle of |f_N - f_NTKLimit| (the network's own K_0 "
                                    "frozen)"),
              ("sup_gap_analytic_flow", "sup over t and the circle of |f_N - f_inf| (the flow of the analytic "
                                        "kernel)"))


def _circle(gamma):
    """Points x(gamma) = sqrt(2) (cos gamma, sin gamma) on the circle of radius sqrt(d), d = 2."""
    gamma = np.asarray(gamma, float)
    return math.sqrt(2.0) * np.column_stack([np.cos(gamma), np.sin(gamma)])


def _ntk_target(gamma):
    return np.sin(2.0 * gamma) + 0.5 * np.cos(gamma)


def _ntk_problem(seed):
    """The training angles (sorted), inputs and targets, and the angles of the grid."""
    gamma = np.sort(np.random.default_rng(seed_for(seed, 0)).uniform(-np.pi, np.pi, _NTK["n"]))
    grid = np.linspace(-np.pi, np.pi, _NTK["grid"])
    return gamma, _circle(gamma), _ntk_target(gamma), grid


def _analytic_flow(kernel, X, y, X2, times):
    """f_t(X2) at the given times of the kernel gradient flow started at f = 0 (the function of the
    infinite-width network whose kernel is ``kernel``), shape (len(times), len(X2))."""
    from ..regression import KernelRegressor
    K, K2 = kernel(X), kernel(X2, X)
    return np.array([KernelRegressor(kernel="precomputed", t=float(t)).fit(K, y).predict(K2) for t in times])


def _record_times():
    """The record times of the ntk-limit runs: every t_max / records."""
    return np.arange(_NTK["records"] + 1) * (_NTK["t_max"] / _NTK["records"])


def _ntk_task(task):
    from .. import kernels
    from .._network import TwoLayer
    from .._ntk_limit import NTKLimit
    from .._simulate import Simulation
    from ..studies._base import completed
    X, y, grid = task["X"], task["y"], _circle(task["grid"])
    threads = _run_threads(task["threads"], task["width"], len(X), X.shape[1])
    net = TwoLayer(2, task["width"], activation=task["activation"], seed=task["net_seed"], **_NTK["net"])
    sim = Simulation(net, (X, y), _NTK["t_max"], _NTK["dt"], method="rk4",
                     record_every=_NTK["t_max"] / _NTK["records"], threads=threads)
    f, K = [], []

    def record(s):
        # the empirical kernel on the training points (what diagnostics=True records as kernel_distance, without
        # the other diagnostics, which cost more than the run here)
        f.append(s.net.predict(grid, threads=threads)[:, 0])
        K.append(kernels.empirical(s.net, X, threads=threads))

    traj = completed(sim.run(progress=False, callback=record))
    f = np.array(f)
    kernel_distance = [np.linalg.norm(Kt - K[0]) / np.linalg.norm(K[0]) for Kt in K]
    limit = NTKLimit(net, X, y, threads=threads)
    f_limit = np.array([limit.predict(grid, t=float(t)) for t in traj.t])
    if not np.allclose(traj.t, _record_times()):
        raise RuntimeError("ntk-limit: the records are not at the times of the analytic flow")
    f_inf = task["f_inf"]
    out = {"sup_kernel_distance": float(np.max(kernel_distance)),
           "sup_gap_ntk_limit": float(np.max(np.abs(f - f_limit))),
           "sup_gap_analytic_flow": float(np.max(np.abs(f - f_inf))), "f_end": f[-1]}
    if task["kernel_panel"]:
        x0 = _circle([0.0])
        out["K_start"] = kernels.empirical(net, x0, grid, threads=threads)[0]
        out["K_end"] = kernels.empirical(traj.net, x0, grid, threads=threads)[0]
    return out


def _run_ntk_limit(size, workers, threads, seed):
    from .. import kernels
    from .._network import TwoLayer
    p = _NTK_SIZES[size]
    widths = p["widths"]
    gamma, X, y, grid = _ntk_problem(seed)
    drawn, shown = _NTK_ACTIVATIONS[0], (widths[0], widths[-1])
    laws = {act: kernels.Analytic.from_network(TwoLayer(2, 2, activation=act, **_NTK["net"]), threads=threads)
            for act in _NTK_ACTIVATIONS}
    flows = {act: _analytic_flow(law, X, y, _circle(grid), _record_times()) for act, law in laws.items()}
    tasks = [{"activation": act, "width": n, "seed": s, "net_seed": seed_for(seed, 1 + i, n, s), "X": X, "y": y,
              "grid": grid, "f_inf": flows[act], "kernel_panel": act == drawn and s == 0 and n in shown}
             for i, act in enumerate(_NTK_ACTIVATIONS) for n in widths for s in range(p["seeds"])]
    results = run_tasks(_ntk_task, tasks, workers=workers, threads=threads, progress=False, desc="ntk-limit")

    t_max = _NTK["t_max"]
    nan = float("nan")
    blank = {"activation": drawn, "width": 0, "seed": -1, "t": nan, "gamma_rad": nan, "sup_kernel_distance": nan,
             "sup_gap_ntk_limit": nan, "sup_gap_analytic_flow": nan, "kernel": nan, "f_mean": nan, "f_sd": nan}
    rows = [{**blank, "series": "rate", "activation": task["activation"], "width": task["width"],
             "seed": task["seed"], **{k: res[k] for k, _ in _NTK_RATES}} for task, res in zip(tasks, results)]
    # the paper's pictures (relu): the kernel K(x_0, x) on the circle and the learned function, width 0 = analytic
    rows += [{**blank, "series": "kernel", "t": 0.0, "gamma_rad": float(g), "kernel": float(k)}
             for g, k in zip(grid, laws[drawn](_circle([0.0]), _circle(grid))[0])]
    for task, res in zip(tasks, results):
        if task["kernel_panel"]:
            for t, K in ((0.0, res["K_start"]), (t_max, res["K_end"])):
                rows += [{**blank, "series": "kernel", "width": task["width"], "seed": task["seed"], "t": t,
                          "gamma_rad": float(g), "kernel": float(k)} for g, k in zip(grid, K)]
    rows += [{**blank, "series": "function", "t": t_max, "gamma_rad": float(g), "f_mean": float(v), "f_sd": 0.0}
             for g, v in zip(grid, flows[drawn][-1])]
    for n in shown:
        ends = np.array([res["f_end"] for task, res in zip(tasks, results)
                         if task["activation"] == drawn and task["width"] == n])
        rows += [{**blank, "series": "function", "width": n, "t": t_max, "gamma_rad": float(g), "f_mean": float(m),
                  "f_sd": float(sd)} for g, m, sd in zip(grid, ends.mean(axis=0), ends.std(axis=0, ddof=1))]
    rows += [{**blank, "series": "training point", "t": t_max, "gamma_rad": float(g), "f_mean": float(v)}
             for g, v in zip(gamma, y)]
    table = Table(rows, ["series", "activation", "width", "seed", "t", "gamma_rad", "sup_kernel_distance",
                         "sup_gap_ntk_limit", "sup_gap_analytic_flow", "kernel", "f_mean", "f_sd"])

    tol = p["slope_tol"]
    checks = []
    for act in _NTK_ACTIVATIONS:
        rate = _rows(table, "rate", activation=act)
        for column, what in _NTK_RATES:
            fit = _seed_mean_fit(rate, "width", column, column, theory=_ntk_theory_slope(act, column))
            sem = _slope_sem(rate, "width", column)
            if act == "relu" and column != "sup_gap_analytic_flow":
                checks.append(Check(f"{act}: {what} against N (fitted slope; jackknife standard error {sem:.2f})",
                                    fit.slope, None, holds=bool(fit.slope <= -0.5 + tol),
                                    condition=f"at most -1/2 + {tol:g} (the O(N^-1/2) bound)"))
            else:
                checks.append(_slope_check(f"{act}: {what} against N", fit, tol, sem))
    notes = [
        f"two-layer networks without biases in the NTK scaling (alpha = sqrt(N)), symmetric initialisation "
        f"(f(x; theta_0) = 0), activations {' and '.join(_NTK_ACTIVATIONS)}, widths N = "
        f"{', '.join(map(str, widths))}, {p['seeds']} initialisations each; gradient flow on the squared loss "
        f"(rk4, dt = {_NTK['dt']:g} in mean-field time, t_max = {t_max:g}, sups over {_NTK['records'] + 1} records)",
        f"data: n = {_NTK['n']} points x = sqrt(2) (cos gamma, sin gamma) at random angles, y = sin(2 gamma) + "
        f"cos(gamma) / 2; the functions are compared on {_NTK['grid']} angles of the whole circle",
        "kernel distance: |K_t - K_0|_F / |K_0|_F of the empirical tangent kernel (mfntk.kernels.empirical) on the "
        "training points, as simulate(diagnostics=True) records it; the frozen-kernel flow of the network's own "
        "K_0 is mfntk.NTKLimit; the "
        "infinite-width flow is mfntk.KernelRegressor(t=...) with the analytic kernel of the initialisation law "
        "(mfntk.kernels.Analytic.from_network)",
        "rates: the network's distance to the analytic flow is dominated by the Monte Carlo error of K_0, "
        "O(N^-1/2). The kernel's motion and the network's distance to its own frozen-kernel flow are bounded "
        "by O(N^-1/2) (Jacot et al.; Lee et al. 2019), but they are smaller: the O(N^-1/2) drift of each "
        "particle enters the kernel multiplied by a_j, whose sign is symmetric, so the first-order terms cancel "
        "and for a smooth activation the motion is O(1/N) (Dyer and Gur-Ari 2020; Huang and Yau 2020): measured "
        "slopes near -1 for tanh. ReLU sits between (its kinks: particles that cross a kink change sigma' by "
        "one), so its check is the bound",
        "points: seed means with one standard error; slope tolerances cover the seed-to-seed spread (the "
        "jackknife standard error of each slope is in its check)",
        "differences from the paper: Jacot et al. show networks of depth 4 (widths 500 and 10000, ReLU with a "
        "bias term) on the unit circle; here the networks have two layers (the theorem is the same) and a "
        "smooth activation is added for the rate of the kernel's motion",
    ]
    return Reproduction("ntk-limit", size, table, checks, _figure_ntk_limit, notes)


def _ntk_theory_slope(activation, column):
    """The slope in N of each rate: -1/2 from the Monte Carlo error of K_0, -1 for the motion of the
    kernel with a smooth activation, and the -1/2 bound for relu."""
    return -1.0 if (activation != "relu" and column != "sup_gap_analytic_flow") else -0.5


def _figure_ntk_limit(result):
    from .. import plot
    table = result.table
    fig, axes = plot._figure(2, 2, width=4.6, height=3.5)
    degrees = 180.0 / np.pi
    with plot._style():
        ax = axes[0, 0]
        kern = _rows(table, "kernel")
        ana = [r for r in kern if r["width"] == 0]
        ax.plot([r["gamma_rad"] * degrees for r in ana], [r["kernel"] for r in ana], color="k", lw=1.5,
                label=r"analytic, $N = \infty$")
        for i, n in enumerate(sorted({r["width"] for r in kern if r["width"]})):
            for t, marker in ((0.0, "o"), (max(r["t"] for r in kern), "x")):
                pts = [r for r in kern if r["width"] == n and r["t"] == t]
                ax.plot([r["gamma_rad"] * degrees for r in pts], [r["kernel"] for r in pts], ls="none",
                        marker=marker, ms=3.5, color=f"C{i}", label=f"N = {n}, t = {t:g}")
        ax.set_xlabel(r"angle $\gamma$ of $x$ (degrees)")
        ax.set_ylabel(r"$K(x_0, x)$, $x_0$ at $\gamma = 0$")
        ax.set_title(f"tangent kernel on the circle ({ana[0]['activation']}, first seed)")
        ax.legend(fontsize=7)
        ax = axes[0, 1]
        fun = _rows(table, "function")
        ana = [r for r in fun if r["width"] == 0]
        ax.plot([r["gamma_rad"] * degrees for r in ana], [r["f_mean"] for r in ana], color="k", lw=1.5,
                label=r"analytic kernel flow, $N = \infty$")
        for i, n in enumerate(sorted({r["width"] for r in fun if r["width"]})):
            pts = [r for r in fun if r["width"] == n]
            ax.errorbar([r["gamma_rad"] * degrees for r in pts], [r["f_mean"] for r in pts],
                        yerr=[r["f_sd"] for r in pts], fmt="os"[i], ms=3, capsize=1.5, color=f"C{i}",
                        label=f"networks, N = {n} (mean +- s.d.)")
        train = _rows(table, "training point")
        ax.plot([r["gamma_rad"] * degrees for r in train], [r["f_mean"] for r in train], "k*", ms=8,
                label="training points")
        ax.set_xlabel(r"angle $\gamma$ of $x$ (degrees)")
        ax.set_ylabel(f"f(x) at t = {fun[0]['t']:g}")
        ax.set_title(f"learned function ({ana[0]['activation']})")
        ax.legend(fontsize=7)
        rate = _rows(table, "rate")
        widths = sorted({r["width"] for r in rate})
        panels = ((axes[1, 0], ("sup_kernel_distance",), r"$\sup_t \|K_t - K_0\|_F / \|K_0\|_F$",
                   "motion of the tangent kernel"),
                  (axes[1, 1], ("sup_gap_ntk_limit", "sup_gap_analytic_flow"), r"$\sup_{t, x} |f_N - f_{lim}|$",
                   "distance to the limiting dynamics"))
        names = {"sup_kernel_distance": "", "sup_gap_ntk_limit": ", to NTKLimit",
                 "sup_gap_analytic_flow": ", to the analytic flow"}
        for ax, columns, ylabel, title in panels:
            i = 0
            for act in _NTK_ACTIVATIONS:
                for column in columns:
                    rows = _rows(table, "rate", activation=act)
                    groups = _grouped(rows, "width", column)
                    stats = np.array([_mean_sem(v) for v in groups.values()])
                    fit = _seed_mean_fit(rows, "width", column, column, theory=_ntk_theory_slope(act, column))
                    _errorbars(ax, list(groups), stats[:, 0], stats[:, 1],
                               f"{act}{names[column]}: slope {fit.slope:+.2f}", f"C{i}", marker="os^D"[i])
                    _power_law(ax, fit, f"C{i}")
                    i += 1
            for slope, style in ((-0.5, ":"), (-1.0, "-.")):
                ax.plot([], [], ls=style, color="0.3", label=f"slope {slope:g}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            plot.tidy_log_axes(ax, xvalues=widths)
            ax.set_xlabel("width N, log scale")
            ax.set_ylabel(ylabel + ", log scale")
            ax.set_title(title + " (mean +- s.e.)")
            ax.legend(fontsize=7)
    return fig


register(Entry(
    name="ntk-limit", paper="Jacot, Gabriel, Hongler (2018)", what="Figures 1 and 2",
    claim="In the NTK scaling the tangent kernel converges to a deterministic limit and stays constant during "
          "training as N -> infinity (its motion is at most O(N^-1/2)); the network then follows the kernel "
          "gradient flow "
          "of the limiting kernel.",
    seconds={"quick": 15, "full": 600}, run=_run_ntk_limit))


def ntk_limit(size="quick", out=None, workers=1, threads=None, seed=0):
    """The NTK limit: the frozen tangent kernel and the kernel gradient flow of Jacot et al.

    Two-layer ReLU networks in the NTK scaling are trained on a few points of the circle. Against
    the width N: the sup over the run of the relative kernel motion |K_t - K_0|_F / |K_0|_F, the
    distance of the network's function to the frozen-kernel flow of its own initial kernel
    (:class:`mfntk.NTKLimit`) and to the flow of the infinite-width analytic kernel
    (:class:`mfntk.KernelRegressor` with :class:`mfntk.kernels.Analytic`), each fitted against
    N (slope -1/2); and the pictures of the paper: the kernel K(x_0, x) on the circle at the start
    and the end of training, and the learned functions against the analytic flow.

    Parameters
    ----------
    size : {"quick", "full"}
        "quick": N = 256, 1024, 4096, 4 initialisations each (about 15 s on 2 cores); "full":
        N = 256 ... 65536, 10 initialisations (about 10 min).
    out : str or path, optional
        Folder for ntk-limit.csv, .json, .png and .md.
    workers : int
        Processes for the independent runs.
    threads : int or None
        OpenMP threads in all (None: all available).
    seed : int
        Seed of the training angles and of the initialisations.

    Returns
    -------
    Reproduction

    References
    ----------
    A. Jacot, F. Gabriel, C. Hongler, "Neural tangent kernel: convergence and generalization in neural
    networks", NeurIPS 2018 (Theorems 1-2, Figures 1-2).
    """
    return reproduce("ntk-limit", size=size, out=out, workers=workers, threads=threads, seed=seed)


# ---------------------------------------------------------------------------------------------
# rf-nt-kernels: the lecture notes "Linearized networks"
# ---------------------------------------------------------------------------------------------

_RF_SIZES = {
    "quick": {"pairs": ((20, 10), (80, 10), (40, 20)), "widths": (250, 1000, 4000, 16000), "seeds": 3,
              "stair": ((12, 1024), (20, 1789)), "stair_points": 9, "stair_seeds": 3, "n_test": 2000},
    "full": {"pairs": ((20, 10), (80, 10), (40, 20), (160, 20), (320, 40)), "widths": (250, 1000, 4000, 16000, 64000),
             "seeds": 6, "stair": ((12, 4096), (20, 8192), (30, 8192)), "stair_points": 14, "stair_seeds": 6,
             "n_test": 10000},
}
#: Settings every size shares. Kernels and concentration: relu networks without biases (the setting of
#: Montanari-Zhong) on points uniform on the sphere of radius sqrt(d). Staircase: kernel ridge regression
#: with the analytic NTK of a relu network with biases (its Gegenbauer coefficients vanish at no degree; without
#: biases they vanish at the odd degrees >= 3 and the degree-3 part would never be learned), a small ridge,
#: and the target sum_l c_l Y_l of unit-norm spherical harmonics of degrees 1, 2, 3.
_RF = {"stair_kernel": {"activation": "relu", "kind": "ntk", "bias": True, "b_std": 1.0}, "ridge": 1e-3,
       "coefficients": (1.0, 1.0, 1.0), "degrees": 10, "quadrature": 200, "theory_d": (100, 1000),
       "theory_points": 30, "slope_tol": 0.1, "theory_rtol": 0.15, "ratio_spread": 2.5, "ratio_range": (1.0, 10.0),
       "plateau_rtol": 0.06}


def _harmonics(X):
    """Unit-norm spherical harmonics Y_1, Y_2, Y_3 of degrees 1, 2, 3 on the sphere of radius sqrt(d), shape (n, 3).

    Y_1 = (1/sqrt(d)) sum_i x_i; Y_2 = c_2 m_2^(-1/2) sum_i x_(2i) x_(2i+1) over the m_2 = floor(d/2) disjoint
    pairs of coordinates; Y_3 = c_3 m_3^(-1/2) sum_i x_(3i) x_(3i+1) x_(3i+2) over the m_3 = floor(d/3) disjoint
    triples. A product of distinct coordinates is harmonic (its Laplacian is 0) and homogeneous, hence a
    spherical harmonic of its degree; products over different sets of coordinates are orthogonal, and so
    are harmonics of different degrees. For x uniform on the sphere of radius sqrt(d),
    E x_1^2 x_2^2 = d / (d + 2) and E x_1^2 x_2^2 x_3^2 = d^2 / ((d + 2)(d + 4)), whence the unit norms with
    c_2 = sqrt((d + 2) / d) and c_3 = sqrt((d + 2)(d + 4)) / d. Sums over many disjoint products keep the
    fourth moments small, so that a test set estimates the risk with a small error.
    """
    n, d = X.shape
    if d < 3:
        raise ValueError(f"X: the staircase target needs d >= 3, got {d}")
    m2, m3 = d // 2, d // 3
    pairs = X[:, 0:2 * m2:2] * X[:, 1:2 * m2:2]
    triples = X[:, 0:3 * m3:3] * X[:, 1:3 * m3:3] * X[:, 2:3 * m3:3]
    c2 = math.sqrt((d + 2) / d)
    c3 = math.sqrt((d + 2) * (d + 4)) / d
    return np.column_stack([X.sum(axis=1) / math.sqrt(d), c2 * pairs.sum(axis=1) / math.sqrt(m2),
                            c3 * triples.sum(axis=1) / math.sqrt(m3)])


def _staircase_target(X):
    return _harmonics(X) @ np.asarray(_RF["coefficients"])


def _plateaus():
    """||P_{>l} f*||^2 for l = 0, 1, 2, 3: the sums of the squared coefficients of the degrees above l."""
    c2 = np.asarray(_RF["coefficients"]) ** 2
    return [float(np.sum(c2[l:])) for l in range(len(c2) + 1)]


def _multiplicity(d, k):
    """Dimension of the spherical harmonics of degree k in d dimensions."""
    if k == 0:
        return 1.0
    return (2 * k + d - 2) / k * math.comb(k + d - 3, k - 1)


def _sphere_spectrum(kernel, d, degrees, order):
    """Eigenvalues xi_k (k = 0 .. degrees) of a rotation-invariant kernel on the sphere of radius sqrt(d),
    their multiplicities, and the trace of the higher degrees.

    K(x, x') = h(<x, x'> / d) = sum_k xi_k sum_{j <= N_k} Y_kj(x) Y_kj(x') (Funk-Hecke), with
    xi_k = E_t[h(t) Q_k(t)], Q_k = C_k^((d-2)/2) / C_k^((d-2)/2)(1) the Gegenbauer polynomials and t
    distributed as <x, x'> / d, density proportional to (1 - t^2)^((d-3)/2): Gauss-Jacobi quadrature.
    h is evaluated by ``kernel`` (the package's analytic kernel) at pairs of points at angle arccos t.
    The trace K(x, x) = sum_k N_k xi_k gives the part of the higher degrees.
    """
    from scipy import special
    t, w = special.roots_jacobi(order, (d - 3) / 2, (d - 3) / 2)
    w = w / w.sum()
    x0 = np.zeros((1, d))
    x0[0, 0] = math.sqrt(d)
    pts = np.zeros((order, d))
    pts[:, 0], pts[:, 1] = math.sqrt(d) * t, math.sqrt(d) * np.sqrt(1.0 - t ** 2)
    h = kernel(x0, pts)[0]
    lam = (d - 2) / 2
    xi = np.array([np.sum(w * h * special.eval_gegenbauer(k, lam, t)) / special.eval_gegenbauer(k, lam, 1.0)
                   for k in range(degrees + 1)])
    mult = np.array([_multiplicity(d, k) for k in range(degrees + 1)])
    tail = float(kernel(x0)[0, 0] - np.sum(mult * xi))
    return xi, mult, max(tail, 0.0)


def _krr_risk_theory(n, spectrum, energies, ridge):
    """Test risk E(f* - fhat)^2 of kernel ridge regression with n samples, predicted from the spectrum
    (the deterministic equivalent / eigenlearning estimate).

    The effective ridge kappa solves sum_i lam_i / (lam_i + kappa) + ridge / kappa = n (ridge as in
    K + ridge I with K the n x n Gram matrix); with the learnabilities L_i = lam_i / (lam_i + kappa), the
    risk is n / (n - sum_i L_i^2) sum_i (1 - L_i)^2 v_i^2, v_i the target's coefficients. Eigenvalues
    come in degrees (xi_k with multiplicity N_k); degrees beyond the spectrum enter only through their
    trace (their eigenvalues are far below kappa).

    References: Bordelon, Canatar, Pehlevan (2020), ICML; Simon, Dickens, Karkada, DeWeese, "The
    eigenlearning framework" (2023), TMLR.
    """
    from scipy.optimize import brentq
    xi, mult, tail = spectrum
    energies = np.pad(np.asarray(energies, float), (0, len(xi) - len(energies)))

    def excess(log_kappa):
        kappa = math.exp(log_kappa)
        return float(np.sum(mult * xi / (xi + kappa)) + (tail + ridge) / kappa - n)

    kappa = math.exp(brentq(excess, -120.0, 60.0))
    L = xi / (xi + kappa)
    return float(n / (n - np.sum(mult * L ** 2)) * np.sum((1.0 - L) ** 2 * energies))


def _kernel_task(task):
    from .. import kernels, theory
    from .._network import TwoLayer
    from ..datasets import sphere_inputs
    n, d, threads = task["n"], task["d"], task["threads"]
    X = sphere_inputs(seed_for(task["data_seed"], n, d), n, d)
    net = TwoLayer(d, task["width"], activation="relu", seed=task["net_seed"])
    out = {}
    for kind in ("rf", "nt"):
        K_N = kernels.empirical(net, X, kind=kind, threads=threads)
        K = kernels.Analytic.from_network(net, kind=kind, threads=threads)(X)
        out[f"{kind}_frobenius"] = float(np.linalg.norm(K_N - K) / np.linalg.norm(K))
    out["nt_opnorm"] = theory.ntk_concentration(net, X, kind="nt", threads=threads)
    return out


def _staircase_task(task):
    from .. import kernels
    from ..datasets import sphere_inputs
    from ..regression import KernelRegressor
    d, n = task["d"], task["n"]
    X = sphere_inputs(seed_for(task["data_seed"], d, n, task["seed"]), n, d)
    X_test = sphere_inputs(seed_for(task["data_seed"], d, 0), task["n_test"], d)
    kernel = kernels.Analytic(threads=task["threads"], **_RF["stair_kernel"])
    fit = KernelRegressor(kernel=kernel, ridge=_RF["ridge"]).fit(X, _staircase_target(X))
    return float(np.mean((_staircase_target(X_test) - fit.predict(X_test)) ** 2))


def _staircase_sizes(d, n_max, points):
    """A geometric grid of sample sizes from d/2 to n_max, in which d^1.5 and d^2.5 (the middles of the first
    two windows of the theorem), when at most n_max, replace the grid points within 15 % of them."""
    grid = {int(round(v)) for v in np.geomspace(max(2, d // 2), n_max, points)}
    for mid in (int(round(d ** 1.5)), int(round(d ** 2.5))):
        if mid <= n_max:
            grid = {n for n in grid if not 1 / 1.15 < n / mid < 1.15} | {mid}
    return sorted(grid)


def _run_rf_nt_kernels(size, workers, threads, seed):
    from .. import kernels, theory
    p = _RF_SIZES[size]
    ktasks = [{"n": n, "d": d, "width": N, "seed": s, "data_seed": seed_for(seed, 0),
               "net_seed": seed_for(seed, 1, n, d, N, s)} for n, d in p["pairs"] for N in p["widths"]
              for s in range(p["seeds"])]
    # small training sets are cheap and their risk varies much from set to set: four times the seeds there
    stasks = [{"d": d, "n": n, "seed": s, "data_seed": seed_for(seed, 2), "n_test": p["n_test"]}
              for d, n_max in p["stair"] for n in _staircase_sizes(d, n_max, p["stair_points"])
              for s in range(p["stair_seeds"] * (4 if n < 16 * d else 1))]
    kres = run_tasks(_kernel_task, ktasks, workers=workers, threads=threads, progress=False, desc="rf-nt kernels")
    sres = run_tasks(_staircase_task, stasks, workers=workers, threads=threads, progress=False, desc="staircase")

    nan = float("nan")
    blank = {"n": 0, "d": 0, "width": 0, "seed": -1, "rf_frobenius_rel": nan, "nt_frobenius_rel": nan,
             "nt_opnorm_dev": nan, "concentration_scale": nan, "kappa_log_n_over_log_d": nan, "test_mse": nan,
             "test_mse_theory_finite_d": nan, "plateau_norm2": nan}
    rows = [{**blank, "series": "kernels", "n": t["n"], "d": t["d"], "width": t["width"], "seed": t["seed"],
             "rf_frobenius_rel": r["rf_frobenius"], "nt_frobenius_rel": r["nt_frobenius"],
             "nt_opnorm_dev": r["nt_opnorm"],
             "concentration_scale": theory.ntk_concentration_scale(t["n"], t["d"], t["width"])}
            for t, r in zip(ktasks, kres)]
    kernel = kernels.Analytic(threads=threads, **_RF["stair_kernel"])
    stair_d = [d for d, _ in p["stair"]]
    plateaus = _plateaus()
    energies = [0.0] + [c ** 2 for c in _RF["coefficients"]]
    spectra = {d: _sphere_spectrum(kernel, d, _RF["degrees"], _RF["quadrature"])
               for d in (*stair_d, *_RF["theory_d"])}

    def plateau(n, d):
        return plateaus[min(int(math.floor(math.log(n) / math.log(d))), len(plateaus) - 1)]

    for t, mse in zip(stasks, sres):
        d, n = t["d"], t["n"]
        rows.append({**blank, "series": "staircase", "n": n, "d": d, "seed": t["seed"], "test_mse": mse,
                     "kappa_log_n_over_log_d": math.log(n) / math.log(d),
                     "test_mse_theory_finite_d": _krr_risk_theory(n, spectra[d], energies, _RF["ridge"]),
                     "plateau_norm2": plateau(n, d)})
    for d, spectrum in spectra.items():
        for kappa in np.linspace(0.3, 3.7, _RF["theory_points"]):
            n = d ** kappa
            rows.append({**blank, "series": "staircase theory", "n": float(n), "d": d,
                         "kappa_log_n_over_log_d": float(kappa),
                         "test_mse_theory_finite_d": _krr_risk_theory(n, spectrum, energies, _RF["ridge"]),
                         "plateau_norm2": plateau(n, d)})
    table = Table(rows, ["series", "n", "d", "width", "seed", "rf_frobenius_rel", "nt_frobenius_rel",
                         "nt_opnorm_dev", "concentration_scale", "kappa_log_n_over_log_d", "test_mse",
                         "test_mse_theory_finite_d", "plateau_norm2"])

    tol = _RF["slope_tol"]
    checks = []
    kern_rows = _rows(table, "kernels")
    for kind in ("rf", "nt"):
        column = f"{kind}_frobenius_rel"
        fit = _seed_mean_fit(kern_rows, "width", column, column)
        checks.append(_slope_check(f"|K_N - K|_F / |K|_F of the {kind.upper()} kernel against N (mean over seeds "
                                   f"and the {len(p['pairs'])} point sets)", fit, tol,
                                   _slope_sem(kern_rows, "width", column)))
    slopes = {}
    for n, d in p["pairs"]:
        pair = [r for r in kern_rows if r["n"] == n and r["d"] == d]
        slopes[(n, d)] = _seed_mean_fit(pair, "width", "nt_opnorm_dev", "nt_opnorm_dev")
    (n_w, d_w), worst = max(slopes.items(), key=lambda kv: abs(kv[1].slope + 0.5))
    checks.append(Check(f"|K^-1/2 K_N K^-1/2 - I|_op of the NT kernel against N, the worst of the {len(slopes)} "
                        f"(n, d) pairs (n = {n_w}, d = {d_w})", worst.slope, -0.5, tol))
    ratio = np.array([r["nt_opnorm_dev"] / r["concentration_scale"] for r in kern_rows])
    lo, hi = _RF["ratio_range"]
    checks.append(Check("measured deviation / sqrt((n + d) / (N d)): largest over smallest, over every (n, d, N, "
                        "seed)", float(ratio.max() / ratio.min()), None,
                        holds=bool(ratio.max() / ratio.min() <= _RF["ratio_spread"]),
                        condition=f"at most {_RF['ratio_spread']:g} (the scale predicts the dependence on n, d "
                                  "and N)"))
    checks.append(Check("measured deviation / sqrt((n + d) / (N d)): the range of the constant", float(ratio.mean()),
                        None, holds=bool(ratio.min() >= lo and ratio.max() <= hi),
                        condition=f"every ratio in [{lo:g}, {hi:g}] (from {ratio.min():.2f} to {ratio.max():.2f}; "
                                  "the bound holds up to a constant and logarithms)"))
    stair = _rows(table, "staircase")
    for d in stair_d:
        mine = [r for r in stair if r["d"] == d]
        means = _grouped(mine, "n", "test_mse")
        theory_at = {r["n"]: r["test_mse_theory_finite_d"] for r in mine}
        dev = max(abs(np.mean(v) / theory_at[n] - 1.0) for n, v in means.items())
        checks.append(Check(f"kernel ridge regression, d = {d}: largest |measured / predicted - 1| of the test risk "
                            f"over the {len(means)} sample sizes (seed means)", float(dev), 0.0, _RF["theory_rtol"]))
    big = max(_RF["theory_d"])
    for l, mid in ((1, 1.5), (2, 2.5)):
        gaps = [abs(_krr_risk_theory(d ** mid, spectra[d], energies, _RF["ridge"]) / plateaus[l] - 1.0)
                for d in sorted(spectra)]
        checks.append(Check(f"staircase: predicted test risk at n = d^{mid:g} against the plateau "
                            f"||P_>{l} f*||^2 = {plateaus[l]:g}, relative gap at d = {big}", float(gaps[-1]), 0.0,
                            _RF["plateau_rtol"]))
        checks.append(Check(f"staircase: relative gap to the plateau ||P_>{l} f*||^2 at n = d^{mid:g}, d = "
                            f"{', '.join(map(str, sorted(spectra)))}", float(gaps[0]), None,
                            holds=bool(all(a > b for a, b in zip(gaps, gaps[1:]))),
                            condition=f"decreases as d grows ({', '.join(f'{g:.3f}' for g in gaps)})"))
    measured_mid = {}
    d_top = max(stair_d)
    for l, mid in ((1, 1.5), (2, 2.5)):
        n_mid = int(round(d_top ** mid))
        vals = [r["test_mse"] for r in stair if r["d"] == d_top and r["n"] == n_mid]
        if vals:
            measured_mid[l] = (n_mid, float(np.mean(vals)),
                               _krr_risk_theory(n_mid, spectra[d_top], energies, _RF["ridge"]))
    notes = [
        f"kernels: two-layer ReLU networks without biases, w_j ~ N(0, I_d / d), a_j ~ N(0, 1), N = "
        f"{', '.join(map(str, p['widths']))} independent neurons, {p['seeds']} seeds, on n points uniform on the "
        f"sphere of radius sqrt(d) for (n, d) in {', '.join(f'({n}, {d})' for n, d in p['pairs'])}; the analytic "
        "kernels are mfntk.kernels.Analytic.from_network, the operator-norm deviation is "
        "mfntk.theory.ntk_concentration and its predicted scale mfntk.theory.ntk_concentration_scale",
        "the RF and NT kernels here are mfntk's (SPEC 4), without the factors gamma^2 and 1/d of the notes: "
        "relative errors and the whitened deviation do not depend on those factors",
        f"staircase: kernel ridge regression (ridge {_RF['ridge']:g}) with the analytic NTK of a ReLU network with "
        f"biases (b_std = {_RF['stair_kernel']['b_std']:g}), inputs uniform on the sphere of radius sqrt(d), "
        f"d = {', '.join(f'{d} (n <= {m})' for d, m in p['stair'])}, {p['stair_seeds']} training sets per n "
        f"(four times as many for n < 16 d), {p['n_test']} test "
        "points; target f* = Y_1 + Y_2 + Y_3, unit-norm spherical harmonics of degrees 1, 2, 3 (sums of x_i, of "
        "x_i x_j and of x_i x_j x_k over disjoint sets of coordinates, normalised exactly by the sphere's moments), "
        "so ||P_>l f*||^2 = 3 - l; test risk = "
        "E (f*(x) - fhat(x))^2 (no factor 1/2, the theorem's convention)",
        "finite-d theory: the deterministic equivalent of kernel ridge regression (eigenlearning) computed from the "
        "kernel's Gegenbauer eigenvalues on the sphere (Gauss-Jacobi quadrature of the analytic kernel); the "
        f"theorem's plateaus are its d -> infinity limit, drawn with d = {', '.join(map(str, _RF['theory_d']))} "
        "(theory only)",
        "at the dimensions a laptop can regress on (n <= 10^4), the plateaus are shoulders: the transition of one "
        "degree spans more than a decade of n, about as wide as the window d^l << n << d^(l+1)",
    ]
    for l, (n_mid, got, pred) in measured_mid.items():
        notes.append(f"d = {d_top}, n = d^{l + 0.5:g} = {n_mid}: measured test risk {got:.3f}, finite-d theory "
                     f"{pred:.3f}, plateau ||P_>{l} f*||^2 = {plateaus[l]:g}")
    return Reproduction("rf-nt-kernels", size, table, checks, _figure_rf_nt_kernels, notes)


def _figure_rf_nt_kernels(result):
    from .. import plot
    table = result.table
    fig, axes = plot._figure(2, 2, width=4.6, height=3.5)
    with plot._style():
        ax = axes[0, 0]
        kern = _rows(table, "kernels")
        widths = sorted({r["width"] for r in kern})
        for i, kind in enumerate(("rf", "nt")):
            column = f"{kind}_frobenius_rel"
            groups = _grouped(kern, "width", column)
            stats = np.array([_mean_sem(v) for v in groups.values()])
            fit = _seed_mean_fit(kern, "width", column, column)
            _errorbars(ax, list(groups), stats[:, 0], stats[:, 1], f"{kind.upper()}: slope {fit.slope:+.2f}",
                       f"C{i}", marker="os"[i])
            _power_law(ax, fit, f"C{i}", label=r"slope $-1/2$" if i == 0 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        plot.tidy_log_axes(ax, xvalues=widths)
        ax.set_xlabel("width N, log scale")
        ax.set_ylabel(r"$\|K_N - K\|_F / \|K\|_F$, log scale")
        ax.set_title("empirical kernels -> analytic (mean +- s.e.)")
        ax.legend()
        ax = axes[0, 1]
        pairs = sorted({(r["n"], r["d"]) for r in kern}, key=lambda nd: (nd[1], nd[0]))
        for i, (n, d) in enumerate(pairs):
            pts = [r for r in kern if r["n"] == n and r["d"] == d]
            ax.plot([r["concentration_scale"] for r in pts], [r["nt_opnorm_dev"] for r in pts], ls="none",
                    marker="os^Dv"[i % 5], ms=3.5, color=f"C{i}", label=f"n = {n}, d = {d}")
        scale = np.array([r["concentration_scale"] for r in kern])
        ratio = np.array([r["nt_opnorm_dev"] for r in kern]) / scale
        xs = np.geomspace(scale.min(), scale.max(), 20)
        ax.plot(xs, np.median(ratio) * xs, color="k", lw=1.2,
                label=rf"{np.median(ratio):.2f} $\sqrt{{(n + d) / (N d)}}$")
        ax.fill_between(xs, ratio.min() * xs, ratio.max() * xs, color="0.85", lw=0, label="range of the ratio")
        ax.set_xscale("log")
        ax.set_yscale("log")
        plot.tidy_log_axes(ax)
        ax.set_xlabel(r"$\sqrt{(n + d) / (N d)}$, log scale")
        ax.set_ylabel(r"$\|K^{-1/2} K_N K^{-1/2} - I\|_{op}$ (NT), log scale")
        ax.set_title("concentration of the NT kernel (each seed)")
        ax.legend(fontsize=7)
        stair = _rows(table, "staircase")
        curves = _rows(table, "staircase theory")
        measured_d = sorted({r["d"] for r in stair})
        theory_d = sorted({r["d"] for r in curves} - set(measured_d))
        ax = axes[1, 0]
        for i, d in enumerate(measured_d):
            line = [r for r in curves if r["d"] == d]
            ax.plot([r["kappa_log_n_over_log_d"] for r in line], [r["test_mse_theory_finite_d"] for r in line],
                    color=f"C{i}", lw=1.2)
            groups = _grouped([r for r in stair if r["d"] == d], "kappa_log_n_over_log_d", "test_mse")
            stats = np.array([_mean_sem(v) for v in groups.values()])
            _errorbars(ax, list(groups), stats[:, 0], stats[:, 1], f"d = {d}: measured, finite-d theory",
                       f"C{i}", marker="os^"[i % 3])
        for j, d in enumerate(theory_d):
            line = [r for r in curves if r["d"] == d]
            ax.plot([r["kappa_log_n_over_log_d"] for r in line], [r["test_mse_theory_finite_d"] for r in line],
                    color=str(0.45 + 0.2 * j), lw=1.0, ls="--", label=f"d = {d}: finite-d theory")
        kappa = np.linspace(0.3, 3.7, 400)
        steps = [_plateaus()[min(int(math.floor(k)), 3)] for k in kappa]
        ax.plot(kappa, steps, color="k", lw=1.6,
                label=r"$d \to \infty$: $\|P_{>l} f^*\|^2$, $l = \lfloor\kappa\rfloor$")
        ax.set_xlabel(r"$\kappa = \log n / \log d$")
        ax.set_ylabel(r"test risk $E(f^* - \hat f)^2$")
        ax.set_title("kernel ridge regression: the polynomial staircase")
        ax.legend(fontsize=7)
        ax = axes[1, 1]
        d = measured_d[-1]
        line = [r for r in curves if r["d"] == d]
        ax.plot([r["n"] for r in line], [r["test_mse_theory_finite_d"] for r in line], color="C0", lw=1.2,
                label="finite-d theory")
        groups = _grouped([r for r in stair if r["d"] == d], "n", "test_mse")
        stats = np.array([_mean_sem(v) for v in groups.values()])
        _errorbars(ax, list(groups), stats[:, 0], stats[:, 1], "measured (mean +- s.e.)", "C0")
        lo, hi = min(groups) / 1.5, max(groups) * 1.5
        for l, level in enumerate(_plateaus()[1:3], start=1):
            ax.axhline(level, color="k", ls=":", lw=1.0)
            ax.text(hi / 1.1, level + 0.05, rf"$\|P_{{>{l}}} f^*\|^2 = {level:g}$", fontsize=7, ha="right")
        for power in (1, 2, 3):
            if lo < d ** power < hi:
                ax.axvline(d ** power, color="0.6", ls="-", lw=0.6)
                ax.text(d ** power * 1.05, 0.02, rf"$n = d^{power}$", fontsize=7, color="0.4",
                        transform=ax.get_xaxis_transform())
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        plot.tidy_log_axes(ax)
        ax.set_xlabel("training samples n, log scale")
        ax.set_ylabel(r"test risk $E(f^* - \hat f)^2$")
        ax.set_title(f"d = {d}: plateaus at the norms of the unlearned degrees")
        ax.legend()
    return fig


register(Entry(
    name="rf-nt-kernels", paper="Lecture notes 'Linearized networks' (after Ghorbani et al. 2021, Montanari "
                                "and Zhong 2022)", what="Theorems 1 and 2, Figure 2",
    claim="The empirical RF and NT kernels of a width-N network tend to their infinite-width limits at rate "
          "N^-1/2, with |K^-1/2 K_N K^-1/2 - I|_op of order sqrt((n + d) / (N d)); kernel ridge regression on the "
          "sphere with d^l << n << d^(l+1) samples learns the degree-<= l part of the target and nothing more, so "
          "its test risk is ||P_>l f*||^2.",
    seconds={"quick": 12, "full": 300}, run=_run_rf_nt_kernels))


def rf_nt_kernels(size="quick", out=None, workers=1, threads=None, seed=0):
    """Random-features and neural-tangent kernels: their N^-1/2 convergence, their concentration and the
    polynomial staircase of kernel ridge regression.

    Three parts of the lecture notes "Linearized networks": the relative Frobenius error of the
    empirical RF and NT kernels of relu networks against their analytic limits (slope -1/2 in N);
    |K^-1/2 K_N K^-1/2 - I|_op of the NT kernel against the scale sqrt((n + d) / (N d)) of
    Montanari-Zhong (:func:`mfntk.theory.ntk_concentration`); and kernel ridge regression with the
    analytic NTK on the sphere for a target made of spherical harmonics of degrees 1, 2 and 3,
    whose test risk against n follows the finite-d theory (the deterministic equivalent computed from
    the kernel's Gegenbauer eigenvalues) and, as d grows, the staircase of plateaus ||P_>l f*||^2 of
    Ghorbani-Mei-Misiakiewicz-Montanari.

    Parameters
    ----------
    size : {"quick", "full"}
        "quick": 3 (n, d) pairs, N = 250 ... 16000, staircase at d = 12 and 20 with n <= 2048
        (about 12 s on 2 cores); "full": 5 pairs, N up to 64000, d = 12, 20, 30 with n <= 8192
        (about 5 min).
    out : str or path, optional
        Folder for rf-nt-kernels.csv, .json, .png and .md.
    workers : int
        Processes for the independent computations.
    threads : int or None
        OpenMP threads in all (None: all available).
    seed : int
        Seed of the points and of the networks.

    Returns
    -------
    Reproduction

    References
    ----------
    B. Ghorbani, S. Mei, T. Misiakiewicz, A. Montanari, "Linearized two-layers neural networks in high
    dimension", Ann. Statist. 49(2), 2021. A. Montanari, Y. Zhong, "The interpolation phase transition in
    neural networks: memorization and generalization under lazy training", Ann. Statist. 50(5), 2022.
    J. B. Simon, M. Dickens, D. Karkada, M. R. DeWeese, "The eigenlearning framework", TMLR 2023.
    """
    return reproduce("rf-nt-kernels", size=size, out=out, workers=workers, threads=threads, seed=seed)
