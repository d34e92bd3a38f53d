"""The vectorised erf of the activation tiles (cpp/include/mfntk/fast_erf.hpp) against scipy, in ulp.

sigma and sigma' are reached through ``_core.activation`` (orders 0 and 1 take the row path of the
tiles) and through a network's forward pass (the tiles themselves).
"""
import numpy as np
import pytest
from scipy.special import erf

import mfntk as mf
from mfntk import _core

DTYPES = [np.float64, np.float32]
# Bounds in ulp of the result's dtype, against the float64 references below. float64: the tile
# path is within ~1 ulp of the exact erf, and scipy's erf is itself up to ~3 ulp off near |u| = 1;
# sigma' within ~3.5 ulp of the exact one. float32 is computed in double and rounded once.
ERF_ULP = {np.float64: 4.0, np.float32: 1.0}
DERIV_ULP = {np.float64: 5.0, np.float32: 1.0}
TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)
# The boundaries of the pieces of the approximation.
BOUNDARIES = [0.84375, 1.25, 1.0 / 0.35, 6.0]


def ulp_error(got, ref, dtype):
    """|got - ref| in units of the spacing of dtype at ref (ref in float64)."""
    spacing = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / spacing


def exact_square(u):
    """(h, l) with h + l = u^2 exactly (Dekker's product; |u| < 1e150)."""
    split = 134217729.0 * u
    hi = split - (split - u)
    lo = u - hi
    h = u * u
    return h, ((hi * hi - h) + 2.0 * hi * lo) + lo * lo


def derivative_reference(u):
    """(2/sqrt(pi)) exp(-u^2) in float64 without the rounding error of u^2 (|u| <= 40)."""
    h, lo = exact_square(u)
    with np.errstate(under="ignore"):
        return TWO_OVER_SQRT_PI * (np.exp(-h) * (1.0 - lo))


def grid(dtype):
    """A dense grid of [-8, 8], tiny, subnormal and huge values, and the pieces' boundaries."""
    info = np.finfo(dtype)
    tiny = np.concatenate([np.geomspace(float(info.tiny), 1, 2000),
                           [float(info.smallest_subnormal), 4 * float(info.smallest_subnormal), float(info.tiny) / 3]])
    huge = np.geomspace(10, float(info.max) / 4, 200)  # and max itself below
    edges = [np.nextafter(dtype(b), dtype(s)) for b in BOUNDARIES for s in (0, np.inf)] + [dtype(b) for b in BOUNDARIES]
    u = np.concatenate([np.linspace(-8, 8, 400_001), tiny, huge, np.asarray(edges, np.float64), [0.0, info.max]])
    u = np.concatenate([u, -u]).astype(dtype)
    return u[np.isfinite(u)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_erf_within_ulps_of_scipy(dtype):
    u = grid(dtype)
    got = _core.activation("erf", 0.0, u, 0)
    assert got.dtype == dtype
    err = ulp_error(got, erf(u.astype(np.float64)), dtype)
    worst = np.argmax(err)
    assert err[worst] <= ERF_ULP[dtype], f"{err[worst]:.2f} ulp at u = {u[worst]!r}"
    # odd, and |erf| <= 1 with erf = +-1 exactly beyond the saturation
    np.testing.assert_array_equal(_core.activation("erf", 0.0, -u, 0), -got)
    assert np.all(np.abs(got) <= 1)
    np.testing.assert_array_equal(got[np.abs(u) >= 6], np.sign(u[np.abs(u) >= 6]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_erf_derivative_within_ulps(dtype):
    # to |u| = 40: exp(-u^2) runs through the subnormals to 0 (|u| > 27.3 in float64)
    u = np.concatenate([np.linspace(-40, 40, 400_001), grid(dtype)]).astype(dtype)
    u = u[np.abs(u) <= 40]
    got = _core.activation("erf", 0.0, u, 1)
    err = ulp_error(got, derivative_reference(u.astype(np.float64)), dtype)
    worst = np.argmax(err)
    assert err[worst] <= DERIV_ULP[dtype], f"{err[worst]:.2f} ulp at u = {u[worst]!r}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_erf_special_values(dtype):
    info = np.finfo(dtype)
    u = np.array([np.nan, np.inf, -np.inf, info.max, -info.max, 0.0, -0.0, info.smallest_subnormal], dtype=dtype)
    s, ds = _core.activation("erf", 0.0, u, 0), _core.activation("erf", 0.0, u, 1)
    assert np.isnan(s[0]) and np.isnan(ds[0])
    np.testing.assert_array_equal(s[1:5], [1, -1, 1, -1])
    np.testing.assert_array_equal(ds[1:5], 0)
    assert s[5] == 0 and not np.signbit(s[5]) and s[6] == 0 and np.signbit(s[6])
    assert s[7] > 0  # a subnormal u keeps its value's sign and is not flushed
    np.testing.assert_array_equal(ds[5:], dtype(TWO_OVER_SQRT_PI))
    # NaN anywhere in a row leaves its neighbours alone
    row = np.full(37, 0.5, dtype=dtype)
    row[::5] = np.nan
    s = _core.activation("erf", 0.0, row, 0)
    assert np.array_equal(np.isnan(s), np.isnan(row))
    np.testing.assert_array_equal(s[~np.isnan(row)], _core.activation("erf", 0.0, np.array([0.5], dtype), 0)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_erf_does_not_depend_on_the_position_in_the_row(dtype, rng):
    # every element goes through the same packet code: lengths around the chunk (256) and the
    # vector widths, and shifted copies, give bit-identical values
    v = (3.0 * rng.standard_normal(600)).astype(dtype)
    for order in (0, 1):
        full = _core.activation("erf", 0.0, v, order)
        for length in (1, 7, 8, 9, 255, 256, 257, 513):
            np.testing.assert_array_equal(_core.activation("erf", 0.0, v[:length], order), full[:length])
        for shift in (1, 3, 17):
            np.testing.assert_array_equal(_core.activation("erf", 0.0, v[shift:], order), full[shift:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_network_tiles_agree_with_the_row_path(dtype, rng):
    # f(x) = (1/N) sum_j a_jk erf(w_j x) with x = 1, N a power of 2 and a = I: f_k = erf(w_k) / N,
    # exactly, computed by the tiles of the forward pass
    N = 512
    net = mf.TwoLayer(1, N, activation="erf", outputs=N, dtype=np.dtype(dtype).name, seed=0)
    w = np.concatenate([np.linspace(-7, 7, N - 4), [1e30, -1e30, 1e-30, 6.0]]).astype(dtype)
    net.a, net.W = np.eye(N, dtype=dtype), w[:, None].copy()
    got = net.predict(np.ones((1, 1), dtype=dtype))[0] * dtype(N)
    np.testing.assert_array_equal(got, _core.activation("erf", 0.0, w, 0))
    assert ulp_error(got, erf(w.astype(np.float64)), dtype).max() <= ERF_ULP[dtype]
