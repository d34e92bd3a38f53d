"""The sign-mask passes of relu with one output (network.hpp): the field of the dynamics, the
residual dynamics and the linearized model against an independent numpy reference, with the
cache of signs taken and not taken, for one and two threads; and the cache's size."""
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
def test_field_residual_and_linearized_blocks_match_numpy(k, bias, dtype):
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
def test_sign_mask_passes_for_tile_edges(N):
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
