"""Sizes are checked before allocating: every allocation that grows with the user's sizes raises
MemoryError with its estimate and the available memory, at once, instead of a kill by the
kernel's OOM killer (or swapping for minutes).

The oversize cases run in a child process under an address-space limit (RLIMIT_AS) of 3 GiB:
there an allocation attempted without the check fails with numpy's own MemoryError ("Unable
to allocate"), which these tests tell apart from the check's ("... would need about ... of memory;
only ... are available"), and nothing large is ever allocated on the test machine. The
remaining cases shrink the available memory seen by the check (monkeypatch).
"""
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import re
import textwrap
import time
import zipfile

import numpy as np
import pytest

import mfntk as mf
from mfntk import _validation, datasets, kernels

MESSAGE = r" would need about [0-9.e+]+ ([KMG]iB|bytes) of memory; only [0-9.e+]+ ([KMG]iB|bytes) are available$"
LIMIT = 3 * 2 ** 30


# ---------------------------------------------------------------------------------------------
# files that declare more than they hold, or hold more than they declare
# ---------------------------------------------------------------------------------------------
def _idx_header(shape, code=0x08):
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def gzip_bomb(path, header, mib=1024):
    """A gzip file of about ``mib`` KiB that decompresses to ``header`` + ``mib`` MiB of zeros
    (one gzip member per MiB, as concatenated members decompress to one stream)."""
    member = gzip.compress(b"\0" * 2 ** 20, compresslevel=9)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(header))
        for _ in range(mib):
            fh.write(member)
    return path


def _npy_header(shape, dtype):
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return head.getvalue()


def npz_declaring(path, shape, dtype="<f8", payload=b"", y=np.ones(3)):
    """An .npz archive whose X.npy declares ``shape`` but holds ``payload`` only."""
    buf = io.BytesIO()
    np.save(buf, y)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("X.npy", _npy_header(shape, dtype) + payload)
        zf.writestr("y.npy", buf.getvalue())
    return path


# ---------------------------------------------------------------------------------------------
# oversize cases, run in a child process under RLIMIT_AS
# ---------------------------------------------------------------------------------------------
CASES = {
    "TwoLayer": "mf.TwoLayer(d=10, width=10**9)",
    "RandomFeatures": "mf.RandomFeatures(width=10**9).fit(X[:5], y[:5])",
    "RandomFeatures primal Gram": "mf.RandomFeatures(width=50_000, formulation='primal').fit(X[:100], y[:100])",
    "NeuralTangent kernel": "mf.NeuralTangent(width=10**5).fit(X, y)",
    "analytic": "kernels.analytic(X)",
    "analytic cross": "kernels.analytic(X, X[:50_000])",
    "analytic quadrature series": "kernels.analytic(X[:1000], X, activation='tanh', quad_order=2048)",
    "empirical": "kernels.empirical(net, X)",
    "Empirical object": "kernels.Empirical(net, kind='rf')(X)",
    "KernelRegressor": "mf.KernelRegressor(kernel=kernels.Analytic(), solver='cholesky').fit(X, y)",
    "KernelRegressor Nystrom centres": "mf.KernelRegressor(kernel=kernels.Analytic(), ridge=1.0, centers=90_000).fit(X, y)",
    "NystromRegressor": "mf.NystromRegressor(kernel=kernels.Analytic(), centers=90_000).fit(X, y)",
    "KernelRegressor empirical": "mf.KernelRegressor(kernel=kernels.Empirical(net), max_dense=10**6).fit(X, y)",
    "NTKLimit": "mf.NTKLimit(net, X[:20_000], y[:20_000])",
    "Simulation cache": "mf.Simulation(mf.TwoLayer(2, 20_000, activation='tanh'), (X, y), 1.0, 0.1, cache_mb=10**6)",
    "simulate": "mf.simulate(mf.TwoLayer(2, 20_000, activation='tanh'), (X, y), 1.0, 0.1, cache_mb=10**6)",
    "Simulation sign cache": "mf.Simulation(mf.TwoLayer(2, 2_000_000), (X, y), 1.0, 0.1, cache_mb=10**6)",
    "load_idx declared": "datasets.load_idx(FILES['huge.idx'])",
    "load_idx gzip bomb declared": "datasets.load_idx(FILES['bomb_huge.idx.gz'])",
    "mnist declared": "datasets.mnist(FILES['bomb_huge.idx.gz'], FILES['labels.idx'])",
    "npz declared": "datasets.npz(FILES['huge.npz'])",
}

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, resource.getrlimit(resource.RLIMIT_AS)[1]))
    import numpy as np
    import mfntk as mf
    from mfntk import datasets, kernels
    FILES = json.loads(sys.argv[1])
    X = np.random.default_rng(0).standard_normal((100_000, 2))
    y = np.sin(X[:, 0])
    net = mf.TwoLayer(2, 64, seed=0)
    for name, code in json.loads(sys.argv[2]).items():
        t0 = time.perf_counter()
        try:
            eval(code)
            out = {{"type": None, "message": ""}}
        except BaseException as exc:
            out = {{"type": type(exc).__name__, "message": str(exc)}}
        out["seconds"] = time.perf_counter() - t0
        print(json.dumps({{name: out}}), flush=True)
""")


@pytest.fixture(scope="module")
def oversize(tmp_path_factory):
    if not sys.platform.startswith("linux"):
        pytest.skip("RLIMIT_AS and /proc/meminfo: Linux")
    d = tmp_path_factory.mktemp("sizes")
    files = {
        "huge.idx": d / "huge.idx",
        "bomb_huge.idx.gz": gzip_bomb(d / "bomb_huge.idx.gz", _idx_header((60_000, 2 ** 16, 2 ** 16)), mib=16),
        "labels.idx": d / "labels.idx",
        "huge.npz": npz_declaring(d / "huge.npz", (3_000_000_000,), dtype="|u1", payload=b"\0" * 64),
    }
    files["huge.idx"].write_bytes(_idx_header((2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1), 0x0E) + b"\0" * 64)
    files["labels.idx"].write_bytes(_idx_header((3,)) + b"\1\2\3")
    # the huge npz: its member must hold what it declares for the memory check to be the one that fails
    _forge_member_size(files["huge.npz"], "X.npy", len(_npy_header((3_000_000_000,), "|u1")) + 3_000_000_000)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(mf.__file__))] + os.environ.get("PYTHONPATH", "").split(os.pathsep)),
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD.format(limit=LIMIT),
                           json.dumps({k: str(v) for k, v in files.items()}), json.dumps(CASES)],
                          env=env, capture_output=True, text=True, timeout=300)
    results = {}
    for line in proc.stdout.splitlines():
        results.update(json.loads(line))
    assert set(results) == set(CASES), proc.stderr[-3000:]
    return results


def _forge_member_size(path, name, size):
    """Record ``size`` (< 2^32) as the uncompressed size of member ``name`` in the zip's local
    header and central directory: the member then declares more than its compressed data hold."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    pos = raw.find(b"PK\x01\x02")
    while raw[pos + 46:pos + 46 + struct.unpack("<H", raw[pos + 28:pos + 30])[0]] != name.encode():
        pos = raw.find(b"PK\x01\x02", pos + 4)
    raw[pos + 24:pos + 28] = struct.pack("<I", size)
    raw[info.header_offset + 22:info.header_offset + 26] = struct.pack("<I", size)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("case", sorted(CASES))
def test_oversize_raises_memory_error_at_once(oversize, case):
    result = oversize[case]
    assert result["type"] == "MemoryError", result
    assert "Unable to allocate" not in result["message"], result     # the check's, not numpy's
    assert re.search(MESSAGE, result["message"]), result
    assert result["seconds"] < 1.0, result


# ---------------------------------------------------------------------------------------------
# the check itself
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def memory(monkeypatch):
    """Set the memory the checks see (bytes), e.g. ``memory(2 ** 20)``."""
    def set_available(nbytes):
        monkeypatch.setattr(_validation, "available_memory", lambda: nbytes)
        monkeypatch.setattr(_validation, "_address_space_left", lambda: None)
    return set_available


def test_check_memory_message_and_estimate(memory):
    memory(2 ** 30)
    assert _validation.check_memory(2 ** 29, "width", "a thing") == 2 ** 29
    with pytest.raises(MemoryError, match=r"^width: a thing would need about 3 GiB of memory; only 1 GiB are "
                                          r"available$"):
        _validation.check_memory(3 * 2 ** 30, "width", "a thing")
    with pytest.raises(MemoryError, match="would need about inf GiB"):   # beyond any float
        _validation.check_memory(10 ** 400, "path", "a header")
    memory(None)                                        # unknown: nothing is refused
    assert _validation.check_memory(10 ** 30, "width", "a thing") == 1e30


def test_available_memory_is_shared_with_the_trajectory_reader():
    from mfntk import _io
    assert _io.available_memory is _validation.available_memory
    free = _validation.available_memory()
    assert free is None or free > 0


def test_address_space_limit_counts(monkeypatch):
    monkeypatch.setattr(_validation, "available_memory", lambda: 2 ** 50)
    monkeypatch.setattr(_validation, "_address_space_left", lambda: 2 ** 20)
    with pytest.raises(MemoryError, match="only 1 MiB are available"):
        _validation.check_memory(2 ** 21, "X", "a kernel")


def test_estimates_follow_the_sizes(memory):
    """More stages, the linearized block, a cache that fits: each costs what the engine allocates."""
    memory(2 ** 50)
    X = np.random.default_rng(0).standard_normal((40, 3))
    data = datasets.as_dataset((X, np.sin(X[:, 0])))
    net = mf.TwoLayer(3, 1000)
    P, s = net.n_params, 8
    from mfntk._options import RunOptions

    opts = RunOptions(t_max=1.0, dt=0.1, cache_mb=0.0)
    euler = _validation.check_simulation_memory(net, data, opts, 1)
    rk4 = _validation.check_simulation_memory(net, data, opts, 4)
    assert rk4 - euler == pytest.approx(4 * P * s)                     # three more stages and the tmp buffer
    lin = _validation.check_simulation_memory(net, data, opts.replace(linearized=True), 1)
    assert lin - euler >= 4 * P * s                                    # a longer state, twice, theta0, scratch
    cached = _validation.check_simulation_memory(net, data, opts.replace(cache_mb=1.0), 1)
    assert cached - euler == pytest.approx(40 * 2 * 8 * 8)             # relu, one output: n N signs, in
    tanh = mf.TwoLayer(3, 1000, activation="tanh")                      # 8 words per half of 500 particles
    cached = _validation.check_simulation_memory(tanh, data, opts.replace(cache_mb=1.0), 1)
    assert cached - _validation.check_simulation_memory(tanh, data, opts, 1) == pytest.approx(40 * 1000 * s)
    assert _validation.check_network_memory(1000, 3, 1, False, "float32") == 4 * 1000 * (8 + 4)


def test_simulation_refused_by_its_state_not_its_network(memory):
    X = np.random.default_rng(0).standard_normal((40, 3))
    net = mf.TwoLayer(3, 10_000, activation="tanh")
    need = _validation.check_simulation_memory(net, datasets.as_dataset((X, X[:, 0])),
                                               mf._options.RunOptions(t_max=1.0, dt=0.1, method="rk4", cache_mb=0.0), 4)
    memory(need - 1)
    with pytest.raises(MemoryError, match=r"^net: a run of a network of width 10000 on 40 points would need"):
        mf.Simulation(net, (X, X[:, 0]), 1.0, 0.1, method="rk4", cache_mb=0.0)
    mf.Simulation(net, (X, X[:, 0]), 1.0, 0.1, method="euler", cache_mb=0.0)          # one stage: fits
    with pytest.raises(MemoryError, match=r"\(of which 3.05 MiB for the pre-activation cache; a smaller cache_mb "
                                          r"drops it\)"):
        mf.Simulation(net, (X, X[:, 0]), 1.0, 0.1, method="euler")


def test_feature_models_and_kernels_refused_in_small_memory(memory):
    X = np.random.default_rng(0).standard_normal((600, 4))
    y = X[:, 0]
    memory(2 ** 20)
    with pytest.raises(MemoryError, match=r"^X: the kernel matrix K\(X\) of shape \(600, 600\) in float64"):
        kernels.analytic(X)
    with pytest.raises(MemoryError, match=r"^X: the kernel matrix K\(X, X2\) of shape \(600, 600\) in float64"):
        kernels.Empirical(mf.TwoLayer(4, 8))(X, X)
    with pytest.raises(MemoryError, match=r"^width: RandomFeatures of width 1000 \(1000 features\) on 600 points, "
                                          r"kernel formulation"):
        mf.RandomFeatures(width=1000).fit(X, y)
    with pytest.raises(MemoryError, match=r"^width: RandomFeatures of width 100 \(100 features\) on 600 points, "
                                          r"primal formulation"):
        mf.RandomFeatures(width=100).fit(X, y)
    with pytest.raises(MemoryError, match=r"^width: NeuralTangent of width 200 \(800 features\) on 600 points, "
                                          r"kernel formulation"):
        mf.NeuralTangent(width=200).fit(X, y)
    memory(2 ** 40)
    assert mf.RandomFeatures(width=50).fit(X, y).predict(X).shape == (600,)


# ---------------------------------------------------------------------------------------------
# files: declared sizes against what the file holds
# ---------------------------------------------------------------------------------------------
def test_gzip_bomb_is_refused_without_decompressing_it(tmp_path):
    """1 MiB of gzip that inflates to 1 GiB behind a header that declares 100 bytes: refused after
    reading 101 bytes, in bounded memory."""
    import tracemalloc
    path = gzip_bomb(tmp_path / "bomb.idx.gz", _idx_header((10, 10)), mib=1024)
    assert path.stat().st_size < 2 * 2 ** 20
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=r"size mismatch \(shape \(10, 10\) needs 100 data bytes, file has more"):
            datasets.load_idx(path)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 1.0
    assert peak < 8 * 2 ** 20


def test_gzip_payload_shorter_than_declared(tmp_path):
    path = tmp_path / "short.idx.gz"
    path.write_bytes(gzip.compress(_idx_header((1000,)) + b"\1" * 10))
    with pytest.raises(ValueError, match=r"truncated file \(shape \(1000,\) needs 1000 data bytes, got 10\)"):
        datasets.load_idx(path)


def test_plain_idx_size_checked_before_reading(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(_idx_header((4,)) + b"\1" * 10)
    with pytest.raises(ValueError, match=r"size mismatch \(shape \(4,\) needs 4 data bytes, file has 10\)"):
        datasets.load_idx(path)


def test_idx_read_in_place_in_native_order(tmp_path):
    arr = np.arange(12, dtype=">f8").reshape(3, 4)
    path = tmp_path / "a.idx.gz"
    path.write_bytes(gzip.compress(_idx_header((3, 4), 0x0E) + arr.tobytes()))
    out = datasets.load_idx(path)
    assert out.dtype == np.float64 and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_mnist_checks_the_declared_sizes_first(tmp_path, memory):
    images = tmp_path / "img.idx"
    labels = tmp_path / "lab.idx"
    images.write_bytes(_idx_header((50, 4, 4)) + bytes(range(50)) * 16)
    labels.write_bytes(_idx_header((50,)) + bytes(i % 10 for i in range(50)))
    memory(10_000)
    with pytest.raises(MemoryError, match=r"^images_path: mnist: the IDX files .*img.idx, .*lab.idx with the "
                                          r"float64 copies of their images would need about"):
        datasets.mnist(images, labels)
    memory(2 ** 40)
    assert datasets.mnist(images, labels, n_train=20).n == 20


@pytest.mark.parametrize("payload, what", [(b"\0" * 40, "holds 40"), (b"\0" * 100, "holds 100")])
def test_npz_member_must_hold_what_its_header_declares(tmp_path, payload, what):
    path = npz_declaring(tmp_path / "bad.npz", (8,), payload=payload)
    with pytest.raises(ValueError, match=rf"^path: .*bad.npz: the array X declares shape \(8,\) of float64 "
                                         rf"\(64 data bytes\) but its archive member {what}$"):
        datasets.npz(path)


def test_npz_declared_sizes_against_memory(tmp_path, memory):
    np.savez_compressed(tmp_path / "ok.npz", X=np.ones((100, 3)), y=np.ones(100))
    memory(1000)
    with pytest.raises(MemoryError, match=r"^path: .*ok.npz: the arrays it declares, with their float64 copies, "
                                          r"would need about"):
        datasets.npz(tmp_path / "ok.npz")
    memory(2 ** 40)
    assert datasets.npz(tmp_path / "ok.npz").n == 100


def test_npz_damaged_archive_is_a_value_error(tmp_path):
    np.savez_compressed(tmp_path / "ok.npz", X=np.arange(3000.0).reshape(1000, 3), y=np.ones(1000))
    raw = bytearray((tmp_path / "ok.npz").read_bytes())
    raw[200:260] = b"\xff" * 60                        # inside the compressed data of X.npy
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"^path: .*bad.npz"):
        datasets.npz(tmp_path / "bad.npz")
    (tmp_path / "one.npy").write_bytes(_npy_header((10 ** 12,), "<f8"))
    with pytest.raises(ValueError, match="it holds a single array"):
        datasets.npz(tmp_path / "one.npy")
