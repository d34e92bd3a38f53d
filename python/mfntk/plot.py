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
"""
from __future__ import annotations

import contextlib
import math
import os

import matplotlib
import numpy as np
from matplotlib.figure import Figure

__all__ = ["STYLE", "risk", "lazy_rich", "particles", "kernel", "phase_diagram", "convergence", "save",
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
        if ax is None:
            fig, axes = _figure()
            ax = axes[0, 0]
        else:
            fig = ax.figure
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
        ax.set_ylabel("risk  mean of l(f, y), log scale")
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
