"""What a run records between the engine's chunks (SPEC 2-4): risks, the residual of the
residual dynamics, the distance to the linearized model and the lazy-versus-rich diagnostics."""
from __future__ import annotations

import math

import numpy as np

from . import _diagnostics
from ._losses import residual, risk
from ._trajectory import Trajectory

__all__ = ["Recorder", "DivergenceError", "classification_error"]


class DivergenceError(FloatingPointError):
    """A run produced non-finite particles or an exploding risk."""


def classification_error(F, Y):
    """The fraction of rows whose predicted class differs from the target's: argmax over the
    outputs for one-hot rows (k > 1), the sign for one output (labels +-1)."""
    F, Y = np.asarray(F), np.asarray(Y)
    if F.shape[1] == 1:
        wrong = np.sign(F[:, 0]) != np.sign(Y[:, 0])
    else:
        wrong = np.argmax(F, axis=1) != np.argmax(Y, axis=1)
    return float(np.mean(wrong))


class Recorder:
    """The series of one run and the memory its diagnostics need (K_0, the previous record).

    Parameters
    ----------
    options : RunOptions
    net0 : TwoLayer or DiagonalLinear
        The model at t = 0; the records call its methods (``predict``, ``linearized_predict``,
        ``probe_kernel``, ``parameter_blocks``, ``tangent_change``, ``displacement_layers``).
    sets : dict
        ``X``, ``Y`` (training set), ``X_test``, ``Y_test`` (or None), ``X_probe``,
        ``Y_probe``, ``f0`` (the model on X at theta_0), ``offset`` and ``offset_test`` (the
        offsets f(x; theta_0) of the centred model on X and X_test, or None), all in the
        network's dtype, and ``classification`` (bool: record the classification errors).
    threads : int
    """

    def __init__(self, options, net0, sets, threads):
        self.options, self.net0, self.threads = options, net0, threads
        for key, value in sets.items():
            setattr(self, key, value)
        self.series = {name: [] for name in Trajectory._SERIES}
        self._theta0 = net0.parameter_blocks() if options.diagnostics else None  # a copy of the particles
        self._K0 = None
        self._prev = None  # (parameter blocks, train risk) at the previous record, for the per-interval changes

    def record(self, step, net, state, layout):
        """Append one record at ``step`` for the particles of ``net`` and the engine ``state``."""
        o, s = self.options, self.series
        t = step * o.dt
        F = self._model(net, self.X, self.offset)
        train = risk(o.loss, F, self.Y)
        s["t"].append(t)
        s["step"].append(step)
        s["train_risk"].append(train)
        F_test = None if self.X_test is None else self._model(net, self.X_test, self.offset_test)
        if F_test is not None:
            s["test_risk"].append(risk(o.loss, F_test, self.Y_test))
        if self.classification:
            s["train_error"].append(classification_error(F, self.Y))
            if F_test is not None:
                s["test_error"].append(classification_error(F_test, self.Y_test))
        if o.residual_dynamics:
            off = layout["residual"]
            g = state[off:off + F.size].reshape(F.shape).astype(np.float64)
            s["rd_residual"].append(residual(o.loss, g, self.Y.astype(np.float64)))
        if o.linearized:
            off, P = layout["linearized"], layout["particles"]
            bar = self.net0.copy()
            bar.set_flat(state[off:off + P])
            fbar = self.net0.linearized_predict(bar, self.X, self.threads)
            if self.offset is not None:
                fbar -= self.offset
            fbar = fbar.astype(np.float64)
            scale = np.linalg.norm(self.f0.astype(np.float64) - self.Y)
            s["linearized_distance"].append(float(np.linalg.norm(F.astype(np.float64) - fbar) / scale))
        if o.diagnostics:
            self._diagnostics(net, train)
        first = s["train_risk"][0]
        if not math.isfinite(train) or train > o.divergence_factor * max(first, 1.0):
            raise DivergenceError(
                f"simulate: the training risk exploded to {train:.4g} (from {first:.4g}) at step {step} "
                f"(t = {t:.6g}); the dynamics diverged: reduce dt (now {o.dt:g})")

    def _model(self, net, X, offset):
        """The trained model on X: f(X; theta), minus the offsets of a centred model."""
        F = net.predict(X, threads=self.threads)
        if offset is not None:
            F -= offset
        return F

    def _diagnostics(self, net, train):
        s = self.series
        theta = net.parameter_blocks()
        disp = _diagnostics.displacement(self._theta0, theta, getattr(net, "particle_sums", None))
        s["displacement"].append(disp["all"])
        for layer in net.displacement_layers:
            s[f"displacement_{layer}"].append(disp.get(layer, float("nan")))
        K = net.probe_kernel(self.X_probe, threads=self.threads).astype(np.float64)
        if self._K0 is None:
            self._K0 = K
        s["kernel_distance"].append(_diagnostics.kernel_distance(K, self._K0))
        s["alignment"].append(_diagnostics.alignment(K, self.Y_probe))
        if self._prev is None:
            s["objective_change"].append(0.0)
            s["tangent_change"].append(0.0)
        else:
            prev_theta, prev_risk = self._prev
            s["objective_change"].append((prev_risk - train) / prev_risk if prev_risk > 0 else 0.0)
            s["tangent_change"].append(net.tangent_change(prev_theta, self.X_probe))
        self._prev = (theta, train)

    @property
    def last_step(self):
        return self.series["step"][-1] if self.series["step"] else None

    def state_dict(self):
        prev = None
        if self._prev is not None:
            blocks, prev_risk = self._prev
            prev = {**{k: None if v is None else v.copy() for k, v in blocks.items()}, "risk": float(prev_risk)}
        return {
            "series": {k: [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in v]
                       for k, v in self.series.items() if v},
            "K0": None if self._K0 is None else self._K0.copy(), "prev": prev,
        }

    def load_state_dict(self, sd):
        self.series = {name: list(sd["series"].get(name, [])) for name in Trajectory._SERIES}
        self._K0 = None if sd.get("K0") is None else np.asarray(sd["K0"], np.float64)
        prev = sd.get("prev")
        self._prev = None
        if prev is not None:
            self._prev = ({k: v for k, v in prev.items() if k != "risk"}, float(prev["risk"]))
