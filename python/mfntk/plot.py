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

Logarithmic axes carry at most about six labelled ticks and unlabelled minor ticks
(:func:`tidy_log_axes`); legends that would cover data sit outside the axes.

Functions
---------
::

    risk                 train/test risk curves (log-log), with optional reference levels
    classification_error train/test classification error over time
    lazy_rich            kernel distance, displacement and linearized distance over time
    diagnostics          kernel-target alignment, relative change of the objective and of the tangent
                         features per record interval
    particles            particle paths a_j against |w_j| (or against teacher directions), every output
    animate              the particle flow of a trajectory (file) as a GIF or MP4
    kernel               kernel heatmaps (sorted by label or by the leading eigenvector) and the spectrum
                         at every snapshot
    phase_diagram        lazy-to-rich phase diagram over (alpha, N)
    convergence          log-log convergence plot with the least-squares slope printed on it
    study                the figure of a convergence study (drawn by its entry in mfntk.studies.STUDIES)
    trajectory_figures   every figure of one trajectory, written to a folder
"""
from __future__ import annotations

import contextlib
import math
import os

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from . import kernels
from ._validation import check_choice, check_int

__all__ = ["STYLE", "risk", "classification_error", "lazy_rich", "diagnostics", "particles", "animate", "kernel",
           "phase_diagram", "convergence", "study", "save", "trajectory_figures", "tidy_log_axes"]

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


def _legend(ax, outside=True, **kw):
    """The legend of ``ax``: to the right of the axes (constrained layout makes room for it),
    or where it covers the least data."""
    if outside:
        return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kw)
    return ax.legend(**kw)


def _figure_and_ax(ax, **kw):
    """A new one-panel figure (``_figure``'s keywords), or the given axes and their figure."""
    if ax is None:
        fig, axes = _figure(**kw)
        return fig, axes[0, 0]
    return ax.figure, ax


def _check_ax(ax):
    if ax is not None and not hasattr(ax, "plot"):
        raise TypeError(f"ax: expected a matplotlib Axes, got {type(ax).__name__}")


def _subsample(n, m):
    """At most ``m`` of the indices 0..n-1, evenly spread, the first and the last included."""
    if n <= m:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, m).round().astype(int))


# ---------------------------------------------------------------------------------------
# ticks of logarithmic axes
# ---------------------------------------------------------------------------------------

#: At most this many labelled ticks on a logarithmic axis.
MAX_LOG_LABELS = 6


def _number_label(value, _pos=None):
    """A tick label: a plain decimal from 1e-3 to 1e4, else m x 10^e (mathtext)."""
    if not np.isfinite(value) or value <= 0:
        return ""
    if 1e-3 <= value < 1e4:
        return f"{value:.6g}"
    exponent = int(math.floor(math.log10(value) + 1e-9))
    mantissa = f"{value / 10.0 ** exponent:.2g}"
    if mantissa == "10":
        mantissa, exponent = "1", exponent + 1
    return rf"$10^{{{exponent}}}$" if mantissa == "1" else rf"${mantissa}\times10^{{{exponent}}}$"


_LOG_SUBS = ((1.0, 3.0), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), tuple(np.arange(1.0, 10.0)))


def _ticks_inside(subs, lo, hi):
    """How many of the values s x 10^e (s in subs) lie in [lo, hi]."""
    decades = np.arange(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    values = np.outer(10.0 ** decades, subs).ravel()
    return int(np.sum((values >= lo * (1 - 1e-9)) & (values <= hi * (1 + 1e-9))))


def _tidy_log_axis(axis, lo, hi, values=None):
    if values is not None:
        v = np.unique(np.asarray(values, float))
        v = v[np.isfinite(v) & (v > 0)]
        if len(v):
            step = int(math.ceil(len(v) / MAX_LOG_LABELS))
            axis.set_major_locator(ticker.FixedLocator(v[::-1][::step][::-1]))
            axis.set_major_formatter(ticker.FuncFormatter(_number_label))
            axis.set_minor_locator(ticker.NullLocator())
            return
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    axis.set_major_formatter(ticker.FuncFormatter(_number_label))
    if decades >= 2.0:       # powers of ten, every k-th one beyond MAX_LOG_LABELS decades
        axis.set_major_locator(ticker.LogLocator(numticks=MAX_LOG_LABELS))
        axis.set_major_formatter(ticker.LogFormatterSciNotation())
    else:                    # the coarsest of 1-3, 1-2-5, 1-2-3-5, 1..9 x 10^e that labels two values or more
        for subs in _LOG_SUBS[0 if decades >= 1.5 else 1:]:
            if _ticks_inside(subs, lo, hi) >= 2:
                axis.set_major_locator(ticker.LogLocator(subs=subs))
                break
        else:                # within a factor 2 or so: evenly spaced round values
            axis.set_major_locator(ticker.MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10]))
    axis.set_minor_locator(ticker.LogLocator(subs=np.arange(2.0, 10.0), numticks=12))
    axis.set_minor_formatter(ticker.NullFormatter())


def tidy_log_axes(ax, xvalues=None, yvalues=None):
    """Readable ticks on the logarithmic axes of ``ax``: at most :data:`MAX_LOG_LABELS`
    labelled major ticks, unlabelled minor ticks.

    Call it after the data are drawn (the choice depends on the span of the axis): over
    two decades or more the labels are powers of ten (every k-th one when there are many);
    over less, the coarsest of 1-3 (from 1.5 decades), 1-2-5, 1-2-3-5 and 1..9 x 10^e that
    gives two labels or more; within a factor of about two, evenly spaced round values. Minor ticks are never
    labelled, so labels do not pile up on a short axis.

    Parameters
    ----------
    ax : matplotlib Axes
    xvalues, yvalues : array, optional
        Put the labelled ticks exactly at these values (thinned to at most
        :data:`MAX_LOG_LABELS`), e.g. the time steps or widths a study swept.

    Returns
    -------
    ax
    """
    _check_ax(ax)
    if ax.get_xscale() == "log":
        _tidy_log_axis(ax.xaxis, *sorted(ax.get_xlim()), values=xvalues)
    if ax.get_yscale() == "log":
        _tidy_log_axis(ax.yaxis, *sorted(ax.get_ylim()), values=yvalues)
    return ax


# ---------------------------------------------------------------------------------------
# risk and lazy-vs-rich curves
# ---------------------------------------------------------------------------------------

#: Colours and line styles of the reference levels of :func:`risk`, in the order given.
REFERENCE_STYLES = (("0.15", ":"), ("0.35", "-."), ("0.55", (0, (6, 2))), ("0.25", (0, (1, 1))),
                    ("0.45", (0, (4, 1, 1, 1, 1, 1))))


def _references(reference):
    """[(label, t or None, values)] from the ``reference`` argument of :func:`risk`."""
    if reference is None:
        return []
    if not isinstance(reference, dict):
        raise TypeError(f"reference: expected a dict of label -> number or (t, values), "
                        f"got {type(reference).__name__}")
    out = []
    for label, value in reference.items():
        name = f"reference[{label!r}]"
        if not isinstance(label, str):
            raise TypeError(f"reference: labels must be strings, got {type(label).__name__}")
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError(f"{name}: expected a number or a pair (t, values)")
            t, y = (np.asarray(v, float) for v in value)
            if t.ndim != 1 or t.shape != y.shape or not len(t):
                raise ValueError(f"{name}: t and values must be 1-D arrays of the same length, got shapes "
                                 f"{t.shape} and {y.shape}")
            if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
                raise ValueError(f"{name}: t and values must be finite")
            out.append((label, t, y))
        else:
            try:
                y = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"{name}: expected a number or a pair (t, values), got {type(value).__name__}") \
                    from None
            if not np.isfinite(y):
                raise ValueError(f"{name}: must be finite, got {y}")
            out.append((label, None, np.array(y)))
    return out


def risk(trajs, labels=None, ax=None, logx=True, test=True, title=None, reference=None):
    """Training (solid) and test (dashed) risk against time, log-log, with reference levels.

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
    reference : dict of str -> float or (t, values), optional
        Reference levels, drawn in shades of grey with their labels in the legend (in the
        risk's convention: the mean of l(f, y), so 1/2 |y - f|^2 for the squared loss). A
        number is a horizontal line, e.g. ``{"Bayes risk": noise**2 / 2, "kernel regression":
        test_risk_of_krr}``; a pair of 1-D arrays ``(t, values)`` is a curve over time, e.g.
        ``{"NTK limit": (traj.t, ntk_test_risk)}``. Points that a logarithmic axis cannot
        show (t <= 0 with ``logx``, values <= 0) are left out.

    Returns
    -------
    matplotlib.figure.Figure
        In a figure of its own the legend sits to the right of the axes (in ``ax``: where
        it covers the least).

    Raises
    ------
    TypeError, ValueError
        For a ``reference`` that is not a dict of numbers or pairs of equal-length finite
        arrays (the message names the entry).
    """
    _check_ax(ax)
    trajs, labels = _as_list(trajs, labels)
    refs = _references(reference)
    own = ax is None
    with _style():
        fig, ax = _figure_and_ax(ax, width=6.6)         # room for the legend on the right
        clip = _positive if logx else (lambda t, y: (np.asarray(t), np.asarray(y)))
        for i, (tr, lab) in enumerate(zip(trajs, labels)):
            c = _color(tr, i)
            ax.plot(*clip(tr.t, tr.train_risk), color=c, ls="-", label=f"{lab}, train")
            if test and getattr(tr, "test_risk", None) is not None:
                ax.plot(*clip(tr.t, tr.test_risk), color=c, ls="--", label=f"{lab}, test")
        for j, (lab, t, y) in enumerate(refs):
            color, ls = REFERENCE_STYLES[j % len(REFERENCE_STYLES)]
            if t is None:
                if y > 0:
                    ax.axhline(float(y), color=color, ls=ls, lw=1.2, label=lab)
            else:
                keep = np.isfinite(y) & (y > 0) & ((t > 0) if logx else True)
                ax.plot(t[keep], y[keep], color=color, ls=ls, lw=1.2, label=lab)
        if logx:
            ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(TIME_LABEL + (", log scale" if logx else ""))
        ax.set_ylabel("risk (mean of l(f, y)), log scale")
        tidy_log_axes(ax)
        if title:
            ax.set_title(title)
        _legend(ax, outside=own)
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
            tidy_log_axes(ax)
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
    The other diagnostics are drawn by :func:`diagnostics`.

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
            tidy_log_axes(ax)
        axes[0, 0].legend()
        if title:
            fig.suptitle(title)
    return fig


#: The series drawn by :func:`diagnostics` (recorded with ``diagnostics=True``).
DIAGNOSTIC_SERIES = ("alignment", "objective_change", "tangent_change")


def _recorded(trajs, keys):
    return [k for k in keys if any(getattr(tr, k, None) is not None for tr in trajs)]


def diagnostics(trajs, labels=None, title=None):
    """Kernel-target alignment and the relative changes of the objective and of the tangent
    features over time.

    Left: the alignment A(K_t, Y Y^T) = <K_t, Y Y^T>_F / (|K_t|_F |Y Y^T|_F) of the tangent
    kernel on the probe set (linear scale): it grows when the kernel adapts to the target
    (rich regime) and stays put in the lazy one. Right, log-log, for each run: the relative
    decrease of the training risk over each record interval (solid) and the relative change
    |Df(theta_t) - Df(theta_prev)|_F / |Df(theta_prev)|_F of the tangent features over the
    same interval (dashed). Training is lazy when the features change much less than the
    objective ([COB19]_). Values <= 0 (the t = 0 record, an interval in which the risk went
    up) cannot be shown on the log scale and are left out.

    Parameters
    ----------
    trajs : Trajectory or list of Trajectory
        Runs made with ``diagnostics=True``.
    labels : str or list of str, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One panel for the alignment and one for the changes, each only when recorded.

    Raises
    ------
    ValueError
        If no trajectory recorded any of these series.

    References
    ----------
    .. [COB19] L. Chizat, E. Oyallon, F. Bach, "On lazy training in differentiable
       programming", NeurIPS 2019 (the relative change of the objective against that of the
       model's differential, their Section 2).
    """
    trajs, labels = _as_list(trajs, labels)
    present = _recorded(trajs, DIAGNOSTIC_SERIES)
    if not present:
        raise ValueError("trajs: none recorded alignment, objective_change or tangent_change "
                         "(run simulate with diagnostics=True)")
    panels = (["alignment"] if "alignment" in present else []) + \
        (["changes"] if {"objective_change", "tangent_change"} & set(present) else [])
    fig, axes = _figure(1, len(panels), width=3.8)
    with _style():
        for ax, panel in zip(axes[0], panels):
            for i, (tr, lab) in enumerate(zip(trajs, labels)):
                c = _color(tr, i)
                if panel == "alignment":
                    if tr.alignment is not None:
                        t, a = np.asarray(tr.t, float), np.asarray(tr.alignment, float)
                        keep = (t > 0) & np.isfinite(a)
                        ax.plot(t[keep], a[keep], color=c, label=lab)
                    continue
                for key, ls, what in (("objective_change", "-", "objective"),
                                      ("tangent_change", "--", "tangent features")):
                    values = getattr(tr, key, None)
                    if values is not None:
                        ax.plot(*_positive(tr.t, values), color=c, ls=ls, label=f"{lab}: {what}")
            ax.set_xscale("log")
            ax.set_xlabel(TIME_LABEL + ", log scale")
            if panel == "alignment":
                ax.set_ylabel(r"kernel-target alignment $A(K_t, YY^\top)$")
            else:
                ax.set_yscale("log")
                ax.set_ylabel("relative change per record, log scale")
            tidy_log_axes(ax)
            ax.legend()
        if title:
            fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------
# particles
# ---------------------------------------------------------------------------------------

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


def _abscissae(net, D):
    """The horizontal coordinate of every particle, one column per panel: |w_j| (D None) or
    <w_j, u_p> for each unit direction u_p."""
    W = np.asarray(net.W, float)
    return np.linalg.norm(W, axis=1)[:, None] if D is None else W @ D


def _outputs(output, k):
    if output is None:
        return list(range(k))
    output = check_int(output, "output", minimum=0)
    if output >= k:
        raise ValueError(f"output: must be in [0, {k}), got {output}")
    return [output]


def _panel_labels(D, outputs, k):
    """(xlabel, ylabel) of each panel, panels ordered output by output, direction by direction."""
    npanel = 1 if D is None else D.shape[1]
    out = []
    for o in outputs:
        ylabel = r"$a_j$" if k == 1 else rf"$a_{{j,{o}}}$ (output {o})"
        for p in range(npanel):
            xlabel = (r"$|w_j|$" if D is None else
                      r"$\langle w_j, w^*\rangle$" if npanel == 1 else rf"$\langle w_j, u_{{{p + 1}}}\rangle$")
            out.append((o, p, xlabel, ylabel))
    return out


def _panel_grid(npanel_dirs, n_outputs, max_cols=5):
    """(rows, cols) for n_outputs x npanel_dirs panels: a row per output when there are
    several directions, else the outputs wrapped in rows of at most ``max_cols``."""
    if npanel_dirs > 1:
        return n_outputs, npanel_dirs
    cols = min(n_outputs, max_cols)
    return int(math.ceil(n_outputs / cols)), cols


#: Opacity of the oldest and of the newest part of a particle path.
PATH_ALPHA = (0.25, 0.95)


def _time_cmap():
    """The colour map of time: viridis without its last, too light, yellows."""
    from matplotlib.colors import ListedColormap
    return ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, 256)), name="time")


def _time_fraction(times):
    times = np.asarray(times, float)
    span = times[-1] - times[0]
    return (times - times[0]) / span if span > 0 else np.linspace(0.0, 1.0, len(times))


def _path_colors(times, cmap):
    """RGBA at each snapshot: the time colour, fading (more transparent) the older it is."""
    u = _time_fraction(times)
    rgba = cmap(u)
    rgba[:, 3] = PATH_ALPHA[0] + (PATH_ALPHA[1] - PATH_ALPHA[0]) * u
    return rgba


def particles(snapshots, labels=None, direction=None, output=None, title=None, max_points=4000, paths="auto",
              max_paths=300):
    """Particle pictures: a_j against |w_j| (or against <w_j, u> for teacher directions u),
    with the path each particle followed.

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
    output : int or None
        Which output's a_j to draw; None (default): every output, one row of panels per
        output when there are several directions, else one panel per output (at most five
        to a row).
    title : str, optional
    max_points : int
        At most this many particles are drawn as points (a deterministic even subsample).
    paths : bool or "auto"
        Draw each particle's path through the snapshots (one line per particle, coloured
        by time and fading from the oldest part to the newest, the start as a grey ring and
        the end as a dot; a colour bar gives the time). "auto": for a Trajectory. With
        ``False`` the networks are drawn as point clouds, one colour each.
    max_paths : int
        At most this many paths (an even subsample of the particles).

    Returns
    -------
    matplotlib.figure.Figure
        The legend sits outside the panels, below them.

    Raises
    ------
    ValueError
        For a direction of the wrong shape, an output out of range, or paths through
        networks of different widths.
    """
    pairs, times = _snapshot_pairs(snapshots, labels)
    max_points = check_int(max_points, "max_points")
    max_paths = check_int(max_paths, "max_paths")
    if paths == "auto":
        paths = times is not None
    elif not isinstance(paths, (bool, np.bool_)):
        raise TypeError(f"paths: expected True, False or 'auto', got {paths!r}")
    net0 = pairs[0][1]
    D = None if direction is None else _unit_directions(direction, net0.W.shape[1])
    k = net0.a.shape[1]
    outputs = _outputs(output, k)
    if paths and len({net.W.shape[0] for _, net in pairs}) != 1:
        raise ValueError("paths: the networks have different widths, so their particles do not follow each other "
                         "(use paths=False)")
    npanel = 1 if D is None else D.shape[1]
    nrows, ncols = _panel_grid(npanel, len(outputs))
    fig, axes = _figure(nrows, ncols, width=3.4 if ncols > 2 else 3.8, height=3.0)
    xs = np.stack([_abscissae(net, D) for _, net in pairs])               # (snapshots, N, panels)
    ys = np.stack([np.asarray(net.a, float) for _, net in pairs])          # (snapshots, N, k)
    points = _subsample(xs.shape[1], max_points)
    panels = _panel_labels(D, outputs, k)
    with _style():
        cmap = _time_cmap()
        handles = []
        for ax, (o, p, xlabel, ylabel) in zip(axes.flat, panels):
            if paths:
                handles = _draw_paths(ax, xs[:, :, p], ys[:, :, o], times if times is not None
                                      else np.arange(len(pairs), dtype=float), cmap, points,
                                      _subsample(xs.shape[1], max_paths), [lab for lab, _ in pairs])
            else:
                colors = cmap(np.linspace(0.0, 1.0, len(pairs))) if len(pairs) > 2 else ["0.6", "C1"][:len(pairs)]
                for s, ((lab, _), c) in enumerate(zip(pairs, colors)):
                    ax.scatter(xs[s, points, p], ys[s, points, o], s=6, color=c, alpha=0.7, lw=0, label=lab)
                handles = ax.get_legend_handles_labels()[0]
            ax.axhline(0.0, color="0.3", lw=0.5)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
        for ax in axes.flat[len(panels):]:
            ax.set_axis_off()
        if paths and times is not None:
            _time_colorbar(fig, axes, times, cmap, "time t along the paths (mean-field units)")
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), markerscale=2)
        if title:
            fig.suptitle(title)
    return fig


def _draw_paths(ax, x, y, times, cmap, points, paths, labels):
    """Paths of the particles ``paths`` through the snapshots (x, y of shape (snapshots, N)),
    start rings and end dots of the particles ``points``; returns the legend handles."""
    from matplotlib.collections import LineCollection
    xy = np.stack([x[:, paths], y[:, paths]], axis=-1)                    # (snapshots, paths, 2)
    segments = np.stack([xy[:-1], xy[1:]], axis=2).reshape(-1, 2, 2)      # snapshot-major
    colors = np.repeat(_path_colors(times, cmap)[1:], len(paths), axis=0)
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=0.8, label="_paths"))
    start = ax.scatter(x[0, points], y[0, points], s=9, facecolors="none", edgecolors="0.55", lw=0.5,
                       label=f"start ({labels[0]})")
    end = ax.scatter(x[-1, points], y[-1, points], s=6, color=cmap(1.0), lw=0, label=f"end ({labels[-1]})")
    ax.autoscale_view()
    return [start, end]


def _time_colorbar(fig, axes, times, cmap, label):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    hi = times[-1] if times[-1] > times[0] else times[0] + 1.0
    return fig.colorbar(ScalarMappable(norm=Normalize(times[0], hi), cmap=cmap), ax=np.ravel(axes).tolist(),
                        shrink=0.9, label=label)


def _trajectory_nets(tr):
    """(t, TwoLayer) pairs of a trajectory: its particle snapshots (a trajectory read from a
    file) when there are at least two, else t = 0 and the last record."""
    if not _is_two_layer(tr):
        raise TypeError(f"trajectory: the particle and kernel figures draw a two-layer network's particles; this "
                        f"run trained a {type(tr.net0).__name__} (its records: risk, lazy_rich, diagnostics)")
    snaps = getattr(tr, "snapshots", None)
    if snaps is not None and len(snaps) >= 2:
        return snaps.nets()
    return [(float(tr.t[0]), tr.net0), (float(tr.t[-1]), tr.net)]


def _is_two_layer(tr):
    from ._network import TwoLayer
    return isinstance(tr.net0, TwoLayer)


def _is_trajectory(obj):
    return hasattr(obj, "net") and hasattr(obj, "net0") and hasattr(obj, "t")


def _snapshot_pairs(snapshots, labels):
    """([(label, TwoLayer)], times or None): the times when ``snapshots`` is a trajectory."""
    from ._network import TwoLayer
    if isinstance(snapshots, TwoLayer):
        return [(labels[0] if labels else "particles", snapshots)], None
    if _is_trajectory(snapshots):
        nets = _trajectory_nets(snapshots)
        return [(f"t = {t:.3g}", net) for t, net in nets], np.array([t for t, _ in nets])
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
    return pairs, None


# ---------------------------------------------------------------------------------------
# animation
# ---------------------------------------------------------------------------------------

#: Writers of :func:`animate` by file extension (matplotlib.animation writer names).
ANIMATION_WRITERS = {".gif": "pillow", ".mp4": "ffmpeg"}


def animate(source, out, direction=None, output=0, fps=8, trail=4, max_points=2000, max_paths=200, dpi=100,
            title=None):
    """The particle flow of a run as an animation: one frame per particle snapshot.

    Each frame shows the particles (a_j against |w_j|, or against <w_j, u> for teacher
    directions u: one panel per direction) at one snapshot, with a fading trail through
    the ``trail`` snapshots before it. The axes are fixed over the whole run.

    Parameters
    ----------
    source : Trajectory or path
        A trajectory, or the path of a trajectory file (read with :func:`mfntk.load`). Its
        particle snapshots (``snapshot_every`` of :func:`mfntk.simulate`) are the frames;
        a trajectory without snapshots gives two frames, t = 0 and the end.
    out : path
        The file to write: ``.gif`` (matplotlib's Pillow writer) or ``.mp4`` (needs ffmpeg
        on the PATH).
    direction : array (d,) or (d, r), optional
        Teacher direction(s), as in :func:`particles`.
    output : int
        Which output's a_j to draw.
    fps : int
        Frames per second.
    trail : int
        Snapshots of trail behind each particle (0: none).
    max_points, max_paths : int
        At most this many particles drawn, and trails drawn (even subsamples).
    dpi : int
    title : str, optional
        Shown above the time of each frame.

    Returns
    -------
    str
        ``out``.

    Raises
    ------
    ValueError
        For an extension other than .gif or .mp4, or bad ``direction`` / ``output``.
    RuntimeError
        For .mp4 when ffmpeg is not available.
    """
    from matplotlib import animation

    from ._validation import check_path
    if isinstance(source, (str, bytes, os.PathLike)):
        from ._io import load
        source = load(check_path(source, "source"))
    if not _is_trajectory(source):
        raise TypeError(f"source: expected a Trajectory or the path of a trajectory file, got "
                        f"{type(source).__name__}")
    out = os.fspath(check_path(out, "out"))
    ext = os.path.splitext(out)[1].lower()
    if ext not in ANIMATION_WRITERS:
        raise ValueError(f"out: unknown extension {ext!r}; expected one of {', '.join(ANIMATION_WRITERS)}")
    writer_cls = animation.writers[ANIMATION_WRITERS[ext]] if animation.writers.is_available(
        ANIMATION_WRITERS[ext]) else None
    if writer_cls is None:
        raise RuntimeError(f"out: writing {ext} needs {ANIMATION_WRITERS[ext]}, which matplotlib cannot find "
                           "(install ffmpeg, or write a .gif)")
    fps = check_int(fps, "fps")
    trail = check_int(trail, "trail", minimum=0)
    dpi = check_int(dpi, "dpi")
    nets = _trajectory_nets(source)
    times = np.array([t for t, _ in nets])
    net0 = nets[0][1]
    D = None if direction is None else _unit_directions(direction, net0.W.shape[1])
    (o,) = _outputs(output, net0.a.shape[1])
    xs = np.stack([_abscissae(net, D) for _, net in nets])                 # (frames, N, panels)
    ys = np.stack([np.asarray(net.a, float)[:, o] for _, net in nets])     # (frames, N)
    points = _subsample(xs.shape[1], check_int(max_points, "max_points"))
    paths = _subsample(xs.shape[1], check_int(max_paths, "max_paths"))
    panels = _panel_labels(D, [o], net0.a.shape[1])
    fig, axes = _figure(1, len(panels), width=3.8, height=3.2)
    from matplotlib.collections import LineCollection
    with _style():
        cmap = _time_cmap()
        artists = []
        for ax, (_, p, xlabel, ylabel) in zip(axes[0], panels):
            x, y = xs[:, :, p], ys
            pad_x, pad_y = 0.05 * (np.ptp(x) or 1.0), 0.05 * (np.ptp(y) or 1.0)
            ax.set_xlim(x.min() - pad_x, x.max() + pad_x)
            ax.set_ylim(y.min() - pad_y, y.max() + pad_y)
            ax.axhline(0.0, color="0.3", lw=0.5)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            lines = LineCollection([], linewidths=0.8)
            ax.add_collection(lines)
            dots = ax.scatter(x[0, points], y[0, points], s=6, color=cmap(0.0), lw=0)
            artists.append((x, y, lines, dots))
        head = fig.suptitle("")

        def draw(i):
            color = cmap(_time_fraction(times)[i])
            first = max(0, i - trail)
            for x, y, lines, dots in artists:
                dots.set_offsets(np.column_stack([x[i, points], y[i, points]]))
                dots.set_color(color)
                if i > first:
                    xy = np.stack([x[first:i + 1, paths], y[first:i + 1, paths]], axis=-1)
                    seg = np.stack([xy[:-1], xy[1:]], axis=2).reshape(-1, 2, 2)
                    age = np.repeat(np.arange(i - first, 0, -1), len(paths))       # 1 = newest
                    rgba = np.tile(np.asarray(color), (len(seg), 1))
                    rgba[:, 3] = PATH_ALPHA[1] - (PATH_ALPHA[1] - PATH_ALPHA[0]) * (age - 1) / max(trail, 1)
                    lines.set_segments(seg)
                    lines.set_color(rgba)
                else:
                    lines.set_segments([])
            head.set_text((f"{title}\n" if title else "") + f"t = {times[i]:.3g} (mean-field units)")
            return []

        anim = animation.FuncAnimation(fig, draw, frames=len(nets), interval=1000 / fps, blit=False,
                                       repeat=False)
        anim.save(out, writer=writer_cls(fps=fps), dpi=dpi)
    return out


# ---------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------

#: Orders of the inputs in :func:`kernel`'s heatmaps.
KERNEL_ORDERS = ("auto", "labels", "eigenvector", "none")
#: The colour scale of :func:`kernel`'s heatmaps spans these percentiles of their entries, so
#: that a few large diagonal entries do not wash the rest out.
HEATMAP_PERCENTILES = (1.0, 99.0)


def _class_labels(labels, n):
    """One class label per input from labels (n,), -1/+1 (n, 1) or one-hot rows (n, k)."""
    from ._validation import as_array
    lab = as_array(labels, "labels", shape=[(n,), (n, None)])
    if lab.ndim == 2:
        lab = lab[:, 0] if lab.shape[1] == 1 else np.argmax(lab, axis=1).astype(float)
    return lab


def _leading_eigenvector(K):
    """The eigenvector of the largest eigenvalue of the symmetric K, signed to sum >= 0."""
    _, V = np.linalg.eigh(K)
    v = V[:, -1]
    return -v if v.sum() < 0 else v


def _kernel_order(K, labels, order):
    """(permutation of the inputs, words for the axis label) for :func:`kernel`'s heatmaps."""
    if order == "none":
        return np.arange(K.shape[0]), "as given"
    if order == "labels" and labels is None:
        raise ValueError("order: 'labels' needs labels= (or a classification data set in the trajectory's file)")
    v = _leading_eigenvector(K)
    if order == "eigenvector" or labels is None:
        return np.argsort(v, kind="stable"), "by top eigenvector"
    return np.lexsort((v, labels)), "by label"


def kernel(source, X=None, kind="ntk", max_points=200, threads=None, title=None, labels=None, order="auto",
           max_spectra=12):
    """Empirical tangent kernel over a run: heatmaps at the start and the end, and the
    eigenvalue spectrum at every snapshot.

    Parameters
    ----------
    source : Trajectory or list of (label, TwoLayer)
        A trajectory gives its particle snapshots (a trajectory read from a file), or t = 0
        and the last record.
    X : array (n, d), optional
        Inputs on which the Gram matrices are formed (the first ``max_points`` of them).
        Default: the training inputs stored in the trajectory's file.
    kind : str
        Which part of K_mu (SPEC 4): a kernel kind of the core, "rf", "nt" or "ntk".
    max_points : int
    threads : int or None
    title : str, optional
    labels : array (n,) or (n, k), optional
        Class labels of the rows of X: integers, -1/+1, or one-hot rows (their argmax).
        Default, for inputs taken from a file of classification data: its labels.
    order : {"auto", "labels", "eigenvector", "none"}
        The order of the inputs along the heatmaps' axes, the same in every heatmap.
        "labels": by class (lines mark the class boundaries), then by the leading
        eigenvector within a class; "eigenvector": by the entries of the eigenvector of the
        largest eigenvalue of the last kernel, which gathers the inputs the kernel treats
        alike (sorting by a coordinate of x shows nothing for isotropic inputs); "auto":
        "labels" when labels are known, else "eigenvector"; "none": as given.
    max_spectra : int
        At most this many spectra (snapshots evenly spread, the first and the last kept).

    Returns
    -------
    matplotlib.figure.Figure
        The Gram matrices of the first and the last network (one colour scale, spanning the
        percentiles :data:`HEATMAP_PERCENTILES` of their entries) and one
        panel with the eigenvalues of K / n in decreasing order (log-log), one curve per
        snapshot, coloured by time (for a list of networks: one colour each, with a legend).

    Raises
    ------
    ValueError
        Without X for a trajectory that has no file, for X or labels of the wrong shape, an
        unknown kind or order, or order="labels" without labels.
    """
    from ._registry import check_kernel_kind
    from ._validation import resolve_threads
    check_kernel_kind(kind)
    check_choice(order, "order", KERNEL_ORDERS)
    max_points = check_int(max_points, "max_points")
    max_spectra = check_int(max_spectra, "max_spectra", minimum=2)
    pairs, times = _snapshot_pairs(source, None)
    d = pairs[0][1].d
    if X is None:
        path = getattr(source, "path", None)
        if path is None:
            raise ValueError("X: needed (the trajectory has no file to take the training inputs from)")
        from ._io import load_data
        data = load_data(path)
        X = data.X
        if labels is None and data.task == "classification":
            labels = data.y
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"X: expected shape (n, {d}), got {X.shape}")
    if labels is not None:
        labels = _class_labels(labels, X.shape[0])[:max_points]
    X = X[:max_points]
    n = X.shape[0]
    th = resolve_threads(threads)
    shown = _subsample(len(pairs), max_spectra)
    grams = {}
    for i in shown:
        net = pairs[i][1]
        grams[i] = np.asarray(kernels.empirical(net, np.ascontiguousarray(X, dtype=net.dtype), kind=kind,
                                                threads=th), np.float64)
    heat = list(dict.fromkeys([0, len(pairs) - 1]))
    perm, how = _kernel_order(grams[heat[-1]], labels, order)
    fig, axes = _figure(1, len(heat) + 1, width=3.3, height=3.0)
    vmin, vmax = np.percentile(np.concatenate([grams[i].ravel() for i in heat]), HEATMAP_PERCENTILES)
    with _style():
        for ax, i in zip(axes[0], heat):
            im = ax.imshow(grams[i][np.ix_(perm, perm)], vmin=vmin, vmax=vmax, cmap="viridis",
                           interpolation="nearest")
            ax.set_title(f"{kind.upper()} Gram matrix, {pairs[i][0]}")
            ax.set_xlabel(f"input i ({how})")
            ax.set_ylabel("input i'")
            ax.grid(False)
            if how == "by label":
                for b in np.flatnonzero(np.diff(labels[perm])) + 0.5:
                    ax.axhline(b, color="w", lw=0.6)
                    ax.axvline(b, color="w", lw=0.6)
        fig.colorbar(im, ax=axes[0, :len(heat)].tolist(), shrink=0.8, extend="both",
                     label=r"$K_\mu(x_i, x_{i'})$, scale of percentiles " + "-".join(
                         f"{p:g}" for p in HEATMAP_PERCENTILES))
        ax = axes[0, -1]
        cmap = _time_cmap()
        fractions = _time_fraction(times[shown]) if times is not None else np.linspace(0.0, 1.0, len(shown))
        if len(shown) <= 2 and times is None:
            colors = ["0.5", "C1"]
        else:
            colors = cmap(fractions)
        for c, i in zip(colors, shown):
            ev = np.sort(np.linalg.eigvalsh(grams[i] / n))[::-1]
            ev = ev[ev > 1e-16 * max(ev[0], 1e-300)]
            ax.plot(np.arange(1, len(ev) + 1), ev, marker=".", ms=3, ls="-", lw=1.0, color=c, label=pairs[i][0])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("index, log scale")
        ax.set_ylabel(r"eigenvalue of $K/n$, log scale")
        ax.set_title(f"spectrum at {len(shown)} times" if times is not None else "spectrum")
        tidy_log_axes(ax)
        if times is not None:
            _time_colorbar(fig, ax, times[shown], cmap, TIME_LABEL)
        else:
            ax.legend()
        if title:
            fig.suptitle(title)
    return fig


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
        tidy_log_axes(ax, xvalues=x)
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
        tidy_log_axes(ax, xvalues=alphas, yvalues=widths)
        ax.grid(False)
        ax.legend(loc="lower right", labelcolor="w")
        ax.set_title(title or f"lazy-to-rich phase diagram: {quantity.replace('_', ' ')}")
    return fig


# ---------------------------------------------------------------------------------------
# everything about one trajectory
# ---------------------------------------------------------------------------------------

def trajectory_figures(traj, out, direction=None, threads=None):
    """Write every figure that applies to one trajectory into the folder ``out``.

    risk.png always; error.png for classification runs; lazy_rich.png when the kernel
    distance, displacement or linearized distance were recorded; diagnostics.png when the
    alignment or the objective and tangent changes were (``diagnostics=True``);
    for a two-layer network, particles.png (paths through the snapshots, or from t = 0 to the
    end) and kernel.png when the training inputs are available (a trajectory read from a
    file). Returns the list of paths written.
    """
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    paths = [save(risk(traj), os.path.join(out, "risk.png"))]
    if getattr(traj, "train_error", None) is not None:
        paths.append(save(classification_error(traj), os.path.join(out, "error.png")))
    if _recorded([traj], [k for k, _ in _LAZY_SERIES]):
        paths.append(save(lazy_rich(traj), os.path.join(out, "lazy_rich.png")))
    if _recorded([traj], DIAGNOSTIC_SERIES):
        paths.append(save(diagnostics(traj), os.path.join(out, "diagnostics.png")))
    if not _is_two_layer(traj):
        return paths
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
