"""NumPy versions of the activations sigma of mfntk.

The C++ core owns the activations (their names come from its registry,
:mod:`mfntk._registry`); these are the same functions written with NumPy for the
teachers of :mod:`mfntk.datasets`, whose outputs must not change with the core. Every
activation of the core has one here (a test checks it). Only sigma itself is here;
derivatives live in the core (``_core.activation``).

All functions take an array-like ``u`` and return a new float64 array of the same
shape; they never modify their input and emit no floating-point warnings for finite
inputs (``softplus`` and ``sigmoid`` are written to be stable for large ``|u|``).
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import numpy as np
from scipy import special

from ._registry import ACTIVATIONS, activation_info

__all__ = [
    "NAMES",
    "erf",
    "get",
    "identity",
    "quadratic",
    "relu",
    "sigmoid",
    "softplus",
    "tanh",
]

#: Names accepted by :func:`get` (and by the ``activation=`` arguments of mfntk): the core's.
NAMES = ACTIVATIONS


def _f64(u) -> np.ndarray:
    return np.asarray(u, dtype=np.float64)


def relu(u):
    """max(u, 0)."""
    return np.maximum(_f64(u), 0.0)


def tanh(u):
    """Hyperbolic tangent."""
    return np.tanh(_f64(u))


def erf(u):
    """Gauss error function erf(u) = 2/sqrt(pi) int_0^u exp(-t^2) dt."""
    return special.erf(_f64(u))


def sigmoid(u):
    """Logistic function 1 / (1 + exp(-u)), stable for large ``|u|``."""
    return special.expit(_f64(u))


def softplus(u):
    """log(1 + exp(u)), computed as ``np.logaddexp(0, u)`` (no overflow)."""
    return np.logaddexp(0.0, _f64(u))


def quadratic(u, c0: float = 0.0):
    """u**2 + c0 (the activation of Ghorbani-Mei-Misiakiewicz-Montanari 2019)."""
    u = _f64(u)
    return u * u + c0


def identity(u):
    """u itself (as a new float64 array)."""
    return np.array(u, dtype=np.float64, copy=True)


_TABLE = {
    "relu": relu,
    "tanh": tanh,
    "erf": erf,
    "sigmoid": sigmoid,
    "softplus": softplus,
    "quadratic": quadratic,
    "identity": identity,
}


def get(name: str, c0: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
    """Return the NumPy activation called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`NAMES`.
    c0 : float, default 0.0
        Constant of the quadratic activation u**2 + c0. Other activations have no
        parameter and ignore it, so that callers can pass one value for all names.

    Returns
    -------
    callable
        ``sigma(u) -> ndarray`` (float64, same shape as ``u``).

    Raises
    ------
    TypeError
        If ``name`` is not a string or ``c0`` is not a real number.
    ValueError
        If ``name`` is unknown or ``c0`` is not finite.

    Examples
    --------
    >>> get("relu")([-1.0, 2.0])
    array([0., 2.])
    >>> get("quadratic", c0=-1.0)([0.0, 2.0])
    array([-1.,  3.])
    """
    if not isinstance(name, str):
        raise TypeError(f"activation: expected a name (str); got {type(name).__name__}")
    info = activation_info(name)
    if isinstance(c0, (bool, np.bool_)) or not isinstance(c0, (int, float, np.integer, np.floating)):
        raise TypeError(f"c0: expected a real number; got {type(c0).__name__}")
    c0 = float(c0)
    if not np.isfinite(c0):
        raise ValueError(f"c0: must be finite; got {c0}")
    if name not in _TABLE:  # the core has it, NumPy not yet: a gap that tests/test_registry.py reports
        raise NotImplementedError(f"activation: {name!r} has no NumPy version in mfntk._activations")
    if info.has_c0:
        return partial(_TABLE[name], c0=c0)
    return _TABLE[name]
