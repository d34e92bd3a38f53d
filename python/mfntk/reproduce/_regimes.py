"""Entries of mfntk.reproduce: lazy training and the kernel and rich regimes.

``cob``
    Chizat, Oyallon, Bach (2019): the distance of a trained network to its linearization
    against the scale alpha and against time, and the relative change of the Jacobian over
    the relative change of the objective.
``diag-linear``
    Woodworth et al. (2020): the diagonal linear network from the rich regime (alpha -> 0,
    near the minimum-l1 interpolant) to the kernel regime (alpha -> infinity, the minimum-l2
    interpolant), with the iterations, the kernel change and the distance to the
    linearization that the kernel-versus-rich project proposal asks for.
"""
from __future__ import annotations

import math

import numpy as np

from .._demo import _blas_single_thread
from .._losses import risk
from ..studies import Table, fit_loglog, run_tasks
from ..studies._base import completed, default_data, seed_for
from ._base import Check, Entry, Reproduction, register, reproduce

__all__ = ["cob", "diag_linear"]


def _mean_sd(values):
    values = np.asarray(values, float)
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _by(rows, key, value, **match):
    """{key: [value of every row with that key]} over the rows matching ``match``, keys sorted."""
    groups = {}
    for r in rows:
        if all(r[k] == v for k, v in match.items()):
            groups.setdefault(r[key], []).append(r[value])
    return dict(sorted(groups.items()))


def _strictly(values, smaller):
    return all((a < b) if smaller else (a > b) for a, b in zip(values, values[1:]))


def _errorbar(ax, x, groups, **kw):
    """Seed means with +- one standard deviation (the lower bar kept above 0 for log axes)."""
    stats = np.array([_mean_sd(groups[k]) for k in x])
    mean, sd = stats[:, 0], stats[:, 1]
    lower = np.minimum(sd, 0.9 * np.abs(mean))
    ax.errorbar(x, mean, yerr=[lower, sd], capsize=2, linestyle="none", **kw)
    return mean


def _slope_line(ax, x, y_at, slope, **kw):
    """The power law of exponent ``slope`` through (max(x), y_at), drawn over the range of x."""
    xs = np.geomspace(min(x), max(x), 20)
    ax.plot(xs, y_at * (xs / max(x)) ** slope, **kw)


# ---------------------------------------------------------------------------------------------
# cob: Chizat, Oyallon, Bach (2019)
# ---------------------------------------------------------------------------------------------

_COB_SIZES = {
    "quick": {"d": 5, "width": 256, "n": 64, "alphas": tuple(2.0 ** k for k in range(1, 9)), "seeds": 2},
    "full": {"d": 10, "width": 1024, "n": 256, "alphas": tuple(2.0 ** k for k in range(0, 11)), "seeds": 8},
}
#: Settings every size shares (times in mean-field units, SPEC 3).
_COB = {"activation": "tanh", "t_max": 2.0, "dt": 0.05, "record_every": 0.1, "method": "rk4",
        "fit_from": 16.0, "time_alphas": (4.0, 32.0, 256.0), "t_small": 0.1, "dt_small": 0.005, "t_fit": 0.05}
_COB_MODELS = ("centred", "symmetric")


def small_time_constant(net, X, Y, threads=None):
    """The constant C of |f(theta_t) - fbar_t| / |f(theta_0) - y| = C t^2 + O(t^3) for the centred model.

    The model F = f(theta) - f(theta_0) and its linearization fbar start at 0 with the same
    velocity on the training set, dF/dt = (1/n) K_0 r_0 = dfbar/dt (r_0 = y for the squared
    loss). Their accelerations differ only by the motion of the tangent kernel,
    d^2 (F - fbar)/dt^2 = (1/n) (dK/dt)_0 r_0, so that F - fbar = (t^2 / 2n) (dK/dt)_0 y + O(t^3)
    and C = |(dK/dt)_0 y| / (2 n |y|). (dK/dt)_0 is the derivative of the empirical tangent
    kernel along the initial field of the centred flow, taken by a central difference
    (relative error of order 1e-10 against the product rule).

    Parameters
    ----------
    net : TwoLayer
        The initial network (its scaling alpha sets the field, which is proportional to 1/alpha).
    X : array (n, d)
    Y : array (n, 1)
        Training targets.
    threads : int or None

    Returns
    -------
    float
    """
    from .. import kernels
    from .._simulate import dd_field
    f0 = net.predict(X, threads=threads)
    velocity = net.layout.join(*dd_field(net, X, Y + f0, threads=threads))   # the centred flow's residual is y
    theta = net.get_flat()
    h = 1e-6 * np.linalg.norm(theta) / np.linalg.norm(velocity)   # truncation error ~ (h |v| / |theta|)^2

    def kernel(shift):
        moved = net.copy()
        moved.set_flat(theta + shift * h * velocity)
        return kernels.empirical(moved, X, threads=threads)

    dK = (kernel(1.0) - kernel(-1.0)) / (2.0 * h)
    return float(np.linalg.norm(dK @ Y) / (2.0 * len(X) * np.linalg.norm(Y)))


def _cob_task(task):
    with _blas_single_thread():   # the records multiply small matrices: a threaded BLAS only adds contention
        return _cob_run(task)


def _cob_run(task):
    from .._network import TwoLayer
    from .._simulate import simulate
    data = default_data(d=task["d"], n_train=task["n"], n_test=0, activation=_COB["activation"],
                        seed=task["data_seed"])
    centred = task["model"] == "centred"
    net = TwoLayer(task["d"], task["width"], activation=_COB["activation"], scaling=task["alpha"],
                   symmetric=not centred, seed=task["net_seed"])
    run = dict(method=_COB["method"], centered=centred, linearized=True, threads=task["threads"], progress=False)
    tr = completed(simulate(net, data, _COB["t_max"], _COB["dt"], record_every=_COB["record_every"],
                            diagnostics=True, **run))
    out = {"t": tr.t, "linearized_distance": tr.linearized_distance,
           # the first record interval plays the part of the lecture notes' single gradient step
           "jacobian_change": float(tr.tangent_change[1]), "objective_change": float(tr.objective_change[1]),
           "displacement": float(tr.displacement[-1])}
    if task["small_time"]:
        short = completed(simulate(net, data, _COB["t_small"], _COB["dt_small"], record_every=_COB["dt_small"],
                                   **run))
        out["t_small"], out["distance_small"] = short.t, short.linearized_distance
        out["C"] = small_time_constant(net, data.X, data.y, threads=task["threads"])
    return out


def _run_cob(size, workers, threads, seed):
    p = _COB_SIZES[size]
    tasks = [{"model": m, "alpha": a, "seed": k, "d": p["d"], "width": p["width"], "n": p["n"],
              "data_seed": seed_for(seed, 0, k), "net_seed": seed_for(seed, 1, k),
              "small_time": m == "centred" and a in _COB["time_alphas"]}
             for m in _COB_MODELS for k in range(p["seeds"]) for a in p["alphas"]]
    results = run_tasks(_cob_task, tasks, workers=workers, threads=threads, progress=False, desc="cob")
    t_max, t_small = _COB["t_max"], _COB["t_small"]
    rows = []
    nan = float("nan")
    for task, res in zip(tasks, results):
        base = {"model": task["model"], "alpha": task["alpha"], "seed": task["seed"]}
        rows.append({"series": "alpha", **base, "t_mf": t_max,
                     "linearized_distance": float(res["linearized_distance"][-1]),
                     "theory_C_t2": nan, "jacobian_change": res["jacobian_change"],
                     "objective_change": res["objective_change"],
                     "jacobian_over_objective": res["jacobian_change"] / res["objective_change"],
                     "displacement": res["displacement"]})
        if task["small_time"]:
            times = np.concatenate([res["t_small"][1:], res["t"][res["t"] > t_small + 1e-12]])
            dist = np.concatenate([res["distance_small"][1:], res["linearized_distance"][res["t"] > t_small + 1e-12]])
            for t, dd in zip(times, dist):
                rows.append({"series": "time", **base, "t_mf": float(t), "linearized_distance": float(dd),
                             "theory_C_t2": res["C"] * float(t) ** 2, "jacobian_change": nan,
                             "objective_change": nan, "jacobian_over_objective": nan, "displacement": nan})
    table = Table(rows)
    alpha_rows = [r for r in rows if r["series"] == "alpha"]
    time_rows = [r for r in rows if r["series"] == "time"]

    checks, fits = [], {}
    for model, slope, tol in (("centred", -1.0, 0.05), ("symmetric", -2.0, 0.1)):
        groups = _by(alpha_rows, "alpha", "linearized_distance", model=model)
        xs = [a for a in groups if a >= _COB["fit_from"]]
        fits[model] = fit_loglog(xs, [np.mean(groups[a]) for a in xs], "linearized_distance", theory=slope)
        checks.append(Check(f"slope of the distance to the linearization vs alpha, {model} model "
                            f"(alpha >= {_COB['fit_from']:g}, seed means)", fits[model].slope, slope, tol))
    for model in _COB_MODELS:
        groups = _by(alpha_rows, "alpha", "jacobian_over_objective", model=model)
        xs = [a for a in groups if a >= _COB["fit_from"]]
        fit = fit_loglog(xs, [np.mean(groups[a]) for a in xs], "jacobian_over_objective", theory=-1.0)
        checks.append(Check(f"slope of Delta(D phi) / Delta(F) vs alpha, {model} model (alpha >= "
                            f"{_COB['fit_from']:g})", fit.slope, -1.0, 0.05))
    means = {m: [np.mean(v) for v in _by(alpha_rows, "alpha", "jacobian_over_objective", model=m).values()]
             for m in _COB_MODELS}
    checks.append(Check("Delta(D phi) / Delta(F) at the largest alpha, centred model", means["centred"][-1], None,
                        holds=all(_strictly(v, smaller=False) for v in means.values()),
                        condition="the ratio decreases at every step of alpha, in both models"))
    slopes, ratios = [], []
    for a in _COB["time_alphas"]:
        for k in range(p["seeds"]):
            pts = [r for r in time_rows if r["alpha"] == a and r["seed"] == k]
            small = [r for r in pts if r["t_mf"] <= _COB["t_fit"] + 1e-12]
            slopes.append(fit_loglog([r["t_mf"] for r in small], [r["linearized_distance"] for r in small]).slope)
            ratios.append(pts[0]["linearized_distance"] / pts[0]["theory_C_t2"])
    worst = max(slopes, key=lambda s: abs(s - 2.0))
    checks.append(Check(f"slope of the distance vs t for t <= {_COB['t_fit']:g}, centred model (the worst of "
                        f"{len(slopes)} runs)", worst, 2.0, 0.05))
    worst = max(ratios, key=lambda q: abs(q - 1.0))
    checks.append(Check(f"distance / (C t^2) at t = {_COB['dt_small']:g}, C from the kernel's motion (the worst of "
                        f"{len(ratios)} runs)", worst, 1.0, 0.01))

    notes = [
        f"two-layer tanh networks, d = {p['d']}, N = {p['width']}, n = {p['n']} training points labelled by a "
        f"single tanh neuron (mfntk.studies.default_data), squared loss, {p['seeds']} seeds (data and "
        f"initialisation), alpha = {', '.join(f'{a:g}' for a in p['alphas'])}; time in mean-field units (SPEC 3: "
        f"the function's dynamics do not depend on alpha, the particles move by O(1/alpha)); {_COB['method']}, "
        f"dt = {_COB['dt']:g}, t_max = {t_max:g}",
        "centred: f(theta) - f(theta_0) trained from a random initialisation (simulate(centered=True)); symmetric: "
        "pairs (a, w), (-a, w) so that f(theta_0) = 0 (TwoLayer(symmetric=True)), trained uncentred",
        "linearized_distance = |f(theta_t) - fbar_t| / |f(theta_0) - y| on the training set, fbar the linearized "
        "model trained by the same flow (simulate(linearized=True)); series 'alpha' at t = t_max, series 'time' "
        f"for alpha in {', '.join(f'{a:g}' for a in _COB['time_alphas'])} (records every {_COB['dt_small']:g} up "
        f"to t = {t_small:g}, then every {_COB['record_every']:g})",
        "theory_C_t2: C t^2 with C = |(dK/dt)_0 y| / (2 n |y|), derived here (small_time_constant): F - fbar "
        "starts with zero value and velocity and the acceleration (1/n) (dK/dt)_0 y; it is the leading term "
        "of Theorem 2.3's t^2 bound and falls as 1/alpha",
        "slopes: -1 for the centred model (Theorem 2.3, the relative scale kappa of the scaled model falls as "
        "1/alpha); -2 for symmetric pairs with a smooth activation (derived, as in the alpha study, "
        "mfntk.studies._alpha.lazy_theory: the first-order kernel change and the second-order Taylor term "
        "cancel within each pair)",
        "jacobian_change = |Df(theta_1) - Df(theta_0)|_F / |Df(theta_0)|_F (the lecture notes' Delta(D phi)) and "
        f"objective_change = (R_0 - R_1) / R_0 (Delta(F)) over the first record interval [0, {_COB['record_every']:g}] "
        "(the notes use one gradient step); Delta(F) does not depend on alpha and Delta(D phi) moves with the "
        "particles, so their ratio falls as 1/alpha",
        "the paper's experiments use ReLU networks, wider ranges of scale and test losses; this entry measures "
        "the bound itself",
    ]

    def figure(result):
        return _cob_figure(result.table, fits)

    return Reproduction("cob", size, table, checks, figure, notes=notes)


def _cob_figure(table, fits):
    from .. import plot
    rows = table.records()
    alpha_rows = [r for r in rows if r["series"] == "alpha"]
    time_rows = [r for r in rows if r["series"] == "time"]
    fig, axes = plot._figure(1, 3, width=3.9, height=3.3)
    ax_a, ax_t, ax_r = axes[0]
    styles = {"centred": ("C0", "o", "full", "centred, random init."),
              "symmetric": ("C3", "s", "none", "symmetric pairs")}
    with plot._style():
        for model, (color, marker, fill, label) in styles.items():
            mark = dict(color=color, marker=marker, fillstyle=fill)
            groups = _by(alpha_rows, "alpha", "linearized_distance", model=model)
            x = list(groups)
            _errorbar(ax_a, x, groups, label=f"{label}: fit {fits[model].slope:+.2f}", **mark)
            fit = fits[model]
            _slope_line(ax_a, fit.x, float(fit.predict(fit.x.max())), fit.theory, color=color, lw=1.0,
                        label=f"theory slope {fit.theory:+.0f}" + (" (COB)" if model == "centred" else ""))
            groups = _by(alpha_rows, "alpha", "jacobian_over_objective", model=model)
            mean = _errorbar(ax_r, list(groups), groups, label=label, **mark)
            _slope_line(ax_r, list(groups), mean[-1], -1.0, color=color, lw=1.0, ls="-")
        ax_r.plot([], [], color="0.3", lw=1.0, label=r"theory $\propto \alpha^{-1}$")
        alphas = sorted({r["alpha"] for r in time_rows})
        for i, a in enumerate(alphas):
            pts = sorted((r for r in time_rows if r["alpha"] == a and r["seed"] == 0), key=lambda r: r["t_mf"])
            t = np.array([r["t_mf"] for r in pts])
            ax_t.plot(t, [r["linearized_distance"] for r in pts], ls="none", marker="o", ms=3, color=f"C{i}",
                      label=rf"$\alpha$ = {a:g}")
            ax_t.plot(t, [r["theory_C_t2"] for r in pts], color=f"C{i}", lw=1.0)
        ax_t.plot([], [], color="0.3", lw=1.0, label=r"theory $C(\alpha)\,t^2$")
        ax_a.set_xlabel(r"scale $\alpha$, log scale")
        ax_a.set_ylabel(r"$|f(\theta_t)-\bar f_t| \,/\, |f(\theta_0)-y|$ at $t = 2$, log scale")
        ax_a.set_title("distance to the linearization vs scale")
        ax_t.set_xlabel("time t (mean-field units), log scale")
        ax_t.set_ylabel(r"$|f(\theta_t)-\bar f_t| \,/\, |f(\theta_0)-y|$, log scale")
        ax_t.set_title("centred model vs time (seed 0)")
        ax_r.set_xlabel(r"scale $\alpha$, log scale")
        ax_r.set_ylabel(r"$\Delta(D\phi)\,/\,\Delta(F)$ over $[0, 0.1]$, log scale")
        ax_r.set_title("Jacobian change / objective change")
        for ax in (ax_a, ax_t, ax_r):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        xs = sorted({r["alpha"] for r in alpha_rows})
        plot.tidy_log_axes(ax_a, xvalues=xs)
        plot.tidy_log_axes(ax_r, xvalues=xs)
        plot.tidy_log_axes(ax_t)
        fig.suptitle("Lazy training (Chizat, Oyallon, Bach 2019): tanh two-layer network, points: mean "
                     "± sd over seeds; theory as lines")
    return fig


register(Entry(
    name="cob", paper="Chizat, Oyallon, Bach (2019)", what="Theorem 2.3 and Section 2",
    claim="A model trained at scale alpha stays close to its linearization: for the centred model "
          "f(theta) - f(theta_0) the distance |f(theta_t) - fbar_t| / |f(theta_0) - y| is at most of order "
          "t^2 kappa, with a relative scale kappa that falls as 1/alpha, and the tangent space moves much less "
          "than the objective (Delta(D phi) / Delta(F) -> 0). With symmetric pairs (f(theta_0) = 0) and a smooth "
          "activation the distance falls as 1/alpha^2.",
    seconds={"quick": 8, "full": 420}, run=_run_cob))


def cob(size="quick", out=None, workers=1, threads=None, seed=0):
    """Lazy training (Chizat, Oyallon, Bach 2019): the distance to the linearized model against
    the scale alpha and against time, and the Jacobian's change over the objective's.

    Two-layer tanh networks are trained by the squared-loss flow with their linearized model
    beside them (``simulate(linearized=True, diagnostics=True)``), as a centred model
    (``centered=True``, random initialisation) and with symmetric pairs (``symmetric=True``).
    Checks: the distance at t = 2 falls as alpha^-1 (centred; Theorem 2.3) and alpha^-2
    (symmetric pairs, derived); at small t it is C t^2 with the constant C derived from the
    motion of the tangent kernel (:func:`small_time_constant`); the ratio
    Delta(D phi) / Delta(F) falls as 1/alpha.

    Parameters
    ----------
    size : {"quick", "full"}
        "quick": d = 5, N = 256, n = 64, alpha = 2 ... 256, 2 seeds (about 8 s on 2 cores);
        "full": d = 10, N = 1024, n = 256, alpha = 1 ... 1024, 8 seeds (6 to 8 min with 2 workers).
    out : str or path, optional
        Folder for cob.csv, cob.json, cob.png and cob.md.
    workers : int
        Processes for the independent runs.
    threads : int or None
        OpenMP threads in all (None: every core available).
    seed : int
        Seed of the data and the initialisations.

    Returns
    -------
    Reproduction

    Raises
    ------
    ValueError, TypeError
        For invalid arguments (the message names the argument).

    References
    ----------
    L. Chizat, E. Oyallon, F. Bach, "On lazy training in differentiable programming", NeurIPS
    2019, Theorem 2.3 and Section 2 (relative scale, scaled models).
    """
    return reproduce("cob", size=size, out=out, workers=workers, threads=threads, seed=seed)


# ---------------------------------------------------------------------------------------------
# diag-linear: Woodworth et al. (2020)
# ---------------------------------------------------------------------------------------------

_DIAG_SIZES = {
    "quick": {"alphas": tuple(np.logspace(-3, 1, 9)), "seeds": 2},
    "full": {"alphas": tuple(np.logspace(-3, 1, 17)), "seeds": 10},
}
#: Settings every size shares: the sparse problem of each loss, the risk thresholds (fractions
#: of the initial risk R_0), the depth.
_DIAG = {"d": 100, "s": 5, "n": {"squared": 40, "logistic": 80}, "depth": 2, "kappa": 1e-2,
         "final": {"squared": 1e-5, "logistic": 1e-3}, "records": 200, "lazy_from": 1.0}
_DIAG_LOSSES = ("squared", "logistic")
#: The largest second derivative of each loss in f: the step of gradient descent is set from it.
_LOSS_CURVATURE = {"squared": 1.0, "logistic": 0.25}


def sparse_problem(d, s, n, loss, seed):
    """The training set of the diagonal-network entry: x ~ N(0, I_d), the sparse teacher
    b* (:class:`mfntk.datasets.SparseLinear`, s coefficients +-1/sqrt(s)), y = <b*, x> for the
    squared loss and sign(<b*, x>) for the logistic loss.

    Returns
    -------
    X : ndarray (n, d)
    y : ndarray (n,)
    beta_star : ndarray (d,)
    """
    from .. import datasets
    teacher = datasets.SparseLinear(d, s, seed=seed_for(seed, 0))
    data = datasets.teacher_dataset(teacher, d, n, seed=seed_for(seed, 1))
    y = data.y[:, 0]
    return data.X, (np.sign(y) if loss == "logistic" else y), teacher.beta


def population_error(loss, beta, beta_star):
    """The population error of the predictor beta for N(0, I_d) inputs and the teacher beta_star:
    E <beta - beta_star, x>^2 = |beta - beta_star|^2 (squared loss, regression) or
    P(sign <beta, x> != sign <beta_star, x>) = angle(beta, beta_star) / pi (logistic loss,
    classification)."""
    if loss == "squared":
        return float(np.sum((beta - beta_star) ** 2))
    cos = beta @ beta_star / (np.linalg.norm(beta) * np.linalg.norm(beta_star))
    return float(np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi)


def reference_solutions(loss, X, y):
    """The two predictors the flow tends to (in the rich and kernel limits): for the squared
    loss the minimum-l1 interpolant (linear program) and the minimum-l2 interpolant X^+ y; for
    the logistic loss the l1 and l2 max-margin classifiers, min |beta| subject to
    y_i <beta, x_i> >= 1 (a linear program; a least-distance program solved by non-negative
    least squares, Lawson and Hanson 1974, Ch. 23).

    Returns
    -------
    beta_l1, beta_l2 : ndarray (d,)

    Raises
    ------
    RuntimeError
        When a program has no solution (the data cannot be interpolated or separated).
    """
    from scipy.optimize import linprog, nnls
    n, d = X.shape
    A = y[:, None] * X if loss == "logistic" else X
    # l1: beta = u - v with u, v >= 0, minimise sum(u + v)
    if loss == "squared":
        res = linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None), method="highs")
    else:
        res = linprog(np.ones(2 * d), A_ub=-np.hstack([A, -A]), b_ub=-np.ones(n), bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"reference_solutions: the l1 program failed ({res.message})")
    beta_l1 = res.x[:d] - res.x[d:]
    if loss == "squared":
        beta_l2 = np.linalg.lstsq(X, y, rcond=None)[0]
    else:
        E = np.vstack([A.T, np.ones((1, n))])
        target = np.zeros(d + 1)
        target[-1] = 1.0
        u, _ = nnls(E, target)
        r = E @ u - target
        if not abs(r[-1]) > 1e-12:
            raise RuntimeError("reference_solutions: the labels cannot be separated by a linear classifier")
        beta_l2 = -r[:d] / r[-1]
    return beta_l1, beta_l2


def conserved_kernel_distance(X, alpha, beta):
    """|K - K_0|_F / |K_0|_F of the depth-2 diagonal network whose predictor is beta, on X.

    The gradient flow keeps w_+ w_- = alpha^2 in every coordinate (d(w_+ w_-)/dt = 0), so
    w_+^2 + w_-^2 = sqrt(4 alpha^4 + beta^2): the tangent kernel 4 sum_i (w_+i^2 + w_-i^2) x_i x'_i
    is a function of beta, K = 4 sum_i sqrt(4 alpha^4 + beta_i^2) x_i x'_i, and
    K - K_0 = 4 sum_i beta_i^2 / (sqrt(4 alpha^4 + beta_i^2) + 2 alpha^2) x_i x'_i
    (relative size beta^2 / (8 alpha^4) at large alpha).
    """
    change = beta ** 2 / (np.sqrt(4 * alpha ** 4 + beta ** 2) + 2 * alpha ** 2)
    return float(np.linalg.norm((X * change) @ X.T) / np.linalg.norm(2 * alpha ** 2 * (X @ X.T)))


def learning_rate(X, alpha, loss, depth=2, beta_max=1.0):
    """Half the inverse of the largest curvature of the risk along the run: at t = 0,
    c 2 D^2 alpha^(2D-2) lambda_max(X^T X) / n; near the end, about
    c D^2 |beta|_max^((2D-2)/D) lambda_max(X^T X) / n (c the loss's largest second derivative).
    The same for every alpha up to :func:`fixed_rate_alpha`, falling as alpha^-(2D-2) above."""
    lam = np.linalg.eigvalsh(X @ X.T).max() / X.shape[0]
    scale = max(2 * alpha ** (2 * depth - 2), beta_max ** ((2 * depth - 2) / depth))
    return 1.0 / (2 * _LOSS_CURVATURE[loss] * depth ** 2 * scale * lam)


def fixed_rate_alpha(beta_max, depth=2):
    """The largest alpha at which :func:`learning_rate` does not depend on alpha:
    2 alpha^(2D-2) = beta_max^((2D-2)/D)."""
    return (beta_max ** ((2 * depth - 2) / depth) / 2) ** (1 / (2 * depth - 2))


def _diag_task(task):
    with _blas_single_thread():   # d = 100, n <= 80: a threaded BLAS only adds contention
        return _diag_run(task)


def _diag_run(task):
    from .._diagonal import DiagonalLinear
    from .._simulate import simulate
    loss, alpha = task["loss"], task["alpha"]
    X, y, beta_star = sparse_problem(_DIAG["d"], _DIAG["s"], _DIAG["n"][loss], loss, task["data_seed"])
    eta = learning_rate(X, alpha, loss, _DIAG["depth"], np.abs(beta_star).max())
    model = DiagonalLinear(_DIAG["d"], alpha=alpha, depth=_DIAG["depth"])
    R0 = risk(loss, np.zeros((len(y), 1)), y[:, None])
    kappa, final = _DIAG["kappa"] * R0, _DIAG["final"][loss] * R0
    run = dict(method="euler", loss=loss, threads=task["threads"], progress=False)
    t_max = 400 * eta
    for _ in range(12):   # the time to reach the final risk grows like log(1/alpha) and more: extend until reached
        tr = completed(simulate(model, (X, y), t_max, eta, record_every=t_max / _DIAG["records"], diagnostics=True,
                                linearized=True, **run))
        if tr.train_risk[-1] <= final:
            break
        t_max *= 4
    else:
        raise RuntimeError(f"diag-linear: alpha = {alpha:g} did not reach the training risk {final:.3g}")
    # the exact number of steps to kappa: the same run, recorded at every step up to the first record below kappa
    upper = int(tr.step[np.flatnonzero(tr.train_risk <= kappa)[0]])
    fine = completed(simulate(model, (X, y), upper * eta, eta, record_every=eta, **run))
    steps = int(fine.step[np.flatnonzero(fine.train_risk <= kappa)[0]])
    beta = tr.net.beta
    return {"learning_rate": eta, "iterations_to_kappa": steps, "kappa": kappa, "t_final": float(tr.t[-1]),
            "train_risk_final": float(tr.train_risk[-1]), "population_error": population_error(loss, beta, beta_star),
            "kernel_distance": float(tr.kernel_distance[-1]),
            "kernel_distance_from_beta": conserved_kernel_distance(X, alpha, beta),
            "linearized_distance_max": float(np.max(tr.linearized_distance))}


def _run_diag_linear(size, workers, threads, seed):
    p = _DIAG_SIZES[size]
    alphas = [float(a) for a in p["alphas"]]
    data_seeds = {k: seed_for(seed, k) for k in range(p["seeds"])}
    tasks = [{"loss": loss, "seed": k, "alpha": a, "data_seed": data_seeds[k]}
             for loss in _DIAG_LOSSES for k in range(p["seeds"]) for a in alphas]
    results = run_tasks(_diag_task, tasks, workers=workers, threads=threads, progress=False, desc="diag-linear")
    references, curves = {}, {}
    grid = np.geomspace(alphas[0], alphas[-1], 60)
    for loss in _DIAG_LOSSES:
        for k in range(p["seeds"]):
            X, y, beta_star = sparse_problem(_DIAG["d"], _DIAG["s"], _DIAG["n"][loss], loss, data_seeds[k])
            b1, b2 = reference_solutions(loss, X, y)
            references[loss, k] = {"l1": population_error(loss, b1, beta_star),
                                   "l2": population_error(loss, b2, beta_star)}
            if loss == "squared":
                curves[k] = {"l1": [conserved_kernel_distance(X, a, b1) for a in grid],
                             "l2": [conserved_kernel_distance(X, a, b2) for a in grid]}
                for task in tasks:
                    if task["loss"] == loss and task["seed"] == k:
                        task["kd_l1"] = conserved_kernel_distance(X, task["alpha"], b1)
                        task["kd_l2"] = conserved_kernel_distance(X, task["alpha"], b2)
    rows = []
    for task, res in zip(tasks, results):
        loss, k = task["loss"], task["seed"]
        rows.append({"loss": loss, "n_train": _DIAG["n"][loss], "seed": k, "alpha": task["alpha"],
                     "learning_rate": res["learning_rate"], "iterations_to_kappa": res["iterations_to_kappa"],
                     "kappa": res["kappa"], "t_final": res["t_final"], "train_risk_final": res["train_risk_final"],
                     "population_error": res["population_error"], "l1_solution_error": references[loss, k]["l1"],
                     "l2_solution_error": references[loss, k]["l2"], "kernel_distance": res["kernel_distance"],
                     "kernel_distance_from_beta": res["kernel_distance_from_beta"],
                     "kernel_distance_l1_theory": task.get("kd_l1", float("nan")),
                     "kernel_distance_l2_theory": task.get("kd_l2", float("nan")),
                     "linearized_distance_max": res["linearized_distance_max"]})
    table = Table(rows)
    alpha_fixed = fixed_rate_alpha(1 / math.sqrt(_DIAG["s"]), _DIAG["depth"])   # |b*|_max = 1/sqrt(s)
    lo, hi = alphas[0], alphas[-1]

    def seed_mean(loss, column, alpha):
        return float(np.mean([r[column] for r in rows if r["loss"] == loss and r["alpha"] == alpha]))

    def ordering(loss, column, smaller, what, condition, below=None):
        xs = [a for a in alphas if below is None or a <= below]
        values = [seed_mean(loss, column, a) for a in xs]
        return Check(f"{what}, {loss} loss", values[0], None, holds=_strictly(values, smaller), condition=condition)

    checks = [
        Check(f"population error at alpha = {lo:g}, squared loss, vs the minimum-l1 interpolant's",
              seed_mean("squared", "population_error", lo), seed_mean("squared", "l1_solution_error", lo), 0.01),
        Check(f"population error at alpha = {hi:g}, squared loss, vs the minimum-l2 interpolant's",
              seed_mean("squared", "population_error", hi), seed_mean("squared", "l2_solution_error", hi), 1e-3,
              relative=True),
        Check(f"kernel distance at alpha = {hi:g}, squared loss, vs the gradient flow's (the conserved-quantity "
              f"formula at the minimum-l2 interpolant; gradient descent's steps lower it by a fraction "
              f"proportional to the learning rate, about 5% here)", seed_mean("squared", "kernel_distance", hi),
              seed_mean("squared", "kernel_distance_l2_theory", hi), 0.1, relative=True),
    ]
    lazy = [a for a in alphas if a >= _DIAG["lazy_from"]]
    for column, name in (("kernel_distance", "kernel distance"), ("linearized_distance_max", "distance to the "
                                                                  "linearization")):
        fit = fit_loglog(lazy, [seed_mean("squared", column, a) for a in lazy], column, theory=-4.0)
        checks.append(Check(f"slope of the {name} vs alpha for alpha >= {_DIAG['lazy_from']:g}, squared loss",
                            fit.slope, -4.0, 0.1))
    checks += [
        Check(f"population error at alpha = {hi:g}, logistic loss, vs the l2 max-margin classifier's",
              seed_mean("logistic", "population_error", hi), seed_mean("logistic", "l2_solution_error", hi), 0.02),
        Check(f"population error at alpha = {lo:g}, logistic loss", seed_mean("logistic", "population_error", lo),
              None, holds=seed_mean("logistic", "population_error", lo) < seed_mean("logistic", "population_error", hi),
              condition=f"below the error at alpha = {hi:g} (the rich regime finds the sparse teacher better)"),
    ]
    for loss in _DIAG_LOSSES:
        checks += [
            ordering(loss, "kernel_distance", False, f"kernel distance at alpha = {lo:g}",
                     "decreases at every step of alpha"),
            ordering(loss, "linearized_distance_max", False, f"distance to the linearization at alpha = {lo:g}",
                     "decreases at every step of alpha"),
            ordering(loss, "iterations_to_kappa", False, f"iterations to R_0/100 at alpha = {lo:g}",
                     f"increase as alpha decreases, at every step of alpha <= {alpha_fixed:.3g} (fixed learning "
                     f"rate)", below=alpha_fixed),
        ]
    notes = [
        f"diagonal linear network f(x) = <w_+^2 - w_-^2, x> (depth 2), w_+ = w_- = alpha at t = 0 "
        f"(mf.DiagonalLinear), d = {_DIAG['d']}, sparse teacher with s = {_DIAG['s']} coefficients +-1/sqrt(s) "
        f"(mf.datasets.SparseLinear), x ~ N(0, I_d), n = {_DIAG['n']['squared']} (squared loss, y = <b*, x>) and "
        f"{_DIAG['n']['logistic']} (logistic loss, y = sign <b*, x>), {p['seeds']} seeds (teacher and data), "
        f"alpha = {', '.join(f'{a:.3g}' for a in alphas)}",
        "trained by gradient descent (Euler steps of the gradient flow with dt = eta, so iterations = steps) until "
        f"the training risk is below {_DIAG['final']['squared']:g} R_0 (squared) or {_DIAG['final']['logistic']:g} "
        "R_0 (logistic), R_0 the risk at t = 0; eta = half the inverse of the largest curvature of the risk along "
        f"the run (learning_rate): the same for every alpha <= {alpha_fixed:.3g}, proportional to alpha^-2 above "
        "(where the kernel grows as alpha^2, so the iteration count no longer depends on alpha)",
        "population_error: E(f(x) - <b*, x>)^2 = |beta - b*|^2 (squared loss) and P(sign f(x) != sign <b*, x>) = "
        "angle(beta, b*)/pi (logistic loss), exact for Gaussian inputs; l1_solution_error / l2_solution_error: the "
        "same for the minimum-l1 interpolant (scipy.optimize.linprog) and the minimum-l2 interpolant X^+ y "
        "(squared), and for the l1 and l2 max-margin classifiers (logistic)",
        "iterations_to_kappa: the first step with training risk <= kappa = R_0/100 (exact: a second run records "
        "every step); kernel_distance = |K_t - K_0|_F / |K_0|_F of the tangent kernel on the training set at the "
        "end; linearized_distance_max = max over the run of |f(w_t) - fbar_t| / |f(w_0) - y|",
        "kernel_distance_l1_theory / _l2_theory (squared loss): the gradient flow conserves w_+ w_- = alpha^2, so "
        "the kernel is 4 sum_i sqrt(4 alpha^4 + beta_i^2) x_i x'_i, a function of beta (derived here, "
        "conserved_kernel_distance), evaluated at the minimum-l1 and minimum-l2 interpolants (the limits of "
        "small and large alpha); at large alpha its relative change is beta^2/(8 alpha^4), hence the slope -4 "
        "of the kernel distance and of the distance to the linearization. Gradient descent does not conserve "
        "w_+ w_- exactly (a step multiplies it by 1 - 4 eta^2 G_i^2, G = X^T r / n), which at large alpha changes "
        "the kernel at the same order alpha^-4: at the learning rate used the measured kernel distance is 5% "
        "below the flow's, at eta/10 0.45% below, at eta/100 0.044% (measured for alpha = 3 and 10); "
        "kernel_distance_from_beta is the formula at the run's own final beta",
        "logistic loss: the kernel regime tends to the l2 max-margin classifier as the training loss goes to 0 "
        "(slowly, like 1/log t); for any finite alpha the flow turns towards the l1 max-margin classifier only "
        "as the loss goes to 0, at a rate set by alpha and the loss together (Moroshko et al. 2020), so at a "
        "training loss of 1e-3 R_0 the small-alpha error is compared with the large-alpha error, not with the "
        "l1 max-margin classifier's",
        "the iteration counts, kernel change and distance to the linearization follow the kernel-versus-rich "
        "project proposal; Woodworth et al.'s Figure 1 shows the population error against alpha",
    ]
    if size == "quick":
        notes.append("quick size: two seeds, two values of alpha per decade")

    def figure(result):
        return _diag_figure(result.table, grid, curves, alpha_fixed)

    return Reproduction("diag-linear", size, table, checks, figure, notes=notes)


def _diag_figure(table, grid, curves, alpha_fixed):
    from .. import plot
    rows = table.records()
    fig, axes = plot._figure(2, 4, width=3.0, height=2.65)
    # where each panel's legend covers no point (the errors rise with alpha, the iterations fall)
    legend_at = {("squared", 0): {"loc": "lower right", "bbox_to_anchor": (1.0, 0.1)},
                 ("logistic", 0): {"loc": "center left"}}
    ylabels = {"population_error": "population error", "iterations_to_kappa":
               r"GD iterations to risk $R_0/100$", "kernel_distance": r"$|K_t-K_0|_F/|K_0|_F$ at the end",
               "linearized_distance_max": r"$\max_t |f(w_t)-\bar f_t| / |f(w_0)-y|$"}
    with plot._style():
        for i, loss in enumerate(_DIAG_LOSSES):
            sel = [r for r in rows if r["loss"] == loss]
            for j, column in enumerate(ylabels):
                ax = axes[i, j]
                groups = _by(sel, "alpha", column)
                x = list(groups)
                _errorbar(ax, x, groups, color="k", marker="o", ms=3.5, label="gradient descent", zorder=3)
                ax.set_xscale("log")
                ax.set_xlabel(r"initialisation scale $\alpha$, log scale")
                if column == "population_error":
                    ax.set_ylabel({"squared": r"population error $|\beta-\beta^*|^2$",
                                   "logistic": r"population classification error"}[loss])
                else:
                    ax.set_yscale("log")
                    ax.set_ylabel(ylabels[column] + ", log scale")
            errors = axes[i, 0]
            names = {"squared": ("min-$\\ell_1$ interpolant", "min-$\\ell_2$ interpolant"),
                     "logistic": ("$\\ell_1$ max-margin", "$\\ell_2$ max-margin")}[loss]
            for key, name, color in (("l1_solution_error", names[0], "C2"), ("l2_solution_error", names[1], "C3")):
                errors.axhline(np.mean([r[key] for r in sel]), color=color, ls="--", lw=1.2, label=name)
            errors.set_title(f"{loss} loss, n = {_DIAG['n'][loss]}: test error")
            axes[i, 1].axvline(alpha_fixed, color="0.5", ls=":", lw=1.0)
            axes[i, 1].text(alpha_fixed * 1.15, 0.97, "\u2190 same learning rate", fontsize=6.5, color="0.3",
                            va="top", transform=axes[i, 1].get_xaxis_transform())
            axes[i, 1].set_title("iterations to fit")
            axes[i, 2].set_title("tangent kernel change")
            axes[i, 3].set_title("distance to the linearization")
            if loss == "squared":
                for key, name, color in (("l1", names[0], "C2"), ("l2", names[1], "C3")):
                    mean = np.mean([c[key] for c in curves.values()], axis=0)
                    axes[i, 2].plot(grid, mean, color=color, lw=1.2, label=f"theory at the {name}")
                distances = _by(sel, "alpha", "linearized_distance_max")
                lazy = [a for a in distances if a >= _DIAG["lazy_from"]]
                _slope_line(axes[i, 3], lazy, np.mean(distances[lazy[-1]]), -4.0, color="C3", lw=1.0,
                            label=r"theory $\propto\alpha^{-4}$")
            for j, ax in enumerate(axes[i]):
                plot.tidy_log_axes(ax)
                if len(ax.get_legend_handles_labels()[0]) > 1:   # points and theory: say which is which
                    ax.legend(fontsize=6.5, **legend_at.get((loss, j), {"loc": "best"}))
        fig.suptitle("Kernel and rich regimes of the diagonal linear network (Woodworth et al. 2020): "
                     "points: mean ± sd over seeds; theory as lines")
    return fig


register(Entry(
    name="diag-linear", paper="Woodworth et al. (2020)", what="Figure 1",
    claim="The diagonal linear network f(x) = <w_+^2 - w_-^2, x> initialised at scale alpha and trained by "
          "gradient descent on a sparse regression problem reaches the minimum-l1 interpolant (rich regime: the "
          "sparse teacher is recovered) as alpha -> 0 and the minimum-l2 interpolant (kernel regime) as "
          "alpha -> infinity; the tangent kernel and the distance to the linearization stay small only at "
          "large alpha, and small alpha costs more iterations.",
    seconds={"quick": 10, "full": 150}, run=_run_diag_linear))


def diag_linear(size="quick", out=None, workers=1, threads=None, seed=0):
    """Kernel and rich regimes of the diagonal linear network (Woodworth et al. 2020).

    mf.DiagonalLinear (depth 2) trained by gradient descent (:func:`mfntk.simulate`, Euler
    steps) on sparse regression (squared loss) and sparse classification (logistic loss), for
    alpha from 1e-3 to 10: the population error against those of the minimum-l1 and
    minimum-l2 interpolants (l1 and l2 max-margin classifiers for the logistic loss), the
    iterations to reach a training risk R_0/100, the change of the tangent kernel with its
    closed form from the conserved quantity w_+ w_- = alpha^2, and the distance to the affine
    linearization.

    Parameters
    ----------
    size : {"quick", "full"}
        "quick": 9 values of alpha, 2 seeds (about 10 s on 2 cores); "full": 17 values of
        alpha, 10 seeds (2 to 3 min with 2 workers). d = 100, s = 5, n = 40 (squared) and 80 (logistic) in both.
    out : str or path, optional
        Folder for diag-linear.csv, .json, .png and .md.
    workers : int
        Processes for the independent runs.
    threads : int or None
        OpenMP threads in all (None: every core available).
    seed : int
        Seed of the teachers and the data.

    Returns
    -------
    Reproduction

    Raises
    ------
    ValueError, TypeError
        For invalid arguments (the message names the argument).

    References
    ----------
    B. Woodworth, S. Gunasekar, J. D. Lee, E. Moroshko, P. Savarese, I. Golan, D. Soudry,
    N. Srebro, "Kernel and rich regimes in overparametrized models", COLT 2020, Figure 1 and
    Section 4. E. Moroshko, S. Gunasekar, B. Woodworth, J. D. Lee, N. Srebro, D. Soudry,
    "Implicit bias in deep linear classification: initialization scale vs training accuracy",
    NeurIPS 2020. C. L. Lawson, R. J. Hanson, "Solving least squares problems", 1974, Ch. 23.
    """
    return reproduce("diag-linear", size=size, out=out, workers=workers, threads=threads, seed=seed)
