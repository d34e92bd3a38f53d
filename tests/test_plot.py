"""Every figure of mfntk.plot renders a non-empty image from a small trajectory or study,
headless, and bad arguments give errors that name them."""

import subprocess
import sys

import numpy as np
import pytest

import mfntk as mf
from mfntk import plot, studies

D = 5


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
    assert [p.split("/")[-1] for p in paths] == ["risk.png", "lazy_rich.png", "particles.png", "kernel.png"]


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
