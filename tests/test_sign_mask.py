"""The sign-mask passes of relu with one output (network.hpp): the field of the dynamics, the
residual dynamics and the linearized model against an independent numpy reference, with the
cache of signs taken and not taken, for one and two threads, on every instruction set of the
kernels this CPU runs (simd.hpp; the portable Eigen path is the reference); the kernels' sets
against each other; and the cache's size."""
import numpy as np
import pytest

import mfntk as mf
import reference as ref
from mfntk import _core
from mfntk._options import RunOptions, default_particle_chunk

# Relative tolerances against the float64 reference, per block, relative to its largest entry.
RTOL = {"float64": 1e-12, "float32": 1e-5}
N_POINTS = 600  # three sample tiles of the core (256, 256, 88)


def make_problem(k, bias, dtype, N=302, d=7, seed=0):
    rng = np.random.default_rng(seed)
    net = mf.TwoLayer(d, N, activation="relu", bias=bias, b_std=0.5 if bias else 0.0, outputs=k, dtype=dtype,
                      scaling=2.5, seed=seed + 1)
    X = rng.standard_normal((N_POINTS, d)).astype(dtype)
    Y = rng.standard_normal((N_POINTS, k)).astype(dtype)
    return net, X, Y


def assert_close(got, want, dtype, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err <= RTOL[dtype], f"{what}: relative error {err:.3g} > {RTOL[dtype]:.1g}"


def jacobian(net_like, X):
    """(n k, P): the Jacobian of F = sum_j a_j sigma(<w_j, x> + b_j), columns [a | W | b]."""
    return np.hstack([J for J in ref.jacobian(net_like, X) if J is not None])


def flat(net_like):
    _, _, _, a, W, b = net_like
    return np.concatenate([a.ravel(), W.ravel()] + ([] if b is None else [b]))


def like(net_like, theta):
    """net_like with the particles of the flat vector theta."""
    act, c0, alpha, a, W, b = net_like
    N, k = a.shape
    d = W.shape[1]
    return (act, c0, alpha, theta[:N * k].reshape(N, k), theta[N * k:N * (k + d)].reshape(N, d),
            None if b is None else theta[N * (k + d):])


def reference_field(net_like, X, Y, g, thetabar, lam):
    """The three blocks of the field (SPEC 3-4, squared loss): the particles, the residual
    dynamics at function values g and the linearized model at thetabar (reference theta_0 = the
    particles)."""
    alpha, N, n = net_like[2], net_like[3].shape[0], X.shape[0]
    theta0 = flat(net_like)
    J0 = jacobian(net_like, X)
    f0 = ref.forward(net_like, X)

    def particle_field(r, theta):
        return J0.T @ r.ravel() / (alpha * n) - lam * theta

    dtheta = np.concatenate([x.ravel() for x in ref.field(net_like, X, Y, weight_decay=lam) if x is not None])
    dg = alpha / N * J0 @ particle_field(Y - g, theta0)
    fbar = f0.ravel() + alpha / N * J0 @ (thetabar - theta0)
    dbar = particle_field(Y.ravel() - fbar, thetabar)
    return dtheta, dg, dbar


def engine_field(net, X, Y, g, thetabar, lam, threads, cache_mb):
    sim = mf.Simulation(net, (X, Y), t_max=1.0, dt=0.1, residual_dynamics=True, linearized=True,
                        weight_decay=lam, threads=threads, cache_mb=cache_mb)
    state = sim.state.copy()
    P, off_g, off_bar = sim.layout["particles"], sim.layout["residual"], sim.layout["linearized"]
    state[off_g:off_g + g.size] = g.ravel()
    state[off_bar:off_bar + P] = thetabar
    dy = sim.engine.field(state)
    return dy[:P], dy[off_g:off_g + g.size], dy[off_bar:off_bar + P]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("k", [1, 3])
def test_field_residual_and_linearized_blocks_match_numpy(k, bias, dtype, simd):
    net, X, Y = make_problem(k, bias, dtype)
    rng = np.random.default_rng(7)
    net_like = ref.as_tuple(net)
    g = (ref.forward(net_like, X.astype(np.float64)) + 0.3 * rng.standard_normal((N_POINTS, k))).astype(dtype)
    theta0 = net.get_flat()[:net.layout.particles_size]
    thetabar = (theta0 + 0.05 * rng.standard_normal(theta0.size)).astype(dtype)
    want = reference_field(net_like, X.astype(np.float64), Y.astype(np.float64), g.astype(np.float64),
                           thetabar.astype(np.float64), lam=0.1)
    runs = {(threads, cache_mb): engine_field(net, X, Y, g, thetabar, 0.1, threads, cache_mb)
            for threads in (1, 2) for cache_mb in (1024.0, 0.0)}
    for got, expected, what in zip(runs[1, 1024.0], want, ("particles", "residual", "linearized")):
        assert_close(got, expected, dtype, what)
    # the cache (of signs for k = 1) and the thread count change no bit
    for key, other in runs.items():
        for a, b in zip(runs[1, 1024.0], other):
            np.testing.assert_array_equal(a, b, err_msg=str(key))


@pytest.mark.parametrize("N", [301, 2 * 64 * 3 + 2])  # no halves; halves of a whole number of words + 1
def test_sign_mask_passes_for_tile_edges(N, simd):
    """Odd N (one run of particle tiles) and tiles whose last word is partly used, with a
    symmetric initialisation, whose output is exactly zero."""
    net, X, Y = make_problem(1, True, "float64", N=N, d=3, seed=4)
    X = np.vstack([X, X[:5]])
    net_like = ref.as_tuple(net)
    dA, dW, db = mf.dd_field(net, X, Y[np.r_[:N_POINTS, :5]], weight_decay=0.0)
    eA, eW, eb = ref.field(net_like, X, Y[np.r_[:N_POINTS, :5]])
    for got, expected, what in ((dA, eA, "dA"), (dW, eW, "dW"), (db, eb, "db")):
        assert_close(got, expected, "float64", what)
    if N % 2 == 0:
        sym = mf.TwoLayer(3, N, activation="relu", bias=True, b_std=0.5, symmetric=True, seed=2)
        np.testing.assert_array_equal(sym.predict(X), 0.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_logistic_loss_field_matches_numpy(dtype, simd):
    """The field under the logistic loss (labels +-1): the residual y / (1 + exp(y f)) through the
    sign-mask vjp, against numpy."""
    net, X, _ = make_problem(1, True, dtype, N=302, d=7, seed=3)
    Y = np.where(X[:, :1] + 0.3 * X[:, 1:2] > 0, 1.0, -1.0).astype(dtype)
    got = mf.dd_field(net, X, Y, loss="logistic", weight_decay=0.01)
    want = ref.field(ref.as_tuple(net), X.astype(np.float64), Y.astype(np.float64), loss="logistic",
                     weight_decay=0.01)
    for g, w, what in zip(got, want, ("dA", "dW", "db")):
        assert_close(g, w, dtype, what)


def passes(dtype, n, N, d, bias, threads, seed=0):
    """forward, vjp and jvp of a relu network with one output through the core, as arrays."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    a = rng.standard_normal((N, 1)).astype(dtype)
    W = (rng.standard_normal((N, d)) / np.sqrt(d)).astype(dtype)
    b = rng.standard_normal(N).astype(dtype) if bias else None
    R = rng.standard_normal((n, 1)).astype(dtype)
    ta, tW = rng.standard_normal((N, 1)).astype(dtype), rng.standard_normal((N, d)).astype(dtype)
    tb = rng.standard_normal(N).astype(dtype) if bias else None
    out = [_core.forward("relu", 0.0, a, W, b, X, threads)]
    out += [g for g in _core.vjp("relu", 0.0, a, W, b, X, R, threads) if g is not None]
    out += [_core.jvp("relu", 0.0, a, W, b, X, ta, tW, tb, threads)]
    # numpy in float64: F, J^T R and J t
    X, a, W, R, ta, tW = (x.astype(np.float64) for x in (X, a, W, R, ta, tW))
    Z = X @ W.T + (b.astype(np.float64) if bias else 0.0)
    M = (Z > 0).astype(np.float64)
    want = [np.maximum(Z, 0) @ a, np.maximum(Z, 0).T @ R, ((M * R) * a.T).T @ X]
    if bias:
        want.append(((M * R) * a.T).sum(0))
    U = M * (X @ tW.T + (tb.astype(np.float64) if bias else 0.0))
    want.append(np.maximum(Z, 0) @ ta + U @ a)
    return out, want


# Shapes with every edge of the kernels: rows left after blocks of 8 or 6 and after a sample tile
# of 256; particles not filling a panel (8 to 32) nor a 64-bit word; features left after blocks of
# 12 or 6; one of each.
SHAPES = [(600, 302, 7), (257, 129, 64), (13, 33, 100), (1, 1, 1), (70, 2 * 64 * 3 + 2, 13)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_relu_passes_match_numpy_on_every_instruction_set(shape, bias, dtype, simd):
    """forward, vjp (gA, gW, gb) and jvp against numpy, the same bits for 1, 2 and 3 threads."""
    n, N, d = shape
    runs = {threads: passes(dtype, n, N, d, bias, threads) for threads in (1, 2, 3)}
    got, want = runs[1]
    for g, w, what in zip(got, want, ("forward", "gA", "gW", "gb" if bias else "jvp", "jvp")):
        assert_close(g, w, dtype, f"{simd} {what}")
    for threads in (2, 3):
        for g, other in zip(got, runs[threads][0]):
            np.testing.assert_array_equal(g, other, err_msg=f"{simd}: {threads} threads")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_avx2_and_avx512_kernels_give_the_same_numbers(dtype):
    """The kernels of both instruction sets take the same operations in the same order
    (simd_sign_kernels.inc): results identical bit for bit, the engine's field included."""
    if not (_core.simd_supported("avx2") and _core.simd_supported("avx512")):
        pytest.skip("this CPU or build does not run both the avx2 and the avx512 kernels")
    previous = mf.get_simd()
    results = {}
    try:
        for name in ("avx2", "avx512"):
            mf.set_simd(name)
            got = [x for shape in SHAPES for bias in (False, True) for x in passes(dtype, *shape, bias, 2)[0]]
            net, X, Y = make_problem(1, True, dtype)
            got += list(mf.dd_field(net, X, Y))
            results[name] = got
    finally:
        mf.set_simd(previous)
    for a, b in zip(results["avx2"], results["avx512"]):
        np.testing.assert_array_equal(a, b)


def test_set_simd_checks_its_argument():
    previous = mf.get_simd()
    assert previous in mf.SIMD[1:]
    try:
        assert mf.set_simd("portable") == previous
        assert mf.get_simd() == "portable"
        mf.set_simd("auto")
        best = next(s for s in ("avx512", "avx2", "portable") if _core.simd_supported(s))
        assert mf.get_simd() == best
        with pytest.raises(ValueError, match="simd: expected one of"):
            mf.set_simd("sse9")
        for name in ("avx2", "avx512"):
            if not _core.simd_supported(name):
                with pytest.raises(ValueError, match="cannot run"):
                    mf.set_simd(name)
    finally:
        mf.set_simd(previous)


def test_simd_environment_variable(tmp_path):
    """MFNTK_SIMD selects the kernels at import; an unknown name warns and keeps the default."""
    import subprocess
    import sys
    code = "import mfntk as mf; print(mf.get_simd())"
    env = dict(__import__("os").environ, MFNTK_SIMD="portable")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "portable"
    env["MFNTK_SIMD"] = "sse9"
    run = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert run.stdout.strip() == next(s for s in ("avx512", "avx2", "portable") if _core.simd_supported(s))
    assert "MFNTK_SIMD ignored" in run.stderr


def test_cache_holds_one_bit_per_preactivation():
    n = 4096

    def cache_bytes(activation, N, k, value_bytes, chunk=None):
        shard = _core.Shard(N, default_particle_chunk(N) if chunk is None else chunk)
        return _core.preactivation_cache_bytes(activation, n, shard, k, value_bytes)

    # relu, one output: one bit per (i, j), rounded up to whole 64-bit words per tile row
    assert cache_bytes("relu", 2 ** 21, 1, 8) == n * 2 ** 21 / 8 == 2 ** 30       # 32 chunks of 2^16
    assert cache_bytes("relu", 302, 1, 8) == n * 2 * 3 * 8    # one chunk, halves of 151: 128 + 23
    assert cache_bytes("relu", 301, 1, 4) == n * 5 * 8        # 128, 128, 45
    assert cache_bytes("relu", 302, 1, 8, chunk=128) == n * 2 * 3 * 8   # chunks 128, 23 in each half
    assert cache_bytes("relu", 301, 1, 8, chunk=128) == n * 5 * 8
    # other activations and several outputs keep the pre-activations
    assert cache_bytes("relu", 302, 3, 8) == n * 302 * 8
    assert cache_bytes("identity", 302, 1, 4) == n * 302 * 4
    assert cache_bytes("tanh", 302, 1, 8) == n * 302 * 8
    # the memory estimate of a run counts the cache the engine takes: the signs (8 MiB) fit in
    # 10 MiB where the 512 MiB of pre-activations do not
    options = RunOptions(t_max=1.0, dt=0.1, cache_mb=10.0)
    assert mf.TwoLayer(3, 2 ** 14, activation="relu").engine_memory(n, n, options)[1] == n * 2 ** 14 / 8
    assert mf.TwoLayer(3, 2 ** 14, activation="tanh").engine_memory(n, n, options)[1] == 0
