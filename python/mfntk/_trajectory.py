"""The record of a run: :class:`Trajectory`, built from a simulation's state in one place."""
from __future__ import annotations

import numpy as np

from ._validation import resolve_threads

__all__ = ["Trajectory", "linearized_predict"]


class Trajectory:
    """The record of a run of :func:`simulate`.

    Attributes
    ----------
    t, step : ndarray (records,)
        Times (mean-field units, SPEC 3) and step indices of the records.
    train_risk, test_risk : ndarray (records,)
        Mean loss on the training set and on the test split (or a held-out sample from the
        data's sampler); ``test_risk`` is None when the data has neither.
    net, net0 : TwoLayer
        The network at the last record and at t = 0 (copies; the input is left unchanged).
    rd_residual : ndarray (records, n, k) or None
        With ``residual_dynamics=True``: the residual of the residual dynamics, y - g for the
        squared loss (r(g) = -dl/df for the logistic loss).
    linearized_distance : ndarray or None
        With ``linearized=True``: |f(theta_t) - fbar_t| / |f(theta_0) - y| on the training set.
    linearized_net : TwoLayer or None
        The parameters of the linearized model at the last record.
    displacement, displacement_a, displacement_W, displacement_b, kernel_distance,
    alignment, objective_change, tangent_change : ndarray or None
        With ``diagnostics=True`` (see :func:`simulate`).
    config : dict
        The options of the run. ``wall_time`` (s), ``interrupted`` (bool).

    A trajectory read from disk (:func:`mfntk.load`, :func:`mfntk.resume`) also has ``path``,
    ``snapshots`` (particle snapshots, :class:`mfntk._io.Snapshots`), ``complete`` (the run
    reached t_max) and ``meta`` (package version, machine, seeds).
    """

    _SERIES = ("t", "step", "train_risk", "test_risk", "rd_residual", "linearized_distance", "displacement",
               "displacement_a", "displacement_W", "displacement_b", "kernel_distance", "alignment",
               "objective_change", "tangent_change")

    def __init__(self, series, net, net0, config, wall_time=0.0, interrupted=False, linearized_net=None):
        for name in self._SERIES:
            values = series.get(name)
            setattr(self, name, None if values is None else np.asarray(values))
        self.net, self.net0, self.config = net, net0, config
        self.wall_time, self.interrupted, self.linearized_net = wall_time, interrupted, linearized_net

    def linearized_predict(self, X, threads=None):
        """The linearized model fbar(x) = f(x; theta_0) + (alpha/N) sum_j <grad sigma_*(x; theta_j^0), thetabar_j - theta_j^0>
        at the last record (needs ``linearized=True``)."""
        if self.linearized_net is None:
            raise ValueError("linearized_predict: the run was not made with linearized=True")
        return linearized_predict(self.net0, self.linearized_net, X, threads)

    @classmethod
    def from_state(cls, series, state, layout, net0, config, wall_time=0.0, interrupted=False):
        """The trajectory of a run whose engine state vector is ``state`` (laid out as
        ``layout``, the engine's block offsets) after the records ``series``: the one place
        where a Trajectory is built from a state (by a simulation and by a file reader)."""
        P = net0.n_params
        if state.shape[0] < P:
            raise ValueError("state: shorter than the network's particles")
        net = net0.copy()
        net.set_flat(state[:P])
        lin = None
        if config.get("linearized"):
            off = int(layout["linearized"])
            lin = net0.copy()
            lin.set_flat(state[off:off + P])
        return cls({k: v for k, v in series.items() if len(v)}, net, net0.copy(), config, wall_time, interrupted,
                   lin)

    def series(self):
        """The recorded time series as a dict of arrays (absent ones left out)."""
        return {k: getattr(self, k) for k in self._SERIES if getattr(self, k) is not None}

    def __len__(self):
        return len(self.t)

    def __repr__(self):
        last = f"t={self.t[-1]:.4g}, train_risk={self.train_risk[-1]:.4g}" if len(self.t) else "empty"
        flag = ", interrupted" if self.interrupted else ""
        return f"Trajectory({len(self.t)} records, {last}{flag})"


def linearized_predict(net0, net_bar, X, threads=None):
    """fbar(X) = f(X; theta0) + (alpha/N) J(theta0) (thetabar - theta0): the tangent model at theta0
    (SPEC 4) evaluated with the parameters of ``net_bar``."""
    X = net0.check_inputs(X)
    th = resolve_threads(threads)
    ta, tW, tb = net0.layout.split(net_bar.get_flat() - net0.get_flat())
    Jt = net0.backend.jvp(net0, X, np.ascontiguousarray(ta), np.ascontiguousarray(tW),
                          None if tb is None else np.ascontiguousarray(tb), th)
    return net0.predict(X, threads=th) + net0.dtype.type(net0.alpha / net0.width) * Jt
