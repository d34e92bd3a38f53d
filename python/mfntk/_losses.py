"""Losses (SPEC 2): values, residuals r = -dl/df, and risks (mean of the loss).

The core owns the losses (their names come from its registry, :mod:`mfntk._registry`);
these are their NumPy formulas, for the risks recorded along a run. Every function looks
the loss up in one table keyed by name: a name the registry does not know raises
ValueError, and a loss of the core without formulas here raises NotImplementedError
(a test checks that there is none).
"""
from __future__ import annotations

import numpy as np

from ._registry import LOSSES, check_loss

__all__ = ["LOSSES", "loss_values", "residual", "risk"]


def _squared_values(F, Y):
    return 0.5 * np.sum((Y - F) ** 2, axis=1)


def _squared_residual(F, Y):
    return Y - F


def _logistic_values(F, Y):
    return np.sum(np.logaddexp(0.0, -Y * F), axis=1)


def _logistic_residual(F, Y):
    return Y * np.exp(-np.logaddexp(0.0, Y * F))


# name -> (per-sample loss, residual)
_FORMULAS = {
    "squared": (_squared_values, _squared_residual),
    "logistic": (_logistic_values, _logistic_residual),
}


def _formulas(loss):
    check_loss(loss)
    try:
        return _FORMULAS[loss]
    except KeyError:
        raise NotImplementedError(f"loss: {loss!r} has no NumPy formulas in mfntk._losses") from None


def loss_values(loss, F, Y):
    """Per-sample loss l(f_i, y_i), shape (n,): squared 1/2 |y - f|^2, logistic log(1 + exp(-y f))."""
    return _formulas(loss)[0](F, Y)


def risk(loss, F, Y):
    """Empirical risk: the mean of the loss over the rows (float64 whatever the input dtype)."""
    return float(np.mean(loss_values(loss, np.asarray(F, np.float64), np.asarray(Y, np.float64))))


def residual(loss, F, Y):
    """r = -dl/df: y - f (squared), y / (1 + exp(y f)) (logistic)."""
    return _formulas(loss)[1](F, Y)
