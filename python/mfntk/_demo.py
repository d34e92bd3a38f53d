"""The lazy-versus-rich demonstration behind ``mfntk demo``.

One student, two scalings: the same two-layer ReLU network (same particles at t = 0,
symmetric initialisation so that f(x; theta_0) = 0) is trained by the distributional
dynamics on a single-neuron teacher y = relu(<w*, x>), once with alpha = 1 (mean-field)
and once with alpha = sqrt(N) (NTK). In mean-field time units (SPEC 3) the tangent kernel
K_mu does not depend on alpha, so at t = 0 both functions move at the same speed; what
differs is how far the particles must travel to do it: |theta_t - theta_0| is O(1) in the
mean-field scaling and O(1/alpha) = O(N^-1/2) in the NTK one. The mean-field run learns
the teacher's direction (kernel distance O(1), low test risk); the NTK run fits the
training set with an almost frozen kernel (kernel distance ~ N^-1/2), tracks its
linearized model, and generalises like kernel regression with K_0.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import numpy as np

#: The demo's problem (kept small: the whole demo runs in seconds on two cores).
DEMO = {
    "d": 20, "width": 256, "activation": "relu", "n_train": 256, "n_test": 2000,
    "t_max": 40.0, "dt": 0.2, "method": "euler", "records": 50, "probe_size": 128,
    "teacher_seed": 0, "data_seed": 1, "net_seed": 2,
}

SUMMARY_KEYS = ("scaling", "alpha", "width", "learning_rate", "t_max", "train_risk", "test_risk",
                "train_risk_0", "test_risk_0", "displacement", "kernel_distance", "linearized_distance",
                "wall_time")


def run_demo(out="mfntk-demo", threads=None, quiet=False, progress=None):
    """Train the same student in the mean-field and in the NTK scaling and compare.

    Parameters
    ----------
    out : str or path
        Folder for ``summary.json``, ``risk.png``, ``lazy_rich.png`` and ``particles.png``
        (created if missing).
    threads : int or None
        OpenMP threads per run (None: all available).
    quiet : bool
        Do not print the table.
    progress : bool or None
        Progress bars (None: only on a terminal, and never when ``quiet``).

    Returns
    -------
    dict
        The summary written to ``summary.json``: ``"problem"`` (the settings), ``"runs"``
        (one dict per scaling with the keys of :data:`SUMMARY_KEYS`) and ``"files"``.
    """
    import mfntk as mf
    from . import plot

    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    p = DEMO
    teacher = mf.datasets.SingleNeuron(p["d"], activation=p["activation"], seed=p["teacher_seed"])
    data = mf.datasets.teacher_dataset(teacher, p["d"], p["n_train"], p["n_test"], seed=p["data_seed"])
    if quiet and progress is None:
        progress = False
    trajs, runs = {}, []
    with _blas_single_thread():
        for scaling in ("mf", "ntk"):
            _run_one(mf, p, scaling, data, threads, progress, trajs, runs)

    labels = [f"{s.upper()} (alpha={trajs[s].net.alpha:.3g})" for s in trajs]
    files = {}
    fig = plot.risk(list(trajs.values()), labels=labels,
                    title=f"ReLU student N={p['width']} on a single-neuron teacher, d={p['d']}, n={p['n_train']}")
    files["risk"] = plot.save(fig, os.path.join(out, "risk.png"))
    fig = plot.lazy_rich(list(trajs.values()), labels=labels, title="lazy (NTK) vs rich (mean-field) training")
    files["lazy_rich"] = plot.save(fig, os.path.join(out, "lazy_rich.png"))
    fig = _particle_figure(trajs, teacher.w, plot)
    files["particles"] = plot.save(fig, os.path.join(out, "particles.png"))

    summary = {
        "problem": dict(p, teacher=repr(teacher), data=data.description,
                        risk="mean over samples of 1/2 (y - f)^2; test risk on n_test fresh samples",
                        time="mean-field units (SPEC 3): gradient descent step eta = dt N / alpha^2"),
        "runs": runs,
        "files": {k: os.path.basename(v) for k, v in files.items()},
        "version": mf.__version__,
    }
    path = os.path.join(out, "summary.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    if not quiet:
        print(format_table(runs), file=sys.stdout)
        print(f"\nwrote {path} and {', '.join(summary['files'].values())} to {out}", file=sys.stdout)
    return summary


def _run_one(mf, p, scaling, data, threads, progress, trajs, runs):
    """Train the demo's student in one scaling; append its trajectory and summary row."""
    net = mf.TwoLayer(p["d"], p["width"], activation=p["activation"], scaling=scaling, symmetric=True,
                      seed=p["net_seed"])
    start = time.perf_counter()
    tr = mf.simulate(net, data, p["t_max"], p["dt"], method=p["method"], diagnostics=True, linearized=True,
                     record_every=p["t_max"] / p["records"], probe_size=p["probe_size"], threads=threads,
                     progress=progress)
    wall = time.perf_counter() - start
    trajs[scaling] = tr
    runs.append({
        "scaling": scaling, "alpha": net.alpha, "width": net.width,
        "learning_rate": mf.learning_rate(net, p["dt"]), "t_max": float(tr.t[-1]),
        "train_risk": float(tr.train_risk[-1]), "test_risk": float(tr.test_risk[-1]),
        "train_risk_0": float(tr.train_risk[0]), "test_risk_0": float(tr.test_risk[0]),
        "displacement": float(tr.displacement[-1]), "kernel_distance": float(tr.kernel_distance[-1]),
        "linearized_distance": float(tr.linearized_distance[-1]), "wall_time": wall,
    })


def _particle_figure(trajs, w_star, plot):
    """Two panels (mean-field, NTK): a_j against <w_j, w*> at t = 0 and at the end."""
    fig, axes = plot._figure(1, 2, width=3.8, height=3.2, sharey=False)
    with plot._style():
        for ax, (scaling, tr) in zip(axes[0], trajs.items()):
            for net, lab, c in ((tr.net0, "t = 0", "0.65"), (tr.net, f"t = {tr.t[-1]:.3g}", plot.SCALING_COLORS[scaling])):
                ax.scatter(np.asarray(net.W) @ w_star, np.asarray(net.a)[:, 0], s=6, color=c, lw=0, alpha=0.8,
                           label=lab)
            ax.axhline(0.0, color="0.3", lw=0.5)
            ax.set_xlabel(r"projection on the teacher $\langle w_j, w^*\rangle$")
            ax.set_ylabel(r"second-layer weight $a_j$")
            ax.set_title(f"{scaling.upper()} scaling, alpha = {tr.net.alpha:.3g}")
            ax.legend(markerscale=2)
    return fig


def _blas_single_thread():
    """Numpy's BLAS limited to one thread while the runs go (a context manager).

    The diagnostics recorded between chunks multiply small matrices (probe x N); a threaded
    BLAS next to the OpenMP engine only adds contention there, and on a loaded machine its
    spinning threads made the demo several times slower.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def format_table(runs):
    """The demo's comparison as a fixed-width text table."""
    cols = [("scaling", "{:>7}", "scaling"), ("alpha", "{:>7.3g}", "alpha"), ("train_risk", "{:>10.3g}", "train"),
            ("test_risk", "{:>10.3g}", "test"), ("displacement", "{:>10.3g}", "|dtheta|"),
            ("kernel_distance", "{:>10.3g}", "|dK|"), ("linearized_distance", "{:>10.3g}", "|f-flin|"),
            ("wall_time", "{:>8.2f}", "wall s")]
    head = " ".join(f"{h:>{len(fmt.format(runs[0][k]))}}" for k, fmt, h in cols)
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(" ".join(fmt.format(r[k]) for k, fmt, _ in cols))
    lines.append("train/test: risk = mean of 1/2 (y - f)^2 at t_max; |dtheta| = |theta_t - theta_0|/|theta_0|; "
                 "|dK| = |K_t - K_0|_F/|K_0|_F;")
    lines.append("|f-flin| = |f(theta_t) - fbar_t|/|f_0 - y| (distance to the linearized model)")
    return "\n".join(lines)
