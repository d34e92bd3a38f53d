"""Lazy vs feature tangent kernels (Geiger, Spigler, Jacot, Wyart 2020, as tabulated in the survey
seed): kernel regression with the tangent kernel of a network at initialisation and after
mean-field training, and the trained network itself.

Every predictor of a run sees the same training set and starts from the same network:

* ``lazy``: ridgeless kernel regression with the empirical tangent kernel K_mu0 of the network
  at initialisation -- the limit of lazy training of the centred model (SPEC 4);
* ``feature``: the same regression with the tangent kernel of the network after mean-field
  training (alpha = 1) of the centred model F = f(theta) - f(theta_0) (Geiger et al.'s model);
* ``network``: the trained centred model itself;
* ``NTK limit``: the regression with the analytic NTK of the initialisation law, which the lazy
  kernel reaches as the width N grows (the theory line).

Multi-class targets are one-hot rows, regressed with one kernel shared by the outputs and
classified by argmax ([ADH+19]_), with 30 training samples per class. The tasks are scikit-learn's
digits (or MNIST from user-supplied IDX files) and a synthetic target phi(U^T x) of one relevant
direction in d = 32 dimensions, where feature learning matters for a two-layer network.

References
----------
.. [GSJW20] M. Geiger, S. Spigler, A. Jacot, M. Wyart, "Disentangling feature and lazy training
   in deep neural networks", J. Stat. Mech. 2020(11), 113301, arXiv:1906.08034.
.. [ADH+19] S. Arora, S. S. Du, W. Hu, Z. Li, R. Salakhutdinov, R. Wang, "On exact computation
   with an infinitely wide neural net", NeurIPS 2019.
.. [GMMM19] B. Ghorbani, S. Mei, T. Misiakiewicz, A. Montanari, "Limitations of lazy training of
   two-layers neural networks", NeurIPS 2019.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .. import datasets, kernels
from .._demo import _blas_single_thread
from .._network import TwoLayer
from .._simulate import Simulation
from .._validation import check_path
from ..regression import KernelRegressor
from ..studies._base import Table, run_tasks, seed_for
from ._base import Check, Entry, Reproduction, register, reproduce

__all__ = ["lazy_vs_feature"]

# the synthetic task: y = phi(U^T x), U of R columns, Gaussian inputs in dimension D, N_SYNTHETIC points
_D, _R, _N_SYNTHETIC = 32, 1, 300
_PER_CLASS, _CLASSES = 30, 10  # training samples per class, and classes, of the classification tasks
# training: _STEPS Euler steps (full-batch gradient descent) up to mean-field time _T_MAX for inputs of
# dimension d <= _D_REF; above, the time and the step are both scaled by _D_REF / d (_time_scale)
_T_MAX, _STEPS, _D_REF = 40.0, 200, 64
_FEATURE_RATIO = 0.5     # the feature kernel (and the network) must at least halve the lazy kernel's error
_LAZY_LIMIT_RTOL = 0.1   # lazy kernel at the largest width vs the NTK limit, relative (synthetic)
_LAZY_LIMIT_ATOL = 0.02  # the same on the classification task, absolute (fraction misclassified)
_FEATURE_REGIME = 0.5    # |K_T - K_0|_F / |K_0|_F that marks the feature regime

_SIZES = {
    "quick": {"widths": (128, 512, 2048), "seeds": 3, "n_test": 1000, "times": 5},
    "full": {"widths": (64, 128, 256, 512, 1024, 2048, 4096), "seeds": 10, "n_test": 10000, "times": 7},
}

_METHODS = ("lazy", "feature", "network", "NTK limit")
_MEASURES = {"synthetic": "mean (y - f)^2 / var(y) on the test set",
             "classification": "fraction of the test set misclassified (argmax)"}

#: The survey's table of [GSJW20] for the MLPs (3 hidden layers of width h) on MNIST, 30 training
#: samples per class: test accuracies of the kernels and of the trained network ("Regular Inf.").
PAPER_MNIST_MLP = {"width": (1024, 2048, 4096), "lazy": (0.7705, 0.7851, 0.7885),
                   "feature": (0.9609, 0.9618, 0.9509), "network": (0.9859, 0.9863, 0.9861)}

#: The four IDX files of MNIST (and of Fashion-MNIST), each plain or with ``.gz``.
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


def centred_abs(Z):
    """phi(z) = (1/sqrt(r)) sum_i (|z_i| - sqrt(2/pi)) for Z of shape (n, r): even, mean 0 and
    variance 1 - 2/pi under N(0, I_r), with no linear part. A rotation-invariant kernel in d >> r
    dimensions learns its degree-2 part only from about d^2 samples ([GMMM19]_); a network that
    finds U needs far fewer."""
    return (np.abs(Z) - math.sqrt(2.0 / math.pi)).sum(axis=1) / math.sqrt(Z.shape[1])


def _mnist_paths(folder):
    """The paths of :data:`MNIST_FILES` in ``folder`` (plain or gzip-compressed)."""
    check_path(folder, "mnist")
    where = os.fsdecode(folder)
    if not os.path.isdir(where):
        raise ValueError(f"mnist: {where!r} is not a folder (expected one holding {', '.join(MNIST_FILES)})")
    paths = []
    for stem in MNIST_FILES:
        found = [path for path in (os.path.join(where, stem), os.path.join(where, stem + ".gz"))
                 if os.path.isfile(path)]
        if not found:
            raise ValueError(f"mnist: {where!r} holds no {stem} (nor {stem}.gz)")
        paths.append(found[0])
    return paths


def _per_class(labels, rng, name):
    """Indices of _PER_CLASS samples of every class, drawn without replacement."""
    idx = []
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        if members.size < _PER_CLASS:
            raise ValueError(f"{name}: class {c} has {members.size} training samples; {_PER_CLASS} are needed")
        idx.append(rng.choice(members, _PER_CLASS, replace=False))
    return np.concatenate(idx)


def _data(task):
    """(X, Y, X_test, Y_test) of one run."""
    seed = task["data_seed"]
    if task["data"] == "synthetic":
        teacher = datasets.LowDim(_D, _R, phi=centred_abs, seed=seed_for(seed, 1))
        ds = datasets.teacher_dataset(teacher, _D, _N_SYNTHETIC, task["n_test"], seed=seed_for(seed, 2))
        return ds.X, ds.y, ds.X_test, ds.y_test
    if task["data"] == "digits":
        ds = datasets.digits(seed=seed_for(seed, 2))
    else:
        images, labels, test_images, test_labels = task["mnist"]
        ds = datasets.mnist(images, labels, test_images, test_labels, n_test=task["n_test"])
    keep = _per_class(ds.info["labels"], np.random.default_rng(seed_for(seed, 3)), task["data"])
    return ds.X[keep], ds.y[keep], ds.X_test, ds.y_test


def _time_scale(d):
    """Factor of the training time and of the step for inputs of dimension d: the first-layer part of the
    tangent kernel, and with it the speed of the dynamics, grows as |x|^2 = d (Euler diverges at d = 784
    with the step of d = 64)."""
    return min(1.0, _D_REF / d)


def _test_error(data, Y, P):
    """The task's error: relative squared error (synthetic) or fraction misclassified."""
    if data == "synthetic":
        return float(np.mean((Y - P) ** 2) / np.var(Y))
    return float(np.mean(np.argmax(P, axis=1) != np.argmax(Y, axis=1)))


def _kernel_errors(data, K, K_test, Y, Y_test):
    """(train, test) errors of ridgeless kernel regression with the precomputed K(X, X) and K(X_test, X)."""
    reg = KernelRegressor(kernel="precomputed").fit(K, Y)
    return _test_error(data, Y, reg.predict(K)), _test_error(data, Y_test, reg.predict(K_test))


def _run_one(task):
    """The rows of one (data, width, seed): the lazy kernel, the NTK limit (with ``analytic``), and
    the feature kernel and the network after each number of steps of ``steps``."""
    with _blas_single_thread():  # the solves are 300 x 300: BLAS threads would only contend with OpenMP
        return _rows_of_run(task)


def _rows_of_run(task):
    X, Y, X_test, Y_test = _data(task)
    data, threads = task["data"], task["threads"]
    measure = _MEASURES["synthetic" if data == "synthetic" else "classification"]
    base = {"data": data, "width": task["width"], "seed": task["seed"], "error_measure": measure}
    net = TwoLayer(X.shape[1], task["width"], activation="relu", scaling="mf", outputs=Y.shape[1],
                   seed=task["net_seed"])

    def row(method, step, t, errors, change):
        return {**base, "method": method, "step": step, "t": t, "train_error": errors[0], "test_error": errors[1],
                "kernel_change": change}

    K0 = kernels.empirical(net, X, threads=threads)
    rows = [row("lazy", 0, 0.0, _kernel_errors(data, K0, kernels.empirical(net, X_test, X, threads=threads), Y, Y_test),
                0.0)]
    if task["analytic"]:
        limit = kernels.Analytic.from_network(net)
        rows.append({**row("NTK limit", 0, 0.0, _kernel_errors(data, limit(X), limit(X_test, X), Y, Y_test), 0.0),
                     "width": math.inf})
    scale = _time_scale(X.shape[1])
    dt = scale * _T_MAX / _STEPS
    sim = Simulation(net, (X, Y), t_max=scale * _T_MAX, dt=dt, method="euler", centered=True, threads=threads)
    for step in task["steps"]:
        sim.advance(step - sim.step)
        traj = sim.trajectory()
        K = kernels.empirical(traj.net, X, threads=threads)
        change = float(np.linalg.norm(K - K0) / np.linalg.norm(K0))
        K_test = kernels.empirical(traj.net, X_test, X, threads=threads)
        rows.append(row("feature", step, step * dt, _kernel_errors(data, K, K_test, Y, Y_test), change))
        errors = (_test_error(data, Y, traj.predict(X, threads=threads)),
                  _test_error(data, Y_test, traj.predict(X_test, threads=threads)))
        rows.append(row("network", step, step * dt, errors, change))
    return rows


def _steps(times):
    """Euler steps after which to evaluate: _STEPS / 2^(times - 1), ..., _STEPS / 2, _STEPS."""
    return sorted({max(1, round(_STEPS / 2 ** k)) for k in range(times)})


def _rows(table, data, method, width, step=_STEPS):
    """The rows of (data, method, width) after ``step`` steps of training (the lazy kernel and the NTK
    limit: at step 0)."""
    step = 0 if method in ("lazy", "NTK limit") else step
    return [r for r in table.rows if r["data"] == data and r["method"] == method and r["width"] == width
            and r["step"] == step]


def _mean_std(table, data, method, width, step=_STEPS, column="test_error"):
    """Mean and standard deviation over the seeds of ``column`` at (data, method, width, step)."""
    values = [r[column] for r in _rows(table, data, method, width, step)]
    return float(np.mean(values)), float(np.std(values))


def _tasks(sizes, real, paths, seed):
    """One task of :func:`_run_one` per (data, seed, width), the longest first (for the workers' balance)."""
    widest, steps = max(sizes["widths"]), _steps(sizes["times"])
    tasks = []
    for i, data in enumerate(("synthetic", real)):
        for s in range(sizes["seeds"]):
            data_seed = seed_for(seed, i, s)
            for width in sizes["widths"]:
                tasks.append({"data": data, "seed": s, "width": width, "data_seed": data_seed,
                              "net_seed": seed_for(data_seed, 4, width), "n_test": sizes["n_test"], "mnist": paths,
                              "analytic": width == widest, "steps": steps if width == widest else steps[-1:]})
    return sorted(tasks, key=lambda t: -t["width"])


def _run_lazy_vs_feature(size, workers, threads, seed, mnist=None):
    sizes = _SIZES[size]
    widths, n_seeds, steps = sizes["widths"], sizes["seeds"], _steps(sizes["times"])
    real = "digits" if mnist is None else "mnist"
    paths = None if mnist is None else _mnist_paths(mnist)
    results = run_tasks(_run_one, _tasks(sizes, real, paths, seed), workers=workers, threads=threads,
                        desc="lazy-vs-feature")
    rows = sorted((r for rows in results for r in rows), key=lambda r: (
        r["data"] != "synthetic", _METHODS.index(r["method"]), r["width"], r["seed"], r["step"]))
    table = Table(rows, ["data", "method", "width", "seed", "step", "t", "train_error", "test_error",
                         "error_measure", "kernel_change"])
    notes = _notes(table, real, widths, n_seeds, sizes["n_test"], steps)
    return Reproduction("lazy-vs-feature", size, table, _checks(table, real, widths), figure, notes)


def _checks(table, real, widths):
    widest = max(widths)

    def mean(data, method, width, column="test_error"):
        return _mean_std(table, data, method, width, column=column)[0]

    def worst_ratio(method):
        return max(mean("synthetic", method, w) / mean("synthetic", "lazy", w) for w in widths)

    feature, network = worst_ratio("feature"), worst_ratio("network")
    change = mean("synthetic", "feature", widest, "kernel_change")
    checks = [
        Check("synthetic: feature / lazy kernel test error, largest over the widths", feature, None,
              holds=feature <= _FEATURE_RATIO,
              condition=f"<= {_FEATURE_RATIO:g} at every width (the kernel after training at least halves the lazy "
                        "kernel's error)"),
        Check("synthetic: trained network / lazy kernel test error, largest over the widths", network, None,
              holds=network <= _FEATURE_RATIO,
              condition=f"<= {_FEATURE_RATIO:g} at every width (the network beats its linearisation)"),
        Check(f"synthetic: |K_T - K_0|_F / |K_0|_F on the training set, N = {widest}", change, None,
              holds=change >= _FEATURE_REGIME,
              condition=f">= {_FEATURE_REGIME:g} (the mean-field run is in the feature regime)"),
        Check(f"synthetic: lazy kernel test error at N = {widest} vs the NTK limit N = inf",
              mean("synthetic", "lazy", widest), mean("synthetic", "NTK limit", math.inf),
              tolerance=_LAZY_LIMIT_RTOL, relative=True),
        Check(f"{real}: lazy kernel test error at N = {widest} vs the NTK limit N = inf",
              mean(real, "lazy", widest), mean(real, "NTK limit", math.inf), tolerance=_LAZY_LIMIT_ATOL),
    ]
    bound = (1.0 - 1.0 / _CLASSES) / 2
    for method in ("lazy", "feature", "network"):
        err = mean(real, method, widest)
        what = "trained network" if method == "network" else f"{method} kernel"
        checks.append(Check(f"{real}: {what} test error at N = {widest}", err, None, holds=err <= bound,
                            condition=f"<= {bound:g}, half the error of chance"))
    return checks


def _notes(table, real, widths, n_seeds, n_test, steps):
    widest = max(widths)
    lazy, feature, network = (_mean_std(table, real, m, widest) for m in ("lazy", "feature", "network"))
    ordering = ("holds" if feature[0] < lazy[0] else "is not seen (equal errors)" if feature[0] == lazy[0]
                else "does NOT hold")
    better = [w for w in widths if _mean_std(table, real, "feature", w)[0] < _mean_std(table, real, "lazy", w)[0]]
    real_test = ("the stratified test quarter of the 1797 images" if real == "digits"
                 else f"the first {n_test} test images")
    notes = [
        f"Widths N = {', '.join(map(str, widths))}; {n_seeds} seeds (each: new data, training subset and "
        "initialisation); error bars are standard deviations over the seeds.",
        "Networks: two layers, ReLU, no bias, mean-field scaling alpha = 1, w ~ N(0, I/d), a ~ N(0, 1) (one "
        "output per class); the centred model F = f(theta) - f(theta_0) (Geiger et al.'s) trained on the squared "
        f"loss by full-batch gradient descent: {_STEPS} Euler steps up to t = {_T_MAX:g} in mean-field time "
        f"(dt = {_T_MAX / _STEPS:g}, learning rate dt N), both scaled by {_D_REF}/d for inputs of dimension "
        f"d > {_D_REF} (MNIST). The paper used deeper networks (MLPs with 3 hidden layers of width 1024-4096, "
        "and CNNs) trained with Adam on MNIST.",
        "Kernels: ridgeless regression on the training set, one kernel shared by the outputs, argmax over the "
        f"one-hot outputs; feature = the tangent kernel of the network at the end of training, and for "
        f"N = {widest} also after {', '.join(map(str, steps[:-1]))} of the {_STEPS} steps (lower panels).",
        "Table: step = Euler steps of training, t = mean-field time, train_error and test_error as error_measure "
        "says, kernel_change = |K_t - K_0|_F / |K_0|_F of the network's tangent kernel on the training set.",
        f"synthetic: y = phi(U^T x) with phi(z) = |z| - sqrt(2/pi), U one unit direction, x ~ N(0, I_{_D}), "
        f"{_N_SYNTHETIC} training and {n_test} test points; error = mean squared error / variance of y.",
        f"{real}: {_PER_CLASS} training samples per class ({_CLASSES * _PER_CLASS} in all) drawn from the "
        f"training split, tested on {real_test}; every predictor (the network included) sees only these "
        f"{_CLASSES * _PER_CLASS} samples.",
        f"{real}, N = {widest}: test error lazy {lazy[0]:.4f} +- {lazy[1]:.4f}, feature {feature[0]:.4f} +- "
        f"{feature[1]:.4f}, trained network {network[0]:.4f} +- {network[1]:.4f}; the paper's ordering "
        f"(feature kernel better than lazy) {ordering} here. Over the widths, the feature kernel's mean error is "
        f"below the lazy kernel's at {len(better)} of {len(widths)} (N = {', '.join(map(str, better)) or 'none'}).",
        "The paper (survey's table, MLPs on MNIST): test error lazy "
        + ", ".join(f"{1 - a:.3f}" for a in PAPER_MNIST_MLP["lazy"]) + "; feature "
        + ", ".join(f"{1 - a:.3f}" for a in PAPER_MNIST_MLP["feature"]) + "; trained network "
        + ", ".join(f"{1 - a:.3f}" for a in PAPER_MNIST_MLP["network"])
        + " (h = 1024, 2048, 4096); its networks reach the accuracy of training on the full MNIST training set.",
    ]
    if real == "digits":
        notes.append("digits are 8 x 8 images on which the lazy kernel is already near its best with 300 "
                     "samples; pass mnist=FOLDER (the four MNIST IDX files) for the paper's data set.")
    return notes


_LABELS = {"lazy": "lazy kernel (K at t = 0)", "feature": "feature kernel (K after training)",
           "network": "trained network", "NTK limit": "NTK limit N = inf (lazy theory)"}
_MARKERS = {"lazy": "s", "feature": "o", "network": "^"}
_OFFSETS = {"lazy": 0.93, "feature": 1.0, "network": 1.07}


def _colors():
    from .. import plot
    return {"lazy": plot.SCALING_COLORS["ntk"], "feature": plot.SCALING_COLORS["mf"], "network": "0.15",
            "NTK limit": plot.SCALING_COLORS["ntk"]}


def _panel_title(data):
    if data == "synthetic":
        return f"synthetic: y = |<u, x>| - (2/pi)^1/2, d = {_D}, n = {_N_SYNTHETIC}"
    return f"{data}: {_PER_CLASS} training samples per class"


def figure(result):
    """Test error against the width (top) and against the training time at the largest width (bottom), on
    the synthetic task (left) and on digits or MNIST (right): the lazy kernel, the feature kernel and the
    trained network as points with error bars over seeds, the NTK limit as a dashed line."""
    from .. import plot
    table = result.table
    datas = list(dict.fromkeys(table["data"]))
    colors = _colors()
    fig, axes = plot._figure(2, len(datas), width=4.0, height=3.0)
    with plot._style():
        for j, data in enumerate(datas):
            rows = [r for r in table.rows if r["data"] == data]
            widths = sorted({r["width"] for r in rows if math.isfinite(r["width"])})
            widest = max(widths)
            limit = _mean_std(table, data, "NTK limit", math.inf)[0]
            ylabel = "relative test error, mean (y - f)^2 / var y" if data == "synthetic" else "test error (fraction)"
            top, bottom = axes[0, j], axes[1, j]
            for method in ("lazy", "feature", "network"):
                stats = [_mean_std(table, data, method, w) for w in widths]
                top.errorbar(np.array(widths) * _OFFSETS[method], [m for m, _ in stats], yerr=[s for _, s in stats],
                             color=colors[method], marker=_MARKERS[method], ls="-", lw=1.0, capsize=2,
                             label=_LABELS[method])
            top.axhline(limit, color=colors["NTK limit"], ls="--", lw=1.0, label=_LABELS["NTK limit"])
            if data == "mnist":
                for method in ("lazy", "feature", "network"):
                    top.plot(PAPER_MNIST_MLP["width"], [1 - a for a in PAPER_MNIST_MLP[method]], ls="none",
                             marker=_MARKERS[method], mfc="none", color="0.55")
                top.plot([], [], ls="none", marker="o", mfc="none", color="0.55",
                         label="paper, 3-hidden-layer MLP (same markers)")
            top.set_xscale("log")
            top.set_xlabel("width N, log scale")
            top.set_ylabel(ylabel)
            top.set_title(_panel_title(data))
            plot.tidy_log_axes(top, xvalues=widths)

            steps = sorted({r["step"] for r in rows if r["method"] == "feature" and r["width"] == widest})
            times = [_rows(table, data, "feature", widest, step)[0]["t"] for step in steps]
            for method in ("feature", "network"):
                stats = [_mean_std(table, data, method, widest, step) for step in steps]
                bottom.errorbar(times, [m for m, _ in stats], yerr=[s for _, s in stats], color=colors[method],
                                marker=_MARKERS[method], ls="-", lw=1.0, capsize=2, label=_LABELS[method])
            bottom.axhline(_mean_std(table, data, "lazy", widest)[0], color=colors["lazy"], ls=":", lw=1.2,
                           label=_LABELS["lazy"])
            bottom.axhline(limit, color=colors["NTK limit"], ls="--", lw=1.0, label=_LABELS["NTK limit"])
            bottom.set_xscale("log")
            bottom.set_xlabel("training time t (mean-field units), log scale")
            bottom.set_ylabel(ylabel)
            bottom.set_title(f"N = {widest} along training (dotted: lazy kernel)")
            plot.tidy_log_axes(bottom, xvalues=[float(f"{t:.2g}") for t in times])
            for ax in (top, bottom):
                ax.set_ylim(bottom=0.0)
        handles = dict(zip(*reversed(axes[0, -1].get_legend_handles_labels())))
        order = [_LABELS[m] for m in _METHODS] + [label for label in handles if label not in _LABELS.values()]
        fig.legend([handles[label] for label in order], order, loc="outside lower center", ncol=2)
    return fig


register(Entry(
    name="lazy-vs-feature",
    paper="Geiger, Spigler, Jacot, Wyart (2020)",
    what="Table: lazy vs feature NTK on MNIST (survey seed)",
    claim="Kernel regression with the tangent kernel of a network trained in the feature (mean-field) regime "
          "generalises much better than with the tangent kernel at initialisation (lazy): with 30 training "
          "samples per class on MNIST, test accuracy 0.95-0.96 against 0.77-0.79 for 3-hidden-layer MLPs, the "
          "trained networks themselves reaching 0.986.",
    seconds={"quick": 20, "full": 300},
    run=_run_lazy_vs_feature,
))


def lazy_vs_feature(size="quick", out=None, workers=1, threads=None, seed=0, mnist=None):
    """Lazy vs feature tangent kernels: kernel regression with the network's tangent kernel at
    initialisation and after mean-field training, and the trained network ([GSJW20]_).

    Two-layer ReLU networks in the mean-field scaling train the centred model f(theta) - f(theta_0)
    by full-batch gradient descent; ridgeless regression with their tangent kernel at t = 0
    ("lazy") and at the end ("feature"), and the network itself, are tested on a synthetic
    low-dimensional target |<u, x>| in d = 32 (300 training points), where feature learning
    matters, and on scikit-learn's digits or MNIST with 30 training samples per class (argmax of
    one-hot outputs). The analytic NTK (N = infinity) is the lazy kernel's limit.

    Parameters
    ----------
    size : {"quick", "full"}
        "quick": widths 128, 512, 2048, 3 seeds (about 20 s on 2 cores with digits). "full":
        widths 64 to 4096, 10 seeds (about 5 min on 2 cores with digits; with MNIST about 40 min).
    out : str or path, optional
        Folder for lazy-vs-feature.csv, .json, .png and .md.
    workers : int
        Processes for the independent runs.
    threads : int or None
        OpenMP threads in all (None: every core this process may use).
    seed : int
        Seed of every random draw.
    mnist : str or path, optional
        A folder holding the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
        t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each plain or ``.gz``): MNIST replaces digits.

    Returns
    -------
    Reproduction

    Raises
    ------
    ValueError
        If ``mnist`` is not a folder holding the four files, or a class has fewer than 30 training
        samples; bad ``size``, ``workers``, ``threads`` or ``seed`` (see :func:`reproduce`).

    References
    ----------
    .. [GSJW20] M. Geiger, S. Spigler, A. Jacot, M. Wyart, "Disentangling feature and lazy training
       in deep neural networks", J. Stat. Mech. 2020(11), 113301.
    """
    return reproduce("lazy-vs-feature", size=size, out=out, workers=workers, threads=threads, seed=seed,
                     mnist=mnist)
