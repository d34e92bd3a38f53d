"""The lazy-vs-feature entry of mfntk.reproduce at quick size: its checks, its files, and its table
against independent numpy references (the arc-cosine NTK limit, the empirical tangent kernel of the
initial network, ridgeless regression by a direct solve), on digits and on MNIST-format IDX files."""

import gzip
import os
import struct

import numpy as np
import pytest
import scipy.ndimage

import mfntk as mf
from mfntk.reproduce import REPRODUCE, lazy_vs_feature
from mfntk.reproduce import _lazy_feature as lf

# A ridgeless regression by np.linalg.solve against the package's (eigendecomposition): the kernels of
# 300 points here are well conditioned, so the two agree to rounding, amplified by the condition number.
SOLVE_RTOL = 1e-6
EXTENSIONS = ("csv", "json", "png", "md")


def relu_ntk_limit(X, X2):
    """The NTK of a two-layer ReLU network, w ~ N(0, I/d), a ~ N(0, 1), no bias, as N -> inf: the
    arc-cosine kernels, K_rf = |x||x'| / (2 pi d) (sin th + (pi - th) cos th) and
    K_nt = <x, x'> (pi - th) / (2 pi)."""
    d = X.shape[1]
    n1, n2 = np.linalg.norm(X, axis=1), np.linalg.norm(X2, axis=1)
    G = X @ X2.T
    th = np.arccos(np.clip(G / np.outer(n1, n2), -1.0, 1.0))
    rf = np.outer(n1, n2) / (2 * np.pi * d) * (np.sin(th) + (np.pi - th) * np.cos(th))
    return rf + G * (np.pi - th) / (2 * np.pi)


def empirical_ntk(net, X, X2):
    """(1/N) sum_j [s_j(x) s_j(x') + (|a_j|^2 / k) s'_j(x) s'_j(x') <x, x'>] for a ReLU network."""
    P, P2 = X @ net.W.T, X2 @ net.W.T
    a2 = (net.a ** 2).sum(axis=1) / net.a.shape[1]
    rf = np.maximum(P, 0) @ np.maximum(P2, 0).T
    nt = ((P > 0) * a2) @ (P2 > 0).T * (X @ X2.T)
    return (rf + nt) / net.width


def ridgeless_error(data, K, K_test, Y, Y_test):
    """Ridgeless regression by a direct solve, then the entry's error measure written out again."""
    P = K_test @ np.linalg.solve(K, Y)
    if data == "synthetic":
        return np.mean((Y_test - P) ** 2) / np.mean((Y_test - Y_test.mean()) ** 2)
    return np.mean(P.argmax(axis=1) != Y_test.argmax(axis=1))


def row(table, **key):
    found = [r for r in table.rows if all(r[k] == v for k, v in key.items())]
    assert len(found) == 1, key
    return found[0]


def check_against_numpy(result, real, seed=0, mnist=None):
    """The lazy kernel (smallest width) and the NTK limit of one seed, for both tasks, recomputed."""
    sizes = lf._SIZES[result.size]
    tasks = lf._tasks(sizes, real, mnist, seed=0)
    for data in ("synthetic", real):
        for width in (min(sizes["widths"]), max(sizes["widths"])):
            task = next(t for t in tasks if t["data"] == data and t["seed"] == seed and t["width"] == width)
            X, Y, X_test, Y_test = lf._data(task)
            net = mf.TwoLayer(X.shape[1], width, scaling="mf", outputs=Y.shape[1], seed=task["net_seed"])
            lazy = ridgeless_error(data, empirical_ntk(net, X, X), empirical_ntk(net, X_test, X), Y, Y_test)
            got = row(result.table, data=data, method="lazy", width=width, seed=seed)["test_error"]
            assert got == pytest.approx(lazy, rel=SOLVE_RTOL)
        limit = ridgeless_error(data, relu_ntk_limit(X, X), relu_ntk_limit(X_test, X), Y, Y_test)
        got = row(result.table, data=data, method="NTK limit", width=np.inf, seed=seed)["test_error"]
        assert got == pytest.approx(limit, rel=SOLVE_RTOL)


def check_files(out):
    for ext in EXTENSIONS:
        path = out / f"lazy-vs-feature.{ext}"
        assert path.is_file() and path.stat().st_size > 0, path


def test_lazy_vs_feature_quick(tmp_path):
    result = lazy_vs_feature("quick", out=tmp_path, threads=1)
    assert result.agrees, "\n".join(c.describe() for c in result.checks)
    check_files(tmp_path)
    assert "lazy-vs-feature" in REPRODUCE and "lazy_vs_feature" in mf.reproduce.__all__
    table, sizes = result.table, lf._SIZES["quick"]
    assert set(table["data"]) == {"synthetic", "digits"}
    check_against_numpy(result, "digits")

    # ridgeless kernels interpolate their 300 training points
    kernel_rows = [r for r in table.rows if r["method"] != "network"]
    assert max(r["train_error"] for r in kernel_rows if r["data"] == "synthetic") < 1e-12
    assert max(r["train_error"] for r in kernel_rows if r["data"] == "digits") == 0.0

    # along training at the largest width: the kernel moves away from K_0 and the network learns the target
    widest = max(sizes["widths"])
    steps = lf._steps(sizes["times"])
    change = [lf._mean_std(table, "synthetic", "feature", widest, s, column="kernel_change")[0] for s in steps]
    assert np.all(np.diff(change) > 0), change
    network = [lf._mean_std(table, "synthetic", "network", widest, s)[0] for s in steps]
    assert network[-1] < 0.5 * network[0], network
    final = row(table, data="synthetic", method="network", width=widest, seed=0, step=lf._STEPS)
    assert final["t"] == lf._T_MAX


def write_idx(path, array, compress):
    """An IDX file of unsigned bytes (MNIST's format), gzip-compressed or plain."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with (gzip.open if compress else open)(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_folder(tmp_path):
    """MNIST's four files, holding scikit-learn's digits enlarged to 10 x 10 pixels (d = 100 > 64, where
    the step and the training time are rescaled); training files compressed, test files plain."""
    from sklearn.datasets import load_digits
    raw = load_digits()
    images = np.clip(np.stack([scipy.ndimage.zoom(im, 10 / 8, order=1) for im in raw.images]) * 255 / 16, 0, 255)
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", images[:1200], True)
    write_idx(folder / "train-labels-idx1-ubyte.gz", raw.target[:1200], True)
    write_idx(folder / "t10k-images-idx3-ubyte", images[1200:], False)
    write_idx(folder / "t10k-labels-idx1-ubyte", raw.target[1200:], False)
    return folder


def test_lazy_vs_feature_mnist_idx(tmp_path, idx_folder, monkeypatch):
    monkeypatch.setitem(lf._SIZES, "quick", {"widths": (256, 2048), "seeds": 2, "n_test": 300, "times": 2})
    result = lazy_vs_feature("quick", out=tmp_path, threads=1, mnist=idx_folder)
    assert result.agrees, "\n".join(c.describe() for c in result.checks)
    check_files(tmp_path)
    assert set(result.table["data"]) == {"synthetic", "mnist"}
    assert any(n.startswith("mnist, N = 2048") for n in result.notes)
    check_against_numpy(result, "mnist", seed=1, mnist=lf._mnist_paths(idx_folder))
    # d = 100: 200 steps up to t = 40 * 64 / 100
    final = row(result.table, data="mnist", method="feature", width=2048, seed=0, step=lf._STEPS)
    assert final["t"] == pytest.approx(lf._T_MAX * 64 / 100)
    assert len([r for r in result.table.rows if r["data"] == "mnist" and r["method"] == "lazy"]) == 4


def test_lazy_vs_feature_mnist_folder_errors(tmp_path, idx_folder):
    with pytest.raises(ValueError, match="mnist: .* is not a folder"):
        lazy_vs_feature(mnist=tmp_path / "absent")
    os.remove(idx_folder / "t10k-labels-idx1-ubyte")
    with pytest.raises(ValueError, match="mnist: .* holds no t10k-labels-idx1-ubyte"):
        lazy_vs_feature(mnist=idx_folder)
    with pytest.raises(TypeError, match="mnist: expected a file path"):
        lazy_vs_feature(mnist=3)
