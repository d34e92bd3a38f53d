"""Figures for mfntk runs and studies (matplotlib, headless).

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot, no global
backend switch), so it works on a machine without a display and never changes the state
of a user's interactive session. Save with ``fig.savefig("name.png")`` or the helper
:func:`save`. This module is not imported when ``import mfntk`` runs (STYLE: plotting
sits outside the core); ``mfntk.plot`` imports it on first use.

All figures share one style (:data:`STYLE`): labelled axes that say which scale is
logarithmic and in which units time is measured (mean-field time, SPEC 3), legends without
frames, a light grid. Functions take a :class:`~mfntk.Trajectory` (or what
:func:`mfntk.load` returns) or a list of them with ``labels``; they accept ``ax=`` to draw
into an existing axes where that makes sense.

Functions
---------
risk               train/test risk curves (log-log)
lazy_rich          kernel distance, displacement and linearized distance over time
particles          particle pictures a_j vs |w_j| or vs the projection on teacher directions
kernel             kernel heatmaps and eigenvalue spectra at t = 0 and at t
phase_diagram      lazy-to-rich phase diagram over (alpha, N)
convergence        log-log convergence plot with the least-squares slope printed on it
study              the figure of a convergence study (drawn by its entry in mfntk.studies.STUDIES)
trajectory_figures every figure of one trajectory, written to a folder
"""
from __future__ import annotations

import contextlib
import math
import os

import matplotlib
import numpy as np
from matplotlib.figure import Figure

__all__ = ["STYLE", "risk", "lazy_rich", "particles", "kernel", "phase_diagram", "convergence", "study", "save",
           "trajectory_figures"]

#: rcParams shared by every figure of this module.
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "image.cmap": "viridis",
}

#: Colours of the two named scalings, used by every figure that compares them.
SCALING_COLORS = {"mf": "C0", "ntk": "C3"}
TIME_LABEL = "time t (mean-field units)"


@contextlib.contextmanager
def _style():
    with matplotlib.rc_context(STYLE):
        yield


def _figure(nrows=1, ncols=1, width=4.2, height=3.2, **kw):
    with _style():
        fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _as_list(trajs, labels, name="trajs"):
    """(list of trajectories, list of labels) from one trajectory or a sequence."""
    if trajs is None:
        raise TypeError(f"{name}: expected a Trajectory or a list of them, got None")
    if hasattr(trajs, "t") and hasattr(trajs, "train_risk"):
        trajs = [trajs]
    try:
        trajs = list(trajs)
    except TypeError:
        raise TypeError(f"{name}: expected a Trajectory or a list of them, got {type(trajs).__name__}") from None
    if not trajs:
        raise ValueError(f"{name}: is empty")
    for i, tr in enumerate(trajs):
        if not (hasattr(tr, "t") and hasattr(tr, "train_risk")):
            raise TypeError(f"{name}[{i}]: expected a Trajectory, got {type(tr).__name__}")
    if labels is None:
        labels = [_default_label(tr) for tr in trajs]
    elif isinstance(labels, str):
        labels = [labels]
    labels = list(labels)
    if len(labels) != len(trajs):
        raise ValueError(f"labels: got {len(labels)} labels for {len(trajs)} trajectories")
    return trajs, labels


def _default_label(tr):
    cfg = getattr(tr, "config", None) or {}
    net = cfg.get("net", {})
    scaling = net.get("scaling")
    if isinstance(scaling, str):
        return f"{scaling.upper()} (N={net.get('width')})"
    if scaling is not None:
        return f"alpha={scaling:g} (N={net.get('width')})"
    return "run"


def _color(tr, i):
    scaling = ((getattr(tr, "config", None) or {}).get("net", {}) or {}).get("scaling")
    return SCALING_COLORS.get(scaling, f"C{i % 10}") if isinstance(scaling, str) else f"C{i % 10}"


def _positive(t, y):
    """The points with t > 0 and finite y > 0 (for log-log axes)."""
    t, y = np.asarray(t, float), np.asarray(y, float)
    keep = (t > 0) & np.isfinite(y) & (y > 0)
    return t[keep], y[keep]


def _figure_and_ax(ax):
    """A new one-panel figure, or the given axes and their figure."""
    if ax is None:
        fig, axes = _figure()
        return fig, axes[0, 0]
    return ax.figure, ax


def _check_ax(ax):
    if ax is not None and not hasattr(ax, "plot"):
        raise TypeError(f"ax: expected a matplotlib Axes, got {type(ax).__name__}")


# ---------------------------------------------------------------------------------------
# risk and lazy-vs-rich curves
# ---------------------------------------------------------------------------------------

def risk(trajs, labels=None, ax=None, logx=True, test=True, title=None):
    """Training (solid) and test (dashed) risk against time, log-log.

    Parameters
    ----------
    trajs : Trajectory or list of Trajectory
    labels : str or list of str, optional
        Legend entries (default: the scaling and width of each run).
    ax : matplotlib Axes, optional
        Draw there instead of a new figure.
    logx : bool
        Logarithmic time axis (the t = 0 record is then left out).
    test : bool
        Also draw the test risk where it was recorded.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_ax(ax)
    trajs, labels = _as_list(trajs, labels)
    with _style():
        fig, ax = _figure_and_ax(ax)
        for i, (tr, lab) in enumerate(zip(trajs, labels)):
            c = _color(tr, i)
            clip = _positive if logx else (lambda t, y: (np.asarray(t), np.asarray(y)))
            ax.plot(*clip(tr.t, tr.train_risk), color=c, ls="-", label=f"{lab}, train")
            if test and getattr(tr, "test_risk", None) is not None:
                ax.plot(*clip(tr.t, tr.test_risk), color=c, ls="--", label=f"{lab}, test")
        if logx:
            ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(TIME_LABEL + (", log scale" if logx else ""))
        ax.set_ylabel("risk (mean of l(f, y)), log scale")
        if title:
            ax.set_title(title)
        ax.legend()
    return fig


def classification_error(trajs, labels=None, ax=None, logx=True, title=None):
    """Training (solid) and test (dashed) classification error against time (runs on
    classification data record it: ``traj.train_error``, ``traj.test_error``).

    Parameters are those of :func:`risk`. Returns a matplotlib Figure.
    """
    _check_ax(ax)
    trajs, labels = _as_list(trajs, labels)
    if all(getattr(tr, "train_error", None) is None for tr in trajs):
        raise ValueError("trajs: no run recorded a classification error (classification data only)")
    with _style():
        fig, ax = _figure_and_ax(ax)
        for i, (tr, lab) in enumerate(zip(trajs, labels)):
            if getattr(tr, "train_error", None) is None:
                continue
            c = _color(tr, i)
            t = np.asarray(tr.t)
            keep = t > 0 if logx else np.ones_like(t, dtype=bool)
            ax.plot(t[keep], np.asarray(tr.train_error)[keep], color=c, ls="-", label=f"{lab}, train")
            if getattr(tr, "test_error", None) is not None:
                ax.plot(t[keep], np.asarray(tr.test_error)[keep], color=c, ls="--", label=f"{lab}, test")
        if logx:
            ax.set_xscale("log")
        ax.set_ylim(bottom=0.0)
        ax.set_xlabel(TIME_LABEL + (", log scale" if logx else ""))
        ax.set_ylabel("classification error (fraction misclassified)")
        if title:
            ax.set_title(title)
        ax.legend()
    return fig


_LAZY_SERIES = (
    ("kernel_distance", r"kernel distance $\|K_t-K_0\|_F/\|K_0\|_F$"),
    ("displacement", r"displacement $\|\theta_t-\theta_0\|/\|\theta_0\|$"),
    ("linearized_distance", r"linearized distance $\|f_t-\bar f_t\|/\|f_0-y\|$"),
)


def lazy_rich(trajs, labels=None, title=None):
    """Kernel distance, parameter displacement and linearized distance over time (log-log).

    One panel per quantity that at least one trajectory recorded (``diagnostics=True``
    records the first two, ``linearized=True`` the third). The lazy (NTK) regime shows
    curves that stay small (they scale like 1/alpha); the rich (mean-field) one O(1) curves.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If no trajectory recorded any of these series.
    """
    trajs, labels = _as_list(trajs, labels)
    present = [(k, lab) for k, lab in _LAZY_SERIES if any(getattr(tr, k, None) is not None for tr in trajs)]
    if not present:
        raise ValueError("trajs: none recorded kernel_distance, displacement or linearized_distance "
                         "(run simulate with diagnostics=True and/or linearized=True)")
    fig, axes = _figure(1, len(present), width=3.6)
    with _style():
        for ax, (key, ylabel) in zip(axes[0], present):
            for i, (tr, lab) in enumerate(zip(trajs, labels)):
                values = getattr(tr, key, None)
                if values is None:
                    continue
                ax.plot(*_positive(tr.t, values), color=_color(tr, i), label=lab)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(TIME_LABEL + ", log scale")
            ax.set_ylabel(ylabel + ", log scale")
        axes[0, 0].legend()
        if title:
            fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------
# particles
# ---------------------------------------------------------------------------------------

def _particle_arrays(net):
    a = np.asarray(net.a, float)
    W = np.asarray(net.W, float)
    return a, W


def _unit_directions(direction, d):
    D = np.asarray(direction, float)
    if D.ndim == 1:
        D = D[:, None]
    if D.ndim != 2 or D.shape[0] != d:
        raise ValueError(f"direction: expected shape ({d},) or ({d}, r), got {np.shape(direction)}")
    norms = np.linalg.norm(D, axis=0)
    if np.any(norms == 0) or not np.all(np.isfinite(D)):
        raise ValueError("direction: columns must be finite and non-zero")
    return D / norms


def particles(snapshots, labels=None, direction=None, output=0, title=None, max_points=4000):
    """Particle pictures: a_j against |w_j| (or against <w_j, u> for a teacher direction u).

    Parameters
    ----------
    snapshots : TwoLayer, Trajectory, or list of (label, TwoLayer)
        What to draw. A Trajectory gives its particle snapshots when it has them
        (``traj.snapshots``, from a run written to disk) or else t = 0 and the end; a
        list of (label, net) pairs draws those networks, one colour each.
    labels : list of str, optional
        Legend entries for a list of networks given without labels.
    direction : array (d,) or (d, r), optional
        Teacher direction(s) u. Without it the horizontal axis is |w_j|; with it, one panel
        per column with the horizontal axis <w_j, u> / |u|.
    output : int
        Which output's a_j to draw (k > 1).
    title : str, optional
    max_points : int
        At most this many particles are drawn (a deterministic even subsample).

    Returns
    -------
    matplotlib.figure.Figure
    """
    pairs = _snapshot_pairs(snapshots, labels)
    d = pairs[0][1].W.shape[1]
    D = None if direction is None else _unit_directions(direction, d)
    npanel = 1 if D is None else D.shape[1]
    fig, axes = _figure(1, npanel, width=3.8, height=3.2)
    colors = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, len(pairs))) if len(pairs) > 2 else \
        ["0.6", "C1"][:len(pairs)]
    with _style():
        for p, ax in enumerate(axes[0]):
            for (lab, net), c in zip(pairs, colors):
                a, W = _particle_arrays(net)
                if not 0 <= output < a.shape[1]:
                    raise ValueError(f"output: must be in [0, {a.shape[1]}), got {output}")
                step = max(1, int(math.ceil(len(a) / max_points)))
                x = np.linalg.norm(W, axis=1) if D is None else W @ D[:, p]
                ax.scatter(x[::step], a[::step, output], s=6, color=c, alpha=0.7, lw=0, label=lab)
            ax.axhline(0.0, color="0.3", lw=0.5)
            ax.set_xlabel(r"$|w_j|$" if D is None else
                          (r"$\langle w_j, w^*\rangle$" if npanel == 1 else rf"$\langle w_j, u_{p + 1}\rangle$"))
            ax.set_ylabel(r"$a_j$" if a.shape[1] == 1 else rf"$a_{{j,{output}}}$")
        axes[0, 0].legend(markerscale=2)
        if title:
            fig.suptitle(title)
    return fig


def _snapshot_pairs(snapshots, labels):
    from ._network import TwoLayer
    if isinstance(snapshots, TwoLayer):
        return [(labels[0] if labels else "particles", snapshots)]
    if hasattr(snapshots, "net") and hasattr(snapshots, "net0"):
        tr = snapshots
        snaps = getattr(tr, "snapshots", None)
        if snaps is not None and len(snaps) >= 2:
            return [(f"t = {t:.3g}", net) for t, net in snaps.nets()]
        return [("t = 0", tr.net0), (f"t = {tr.t[-1]:.3g}", tr.net)]
    try:
        items = list(snapshots)
    except TypeError:
        raise TypeError(f"snapshots: expected a TwoLayer, a Trajectory or a list of (label, TwoLayer), "
                        f"got {type(snapshots).__name__}") from None
    if not items:
        raise ValueError("snapshots: is empty")
    pairs = []
    for i, item in enumerate(items):
        if isinstance(item, TwoLayer):
            lab = labels[i] if labels is not None else f"net {i}"
            pairs.append((lab, item))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], TwoLayer):
            pairs.append((str(item[0]), item[1]))
        else:
            raise TypeError(f"snapshots[{i}]: expected a TwoLayer or a (label, TwoLayer) pair")
    return pairs


# ---------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------

def kernel(source, X=None, kind="ntk", max_points=200, threads=None, title=None):
    """Empirical tangent kernel at t = 0 and at the end: heatmaps and eigenvalue spectra.

    Parameters
    ----------
    source : Trajectory or list of (label, TwoLayer)
        A trajectory gives its networks at t = 0 and at the last record.
    X : array (n, d), optional
        Inputs on which the Gram matrices are formed (at most ``max_points`` of them, sorted
        by their first coordinate so that structure shows). Default: the training inputs
        stored in the trajectory's file.
    kind : str
        Which part of K_mu (SPEC 4): a kernel kind of the core, "rf", "nt" or "ntk".
    max_points : int
    threads : int or None

    Returns
    -------
    matplotlib.figure.Figure
        One heatmap per network (same colour scale) and one panel with the eigenvalues of
        K / n in decreasing order (log scale).
    """
    from ._registry import check_kernel_kind
    from ._validation import resolve_threads
    check_kernel_kind(kind)
    pairs = _kernel_pairs(source)
    if X is None:
        path = getattr(source, "path", None)
        if path is None:
            raise ValueError("X: needed (the trajectory has no file to take the training inputs from)")
        from ._io import load_data
        X = load_data(path).X
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[1] != pairs[0][1].d:
        raise ValueError(f"X: expected shape (n, {pairs[0][1].d}), got {X.shape}")
    X = X[:max_points]
    X = X[np.argsort(X[:, 0], kind="stable")]
    th = resolve_threads(threads)
    grams = []
    for lab, net in pairs:
        Xn = np.ascontiguousarray(X, dtype=net.dtype)
        K = net.backend.gram(net, Xn, None, kind, th)
        grams.append((lab, np.asarray(K, np.float64)))
    fig, axes = _figure(1, len(grams) + 1, width=3.3, height=3.0)
    vmin = min(K.min() for _, K in grams)
    vmax = max(K.max() for _, K in grams)
    with _style():
        for ax, (lab, K) in zip(axes[0], grams):
            im = ax.imshow(K, vmin=vmin, vmax=vmax, cmap="viridis", interpolation="nearest")
            ax.set_title(f"{kind.upper()} Gram matrix, {lab}")
            ax.set_xlabel("input i (sorted by x_1)")
            ax.set_ylabel("input i'")
            ax.grid(False)
        fig.colorbar(im, ax=axes[0, :len(grams)].tolist(), shrink=0.8, label=r"$K_\mu(x_i, x_{i'})$")
        ax = axes[0, -1]
        n = X.shape[0]
        for i, (lab, K) in enumerate(grams):
            ev = np.sort(np.linalg.eigvalsh(K / n))[::-1]
            ev = ev[ev > 1e-16 * max(ev[0], 1e-300)]
            ax.plot(np.arange(1, len(ev) + 1), ev, marker=".", ls="-", color=["0.5", "C1", "C2", "C3"][i % 4],
                    label=lab)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("index, log scale")
        ax.set_ylabel(r"eigenvalue of $K/n$, log scale")
        ax.set_title("spectrum")
        ax.legend()
        if title:
            fig.suptitle(title)
    return fig


def _kernel_pairs(source):
    if hasattr(source, "net") and hasattr(source, "net0"):
        return [("t = 0", source.net0), (f"t = {source.t[-1]:.3g}", source.net)]
    return _snapshot_pairs(source, None)


# ---------------------------------------------------------------------------------------
# studies
# ---------------------------------------------------------------------------------------

def convergence(x, ys, fits=None, xlabel="x", ylabel="error", title=None, ax=None, theory=True):
    """Log-log convergence plot, with each fitted slope printed on the figure.

    Parameters
    ----------
    x : array
        The abscissae (width, dt, alpha, ...).
    ys : dict of str -> array
        One curve per entry.
    fits : dict of str -> Fit, optional
        Fits (from :func:`mfntk.studies.fit_loglog`) of some curves: drawn as dashed lines
        over the points they used, with "slope s (theory t)" in the legend.
    xlabel, ylabel, title : str
    ax : matplotlib Axes, optional
    theory : bool
        Also draw a dotted line of the theory slope through the fit's first point.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_ax(ax)
    if not isinstance(ys, dict) or not ys:
        raise TypeError("ys: expected a non-empty dict of label -> values")
    fits = fits or {}
    x = np.asarray(x, float)
    with _style():
        fig, ax = _figure_and_ax(ax)
        for i, (lab, y) in enumerate(ys.items()):
            y = np.asarray(y, float)
            if y.shape != x.shape:
                raise ValueError(f"ys[{lab!r}]: shape {y.shape} does not match x {x.shape}")
            keep = np.isfinite(y) & (y > 0)
            c = f"C{i % 10}"
            fit = fits.get(lab)
            text = lab
            if fit is not None:
                text += f": slope {fit.slope:+.2f}"
                if fit.theory is not None:
                    text += f" (theory {fit.theory:+.3g})"
            ax.plot(x[keep], y[keep], marker="o", ls="-", color=c, label=text)
            if fit is not None:
                xs = np.geomspace(fit.x.min(), fit.x.max(), 20)
                ax.plot(xs, fit.predict(xs), ls="--", color=c, lw=1.0)
                if theory and fit.theory is not None:
                    x0, y0 = fit.x[0], fit.predict(fit.x[0])
                    ax.plot(xs, y0 * (xs / x0) ** fit.theory, ls=":", color="0.4", lw=1.0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel + ", log scale")
        ax.set_ylabel(ylabel + ", log scale")
        if title:
            ax.set_title(title)
        ax.legend()
    return fig


def study(result):
    """The figure of a :class:`mfntk.studies.StudyResult`, drawn by its study's registry entry
    (``mfntk.studies.STUDIES[result.name].figure``)."""
    try:
        entry = result.entry      # plotting does not import the studies: they import it
    except (AttributeError, KeyError) as exc:
        name = getattr(result, "name", None)
        raise TypeError(f"result: expected a StudyResult of a registered study, got {type(result).__name__}"
                        + (f" named {name!r}" if isinstance(name, str) else "") + f" ({exc})") from None
    return entry.figure(result)


def phase_diagram(table, quantity="kernel_distance", title=None, log=True):
    """Lazy-to-rich phase diagram: ``quantity`` over the (alpha, N) grid of an alpha sweep.

    Parameters
    ----------
    table : Table or StudyResult
        The result of :func:`mfntk.studies.alpha_sweep` with several widths (or its table).
    quantity : str
        A column: kernel_distance, displacement, linearized_distance, test_risk, ...
    log : bool
        Logarithmic colour scale.

    Returns
    -------
    matplotlib.figure.Figure
        A colour map over log alpha (horizontal) and log N (vertical), with the lines
        alpha = 1 (mean-field) and alpha = sqrt(N) (NTK).
    """
    from matplotlib.colors import LogNorm
    table = getattr(table, "table", table)
    if not hasattr(table, "columns") or "alpha" not in table.columns or "width" not in table.columns:
        raise TypeError("table: expected the table (or StudyResult) of an alpha sweep")
    if quantity not in table.columns:
        raise ValueError(f"quantity: {quantity!r} is not a column ({', '.join(table.columns)})")
    alphas = np.unique(table["alpha"].astype(float))
    widths = np.unique(table["width"].astype(int))
    Z = np.full((len(widths), len(alphas)), np.nan)
    for r in table.rows:
        Z[np.searchsorted(widths, r["width"]), np.searchsorted(alphas, r["alpha"])] = r[quantity]
    fig, axes = _figure(1, 1, width=4.8, height=3.6)
    ax = axes[0, 0]

    def edges(v):
        lv = np.log(v)
        if len(v) == 1:
            return np.exp([lv[0] - 0.5, lv[0] + 0.5])
        mid = (lv[1:] + lv[:-1]) / 2
        return np.exp(np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]]))

    with _style():
        positive = Z[np.isfinite(Z) & (Z > 0)]
        norm = LogNorm(positive.min(), positive.max()) if (log and positive.size) else None
        mesh = ax.pcolormesh(edges(alphas), edges(widths.astype(float)), Z, norm=norm, cmap="viridis", shading="flat")
        fig.colorbar(mesh, ax=ax, label=quantity.replace("_", " ") + (", log scale" if norm is not None else ""))
        ns = np.geomspace(widths.min(), widths.max(), 50)
        ax.plot(np.sqrt(ns), ns, color="w", ls="--", lw=1.2, label=r"$\alpha=\sqrt{N}$ (NTK)")
        ax.axvline(1.0, color="w", ls=":", lw=1.2, label=r"$\alpha=1$ (mean-field)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(edges(alphas)[0], edges(alphas)[-1])
        ax.set_ylim(edges(widths.astype(float))[0], edges(widths.astype(float))[-1])
        ax.set_xlabel(r"scale $\alpha$, log scale")
        ax.set_ylabel("width N, log scale")
        ax.grid(False)
        ax.legend(loc="lower right", labelcolor="w")
        ax.set_title(title or f"lazy-to-rich phase diagram: {quantity.replace('_', ' ')}")
    return fig


# ---------------------------------------------------------------------------------------
# everything about one trajectory
# ---------------------------------------------------------------------------------------

def trajectory_figures(traj, out, direction=None, threads=None):
    """Write every figure that applies to one trajectory into the folder ``out``.

    risk.png always; error.png for classification runs; lazy_rich.png when diagnostics or the linearized model were recorded;
    particles.png (snapshots, or t = 0 and the end); kernel.png when the training inputs are
    available (a trajectory read from a file). Returns the list of paths written.
    """
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    paths = [save(risk(traj), os.path.join(out, "risk.png"))]
    if getattr(traj, "train_error", None) is not None:
        paths.append(save(classification_error(traj), os.path.join(out, "error.png")))
    if any(getattr(traj, k, None) is not None for k, _ in _LAZY_SERIES):
        paths.append(save(lazy_rich(traj), os.path.join(out, "lazy_rich.png")))
    paths.append(save(particles(traj, direction=direction), os.path.join(out, "particles.png")))
    if getattr(traj, "path", None) is not None:
        paths.append(save(kernel(traj, threads=threads), os.path.join(out, "kernel.png")))
    return paths


# ---------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------

def save(fig, path):
    """Save ``fig`` to ``path`` (format from the extension) and return the path."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    path = os.fspath(path)
    with _style():
        fig.savefig(path)
    return path
