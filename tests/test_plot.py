"""Every figure of mfntk.plot renders a non-empty image from a small trajectory or study,
headless, draws the data it is given (checked against the series and against numpy
references), and bad arguments give errors that name them."""

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection

import mfntk as mf
import reference as ref
from mfntk import plot, studies

D = 5
SNAPSHOTS = 5        # the file of the "mf" run: snapshots at t = 0, 0.5, ..., 2


@pytest.fixture(scope="module")
def data():
    return mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(D, "tanh", seed=0), D, 60, 40, seed=1)


@pytest.fixture(scope="module")
def trajs(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("plot") / "run.h5"
    out = {}
    for scaling in ("mf", "ntk"):
        net = mf.TwoLayer(D, 32, "tanh", scaling=scaling, symmetric=True, seed=2)
        kw = dict(method="euler", record_every=0.1, threads=1, diagnostics=True, linearized=True)
        if scaling == "mf":
            out[scaling] = mf.simulate(net, data, 2.0, 0.05, out=path, checkpoint_every=0.5, **kw)
        else:
            out[scaling] = mf.simulate(net, data, 2.0, 0.05, **kw)
    return out


def assert_image(fig, tmp_path, name="fig.png"):
    """The figure saves to a PNG that is not blank."""
    import matplotlib.image

    path = plot.save(fig, tmp_path / name)
    img = matplotlib.image.imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert np.std(img[..., :3]) > 0.01      # something was drawn
    assert fig.axes and all(ax.get_xlabel() or not ax.axison for ax in fig.axes if ax.get_label() != "<colorbar>")


def test_package_does_not_import_matplotlib():
    code = "import sys, mfntk; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_risk(trajs, tmp_path):
    fig = plot.risk(list(trajs.values()), labels=["MF", "NTK"], title="risk")
    assert_image(fig, tmp_path)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log"
    assert "mean-field units" in ax.get_xlabel()
    assert len(ax.get_legend().get_texts()) == 4          # train and test of each run
    assert_image(plot.risk(trajs["mf"], logx=False, test=False), tmp_path, "one.png")


def test_lazy_rich(trajs, tmp_path):
    fig = plot.lazy_rich(list(trajs.values()))
    assert len(fig.axes) == 3
    assert_image(fig, tmp_path)


def test_particles(trajs, data, tmp_path):
    assert_image(plot.particles(trajs["mf"]), tmp_path, "norm.png")     # snapshots from the file
    fig = plot.particles(trajs["ntk"], direction=data.teacher.w)
    assert_image(fig, tmp_path, "proj.png")
    assert "w^*" in fig.axes[0].get_xlabel()
    two = np.stack([data.teacher.w, np.roll(data.teacher.w, 1)], axis=1)
    fig = plot.particles([("start", trajs["mf"].net0), ("end", trajs["mf"].net)], direction=two)
    assert len(fig.axes) == 2
    assert_image(fig, tmp_path, "two.png")


def test_kernel(trajs, data, tmp_path):
    assert_image(plot.kernel(trajs["mf"]), tmp_path)                     # inputs from the file
    assert_image(plot.kernel(trajs["ntk"], X=data.X, kind="rf"), tmp_path, "rf.png")


def test_trajectory_figures(trajs, tmp_path):
    paths = plot.trajectory_figures(trajs["mf"], tmp_path / "figs")
    assert [p.split("/")[-1] for p in paths] == ["risk.png", "lazy_rich.png", "diagnostics.png", "particles.png",
                                                 "kernel.png"]
    assert all((tmp_path / "figs" / name).stat().st_size > 1000 for name in ("diagnostics.png", "kernel.png"))


def test_convergence(tmp_path):
    x = np.array([16, 32, 64, 128.0])
    y = 2.0 / np.sqrt(x)
    fit = studies.fit_loglog(x, y, "err", theory=-0.5)
    fig = plot.convergence(x, {"err": y, "other": 1 / x}, {"err": fit}, xlabel="width N")
    assert_image(fig, tmp_path)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "err: slope -0.50 (theory -0.5)" in texts


def test_study_figures_and_phase_diagram(data, tmp_path):
    small = dict(workers=1, threads=1)
    res = studies.alpha_sweep(data, alphas=[1.0, 8.0, 32.0], widths=[16, 32], t_max=1.0, dt=0.1, **small)
    assert_image(plot.study(res), tmp_path, "alpha.png")
    fig = plot.phase_diagram(res, "displacement")
    assert_image(fig, tmp_path, "phase.png")
    assert fig.axes[0].get_xscale() == "log"
    res = studies.time_step(data, dts=[0.5, 0.25], width=16, **small)
    assert_image(res.figure(), tmp_path, "dt.png")
    res = studies.width(data, widths=[8, 16], n_ref=64, t_max=0.5, dt=0.1, w2=False, **small)
    assert_image(res.figure(), tmp_path, "width.png")


def test_bad_arguments(trajs, data):
    plain = mf.simulate(mf.TwoLayer(D, 8, "tanh", seed=0), data, 0.2, 0.1, threads=1)
    with pytest.raises(ValueError, match="diagnostics=True"):
        plot.lazy_rich(plain)
    with pytest.raises(TypeError, match="trajs"):
        plot.risk(None)
    with pytest.raises(TypeError, match=r"trajs\[1\]"):
        plot.risk([plain, 3])
    with pytest.raises(ValueError, match="labels"):
        plot.risk([plain, plain], labels=["one"])
    with pytest.raises(ValueError, match="direction"):
        plot.particles(plain, direction=np.ones(D + 1))
    with pytest.raises(ValueError, match="X: needed"):
        plot.kernel(plain)
    with pytest.raises(ValueError, match="kind"):
        plot.kernel(plain, X=data.X, kind="bad")
    with pytest.raises(TypeError, match="ax"):
        plot.risk(plain, ax="axes")
    with pytest.raises(TypeError, match="result"):
        plot.study(object())
    with pytest.raises(TypeError, match="fig"):
        plot.save(None, "x.png")


# ---------------------------------------------------------------------------------------
# what the figures draw
# ---------------------------------------------------------------------------------------

def rendered(fig):
    """The figure drawn on an Agg canvas, and its renderer (for the positions of artists)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def snapshot_particles(traj):
    """(a, W) of every snapshot, read from the flat vectors [a.ravel(), W.ravel()] of the file."""
    N, k, d = traj.net.width, traj.net.outputs, traj.net.d
    theta = np.asarray(traj.snapshots.theta, float)
    return theta[:, :N * k].reshape(-1, N, k), theta[:, N * k:N * k + N * d].reshape(-1, N, d)


def test_risk_draws_the_series_and_reference_levels(trajs):
    tr = trajs["ntk"]
    keep = tr.t > 0
    curve = 0.5 * tr.test_risk
    fig = plot.risk(tr, labels="NTK", reference={"Bayes risk": 0.01, "NTK limit": (tr.t, curve)})
    lines = lines_by_label(fig.axes[0])
    np.testing.assert_array_equal(lines["NTK, train"].get_xdata(), tr.t[keep])
    np.testing.assert_array_equal(lines["NTK, train"].get_ydata(), tr.train_risk[keep])
    np.testing.assert_array_equal(lines["Bayes risk"].get_ydata(), [0.01, 0.01])          # a horizontal line
    assert list(lines["Bayes risk"].get_xdata()) == [0, 1]                                 # in axes coordinates
    np.testing.assert_array_equal(lines["NTK limit"].get_ydata(), curve[keep])
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[-2:] == ["Bayes risk", "NTK limit"]
    assert lines["Bayes risk"].get_linestyle() != lines["NTK limit"].get_linestyle()
    lin = plot.risk(tr, logx=False, test=False, reference={"zero": 0.0, "curve": (tr.t, curve)})
    assert "zero" not in lines_by_label(lin.axes[0])                                       # no 0 on a log axis
    assert len(lines_by_label(lin.axes[0])["curve"].get_xdata()) == len(tr.t)              # t = 0 kept


@pytest.mark.parametrize("reference, error, match", [
    ([0.1], TypeError, "reference: expected a dict"),
    ({1: 0.1}, TypeError, "labels must be strings"),
    ({"b": "x"}, TypeError, r"reference\['b'\]"),
    ({"b": float("nan")}, ValueError, r"reference\['b'\]: must be finite"),
    ({"c": (np.arange(3.0), np.ones(4))}, ValueError, r"reference\['c'\]: t and values"),
    ({"c": (np.arange(3.0),)}, ValueError, r"reference\['c'\]: expected a number or a pair"),
])
def test_risk_reference_errors(trajs, reference, error, match):
    with pytest.raises(error, match=match):
        plot.risk(trajs["ntk"], reference=reference)


def test_diagnostics_draws_alignment_and_changes(trajs, tmp_path):
    fig = plot.diagnostics(list(trajs.values()), labels=["MF", "NTK"])
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2
    left, right = lines_by_label(panels[0]), lines_by_label(panels[1])
    assert len(right) == 4                                   # objective and tangent change of each run
    for name, tr in zip(("MF", "NTK"), trajs.values()):
        keep = tr.t > 0
        np.testing.assert_array_equal(left[name].get_ydata(), tr.alignment[keep])
        for key, what in (("objective_change", "objective"), ("tangent_change", "tangent features")):
            series = getattr(tr, key)
            pos = keep & (series > 0)
            np.testing.assert_array_equal(right[f"{name}: {what}"].get_ydata(), series[pos])
            np.testing.assert_array_equal(right[f"{name}: {what}"].get_xdata(), tr.t[pos])
    assert panels[1].get_yscale() == "log" and panels[0].get_yscale() == "linear"
    # lazy training: the tangent features of the NTK run change far less than its objective
    assert np.all(trajs["ntk"].tangent_change[1:] < 0.5 * trajs["ntk"].objective_change[1:])
    assert_image(fig, tmp_path)


def test_particle_paths_follow_the_snapshots(trajs, tmp_path):
    tr = trajs["mf"]
    assert len(tr.snapshots) == SNAPSHOTS
    a, W = snapshot_particles(tr)
    fig = plot.particles(tr)
    ax = fig.axes[0]
    (paths,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = paths.get_segments()
    N = tr.net.width
    assert len(segments) == N * (SNAPSHOTS - 1)              # one segment per particle and snapshot interval
    x, y = np.linalg.norm(W, axis=2), a[:, :, 0]
    for s in range(SNAPSHOTS - 1):
        for j in (0, 7, N - 1):
            seg = segments[s * N + j]
            np.testing.assert_allclose(seg, [[x[s, j], y[s, j]], [x[s + 1, j], y[s + 1, j]]], rtol=1e-12)
    alpha = paths.get_colors()[:, 3].reshape(SNAPSHOTS - 1, N)
    assert np.all(np.diff(alpha[:, 0]) > 0) and np.all(alpha == alpha[:, :1])   # older parts fainter
    start, end = [c for c in ax.collections if not isinstance(c, LineCollection)]
    np.testing.assert_allclose(start.get_offsets(), np.column_stack([x[0], y[0]]), rtol=1e-12)
    np.testing.assert_allclose(end.get_offsets(), np.column_stack([x[-1], y[-1]]), rtol=1e-12)
    # the legend is the figure's, outside every panel
    assert ax.get_legend() is None and len(fig.legends) == 1
    renderer = rendered(fig)
    box = fig.legends[0].get_window_extent(renderer)
    assert not any(box.overlaps(a.get_window_extent(renderer)) for a in fig.axes)
    fewer = plot.particles(tr, max_paths=5)
    (thin,) = [c for c in fewer.axes[0].collections if isinstance(c, LineCollection)]
    assert len(thin.get_segments()) == 5 * (SNAPSHOTS - 1)
    assert_image(fig, tmp_path)


def test_particles_of_every_output(data):
    net = mf.TwoLayer(D, 12, "tanh", outputs=3, seed=4)
    fig = plot.particles(net)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 3
    for o, ax in enumerate(panels):
        np.testing.assert_array_equal(ax.collections[0].get_offsets()[:, 1], net.a[:, o])
        assert f"output {o}" in ax.get_ylabel()
    two = np.stack([data.teacher.w, np.roll(data.teacher.w, 1)], axis=1)
    grid = plot.particles([("a", net), ("b", net)], direction=two)
    assert len([ax for ax in grid.axes if ax.axison]) == 6                 # 3 outputs x 2 directions
    np.testing.assert_allclose(grid.axes[3].collections[0].get_offsets()[:, 0],
                               net.W @ two[:, 1] / np.linalg.norm(two[:, 1]), rtol=1e-12)
    one = plot.particles(net, output=2)
    assert len(one.axes) == 1
    np.testing.assert_array_equal(one.axes[0].collections[0].get_offsets()[:, 1], net.a[:, 2])
    with pytest.raises(ValueError, match="output"):
        plot.particles(net, output=3)
    with pytest.raises(ValueError, match="paths"):
        plot.particles([net, mf.TwoLayer(D, 8, outputs=3)], paths=True)
    with pytest.raises(TypeError, match="paths"):
        plot.particles(net, paths="yes")


def test_animate_writes_one_frame_per_snapshot(trajs, tmp_path):
    from matplotlib import animation
    from PIL import Image
    out = plot.animate(trajs["mf"].path, tmp_path / "flow.gif", fps=4, dpi=40)
    with Image.open(out) as im:
        assert im.n_frames == SNAPSHOTS
        first = np.asarray(im.convert("RGB"))
        im.seek(SNAPSHOTS - 1)
        last = np.asarray(im.convert("RGB"))
    assert first.shape == last.shape and np.any(first != last)                 # the particles moved
    with Image.open(plot.animate(trajs["ntk"], tmp_path / "two.gif", dpi=40, trail=0)) as im:
        assert im.n_frames == 2                                                # t = 0 and the end
    with pytest.raises(ValueError, match="out: unknown extension"):
        plot.animate(trajs["ntk"], tmp_path / "flow.avi")
    with pytest.raises(TypeError, match="source"):
        plot.animate(3, tmp_path / "flow.gif")
    if animation.writers.is_available("ffmpeg"):
        plot.animate(trajs["ntk"], tmp_path / "flow.mp4", dpi=40)
        assert (tmp_path / "flow.mp4").stat().st_size > 0
    else:
        with pytest.raises(RuntimeError, match="ffmpeg"):
            plot.animate(trajs["ntk"], tmp_path / "flow.mp4")


@pytest.fixture(scope="module")
def classified(tmp_path_factory):
    """A logistic run on a two-class Gaussian mixture, written to a file with snapshots."""
    data = mf.datasets.gaussian_mixture(D, 40, 10, delta=0.8, seed=3)
    path = tmp_path_factory.mktemp("cls") / "run.h5"
    mf.simulate(mf.TwoLayer(D, 16, "tanh", seed=1), data, 1.0, 0.1, loss="logistic", threads=1,
                progress=False, out=path, snapshot_every=0.5)
    return data, mf.load(path)


def heatmaps(fig):
    return [ax.get_images()[0].get_array() for ax in fig.axes if ax.get_images()]


def test_kernel_sorted_by_label(classified):
    data, tr = classified
    labels = data.y[:, 0]
    K0 = ref.ntk(ref.as_tuple(tr.net0), data.X)
    K1 = ref.ntk(ref.as_tuple(tr.net), data.X)
    fig = plot.kernel(tr)                                 # the labels come from the file
    first, last = heatmaps(fig)
    _, V = np.linalg.eigh(K1)
    v = V[:, -1] * np.sign(V[:, -1].sum())
    perm = np.lexsort((v, labels))                         # by class, then by the leading eigenvector
    np.testing.assert_allclose(first, K0[np.ix_(perm, perm)], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(last, K1[np.ix_(perm, perm)], rtol=1e-10, atol=1e-12)
    assert np.all(np.diff(labels[perm]) >= 0)
    boundary = [line for line in fig.axes[0].get_lines() if line.get_color() == "w"]
    assert len(boundary) == 2                              # one class boundary, across and down
    assert "by label" in fig.axes[0].get_xlabel()
    one_hot = np.eye(2)[(labels > 0).astype(int)]
    same = heatmaps(plot.kernel(tr, X=data.X, labels=one_hot))
    np.testing.assert_allclose(same[1], last, rtol=1e-12)


def test_kernel_sorted_by_leading_eigenvector_with_spectra(trajs, data):
    tr = trajs["mf"]
    fig = plot.kernel(tr, X=data.X, max_points=50)
    first, last = heatmaps(fig)
    _, V = np.linalg.eigh(np.asarray(last))
    v = V[:, -1]
    assert np.all(np.diff(v) >= -1e-12) or np.all(np.diff(v) <= 1e-12)    # displayed in eigenvector order
    assert "eigenvector" in fig.axes[0].get_xlabel()
    # one spectrum per snapshot: the eigenvalues of K / n of each snapshot's network
    spectrum = [ax for ax in fig.axes if ax.get_title().startswith("spectrum")][0]
    curves = spectrum.get_lines()
    assert len(curves) == SNAPSHOTS
    a, W = snapshot_particles(tr)
    X = data.X[:50]
    for s, line in enumerate(curves):
        K = ref.ntk((tr.net.activation, 0.0, 1.0, a[s], W[s], None), X)
        ev = np.sort(np.linalg.eigvalsh(K / 50))[::-1]
        np.testing.assert_allclose(line.get_ydata(), ev[:len(line.get_ydata())], rtol=1e-8, atol=1e-14)
        assert len(line.get_ydata()) >= 40
    assert len(plot.kernel(tr, X=data.X, max_spectra=3).axes[2].get_lines()) == 3
    plain = heatmaps(plot.kernel(tr, X=data.X, order="none", max_points=50))
    np.testing.assert_allclose(plain[0], ref.ntk(ref.as_tuple(tr.net0), X), rtol=1e-10, atol=1e-12)


def test_kernel_order_errors(trajs, data):
    with pytest.raises(ValueError, match="order: 'labels' needs labels"):
        plot.kernel(trajs["mf"], X=data.X, order="labels")
    with pytest.raises(ValueError, match="order"):
        plot.kernel(trajs["mf"], X=data.X, order="x1")
    with pytest.raises(ValueError, match="labels"):
        plot.kernel(trajs["mf"], X=data.X, labels=np.ones(3))


def tick_labels(axis, renderer):
    """The non-empty major tick labels of an axis, and whether any two of them overlap."""
    ticks = [t for t in axis.get_major_ticks() if t.label1.get_visible() and t.label1.get_text()]
    lo, hi = axis.get_view_interval()
    ticks = [t for t in ticks if min(lo, hi) <= t.get_loc() <= max(lo, hi)]
    boxes = [t.label1.get_window_extent(renderer) for t in ticks]
    overlap = any(b.overlaps(c) for i, b in enumerate(boxes) for c in boxes[i + 1:])
    return [t.label1.get_text() for t in ticks], overlap


@pytest.mark.parametrize("lo, hi", [(0.21, 0.48), (0.2317, 0.5888), (0.09, 0.155), (2.1e-4, 4.3e-4), (0.03, 0.4),
                                    (1e-3, 2.0), (1e-11, 1e3), (3e2, 7e5)])
def test_log_axes_are_readable(lo, hi):
    fig, axes = plot._figure()
    ax = axes[0, 0]
    ax.plot([lo, hi], [lo, hi])
    ax.set_xscale("log")
    ax.set_yscale("log")
    plot.tidy_log_axes(ax)
    renderer = rendered(fig)
    for axis in (ax.xaxis, ax.yaxis):
        labels, overlap = tick_labels(axis, renderer)
        assert 2 <= len(labels) <= plot.MAX_LOG_LABELS and not overlap, labels
        assert all(not t.label1.get_text() for t in axis.get_minor_ticks())


def test_study_axes_are_labelled_at_the_swept_values(data, trajs):
    res = studies.time_step(data, methods=["euler"], dts=[0.25, 0.125, 0.0625, 0.03125], width=8, t_max=0.5,
                            workers=1, threads=1)
    fig = res.figure()
    renderer = rendered(fig)
    labels, overlap = tick_labels(fig.axes[0].xaxis, renderer)
    assert labels == ["0.03125", "0.0625", "0.125", "0.25"] and not overlap
    fig = plot.lazy_rich(list(trajs.values()))
    renderer = rendered(fig)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels, overlap = tick_labels(axis, renderer)
            assert 2 <= len(labels) <= plot.MAX_LOG_LABELS and not overlap


def test_alpha_theory_follows_the_activation(data):
    from mfntk.studies._alpha import lazy_theory
    assert lazy_theory("tanh", True)[0] == {"displacement": -1.0, "kernel_distance": -2.0,
                                            "max_linearized_distance": -2.0}
    for activation, symmetric in (("relu", True), ("tanh", False)):
        theory, notes = lazy_theory(activation, symmetric)
        assert theory["kernel_distance"] is None and theory["max_linearized_distance"] is None
    relu = mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(D, "relu", seed=0), D, 30, 0, seed=1)
    res = studies.alpha_sweep(relu, net={"activation": "relu"}, alphas=[1.0, 16.0, 32.0], widths=[8], t_max=0.3,
                              dt=0.1, lazy_from=10, workers=1, threads=1)
    assert res.fit("displacement").theory == -1.0 and res.fit("kernel_distance").theory is None
    summary = res.summary()
    assert "theory -2" not in summary and "relu is not smooth" in summary
    fig = res.figure()
    texts = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert any("slope" in t and "(no theory)" in t for t in texts)
    assert not any("theory -2" in t for t in texts) and any("theory -1" in t for t in texts)
