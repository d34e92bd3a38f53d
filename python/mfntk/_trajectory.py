"""The record of a run: :class:`Trajectory`, built from a simulation's state in one place."""
from __future__ import annotations

import numpy as np

__all__ = ["Trajectory", "linearized_predict", "SERIES"]

#: Every series a run can record: name -> (dimensions after the record axis, description with unit).
SERIES = {
    "t": ((), "time (mean-field units, SPEC 3; gradient-flow time for a DiagonalLinear)"),
    "step": ((), "integrator steps since t = 0"),
    "train_risk": ((), "mean loss on the training set"),
    "test_risk": ((), "mean loss on the test split, or on a held-out sample of the sampler"),
    "train_error": ((), "classification error on the training set (argmax of the outputs, or sign for one "
                        "output), a fraction"),
    "test_error": ((), "classification error on the test set, a fraction"),
    "rd_residual": (("sample", "output"), "residual of the residual dynamics, y - g for the squared loss"),
    "linearized_distance": ((), "|f(theta_t) - fbar_t| / |f(theta_0) - y| on the training set "
                                "(Chizat-Oyallon-Bach)"),
    "displacement": ((), "|theta_t - theta_0| / |theta_0|, all parameters"),
    "displacement_a": ((), "|a_t - a_0| / |a_0| (a two-layer network's)"),
    "displacement_W": ((), "|W_t - W_0| / |W_0| (a two-layer network's)"),
    "displacement_b": ((), "|b_t - b_0| / |b_0| (a two-layer network's; NaN without bias)"),
    "kernel_distance": ((), "|K_t - K_0|_F / |K_0|_F of the tangent kernel on the probe set"),
    "alignment": ((), "kernel-target alignment of K_t on the probe set (Cristianini et al.)"),
    "objective_change": ((), "relative decrease of the training risk over the last record interval"),
    "tangent_change": ((), "|Df(theta_t) - Df(theta_prev)|_F / |Df(theta_prev)|_F over the last record "
                           "interval"),
}


class Trajectory:
    """The record of a run of :func:`simulate`.

    Attributes
    ----------
    t, step : ndarray (records,)
        Times (mean-field units, SPEC 3; for a DiagonalLinear gradient-flow time) and step
        indices of the records.
    train_risk, test_risk : ndarray (records,)
        Mean loss on the training set and on the test split (or a held-out sample from the
        data's sampler); ``test_risk`` is None when the data has neither.
    train_error, test_error : ndarray (records,) or None
        For classification data: the fraction of misclassified points (argmax of the outputs
        for one-hot targets, the sign for one output).
    net, net0 : TwoLayer or DiagonalLinear
        The model at the last record and at t = 0 (copies; the input is left unchanged).
    rd_residual : ndarray (records, n, k) or None
        With ``residual_dynamics=True``: the residual of the residual dynamics, y - g for the
        squared loss (r(g) = -dl/df for the logistic loss).
    linearized_distance : ndarray or None
        With ``linearized=True``: |f(theta_t) - fbar_t| / |f(theta_0) - y| on the training set.
    linearized_net : TwoLayer, DiagonalLinear or None
        The parameters of the linearized model at the last record.
    displacement, displacement_a, displacement_W, displacement_b, kernel_distance,
    alignment, objective_change, tangent_change : ndarray or None
        With ``diagnostics=True`` (see :func:`simulate`). A DiagonalLinear has no layers:
        its runs record ``displacement`` (of (w_+, w_-)) only, the per-layer series are None;
        its kernel is :meth:`~mfntk.DiagonalLinear.tangent_kernel`.
    config : dict
        The options of the run. ``wall_time`` (s), ``interrupted`` (bool).

    A trajectory read from disk (:func:`mfntk.load`, :func:`mfntk.resume`) also has ``path``,
    ``snapshots`` (particle snapshots, :class:`mfntk._io.Snapshots`), ``complete`` (the run
    reached t_max) and ``meta`` (package version, machine, seeds).
    """

    _SERIES = tuple(SERIES)

    def __init__(self, series, net, net0, config, wall_time=0.0, interrupted=False, linearized_net=None):
        for name in self._SERIES:
            values = series.get(name)
            setattr(self, name, None if values is None else np.asarray(values))
        self.net, self.net0, self.config = net, net0, config
        self.wall_time, self.interrupted, self.linearized_net = wall_time, interrupted, linearized_net

    @property
    def centered(self):
        """Whether the run trained the centred model F(x) = f(x; theta) - f(x; theta_0)."""
        return bool(self.config.get("centered", False))

    def predict(self, X, threads=None):
        """The trained model at the last record on X, shape (n, k): f(x; theta_t), or for a
        centred run (``centered=True``) F(x) = f(x; theta_t) - f(x; theta_0), the model whose
        risks were recorded."""
        F = self.net.predict(X, threads=threads)
        if self.centered:
            F -= self.net0.predict(X, threads=threads)
        return F

    def linearized_predict(self, X, threads=None):
        """The linearized model fbar(x) = f(x; theta_0) + (alpha/N) sum_j <grad sigma_*(x; theta_j^0), thetabar_j - theta_j^0>
        (+ cbar - c_0 with an output bias; for a DiagonalLinear <betabar, x>, see
        :meth:`~mfntk.DiagonalLinear.linearized_beta`) at the last record (needs
        ``linearized=True``); for a centred run without the f(x; theta_0) term, as :meth:`predict`."""
        if self.linearized_net is None:
            raise ValueError("linearized_predict: the run was not made with linearized=True")
        F = linearized_predict(self.net0, self.linearized_net, X, threads)
        if self.centered:
            F -= self.net0.predict(X, threads=threads)
        return F

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

    def to_pandas(self):
        """The scalar series as a pandas DataFrame indexed by ``t`` (one column per series;
        ``rd_residual`` is left out: see :meth:`to_xarray`). Needs pandas."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a test dependency
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        columns = {k: v for k, v in self.series().items() if k != "t" and v.ndim == 1}
        frame = pd.DataFrame(columns, index=pd.Index(self.t, name="t"))
        frame.attrs.update({"description": {k: SERIES[k][1] for k in columns}, "config": self.config})
        return frame

    def to_xarray(self):
        """Every series as an xarray Dataset on the record coordinate ``t`` (with ``step``),
        each variable described in its attributes, the run's options in the Dataset's
        attributes (JSON). Needs xarray."""
        try:
            import xarray as xr
        except ImportError:  # pragma: no cover - xarray is a test dependency
            raise ImportError("to_xarray needs xarray: pip install xarray") from None
        import json
        data = {}
        for name, values in self.series().items():
            if name in ("t", "step"):
                continue
            dims = ("t",) + SERIES[name][0]
            data[name] = xr.Variable(dims, values, attrs={"description": SERIES[name][1]})
        coords = {"t": ("t", self.t, {"description": SERIES["t"][1], "units": "mean-field time"}),
                  "step": ("t", self.step, {"description": SERIES["step"][1]})}
        return xr.Dataset(data, coords=coords, attrs={"config": json.dumps(self.config, default=str),
                                                      "interrupted": int(self.interrupted)})

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
    """The tangent model at ``net0``'s parameters evaluated with the parameters of ``net_bar``
    (SPEC 4): for a TwoLayer fbar(X) = f(X; theta0) + (alpha/N) J(theta0) (thetabar - theta0)
    (+ cbar - c0 with an output bias), for a DiagonalLinear <betabar, x>; the model's
    ``linearized_predict``."""
    return net0.linearized_predict(net_bar, X, threads=threads)
