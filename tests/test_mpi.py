"""Particles in fixed chunks and the MPI backend: the same numbers for any number of ranks.

The sharded runs start ``mpiexec`` themselves (tests/mpi_runs.py under ``mpiexec -n P`` for
P = 1, 2, 3) and compare, bit for bit, with the same runs in this process.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import mfntk as mf
from mfntk import _core
from mfntk._options import default_particle_chunk

import reference as ref

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- chunks in one process ----------------------------------------------------------------
def test_chunks_tile_each_half():
    shard = _core.Shard(1000, 128)
    assert shard.chunks == [(0, 128), (128, 128), (256, 128), (384, 116),
                            (500, 128), (628, 128), (756, 128), (884, 116)]
    assert shard.first_of_second_half == 4
    odd = _core.Shard(301, 128)
    assert odd.chunks == [(0, 128), (128, 128), (256, 45)] and odd.first_of_second_half == 3
    assert _core.Shard(65536, 65536).chunks == [(0, 65536)]
    part = _core.Shard(1000, 128, 3, 6)
    assert (part.particle_begin, part.particle_end, part.local_width, part.local_chunks) == (384, 756, 372, 3)


def test_default_chunk():
    assert default_particle_chunk(1) == default_particle_chunk(2 ** 24) == 2 ** 16
    assert default_particle_chunk(10 ** 8) == 390656          # 10^8 / 256 rounded up to 128
    assert _core.Shard(10 ** 8, default_particle_chunk(10 ** 8)).count == 256


def test_combine_is_a_pairwise_tree_per_half():
    rng = np.random.default_rng(0)
    shard = _core.Shard(1000, 128)      # 4 chunks per half
    P = rng.standard_normal((8, 5)) * 10.0 ** rng.integers(-8, 8, size=(8, 5))

    def tree(blocks):
        if len(blocks) == 1:
            return blocks[0]
        mid = len(blocks) // 2
        return tree(blocks[:mid]) + tree(blocks[mid:])

    np.testing.assert_array_equal(shard.combine(P), tree(list(P[:4])) + tree(list(P[4:])))
    odd = _core.Shard(301, 128)         # no halves: one tree over 3 chunks, split 1 + 2
    np.testing.assert_array_equal(odd.combine(P[:3]), P[0] + (P[1] + P[2]))
    np.testing.assert_array_equal(shard.combine(P.astype(np.float32)), tree(list(P[:4].astype(np.float32)))
                                  + tree(list(P[4:].astype(np.float32))))
    with pytest.raises(ValueError, match="partials"):
        shard.combine(P[:5])


@pytest.mark.parametrize("activation,bias,outputs,dtype", [
    ("relu", False, 1, "float64"), ("tanh", True, 1, "float64"), ("erf", True, 3, "float64"),
    ("relu", True, 2, "float32"),
])
def test_chunked_passes_match_numpy(activation, bias, outputs, dtype):
    net = mf.TwoLayer(4, 1000, activation=activation, bias=bias, b_std=0.4, outputs=outputs, dtype=dtype,
                      particle_chunk=128, seed=3)
    assert net.shard.count == 8 and not net.sharded
    X = np.random.default_rng(1).standard_normal((37, 4)).astype(dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    like = ref.as_tuple(net)
    F = ref.forward(like, X.astype(np.float64))
    np.testing.assert_allclose(net.predict(X), F, **tol)
    rng = np.random.default_rng(2)
    t = [rng.standard_normal(x.shape).astype(dtype) for x in (net.a, net.W)] + (
        [rng.standard_normal(net.b.shape).astype(dtype)] if bias else [None])
    jvp = net.backend.jvp(net, X, *t, 1)
    Ja, JW, Jb = ref.jacobian(like, X.astype(np.float64))
    want = Ja @ t[0].ravel() + JW @ t[1].ravel() + (Jb @ t[2] if bias else 0.0)
    np.testing.assert_allclose(jvp, want.reshape(37, outputs), **tol)
    # the vjp has no sum over particles: chunked, it is the whole network's, bit for bit
    whole = mf.TwoLayer(4, 1000, activation=activation, bias=bias, b_std=0.4, outputs=outputs, dtype=dtype, seed=3)
    whole.a, whole.W, whole.b = net.a, net.W, net.b
    R = rng.standard_normal((37, outputs)).astype(dtype)
    for got, want in zip(net.backend.vjp(net, X, R, 1), whole.backend.vjp(whole, X, R, 1)):
        if want is not None:
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("output", ["mean", "matrix"])
def test_chunked_kernels_and_diagnostics_match_the_whole_network(output):
    """A network of 8 chunks sums its kernels, matvec, tangent change and displacement chunk by
    chunk (each chunk's kernel weighted by N_c / N): the same numbers, to rounding, as the same
    particles taken as one chunk."""
    from mfntk import _diagnostics
    kw = dict(activation="tanh", bias=True, b_std=0.5, outputs=2, seed=4)
    chunked, whole = mf.TwoLayer(5, 1000, particle_chunk=128, **kw), mf.TwoLayer(5, 1000, **kw)
    np.testing.assert_array_equal(chunked.a, mf.TwoLayer(5, 1000, particle_chunk=128, **kw).a)
    whole.a, whole.W, whole.b = chunked.a, chunked.W, chunked.b
    assert chunked.shard.count == 8 and whole.shard.count == 1
    X = np.random.default_rng(3).standard_normal((11, 5))
    K = mf.kernels.Empirical(chunked, output=output)(X)
    np.testing.assert_allclose(K, mf.kernels.Empirical(whole, output=output)(X), rtol=1e-12, atol=1e-14)
    # against numpy: the Jacobian's Gram (1/N) J J^T of the matrix kernel
    Ja, JW, Jb = ref.jacobian(ref.as_tuple(whole), X)
    J = np.hstack([Ja, JW, Jb])
    matrix = J @ J.T / 1000
    want = matrix if output == "matrix" else matrix.reshape(11, 2, 11, 2).diagonal(axis1=1, axis2=3).mean(-1)
    np.testing.assert_allclose(K, want, rtol=1e-11, atol=1e-13)
    V = np.random.default_rng(4).standard_normal((K.shape[0], 3))
    np.testing.assert_allclose(mf.kernels.Empirical(chunked, output=output).matvec(X, V), K @ V,
                               rtol=1e-11, atol=1e-13)
    moved = chunked.copy()
    moved.W = moved.W + 0.01 * np.random.default_rng(5).standard_normal(moved.W.shape)
    moved_whole = whole.copy()
    moved_whole.W = moved.W
    np.testing.assert_allclose(
        _diagnostics.tangent_change(chunked, (chunked.a, chunked.W, chunked.b), (moved.a, moved.W, moved.b), X),
        _diagnostics.tangent_change(whole, (whole.a, whole.W, whole.b), (moved.a, moved.W, moved.b), X), rtol=1e-12)
    d_chunked = _diagnostics.displacement(chunked.parameter_blocks(), moved.parameter_blocks(), moved.particle_sums)
    d_whole = _diagnostics.displacement(whole.parameter_blocks(), moved_whole.parameter_blocks(),
                                        moved_whole.particle_sums)
    for key in ("a", "W", "b", "all"):
        np.testing.assert_allclose(d_chunked[key], d_whole[key], rtol=1e-12)
    np.testing.assert_allclose(d_whole["W"], np.linalg.norm(moved.W - whole.W) / np.linalg.norm(whole.W),
                               rtol=1e-12)
    assert d_whole["a"] == 0.0


def test_chunked_symmetric_network_is_exactly_zero():
    net = mf.TwoLayer(3, 1000, activation="relu", bias=True, b_std=0.5, symmetric=True, particle_chunk=128, seed=2)
    np.testing.assert_array_equal(net.a[500:], -net.a[:500])
    np.testing.assert_array_equal(net.predict(np.random.default_rng(0).standard_normal((9, 3))), 0.0)


def test_chunk_seeds():
    net = mf.TwoLayer(3, 300, particle_chunk=128, bias=True, b_std=1.0, seed=7)
    # chunk c from the c-th child of SeedSequence(seed), W then a then b; chunk 0 from the seed
    for c, (start, size) in enumerate(net.shard.chunks):
        rng = np.random.default_rng(np.random.SeedSequence(7, spawn_key=(c,) if c else ()))
        W = (1.0 / np.sqrt(3)) * rng.standard_normal((size, 3))
        a = rng.standard_normal((size, 1))
        b = rng.standard_normal(size)
        np.testing.assert_array_equal(net.W[start:start + size], W)
        np.testing.assert_array_equal(net.a[start:start + size], a)
        np.testing.assert_array_equal(net.b[start:start + size], b)
    # one chunk: the draw of default_rng(seed) over the whole network
    small = mf.TwoLayer(3, 300, seed=7)
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(small.W, (1.0 / np.sqrt(3)) * rng.standard_normal((300, 3)))
    np.testing.assert_array_equal(small.a, rng.standard_normal((300, 1)))


def test_particle_chunk_is_checked():
    with pytest.raises(ValueError, match="particle_chunk"):
        mf.TwoLayer(3, 300, particle_chunk=100)
    with pytest.raises(ValueError, match="particle_chunk"):
        mf.TwoLayer(3, 300, particle_chunk=0)
    assert mf.TwoLayer(3, 300).config()["particle_chunk"] == 2 ** 16


def test_a_communicator_is_checked(monkeypatch):
    with pytest.raises(TypeError, match="comm"):
        mf.TwoLayer(3, 300, comm="COMM_WORLD")
    monkeypatch.setitem(sys.modules, "mpi4py", None)   # mpi4py not installed
    with pytest.raises(ImportError, match="comm: the MPI backend needs mpi4py"):
        mf.TwoLayer(3, 300, comm=object())


# ---- under mpiexec ------------------------------------------------------------------------
def _mpiexec():
    pytest.importorskip("mpi4py", reason="the MPI tests need mpi4py (pip install mpi4py mpich)")
    for candidate in (os.path.join(os.path.dirname(sys.executable), "mpiexec"), shutil.which("mpiexec")):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.skip("the MPI tests need mpiexec (pip install mpich)")


#: The ranks' command: ``python -m mpi4py`` makes an exception on one rank end the job at once.
_RUNS = (sys.executable, "-m", "mpi4py", os.path.join(HERE, "mpi_runs.py"))


def _env():
    """This process's environment, one OpenMP thread per rank, mfntk importable from where it is."""
    path = [os.path.dirname(os.path.dirname(mf.__file__)), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(p for p in path if p))


def _launch(tmp_path, ranks, mode, timeout=240):
    out = tmp_path / f"{mode}-{ranks}.json"
    cmd = [_mpiexec(), "-n", str(ranks), *_RUNS, str(out), mode]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    return proc, out


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi") / "single.json"
    subprocess.run([sys.executable, os.path.join(HERE, "mpi_runs.py"), str(out)], check=True, timeout=240,
                   env=_env())
    return json.loads(out.read_text())


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_sharded_runs_match_one_process(tmp_path, single_process, ranks):
    proc, out = _launch(tmp_path, ranks, "mpi")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sharded = json.loads(out.read_text())
    assert sharded.keys() == single_process.keys()
    for name, want in single_process.items():
        got = sharded[name]
        assert got["predict"] == want["predict"], name
        assert got["series"] == want["series"], name          # every recorded series, bit for bit
        assert got["particles"] == want["particles"], name    # the particles, gathered in order
        assert got == want, name   # and the kernels, their products and the regressor's CG solve
    # the runs did something: the risk fell
    assert all(r["train_risk"][-1] < r["train_risk"][0] for r in single_process.values())


def test_bad_launches_are_refused(tmp_path):
    from mfntk import _io
    lock = _io._Lock(str(tmp_path / "mpi-bad-data-2.json.locked.h5"))   # another writer of that file
    try:
        proc, out = _launch(tmp_path, 2, "mpi-bad-data")
    finally:
        lock.release()
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = json.loads(out.read_text())
    errors = [r["error"] for r in ranks]
    assert all(e is not None and e.startswith("data: differs between the MPI ranks") for e in errors), errors
    assert all(r.get("features", "").startswith("net: not available for a network sharded") for r in ranks), ranks
    assert all(r.get("nystrom", "").startswith("preconditioner: 'nystrom' is not available") for r in ranks), ranks
    assert ranks[0]["locked"].startswith("OutputLockedError: out: another process is writing"), ranks
    assert ranks[1]["locked"].startswith("OutputLockedError: out: rank 0 cannot write"), ranks


def test_a_stalled_rank_makes_the_others_stop(tmp_path):
    start = time.monotonic()
    proc, out = _launch(tmp_path, 2, "mpi-stalled", timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0                  # rank 0 aborted the job
    report = json.loads(out.read_text())
    assert "rank 0 of 2 waited 2 s" in report["error"]
    assert 2.0 <= report["seconds"] < 10.0
    assert elapsed < 60.0                        # rank 1 sleeps 60 s: the job did not wait for it


def test_files_of_sharded_runs(tmp_path):
    """Written by 2 ranks, resumed by 3: the file is, array for array, the one of the run in one
    process (checkpoints, snapshots, state), and the records the same."""
    import h5py
    import mpi_runs

    single, sharded = tmp_path / "single", tmp_path / "sharded"
    single.mkdir()
    sharded.mkdir()
    for name in mpi_runs.FILE_CASES:
        mpi_runs.write_case(name, single, None)
        mpi_runs.resume_case(name, single, None)
    for ranks, mode in ((2, "mpi-write"), (3, "mpi-resume")):
        proc = subprocess.run([_mpiexec(), "-n", str(ranks), *_RUNS, str(sharded), mode], capture_output=True,
                              text=True, timeout=240, env=_env())
        assert proc.returncode == 0, proc.stderr[-3000:]

    def arrays(path):
        out = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda key, obj: out.__setitem__(key, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return out

    for name in mpi_runs.FILE_CASES:
        want, got = arrays(single / f"{name}.h5"), arrays(sharded / f"{name}.h5")
        assert got.keys() == want.keys(), name
        assert "snapshots/theta" in got and got["snapshots/theta"].shape[0] == 6, name   # t = 0, 0.1, ..., 0.5
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}: {key}")
        a, b = mf.load(single / f"{name}.h5"), mf.load(sharded / f"{name}.h5")
        assert a.complete and b.complete and a.config == b.config
