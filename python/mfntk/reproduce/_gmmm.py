"""Ghorbani, Mei, Misiakiewicz and Montanari (2019): random features (RF), neural tangent (NT) and the
trained network (NN) on a quadratic target and on a mixture of two Gaussians, their Figures 1-3.

Conventions of the three entries
--------------------------------
N = rho d neurons. Risks are divided by the risk of the best constant: ||f*||^2 = Var f*(x) = 2 |B|_F^2
for the quadratic target f*(x) = <x, B x> - Tr B with x ~ N(0, I_d), and E y^2 = 1 for the mixture
(labels +-1), so that 1 means "learned nothing". RF and NT are the classes of [GMMM19]_ with their free
constant, at first-layer weights w_j ~ N(0, I_d / d) (mfntk's default law). Their points are the exact
risks of the best member of the class for the drawn first layer (:func:`mfntk.theory.qf_rf_risk_finite`
and the like: the population limit n -> infinity of the least-squares fit, as in the paper's figures),
averaged over draws of W, and, at a few widths, the test risk of :class:`mfntk.RandomFeatures` and
:class:`mfntk.NeuralTangent` (``fit_intercept=True``) fitted on n samples, compared with the exact risk
of the same W.

The trained network (NN) is mfntk's mean-field network f(x) = (1/N) sum_j a_j sigma(<w_j, x>) + c with
an output bias c (the free constant of the paper's class), trained by :func:`mfntk.simulate` with online
SGD: a fresh minibatch at every Euler step, so each sample is used once (one-pass SGD, Theorem 3). With
sigma(u) = u^2 + c0 the network is the quadratic form m + <x, S x>, S = (1/N) sum_j a_j w_j w_j^T
(rank <= N) and m = c + c0 mean(a): the class {m + <x, S x> : rank S <= N} of Theorem 3. The entries
check this representation on test points and then compute the network's population risk exactly from
(S, m) by Isserlis' theorem (and compare it with a Monte-Carlo estimate).

References
----------
.. [GMMM19] B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari, "Limitations of lazy training of
   two-layers neural networks", NeurIPS 2019 (Theorems 1-3; Figures 1-3).
.. [GMMM21] B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari, "Linearized two-layers neural networks
   in high dimension", Ann. Statist. 49(2), 2021.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import theory
from .._network import TwoLayer
from .._simulate import simulate
from ..datasets import Quadratic, gaussian_mixture, teacher_dataset
from ..regression import NeuralTangent, RandomFeatures
from ..studies._base import Table, completed, run_tasks, seed_for
from ._base import Check, Entry, Reproduction, register, reproduce

__all__ = ["gmmm_qf", "gmmm_mixture", "gmmm_relu"]

PAPER = "Ghorbani, Mei, Misiakiewicz, Montanari (2019)"

#: sigma(u) = u^2 + C0 for the quadratic networks: u^2 - 1 is centred for |w| = 1 (Theorem 1's activation);
#: with the free constant every c0 gives the same classes.
C0 = -1.0

#: a_std of the trained networks. The flow keeps |w_j|^2 - 2 a_j^2 constant (up to c0 times the mean
#: residual, which the output bias cancels): from a small a_j it stays positive, so |w_j| cannot reach 0 and
#: a_j can change sign, each neuron taking the sign of <w_j, B w_j>. From a_std = 1, neurons that start
#: with a_j < 0 on a positive semi-definite B shrink to w_j = 0 and stay there (d = 20, N = 10: risk 0.040
#: against the Eckart-Young 0.015; 0.016 with a_std = 0.1).
NN_A_STD = 0.1

#: Standard errors allowed between a mean over draws (or a Monte-Carlo estimate) and its reference.
SIGMAS = 4.0

#: Labels of the table's ``method`` column.
EXACT, FIT, SGD = "exact_given_W", "least_squares_fit", "online_sgd"

MODEL_STYLE = {"RF": ("C0", "o"), "NT": ("C1", "s"), "NN": ("C2", "^")}


# ---- pieces shared by the entries -----------------------------------------------------------------------
def _width(rho, d):
    return max(1, int(round(rho * d)))


def _widths(rhos, d):
    return sorted({_width(r, d) for r in rhos})


def _row(setting, model, method, d, N, risk, *, seed=None, runs=1, risk_sd=None, se=0.0, theory_value=None,
         **extra):
    """A row of an entry's table: one point (a run, or the mean over draws of W); numbers as Python's."""
    row = {"setting": setting, "model": model, "method": method, "d": d, "N": N, "rho": N / d, "runs": runs,
           "seed": seed, "risk": risk, "risk_sd": risk_sd, "se": se, "theory": theory_value, **extra}
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}


def _over_draws(values, setting, model, d, N, theory_value):
    """The row of the exact risks of several draws of W: their mean, standard deviation and standard error."""
    values = np.asarray(values, dtype=float)
    sd = float(values.std(ddof=1))
    return _row(setting, model, EXACT, d, N, float(values.mean()), runs=values.size, risk_sd=sd,
                se=sd / np.sqrt(values.size), theory_value=theory_value)


def _select(table, **match):
    return [r for r in table.rows if all(r[k] == v for k, v in match.items())]


def _stats(table, **match):
    """{N: (rho, mean, spread, runs)} of the rows matching ``match``: an aggregated row's mean and standard
    deviation over its draws; per-run rows' mean and standard deviation over the runs (a single run: its
    Monte-Carlo standard error)."""
    rows = _select(table, **match)
    out = {}
    for N in sorted({r["N"] for r in rows}):
        group = [r for r in rows if r["N"] == N]
        if len(group) == 1:
            r = group[0]
            out[N] = (r["rho"], r["risk"], r["risk_sd"] if r["runs"] > 1 else r["se"], r["runs"])
        else:
            values = np.array([r["risk"] for r in group])
            out[N] = (group[0]["rho"], float(values.mean()), float(values.std(ddof=1)), len(group))
    return out


def _nearest(stats, rho):
    """The mean of ``stats`` at the width whose rho is nearest to ``rho``."""
    return min(stats.values(), key=lambda v: abs(v[0] - rho))[1]


def _quadratic_form(net):
    """(S, m) with f(x) = m + <x, S x> for a network with sigma(u) = u^2 + c0 and no neuron bias."""
    a = net.a[:, 0] * (net.alpha / net.width)
    S = (net.W.T * a) @ net.W
    m = net.c0 * float(a.sum()) + (float(net.c[0]) if net.c is not None else 0.0)
    return S, m


def _representation_error(net, X):
    """max |f(x) - m - <x, S x>| over the rows of X, relative to max(1, max |f|)."""
    S, m = _quadratic_form(net)
    f = net.predict(X).reshape(-1)
    g = m + np.einsum("ij,jk,ik->i", X, S, X)
    return float(np.max(np.abs(f - g)) / max(1.0, float(np.max(np.abs(f)))))


def _monte_carlo(prediction, y, norm2):
    """(mean of (y - f)^2, its standard error), both divided by norm2."""
    err = (np.asarray(y).reshape(-1) - np.asarray(prediction).reshape(-1)) ** 2
    return float(err.mean() / norm2), float(err.std(ddof=1) / np.sqrt(err.size) / norm2)


def _blas_threads(threads):
    """Numpy's BLAS limited to ``threads`` (a context manager): a run's share of the cores. A BLAS left at
    every core beside other runs, or on a loaded machine, spins: the least-squares fits of these entries ran
    ten times slower (d = 40, 400 features: 5.9 s against 0.45 s)."""
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    return threadpool_limits(limits=threads, user_api="blas")


def _task(fn):
    """A task function of :func:`~mfntk.studies.run_tasks` that runs under its share of BLAS threads."""
    @functools.wraps(fn)
    def run(task):
        with _blas_threads(task["threads"]):
            return fn(task)
    return run


def _train(data, N, activation, seed, cfg, threads):
    """The mean-field network with an output bias after online SGD on ``data``'s sampler."""
    extra = {"c0": C0} if activation == "quadratic" else {}
    net = TwoLayer(data.d, N, activation=activation, scaling="mf", a_std=NN_A_STD, output_bias=True, seed=seed,
                   **extra)
    traj = simulate(net, data, t_max=cfg["t_max"], dt=cfg["dt"], method="euler", batch=cfg["batch"], online=True,
                    seed=seed, threads=threads, progress=False, record_every=cfg["t_max"] / 10)
    return completed(traj).net


def _fits(data, N, seed, cfg, threads, norm2, exact_risks, X_test, y_test, setting, theory_values):
    """The rows of the RF and NT least-squares fits (quadratic activation, free constant) on n_fit samples,
    each with the exact risk of its own first layer."""
    X, y = data.sample(cfg["n_fit"], rng=seed_for(seed, 4))
    rows = []
    for model, cls in (("RF", RandomFeatures), ("NT", NeuralTangent)):
        fit = cls(width=N, activation="quadratic", c0=C0, fit_intercept=True, seed=seed, threads=threads).fit(X, y)
        risk, se = _monte_carlo(fit.predict(X_test), y_test, norm2)
        rows.append(_row(setting, model, FIT, data.d, N, risk, seed=seed, se=se, theory_value=theory_values[model],
                         exact_given_W=exact_risks[model](fit.network_.W), features=fit.n_features_))
    return rows


def _network_checks(nn_rows):
    return [
        Check("NN: network - (m + <x, S x>), largest deviation on test points (relative)",
              max(r["representation_error"] for r in nn_rows), 0.0, 1e-9),
        Check("NN: exact population risk - Monte-Carlo test risk, largest in standard errors",
              max(abs(r["risk"] - r["risk_mc"]) / r["se_mc"] for r in nn_rows), 0.0, SIGMAS),
    ]


def _fits_check(fit_rows, cfg):
    def allowed(r):
        return SIGMAS * r["se"] + 3.0 * r["features"] / (cfg["n_fit"] - r["features"]) * r["exact_given_W"]

    return Check(f"RF / NT least-squares fits (d = {cfg['d_fit']}): largest |test risk - exact risk of the same W|",
                 max(abs(r["risk"] - r["exact_given_W"]) for r in fit_rows), None,
                 holds=all(abs(r["risk"] - r["exact_given_W"]) <= allowed(r) for r in fit_rows),
                 condition=f"<= {SIGMAS:g} SE + 3 p / (n - p) x exact for each fit (p features, n = {cfg['n_fit']} "
                           "samples: the excess risk of least squares)")


def _fit_note(cfg):
    return (f"least-squares fits at d = {cfg['d_fit']} on n = {cfg['n_fit']} samples, risk on {cfg['n_test']} fresh "
            "test samples")


def _sgd_note(cfg, activation):
    act = f"sigma(u) = u^2 {C0:+g}" if activation == "quadratic" else f"sigma = {activation}"
    return (f"NN: {act}, mean-field scaling, output bias, a_std = {NN_A_STD:g}; online SGD (Euler steps, a fresh "
            f"minibatch of {cfg['batch']} samples each step), dt = {cfg['dt']:g} in mean-field time (learning rate "
            f"eta = dt N), t_max = {cfg['t_max']:g}.")


def _points(ax, stats, model, label, filled=True, offset=0.0, line=False):
    if not stats:
        return
    color, marker = MODEL_STYLE[model]
    rho, mean, spread, _ = (np.array(v) for v in zip(*stats.values()))
    ax.errorbar(rho + offset, mean, yerr=spread, fmt=marker + ("-" if line else ""), color=color,
                mfc=color if filled else "white", mec=color, ms=4.5, lw=0.8, capsize=2, elinewidth=0.8, label=label,
                zorder=3)


def _new_figure(ncols, width=3.3):
    from .. import plot
    fig, axes = plot._figure(1, ncols, width=width, height=2.9, sharey=True)
    return fig, list(axes[0])


def _finish(fig, axes, ylabel, ylim=(-0.02, 1.05)):
    """Labels, limits and one legend (the entries of every panel) to the right of the last panel."""
    axes[0].set_ylabel(ylabel)
    for ax in axes:
        ax.set_xlabel(r"$\rho = N / d$ (neurons per input dimension)" if len(axes) == 1 else r"$\rho = N / d$")
        ax.set_ylim(*ylim)
        ax.set_xlim(left=0.0)
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    axes[-1].legend(entries.values(), entries.keys(), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                    borderaxespad=0.0)
    return fig


# ---- gmmm-qf: Figure 1, quadratic target, quadratic activation ---------------------------------------------
QF_SIZES = {
    "quick": {"d": 20, "rhos": np.arange(1, 21) / 10.0, "draws": 20,
              "d_nn": 20, "nn_rhos": (0.25, 0.5, 0.75, 1.25), "nn_seeds": 2, "t_max": 60.0, "dt": 0.05, "batch": 200,
              "d_fit": 20, "fit_rhos": (0.5,), "n_fit": 8000, "n_test": 20000},
    "full": {"d": 450, "rhos": np.arange(1, 21) / 10.0, "draws": 5,
             "d_nn": 100, "nn_rhos": (0.1, 0.25, 0.5, 0.75, 1.0, 1.5), "nn_seeds": 2, "t_max": 300.0, "dt": 0.04,
             "batch": 500, "d_fit": 40, "fit_rhos": (0.25, 0.5, 0.75), "n_fit": 40000, "n_test": 50000},
}
QF_TARGETS = ("psd", "traceless")
QF_TITLES = {"psd": r"$B \succeq 0$ (Wishart)", "traceless": r"$B$ traceless"}
QF_COLUMNS = ["setting", "model", "method", "d", "N", "rho", "runs", "seed", "risk", "risk_sd", "se", "theory",
              "eckart_young_signed", "positive_a", "risk_mc", "se_mc", "representation_error", "exact_given_W",
              "features"]

#: Largest NN risk above its Eckart-Young value allowed after SGD at a finite time and step (the smallest
#: eigenvalues that Eckart-Young keeps are fitted last).
QF_NN_TOLERANCE = 0.03

#: The exact RF risk at finite d lies below Theorem 1's limit: the N random directions w_i w_i^T capture about
#: a fraction 2 N / d^2 = 2 rho / d of any B besides its mean direction. Allowed: this many rho / d.
QF_RF_FINITE_D = 3.0


def _qf_targets(d, seed):
    """The entry's two targets at dimension d, |B|_F^2 = 1/2 (Var f* = 1): B positive semi-definite (G G^T,
    mfntk's :class:`~mfntk.datasets.Quadratic` default) and B traceless (a symmetric Gaussian matrix minus its
    trace part)."""
    psd = Quadratic(d, seed=seed_for(seed, 1, d)).B
    G = np.random.default_rng(seed_for(seed, 2, d)).standard_normal((d, d))
    G = G + G.T
    G -= np.trace(G) / d * np.eye(d)
    return {"psd": psd, "traceless": G / (np.sqrt(2.0) * np.linalg.norm(G))}


def _signed_eckart_young(B, positive, negative):
    """min |B - S|_F^2 / |B|_F^2 over S with at most ``positive`` positive and ``negative`` negative eigenvalues:
    the class of a quadratic network whose second layer keeps that many weights of each sign (Eckart-Young
    within each sign; :func:`mfntk.theory.qf_nn_risk` when the signs allow the N largest |lambda_i|)."""
    lam = np.linalg.eigvalsh(B)
    kept = np.sort(lam[lam > 0])[::-1][:positive] ** 2
    kept_negative = np.sort(lam[lam < 0])[:negative] ** 2
    return float(1.0 - (kept.sum() + kept_negative.sum()) / np.sum(lam ** 2))


def _qf_theory(model, B, N):
    """Theorem 1 (RF), 2 (NT, with the constant) or 3 (NN) at width N."""
    d = B.shape[0]
    if model == "RF":
        return theory.qf_rf_risk(B, N / d)
    if model == "NT":
        return theory.qf_nt_risk(B, N / d, intercept=True)
    return theory.qf_nn_risk(B, N)


@_task
def _qf_task(task):
    """One run: the network trained by SGD ("nn"), or the RF and NT least-squares fits ("fit")."""
    B, N, seed, target, cfg = task["B"], task["N"], task["seed"], task["target"], task["cfg"]
    d = B.shape[0]
    data = teacher_dataset(Quadratic(d, B=B), d, n_train=cfg["batch"], seed=seed)
    norm2 = theory.qf_norm2(B)
    X_test, y_test = data.sample(cfg["n_test"], rng=seed_for(seed, 3))
    if task["job"] == "fit":
        exact = {"RF": lambda W: theory.qf_rf_risk_finite(B, W, intercept=True),
                 "NT": lambda W: theory.qf_nt_risk_finite(B, W, intercept=True)}
        return _fits(data, N, seed, cfg, task["threads"], norm2, exact, X_test, y_test, target,
                     {m: _qf_theory(m, B, N) for m in exact})
    net = _train(data, N, "quadratic", seed, cfg, task["threads"])
    S, m = _quadratic_form(net)
    risk = (2.0 * np.sum((B - S) ** 2) + (np.trace(S) + m) ** 2) / norm2  # Isserlis, f* = <x, B x> - Tr B
    mc, se = _monte_carlo(net.predict(X_test), y_test, norm2)
    positive, negative = int(np.sum(net.a > 0)), int(np.sum(net.a < 0))
    return [_row(target, "NN", SGD, d, N, risk, seed=seed, theory_value=_qf_theory("NN", B, N),
                 eckart_young_signed=_signed_eckart_young(B, positive, negative), positive_a=positive, risk_mc=mc,
                 se_mc=se, representation_error=_representation_error(net, X_test[:1000]))]


def _qf_exact_rows(B, target, rhos, cfg, seed):
    """The exact RF and NT risks of ``draws`` first layers w_j ~ N(0, I_d / d) at every width."""
    d = B.shape[0]
    rows = []
    for N in _widths(rhos, d):
        Ws = [TwoLayer(d, N, activation="quadratic", c0=C0, seed=seed_for(seed, 5, d, N, s)).W
              for s in range(cfg["draws"])]
        rows.append(_over_draws([theory.qf_rf_risk_finite(B, W, intercept=True) for W in Ws], target, "RF", d, N,
                                _qf_theory("RF", B, N)))
        rows.append(_over_draws([theory.qf_nt_risk_finite(B, W, intercept=True) for W in Ws], target, "NT", d, N,
                                _qf_theory("NT", B, N)))
    return rows


def _qf_checks(table, targets, cfg):
    checks = []
    d = cfg["d"]
    for target in QF_TARGETS:
        rf = _select(table, setting=target, model="RF", method=EXACT)
        checks.append(Check(
            f"RF ({target} B, d = {d}): largest |exact risk - Theorem 1| over rho",
            max(abs(r["risk"] - r["theory"]) for r in rf), None,
            holds=all(r["theory"] - QF_RF_FINITE_D * r["rho"] / d - SIGMAS * r["se"] <= r["risk"]
                      <= r["theory"] + SIGMAS * r["se"] for r in rf),
            condition=f"Thm 1 - {QF_RF_FINITE_D:g} rho / d - {SIGMAS:g} SE <= mean over {cfg['draws']} draws of W "
                      f"<= Thm 1 + {SIGMAS:g} SE at every rho"))
        B = targets[d][target]
        nt = _select(table, setting=target, model="NT", method=EXACT)
        checks.append(Check(
            f"NT ({target} B, d = {d}): largest |exact risk - Theorem 2| over rho (Theorem 2: 0 for N >= d)",
            max(abs(r["risk"] - r["theory"]) for r in nt), None,
            holds=all(abs(r["risk"] - r["theory"]) <= abs(theory.qf_nt_risk_expected(B, r["N"]) - r["theory"])
                      + SIGMAS * r["se"] + 1e-12 for r in nt),
            condition=f"|mean - Thm 2| <= |E_W at this d (exact, qf_nt_risk_expected) - Thm 2| + {SIGMAS:g} SE "
                      "at every rho"))
        nn = _select(table, setting=target, method=SGD)
        if target == "psd":
            checks.append(Check(f"NN (psd B, d = {cfg['d_nn']}): largest SGD risk - Eckart-Young (Theorem 3) over "
                                "rho and seeds", max(r["risk"] - r["theory"] for r in nn), 0.0, QF_NN_TOLERANCE))
        checks.append(Check(
            f"NN ({target} B, d = {cfg['d_nn']}): largest SGD risk - Eckart-Young within the signs of the trained "
            "second layer", max(r["risk"] - r["eckart_young_signed"] for r in nn), 0.0, QF_NN_TOLERANCE))
        nn_means, nt_means, rf_means = (_stats(table, setting=target, model=model, method=method)
                                        for model, method in (("NN", SGD), ("NT", EXACT), ("RF", EXACT)))
        order = [mean < _nearest(nt_means, rho) <= _nearest(rf_means, rho) + 1e-12
                 for rho, mean, _, _ in nn_means.values() if rho < 1.0]
        checks.append(Check(f"Ordering ({target} B): widths N < d where NN (SGD, mean) < NT < RF (exact)",
                            float(sum(order)), None, holds=bool(order) and all(order),
                            condition=f"at all {len(order)} NN widths with N < d"))
    nn = _select(table, method=SGD)
    below = min(r["risk"] - r["eckart_young_signed"] for r in nn)
    checks.append(Check("NN: smallest SGD risk - Eckart-Young within its signs (the minimum of its class)", below,
                        None, holds=bool(below >= -1e-9), condition=">= 0"))
    return checks + _network_checks(nn) + [_fits_check(_select(table, method=FIT), cfg)]


def _qf_figure(result, targets, cfg):
    fig, axes = _new_figure(2)
    table = result.table
    rho_max = float(max(cfg["rhos"]))
    fine = np.linspace(0.01, rho_max, 300)
    for ax, target in zip(axes, QF_TARGETS):
        B, B_nn = targets[cfg["d"]][target], targets[cfg["d_nn"]][target]
        ax.plot(fine, [theory.qf_rf_risk(B, r) for r in fine], color="C0", label="RF, Theorem 1")
        ax.plot(fine, [theory.qf_nt_risk(B, r) for r in fine], color="C1", label="NT, Theorem 2")
        Ns = np.arange(1, int(rho_max * cfg["d_nn"]) + 1)
        ax.plot(Ns / cfg["d_nn"], [theory.qf_nn_risk(B_nn, N) for N in Ns], color="C2", drawstyle="steps-post",
                label=f"NN, Theorem 3 (d = {cfg['d_nn']})")
        _points(ax, _stats(table, setting=target, model="RF", method=EXACT), "RF", f"RF, exact for W (d = {cfg['d']})")
        _points(ax, _stats(table, setting=target, model="NT", method=EXACT), "NT", f"NT, exact for W (d = {cfg['d']})")
        _points(ax, _stats(table, setting=target, method=SGD), "NN", f"NN, SGD (d = {cfg['d_nn']})")
        for model in ("RF", "NT"):
            _points(ax, _stats(table, setting=target, model=model, method=FIT), model,
                    f"{model}, least squares (d = {cfg['d_fit']})", filled=False, offset=0.02)
        ax.set_title(QF_TITLES[target])
    return _finish(fig, axes, r"risk / $\|f_*\|^2$ (population)")


def _run_gmmm_qf(size, workers, threads, seed):
    cfg = QF_SIZES[size]
    targets = {d: _qf_targets(d, seed) for d in {cfg["d"], cfg["d_nn"], cfg["d_fit"]}}
    rhos = np.r_[cfg["rhos"], cfg["nn_rhos"]]
    with _blas_threads(threads):
        rows = [row for target in QF_TARGETS
                for row in _qf_exact_rows(targets[cfg["d"]][target], target, rhos, cfg, seed)]
    tasks = []
    for target in QF_TARGETS:
        tasks += [{"job": "nn", "target": target, "B": targets[cfg["d_nn"]][target], "N": N,
                   "seed": seed_for(seed, 6, N, s), "cfg": cfg}
                  for N in _widths(cfg["nn_rhos"], cfg["d_nn"]) for s in range(cfg["nn_seeds"])]
        tasks += [{"job": "fit", "target": target, "B": targets[cfg["d_fit"]][target], "N": N,
                   "seed": seed_for(seed, 7, N), "cfg": cfg} for N in _widths(cfg["fit_rhos"], cfg["d_fit"])]
    for result in run_tasks(_qf_task, tasks, workers=workers, threads=threads, progress=False, desc="gmmm-qf"):
        rows += result
    table = Table(rows, QF_COLUMNS)
    traceless = _select(table, setting="traceless", method=SGD)
    stuck = [r for r in traceless if r["eckart_young_signed"] > r["theory"] + 1e-9]
    notes = [
        "risk = E (f*(x) - f(x))^2 / ||f*||^2 over x ~ N(0, I_d) (||f*||^2 = 2 |B|_F^2 = 1); theory = Theorem 1 "
        "(RF), 2 (NT, with the constant) or 3 (NN, Eckart-Young) at that N / d. method exact_given_W: the best "
        "member of the class for a drawn first layer, mean over `runs` draws (risk_sd their spread, se the "
        "standard error); least_squares_fit: mf.RandomFeatures / mf.NeuralTangent, risk on fresh samples with "
        "its Monte-Carlo se, exact_given_W the exact risk of the same W; online_sgd: the trained network, risk "
        "exact from its quadratic form, risk_mc on fresh samples, eckart_young_signed the minimum over S with "
        "the signs of its second layer (positive_a weights > 0).",
        f"Sizes: RF / NT exact at d = {cfg['d']} ({cfg['draws']} draws of W per width), NN at d = {cfg['d_nn']} "
        f"({cfg['nn_seeds']} seeds per width), {_fit_note(cfg)}. The paper used d = 450 throughout.",
        _sgd_note(cfg, "quadratic"),
        "Theorem 2 is the corrected product form (1 - rho)_+^2 + rho (1 - rho)_+ Tr(B)^2 / (d |B|_F^2) "
        "(mfntk.theory.qf_nt_risk); the transcription in the seed, which adds the terms, is garbled.",
        "Theorem 3 is proved for B >= 0 only. On the traceless B each neuron keeps the sign of a_j that it takes "
        "early on (that of <w_j, B w_j>), and SGD reaches the best S with that many positive and negative "
        f"eigenvalues: {len(stuck)} of {len(traceless)} traceless runs "
        "ended with a sign split other than that of the N largest |lambda_i| and stay above Theorem 3's value"
        + (f" (by up to {max(r['risk'] - r['theory'] for r in stuck):.3f})." if stuck else "."),
    ]
    return Reproduction("gmmm-qf", size, table, _qf_checks(table, targets, cfg),
                        functools.partial(_qf_figure, targets=targets, cfg=cfg), notes)


register(Entry(
    name="gmmm-qf", paper=PAPER, what="Figure 1",
    claim="Quadratic target f*(x) = <x, B x> - Tr B, quadratic activation, N = rho d neurons: random features "
          "stay near the risk of a constant (Theorem 1), the neural tangent model reaches (1 - rho)_+^2 + "
          "rho (1 - rho)_+ Tr(B)^2 / (d |B|_F^2) (Theorem 2), and the network trained by SGD reaches the "
          "Eckart-Young risk sum_{i > N} lambda_i(B)^2 / |B|_F^2 (Theorem 3): NN < NT < RF for N < d, NT and NN "
          "both at 0 for N >= d.",
    seconds={"quick": 15, "full": 600}, run=_run_gmmm_qf))


def gmmm_qf(size="quick", out=None, workers=1, threads=None, seed=0):
    """Figure 1 of Ghorbani, Mei, Misiakiewicz and Montanari (2019): RF, NT and SGD-trained NN on a quadratic
    target with quadratic activation, risk against rho = N / d, with Theorems 1-3.

    Two targets, B positive semi-definite and B traceless. Points: the exact RF and NT risks of drawn first
    layers (:func:`mfntk.theory.qf_rf_risk_finite`, :func:`mfntk.theory.qf_nt_risk_finite`), least-squares fits
    (:class:`mfntk.RandomFeatures`, :class:`mfntk.NeuralTangent`) and the mean-field network trained by
    one-pass SGD (:func:`mfntk.simulate`); lines: :func:`mfntk.theory.qf_rf_risk`,
    :func:`mfntk.theory.qf_nt_risk`, :func:`mfntk.theory.qf_nn_risk`.

    Parameters
    ----------
    size : {"quick", "full"}
        "quick": d = 20 everywhere, two SGD seeds per width (about 15 s on 2 cores); "full": exact risks at the
        paper's d = 450, SGD at d = 100, fits at d = 40 (about 10 min on 2 cores).
    out : str or path, optional
        Folder for gmmm-qf.csv, .json, .png and .md.
    workers : int
        Processes for the independent runs.
    threads : int or None
        OpenMP threads in all (None: all this process may use).
    seed : int
        Seed of the targets, the first layers, the initialisations and the samples.

    Returns
    -------
    Reproduction

    References
    ----------
    .. [1] B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari, "Limitations of lazy training of two-layers
       neural networks", NeurIPS 2019, Theorems 1-3 and Figure 1.
    """
    return reproduce("gmmm-qf", size=size, out=out, workers=workers, threads=threads, seed=seed)


# ---- gmmm-mixture: Figure 2, mixture of two Gaussians ------------------------------------------------------
MIX_SIZES = {
    "quick": {"d": 40, "rhos": np.arange(1, 31) / 20.0, "draws": 10,
              "d_nn": 40, "nn_rhos": (0.1, 0.25, 0.5), "nn_seeds": 2, "t_max": 100.0, "dt": 0.1, "batch": 500,
              "d_fit": 40, "fit_rhos": (0.25,), "n_fit": 10000, "n_test": 20000, "n_bayes": 200000},
    "full": {"d": 450, "rhos": np.arange(1, 16) / 10.0, "draws": 3,
             "d_nn": 100, "nn_rhos": (0.05, 0.1, 0.2, 0.3, 0.5, 0.75), "nn_seeds": 2, "t_max": 100.0, "dt": 0.05,
             "batch": 1000, "d_fit": 60, "fit_rhos": (0.25, 0.5), "n_fit": 40000, "n_test": 50000,
             "n_bayes": 1000000},
}
MIX_COLUMNS = ["setting", "model", "method", "d", "N", "rho", "runs", "seed", "risk", "risk_sd", "se", "theory",
               "class_minimum", "risk_mc", "se_mc", "representation_error", "exact_given_W", "features"]

#: The spiked Delta: this fraction of its eigenvalues equal to one value, the others 0, and |Delta|_F^2.
MIX_SPIKES, MIX_FROBENIUS2 = 0.2, 1.0

#: Largest |SGD error - the minimum over the class| allowed (SGD at a finite step on noisy labels).
MIX_NN_TOLERANCE = 0.02

#: The rho up to which Figure 2's ordering NN < NT is checked on the spiked Delta.
MIX_ORDER_RHO = 0.5


def _spiked_delta(d):
    """Diagonal of the spiked Delta at dimension d: k = MIX_SPIKES d entries sqrt(|Delta|_F^2 / k), the rest 0."""
    k = max(1, int(round(MIX_SPIKES * d)))
    return np.r_[np.full(k, np.sqrt(MIX_FROBENIUS2 / k)), np.zeros(d - k)]


def _flat_delta(d):
    """Diagonal of the flat Delta with the same |Delta|_F: +-sqrt(|Delta|_F^2 / d) alternating (as
    :func:`mfntk.datasets.gaussian_mixture` with a float delta)."""
    return np.sqrt(MIX_FROBENIUS2 / d) * np.where(np.arange(d) % 2 == 0, 1.0, -1.0)


def _mixture_network_error(Delta, S, m):
    """E (y - m - <x, S x>)^2 on the mixture (Isserlis under each component, E y = 0, E y^2 = 1):
    (1 - <S, Delta>)^2 + 2 <S, S + Delta S Delta> + (m + Tr S)^2."""
    t = float(np.sum(S * Delta))
    return (1.0 - t) ** 2 + 2.0 * float(np.sum(S * (S + Delta @ S @ Delta))) + (m + float(np.trace(S))) ** 2


def _bayes_error(data, n, seed):
    """Monte-Carlo estimate (and standard error) of the smallest prediction error E (y - E[y | x])^2, with
    E[y | x] = tanh(L / 2), L the log-likelihood ratio of the two Gaussians (diagonal Delta)."""
    X, _ = data.sample(n, rng=seed_for(seed, 8))
    delta = data.info["Delta"]
    L = -0.5 * (X ** 2) @ (1.0 / (1.0 + delta) - 1.0 / (1.0 - delta)) - 0.5 * np.sum(np.log1p(delta) - np.log1p(-delta))
    err = 1.0 - np.tanh(0.5 * L) ** 2
    return float(err.mean()), float(err.std(ddof=1) / np.sqrt(n))


def _mix_theory(model, Delta, N, exact=False):
    rho = N / Delta.shape[0]
    if model == "RF":
        return theory.mixture_rf_risk(Delta, rho)
    if model == "NT":
        return theory.mixture_nt_risk(Delta, rho)
    return theory.mixture_nn_risk(Delta, N, exact=exact)


@_task
def _mix_task(task):
    """One run on the spiked mixture: the network trained by SGD ("nn"), or the RF and NT fits ("fit")."""
    d, N, seed, cfg = task["d"], task["N"], task["seed"], task["cfg"]
    data = gaussian_mixture(d, n_train=cfg["batch"], delta=_spiked_delta(d), seed=seed)
    Delta = np.diag(data.info["Delta"])
    X_test, y_test = data.sample(cfg["n_test"], rng=seed_for(seed, 3))
    if task["job"] == "fit":
        exact = {"RF": lambda W: theory.mixture_rf_risk_finite(Delta, W),
                 "NT": lambda W: theory.mixture_nt_risk_finite(Delta, W)}
        return _fits(data, N, seed, cfg, task["threads"], 1.0, exact, X_test, y_test, "spiked",
                     {m: _mix_theory(m, Delta, N) for m in exact})
    net = _train(data, N, "quadratic", seed, cfg, task["threads"])
    S, m = _quadratic_form(net)
    mc, se = _monte_carlo(net.predict(X_test), y_test, 1.0)
    return [_row("spiked", "NN", SGD, d, N, _mixture_network_error(Delta, S, m), seed=seed,
                 theory_value=_mix_theory("NN", Delta, N), class_minimum=_mix_theory("NN", Delta, N, exact=True),
                 risk_mc=mc, se_mc=se, representation_error=_representation_error(net, X_test[:1000]))]


def _mix_exact_rows(d, rhos, cfg, seed):
    Delta = np.diag(_spiked_delta(d))
    rows = []
    for N in _widths(rhos, d):
        Ws = [TwoLayer(d, N, activation="quadratic", c0=C0, seed=seed_for(seed, 5, d, N, s)).W
              for s in range(cfg["draws"])]
        rows.append(_over_draws([theory.mixture_rf_risk_finite(Delta, W) for W in Ws], "spiked", "RF", d, N,
                                _mix_theory("RF", Delta, N)))
        rows.append(_over_draws([theory.mixture_nt_risk_finite(Delta, W) for W in Ws], "spiked", "NT", d, N,
                                _mix_theory("NT", Delta, N)))
    return rows


def _leading_order_bracket(g, g_finite, delta_op):
    """The prediction errors between which the exact value lies when the leading order gives g (Figure 2's
    formula) or g_finite (the same at finite d): Delta S Delta divides g by at most 1 + |Delta|_op^2 (Delta >= 0,
    module notes of :mod:`mfntk.theory`)."""
    return 1.0 / (1.0 + max(g, g_finite)), 1.0 / (1.0 + min(g, g_finite) / (1.0 + delta_op ** 2))


def _mix_checks(table, cfg, bayes):
    d = cfg["d"]
    delta = _spiked_delta(d)
    checks = []
    for model in ("RF", "NT"):
        rows, inside = _select(table, model=model, method=EXACT), []
        for r in rows:
            g = 1.0 / r["theory"] - 1.0
            if model == "RF":  # finite d: the random directions capture about 2 rho / d more of Delta
                g_finite = g + QF_RF_FINITE_D * r["rho"] / d * MIX_FROBENIUS2 / 2.0
            else:
                g_finite = (1.0 - theory.qf_nt_risk_expected(np.diag(delta), r["N"])) * MIX_FROBENIUS2 / 2.0
            low, high = _leading_order_bracket(g, g_finite, float(delta.max()))
            inside.append(low - SIGMAS * r["se"] <= r["risk"] <= high + SIGMAS * r["se"])
        checks.append(Check(
            f"{model} (spiked Delta, d = {d}): largest |exact error - Figure 2's formula| over rho",
            max(abs(r["risk"] - r["theory"]) for r in rows), None, holds=bool(all(inside)),
            condition="within the formula's bracket at every rho: leading order (at d = infinity and at this d"
                      + (f", {QF_RF_FINITE_D:g} rho / d" if model == "RF" else ", qf_nt_risk_expected")
                      + f") to Delta S Delta at its largest (g / (1 + |Delta|_op^2)), +- {SIGMAS:g} SE"))
    nn = _select(table, method=SGD)
    checks.append(Check(f"NN (d = {cfg['d_nn']}): largest |SGD error - minimum over the class (exact, Delta S Delta "
                        "kept)|", max(abs(r["risk"] - r["class_minimum"]) for r in nn), 0.0, MIX_NN_TOLERANCE))
    below = min(r["risk"] - r["class_minimum"] for r in nn)
    checks.append(Check("NN: smallest SGD error - minimum over the class", below, None, holds=bool(below >= -1e-9),
                        condition=">= 0"))
    nn_means, nt_means, rf_means = (_stats(table, model=model, method=method)
                                    for model, method in (("NN", SGD), ("NT", EXACT), ("RF", EXACT)))
    order = [mean < _nearest(nt_means, rho) <= _nearest(rf_means, rho) + 1e-12
             for rho, mean, _, _ in nn_means.values() if rho <= MIX_ORDER_RHO]
    checks.append(Check(f"Ordering (spiked Delta): widths with rho <= {MIX_ORDER_RHO:g} where NN (SGD, mean) < NT < RF "
                        "(exact)", float(sum(order)), None, holds=bool(order) and all(order),
                        condition=f"at all {len(order)} NN widths with rho <= {MIX_ORDER_RHO:g}"))
    flat, N = np.diag(_flat_delta(d)), _width(MIX_ORDER_RHO, d)
    reversal = theory.mixture_nn_risk(flat, N) - theory.mixture_nt_risk(flat, N / d)
    checks.append(Check(f"Flat Delta, same |Delta|_F, rho = {MIX_ORDER_RHO:g} (theory): NN error - NT error", reversal,
                        None, holds=bool(reversal > 0), condition="> 0: the ordering reverses"))
    lowest = min(r["risk"] + SIGMAS * r["se"] for r in table.rows)
    checks.append(Check("Smallest error (+ 4 SE) - Bayes error (Monte Carlo)", lowest - bayes[0], None,
                        holds=bool(lowest >= bayes[0] - SIGMAS * bayes[1]), condition=">= 0 within 4 SE"))
    return checks + _network_checks(nn) + [_fits_check(_select(table, method=FIT), cfg)]


def _mix_figure(result, cfg, bayes):
    fig, axes = _new_figure(2)
    table = result.table
    rho_max = float(max(cfg["rhos"]))
    fine = np.linspace(0.01, rho_max, 300)
    for ax, setting in zip(axes, ("spiked", "flat")):
        Delta = np.diag(_spiked_delta(cfg["d"]) if setting == "spiked" else _flat_delta(cfg["d"]))
        ax.plot(fine, [theory.mixture_rf_risk(Delta, r) for r in fine], color="C0", label="RF, formula")
        ax.plot(fine, [theory.mixture_nt_risk(Delta, r) for r in fine], color="C1", label="NT, formula")
        d_line = cfg["d_nn"] if setting == "spiked" else cfg["d"]
        Delta_nn = np.diag(_spiked_delta(d_line) if setting == "spiked" else _flat_delta(d_line))
        Ns = np.arange(1, int(rho_max * d_line) + 1)
        ax.plot(Ns / d_line, [theory.mixture_nn_risk(Delta_nn, N) for N in Ns], color="C2", drawstyle="steps-post",
                label="NN, formula")
        if setting == "spiked":
            ax.plot(Ns / d_line, [theory.mixture_nn_risk(Delta_nn, N, exact=True) for N in Ns], color="C2", ls="--",
                    drawstyle="steps-post", label=r"NN, exact minimum ($\Delta S \Delta$ kept)")
            ax.axhline(bayes[0], color="0.2", ls=":", lw=1.0, label="Bayes error")
            _points(ax, _stats(table, model="RF", method=EXACT), "RF", f"RF, exact for W (d = {cfg['d']})")
            _points(ax, _stats(table, model="NT", method=EXACT), "NT", f"NT, exact for W (d = {cfg['d']})")
            _points(ax, _stats(table, method=SGD), "NN", f"NN, SGD (d = {cfg['d_nn']})")
            for model in ("RF", "NT"):
                _points(ax, _stats(table, model=model, method=FIT), model,
                        f"{model}, least squares (d = {cfg['d_fit']})", filled=False, offset=0.02)
            ax.set_title(r"spiked $\Delta$")
        else:
            ax.set_title(r"flat $\Delta$, same $\|\Delta\|_F$ (formulas)")
    return _finish(fig, axes, r"prediction error $E(y - f(x))^2$ ($E y^2 = 1$)", ylim=(0.5, 1.02))


def _run_gmmm_mixture(size, workers, threads, seed):
    cfg = MIX_SIZES[size]
    with _blas_threads(threads):
        rows = _mix_exact_rows(cfg["d"], np.r_[cfg["rhos"], cfg["nn_rhos"]], cfg, seed)
    tasks = [{"job": "nn", "d": cfg["d_nn"], "N": N, "seed": seed_for(seed, 6, N, s), "cfg": cfg}
             for N in _widths(cfg["nn_rhos"], cfg["d_nn"]) for s in range(cfg["nn_seeds"])]
    tasks += [{"job": "fit", "d": cfg["d_fit"], "N": N, "seed": seed_for(seed, 7, N), "cfg": cfg}
              for N in _widths(cfg["fit_rhos"], cfg["d_fit"])]
    for result in run_tasks(_mix_task, tasks, workers=workers, threads=threads, progress=False, desc="gmmm-mixture"):
        rows += result
    table = Table(rows, MIX_COLUMNS)
    bayes = _bayes_error(gaussian_mixture(cfg["d"], n_train=1, delta=_spiked_delta(cfg["d"])), cfg["n_bayes"], seed)
    k = int(round(MIX_SPIKES * cfg["d"]))
    notes = [
        "risk = the prediction error E (y - f(x))^2 (labels +-1, E y^2 = 1); theory = Figure 2's formula "
        "(mfntk.theory.mixture_rf_risk, mixture_nt_risk, mixture_nn_risk: leading order in |Delta|_op); "
        "class_minimum = the exact minimum over the NN class (mixture_nn_risk(exact=True)). Methods as in "
        "gmmm-qf: exact_given_W (mixture_rf_risk_finite, mixture_nt_risk_finite: exact, Delta S Delta included), "
        "least_squares_fit, online_sgd (risk exact from the network's quadratic form, risk_mc on fresh samples).",
        f"Delta spiked and diagonal (mf.datasets.gaussian_mixture): {MIX_SPIKES:g} d eigenvalues "
        f"sqrt({MIX_FROBENIUS2:g} / ({MIX_SPIKES:g} d)) (at d = {cfg['d']}: {k} of {np.sqrt(MIX_FROBENIUS2 / k):.3f}), "
        f"the others 0, |Delta|_F^2 = {MIX_FROBENIUS2:g}. The paper's regime is |Delta|_op -> 0; here "
        f"|Delta|_op^2 = {MIX_FROBENIUS2 / k:.3f}, so the exact errors lie above the leading-order lines by up to "
        "that relative change of g (the checks allow exactly this bracket).",
        "Figure 2's ordering NN < NT needs a spiked Delta: NN captures the N largest lambda_i(Delta)^2, NT a "
        "fraction rho (2 - rho) of |Delta|_F^2 whatever the spectrum. A flat diagonal Delta (+-, same |Delta|_F) "
        "reverses it (right panel, checked with the formulas).",
        f"Sizes: RF / NT exact at d = {cfg['d']} ({cfg['draws']} draws of W per width), NN at d = {cfg['d_nn']} "
        f"({cfg['nn_seeds']} seeds per width), {_fit_note(cfg)}; Bayes error from {cfg['n_bayes']} samples: "
        f"{bayes[0]:.4f} +- {bayes[1]:.4f}. The paper used d = 450.",
        _sgd_note(cfg, "quadratic") + " The paper proves no convergence of SGD in this setting; it is measured "
        "here against the exact minimum over the class.",
        "The seed's RF factor rho / (1 + 2 rho) is garbled; the formula used is rho / (1 + rho) Tr(Delta)^2 / (2 d) "
        "(mfntk.theory.mixture_rf_risk, derived there and checked by the exact finite-W risks).",
    ]
    return Reproduction("gmmm-mixture", size, table, _mix_checks(table, cfg, bayes),
                        functools.partial(_mix_figure, cfg=cfg, bayes=bayes), notes)


register(Entry(
    name="gmmm-mixture", paper=PAPER, what="Figure 2",
    claim="Mixture of N(0, I + Delta) and N(0, I - Delta) with labels +-1, quadratic activation: the prediction "
          "error of RF is 1 / (1 + rho / (1 + rho) Tr(Delta)^2 / (2 d)), of NT 1 / (1 + kappa(rho, Delta) "
          "|Delta|_F^2 / 2), of NN 1 / (1 + sum_{i <= N} lambda_i(Delta)^2 / 2); NN < NT < RF for N < d (for a "
          "spiked Delta), and none reaches the Bayes error.",
    seconds={"quick": 15, "full": 600}, run=_run_gmmm_mixture))


def gmmm_mixture(size="quick", out=None, workers=1, threads=None, seed=0):
    """Figure 2 of Ghorbani, Mei, Misiakiewicz and Montanari (2019): RF, NT and SGD-trained NN on a mixture of
    two centred Gaussians with covariances I + Delta and I - Delta, prediction error against rho = N / d.

    Delta spiked (a fifth of its eigenvalues non-zero). Points: the exact RF and NT errors of drawn first layers
    (:func:`mfntk.theory.mixture_rf_risk_finite`, :func:`mfntk.theory.mixture_nt_risk_finite`), least-squares
    fits (:class:`mfntk.RandomFeatures`, :class:`mfntk.NeuralTangent`) and the mean-field network trained by
    one-pass SGD (:func:`mfntk.simulate`) on :func:`mfntk.datasets.gaussian_mixture`; lines: the paper's
    formulas (:func:`mfntk.theory.mixture_rf_risk`, :func:`mfntk.theory.mixture_nt_risk`,
    :func:`mfntk.theory.mixture_nn_risk`), the exact minimum over the NN class and the Bayes error; a second
    panel shows that a flat Delta reverses the ordering of NN and NT.

    Parameters
    ----------
    size : {"quick", "full"}
        "quick": d = 40 everywhere (about 15 s on 2 cores); "full": exact errors at the paper's d = 450, SGD at
        d = 100, fits at d = 60 (about 10 min on 2 cores).
    out : str or path, optional
        Folder for gmmm-mixture.csv, .json, .png and .md.
    workers : int
        Processes for the independent runs.
    threads : int or None
        OpenMP threads in all (None: all this process may use).
    seed : int
        Seed of the first layers, the initialisations and the samples.

    Returns
    -------
    Reproduction

    References
    ----------
    .. [1] B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari, "Limitations of lazy training of two-layers
       neural networks", NeurIPS 2019, Section 3 and Figure 2.
    """
    return reproduce("gmmm-mixture", size=size, out=out, workers=workers, threads=threads, seed=seed)


# ---- gmmm-relu: Figure 3, quadratic target, ReLU activation ------------------------------------------------
RELU_SIZES = {
    "quick": {"d": 20, "rhos": (0.25, 0.5, 0.75, 1.25), "seeds": 2, "t_max": 60.0, "dt": 0.05, "batch": 200,
              "n_fit": 10000, "n_test": 20000},
    "full": {"d": 40, "rhos": (0.1, 0.25, 0.5, 0.75, 1.0, 1.5), "seeds": 3, "t_max": 200.0, "dt": 0.05, "batch": 500,
             "n_fit": 40000, "n_test": 50000},
}
RELU_COLUMNS = ["setting", "model", "method", "d", "N", "rho", "runs", "seed", "risk", "risk_sd", "se", "theory",
                "features"]


@_task
def _relu_task(task):
    """One seed at one width: the network trained by SGD, and the RF and NT least-squares fits (ReLU)."""
    B, N, seed, cfg = task["B"], task["N"], task["seed"], task["cfg"]
    d = B.shape[0]
    data = teacher_dataset(Quadratic(d, B=B), d, n_train=cfg["batch"], seed=seed)
    norm2 = theory.qf_norm2(B)
    X_test, y_test = data.sample(cfg["n_test"], rng=seed_for(seed, 3))
    net = _train(data, N, "relu", seed, cfg, task["threads"])
    risk, se = _monte_carlo(net.predict(X_test), y_test, norm2)
    rows = [_row("psd", "NN", SGD, d, N, risk, seed=seed, se=se)]
    X, y = data.sample(cfg["n_fit"], rng=seed_for(seed, 4))
    for model, cls in (("RF", RandomFeatures), ("NT", NeuralTangent)):
        fit = cls(width=N, activation="relu", fit_intercept=True, seed=seed, threads=task["threads"]).fit(X, y)
        risk, se = _monte_carlo(fit.predict(X_test), y_test, norm2)
        rows.append(_row("psd", model, FIT, d, N, risk, seed=seed, se=se, features=fit.n_features_))
    return rows


def _relu_checks(table, cfg):
    checks = []
    nn_below, rf_above = [], []
    for N in sorted({r["N"] for r in table.rows}):
        risk = {model: [r["risk"] for r in _select(table, model=model, N=N)] for model in ("NN", "NT", "RF")}
        if N < cfg["d"]:
            nn_below.append(max(risk["NN"]) < min(risk["NT"]))
        rf_above.append(np.mean(risk["RF"]) >= np.mean(risk["NT"]))
    checks.append(Check(f"NN (SGD) below NT at the widths N < d = {cfg['d']}", float(sum(nn_below)), None,
                        holds=bool(nn_below) and all(nn_below),
                        condition=f"every seed's NN risk < every seed's NT risk, at all {len(nn_below)} widths"))
    checks.append(Check("RF above NT at every width", float(sum(rf_above)), None, holds=bool(all(rf_above)),
                        condition=f"mean RF risk >= mean NT risk over the seeds, at all {len(rf_above)} widths"))
    for model in ("NN", "NT"):
        means = [mean for _, mean, _, _ in _stats(table, model=model).values()]
        checks.append(Check(f"{model} risk decreases with N", float(np.max(np.diff(means))), None,
                            holds=bool(np.all(np.diff(means) < 0)), condition="mean over the seeds, at every step"))
    return checks


def _relu_figure(result, cfg):
    fig, axes = _new_figure(1, width=5.2)
    ax = axes[0]
    for model, method, label in (("RF", FIT, "RF, least squares"), ("NT", FIT, "NT, least squares"),
                                 ("NN", SGD, "NN, SGD (mean field)")):
        _points(ax, _stats(result.table, model=model, method=method), model, label, line=True)
    ax.set_title(rf"$B \succeq 0$, ReLU activation, d = {cfg['d']}")
    fig = _finish(fig, axes, r"risk / $\|f_*\|^2$ (test)")
    ax.set_xlim(0.0, max(cfg["rhos"]) * 1.05)
    return fig


def _run_gmmm_relu(size, workers, threads, seed):
    cfg = RELU_SIZES[size]
    B = _qf_targets(cfg["d"], seed)["psd"]
    tasks = [{"B": B, "N": N, "seed": seed_for(seed, 9, N, s), "cfg": cfg}
             for N in _widths(cfg["rhos"], cfg["d"]) for s in range(cfg["seeds"])]
    rows = [row for result in run_tasks(_relu_task, tasks, workers=workers, threads=threads, progress=False,
                                        desc="gmmm-relu") for row in result]
    table = Table(rows, RELU_COLUMNS)
    notes = [
        "risk = E (f*(x) - f(x))^2 / ||f*||^2 on fresh test samples (||f*||^2 = 2 |B|_F^2 = 1), se its Monte-Carlo "
        f"standard error; one row per seed and model. B is gmmm-qf's positive semi-definite (Wishart) target at "
        f"d = {cfg['d']}; error bars: standard deviation over {cfg['seeds']} seeds (first layer, initialisation, "
        "samples).",
        f"RF / NT: mf.RandomFeatures / mf.NeuralTangent with ReLU and a free constant, w_j ~ N(0, I_d / d), fitted "
        f"on n = {cfg['n_fit']} samples (NT has N d features; the paper's risks are at n -> infinity, here the "
        f"least-squares excess is about p / n of the risk), test risk on {cfg['n_test']} samples.",
        _sgd_note(cfg, "relu"),
        f"The paper used d = 450 and deeper training; here d = {cfg['d']}. No closed form exists for ReLU: the "
        "checks are the orderings the paper's figure shows.",
    ]
    return Reproduction("gmmm-relu", size, table, _relu_checks(table, cfg), functools.partial(_relu_figure, cfg=cfg),
                        notes)


register(Entry(
    name="gmmm-relu", paper=PAPER, what="Figure 3",
    claim="Quadratic target, ReLU activation (empirical, no closed form): the network trained by SGD has a smaller "
          "risk than the neural tangent model for N < d, and random features are worse than both.",
    seconds={"quick": 12, "full": 400}, run=_run_gmmm_relu))


def gmmm_relu(size="quick", out=None, workers=1, threads=None, seed=0):
    """Figure 3 of Ghorbani, Mei, Misiakiewicz and Montanari (2019): RF, NT and SGD-trained NN with ReLU
    activation on a quadratic target, test risk against rho = N / d.

    The target is gmmm-qf's positive semi-definite B. RF and NT are least-squares fits
    (:class:`mfntk.RandomFeatures`, :class:`mfntk.NeuralTangent`, ReLU, free constant); NN is the mean-field
    ReLU network trained by one-pass SGD (:func:`mfntk.simulate`). There is no closed form: the checks are the
    orderings of the paper's figure (NN < NT for N < d, RF >= NT) and the decrease of the risks with N.

    Parameters
    ----------
    size : {"quick", "full"}
        "quick": d = 20, rho in {0.25, 0.5, 0.75, 1.25}, two seeds (about 5 s on 2 cores); "full": d = 40, rho
        from 0.1 to 1.5, three seeds (about 7 min on 2 cores).
    out : str or path, optional
        Folder for gmmm-relu.csv, .json, .png and .md.
    workers : int
        Processes for the independent runs.
    threads : int or None
        OpenMP threads in all (None: all this process may use).
    seed : int
        Seed of the target, the first layers, the initialisations and the samples.

    Returns
    -------
    Reproduction

    References
    ----------
    .. [1] B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari, "Limitations of lazy training of two-layers
       neural networks", NeurIPS 2019, Figure 3.
    """
    return reproduce("gmmm-relu", size=size, out=out, workers=workers, threads=threads, seed=seed)
