"""Losses (SPEC 2): values, residuals r = -dl/df, and risks (mean of the loss)."""
from __future__ import annotations

import numpy as np

from ._registry import LOSSES  # noqa: F401  (the names, from the core)


def loss_values(loss, F, Y):
    """Per-sample loss l(f_i, y_i), shape (n,): squared 1/2 |y - f|^2, logistic log(1 + exp(-y f))."""
    if loss == "squared":
        return 0.5 * np.sum((Y - F) ** 2, axis=1)
    return np.sum(np.logaddexp(0.0, -Y * F), axis=1)


def risk(loss, F, Y):
    """Empirical risk: the mean of the loss over the rows (float64 whatever the input dtype)."""
    return float(np.mean(loss_values(loss, np.asarray(F, np.float64), np.asarray(Y, np.float64))))


def residual(loss, F, Y):
    """r = -dl/df: y - f (squared), y / (1 + exp(y f)) (logistic)."""
    if loss == "squared":
        return Y - F
    return Y * np.exp(-np.logaddexp(0.0, Y * F))
