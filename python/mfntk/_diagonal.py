"""The diagonal linear network f_w(x) = <w_+^D - w_-^D, x> (Woodworth et al. 2020), the second
particle model of the package: coordinate i is the particle (w_+i, w_-i), and the particles
interact through the residual. Its dynamics run in the compiled core (the backend's
``diagonal_dynamics``); this module holds the model, its tangent kernel and its linearization,
and a small driver, :meth:`DiagonalLinear.fit`."""
from __future__ import annotations

import copy as _copy
import math

import numpy as np

from ._backend import get_backend
from ._losses import risk
from ._options import RunOptions
from ._recorder import DivergenceError
from ._registry import check_loss, integrator_info
from ._simulate import MAX_STEPS, _check_labels, _targets
from ._validation import (MAX_SEED, as_matrix, check_bool, check_finite, check_float, check_gram_memory, check_int,
                          check_memory, resolve_dtype, resolve_threads)

__all__ = ["DiagonalLinear", "DiagonalLayout"]


class DiagonalLayout:
    """The parameters (w_+, w_-) as one flat vector [w_+ | w_-]: the layout of
    ``DiagonalLinear.get_flat`` and of the particle block of the engine's state. The only place
    that decodes it."""

    def __init__(self, d):
        self.d = d
        self.size = 2 * d

    def split(self, flat):
        """(w_plus (d,), w_minus (d,)): views of the first ``size`` entries of ``flat``."""
        return flat[: self.d], flat[self.d: self.size]

    def join(self, w_plus, w_minus):
        """The flat vector of (w_plus, w_minus) (a new array)."""
        return np.concatenate([w_plus, w_minus])


class DiagonalLinear:
    """Diagonal linear network of depth D: f_w(x) = <w_+^D - w_-^D, x>, elementwise powers.

    Initialised at w_+ = w_- = alpha 1, so that f = 0 at t = 0. The scale alpha moves the
    gradient flow between the kernel regime (alpha large: the model stays close to its
    linearization and ends near the minimum-l2 interpolant) and the rich regime (alpha small:
    towards the minimum-l1 interpolant for D = 2). Time is gradient-flow time of the empirical
    risk (1/n) sum_i l(f(x_i), y_i), so that the Euler step with dt = eta is gradient descent
    with learning rate eta.

    Parameters
    ----------
    d : int
        Input dimension (the number of particles).
    alpha : float
        Scale of the initialisation, > 0.
    depth : int
        D >= 2.
    dtype : "float64" or "float32"
        Precision of the parameters and of every computation on them.
    backend : None, str or Backend
        The compute backend (see :func:`mfntk.get_backend`).

    Attributes
    ----------
    w_plus, w_minus : ndarray (d,)
        The parameters.
    beta : ndarray (d,)
        The linear predictor w_+^D - w_-^D.
    outputs : int
        1.
    history_, linearized_
        Set by :meth:`fit`.

    Raises
    ------
    ValueError, TypeError
        For invalid arguments (the message names the argument).

    References
    ----------
    Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry, Srebro (2020), Kernel and rich
    regimes in overparametrized models, COLT, Section 4 (the model of Eq. (4) with depth D).

    Examples
    --------
    >>> import mfntk as mf, numpy as np
    >>> model = mf.DiagonalLinear(d=3, alpha=0.5)
    >>> model.predict(np.ones((2, 3))).ravel().tolist()
    [0.0, 0.0]
    """

    outputs = 1

    def __init__(self, d, alpha=1.0, depth=2, dtype="float64", *, backend=None):
        self.d = check_int(d, "d")
        self.alpha = check_float(alpha, "alpha", minimum=0.0, strict=True)
        self.depth = check_int(depth, "depth", minimum=2)
        self.dtype = resolve_dtype(dtype)
        largest = np.finfo(self.dtype).max
        if math.log(self.alpha) * (2 * self.depth - 2) >= math.log(float(largest)):
            raise ValueError(f"alpha: alpha^(2 depth - 2) = {self.alpha:g}^{2 * self.depth - 2} overflows "
                             f"{self.dtype.name}; choose a smaller alpha or depth")
        check_memory(2 * self.d * self.dtype.itemsize, "d", f"a diagonal linear network with d = {self.d}")
        self.layout = DiagonalLayout(self.d)
        self.backend = get_backend(backend)
        self.w_plus = np.full(self.d, self.alpha, dtype=self.dtype)
        self.w_minus = np.full(self.d, self.alpha, dtype=self.dtype)

    # ---- parameters as one flat vector [w_+ | w_-] ----------------------------------------
    @property
    def n_params(self):
        return self.layout.size

    def get_flat(self):
        """The parameters as one flat vector [w_plus, w_minus] (a copy)."""
        return self.layout.join(self.w_plus, self.w_minus)

    def set_flat(self, w):
        """Set the parameters from a flat vector laid out as get_flat() (copied).

        Raises ValueError for a wrong shape or a non-finite value.
        """
        w = np.asarray(w, dtype=self.dtype)
        if w.shape != (self.n_params,):
            raise ValueError(f"w: expected shape ({self.n_params},), got {w.shape}")
        check_finite(w, "w")
        w_plus, w_minus = self.layout.split(w)
        self.w_plus, self.w_minus = w_plus.copy(), w_minus.copy()

    def copy(self):
        """A copy with its own parameter arrays (options and backend shared)."""
        new = _copy.copy(self)
        new.w_plus, new.w_minus = self.w_plus.copy(), self.w_minus.copy()
        return new

    def check_particles(self, name="model"):
        """ValueError naming the array when w_plus or w_minus holds NaN or inf."""
        for part in ("w_plus", "w_minus"):
            check_finite(np.asarray(getattr(self, part)), f"{name}.{part}")

    def config(self):
        """The constructor arguments, as a JSON-able dict (``DiagonalLinear(**config)`` rebuilds
        the model at its initialisation)."""
        return {"d": self.d, "alpha": self.alpha, "depth": self.depth, "dtype": self.dtype.name}

    # ---- the function and its tangent kernel ------------------------------------------------
    @property
    def beta(self):
        """The linear predictor w_+^D - w_-^D, shape (d,)."""
        return self.w_plus ** self.depth - self.w_minus ** self.depth

    def _tangent_weights(self):
        """D^2 (w_+^{2D-2} + w_-^{2D-2}): the tangent kernel is sum_i of these times x_i x'_i."""
        D = self.depth
        return D * D * (self.w_plus ** (2 * D - 2) + self.w_minus ** (2 * D - 2))

    def check_inputs(self, X, name="X", note_copy=True):
        """X as a C-contiguous (n, d) array of the model's dtype, validated (as TwoLayer.check_inputs)."""
        return as_matrix(X, name, dtype=self.dtype, columns=self.d, copy_note=note_copy)

    def predict(self, X, threads=None):
        """f(X) = X beta, shape (n, 1).

        ``threads`` is accepted for the interface of :meth:`mfntk.TwoLayer.predict`; the product
        is one BLAS call. Raises ValueError when the parameters or X hold NaN or inf.
        """
        self.check_particles()
        X = self.check_inputs(X)
        return (X @ self.beta)[:, None]

    def tangent_kernel(self, X, X2=None):
        """The tangent kernel K(x, x') = <grad_w f(x), grad_w f(x')>
        = sum_i D^2 (w_+i^{2D-2} + w_-i^{2D-2}) x_i x'_i on X (and X2), shape (n1, n2).

        Raises
        ------
        ValueError
            For inputs of the wrong shape or non-finite values.
        MemoryError
            When the (n1, n2) matrix does not fit in memory.
        """
        self.check_particles()
        X = self.check_inputs(X)
        X2 = X if X2 is None else self.check_inputs(X2, "X2")
        check_gram_memory(X, None if X2 is X else X2)
        return (X * self._tangent_weights()) @ X2.T

    def linearized_beta(self, bar):
        """The predictor of the linearization at this model's parameters w_0, with parameters
        ``bar`` (a DiagonalLinear of the same shape): betabar = beta_0 + J_0 (wbar - w_0), i.e.
        beta_0 + D w0_+^{D-1} (wbar_+ - w0_+) - D w0_-^{D-1} (wbar_- - w0_-)."""
        if not isinstance(bar, DiagonalLinear) or bar.d != self.d or bar.depth != self.depth:
            raise ValueError(f"bar: expected a DiagonalLinear with d = {self.d} and depth = {self.depth}")
        D = self.depth
        return (self.beta + D * self.w_plus ** (D - 1) * (bar.w_plus - self.w_plus)
                - D * self.w_minus ** (D - 1) * (bar.w_minus - self.w_minus))

    def linearized_predict(self, bar, X):
        """fbar(X) = f_0(X) + J_0 (wbar - w_0) of the linearization at this model, shape (n, 1)."""
        X = self.check_inputs(X)
        return (X @ self.linearized_beta(bar).astype(self.dtype))[:, None]

    # ---- dynamics ---------------------------------------------------------------------------
    def _data(self, X, y):
        X = self.check_inputs(X, note_copy=False)
        Y = _targets(self, y, "y")
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"y: has {Y.shape[0]} rows but X has {X.shape[0]}")
        check_finite(Y, "y")
        return X, Y

    def _engine(self, X, Y, loss, weight_decay=0.0, temperature=0.0, seed=0, linearized=False, threads=None):
        check_loss(loss)
        _check_labels(Y, loss, "y")
        engine = self.backend.diagonal_dynamics(
            self, loss=loss, weight_decay=check_float(weight_decay, "weight_decay", minimum=0.0),
            temperature=temperature, seed=seed, residual_dynamics=False, linearized=linearized,
            threads=resolve_threads(threads))
        engine.set_data(X, Y)
        return engine

    def field(self, X, y, loss="squared", weight_decay=0.0, threads=None):
        """The gradient flow's field at the current parameters on data (X, y):
        d w_+-/dt = +-D w_+-^{D-1} X^T r / n - lambda w_+-, r = -dl/df at f = X beta.

        Returns
        -------
        dw_plus, dw_minus : ndarray (d,)
        """
        self.check_particles()
        X, Y = self._data(X, y)
        engine = self._engine(X, Y, loss, weight_decay, threads=threads)
        return self.layout.split(engine.field(self.get_flat()))

    def fit(self, X, y, t_max, dt, *, method="euler", loss="squared", weight_decay=0.0, temperature=0.0, seed=0,
            linearized=False, record_every=None, threads=None):
        """Train the parameters in place by the gradient flow on (X, y) from t = 0 to t_max.

        The flow starts from the current parameters (w_+ = w_- = alpha 1 for a new model) and
        runs in the compiled core; ``method="euler"`` with ``dt = eta`` is gradient descent with
        learning rate eta. A stable step needs about dt < 2 / lambda_max, with lambda_max the
        largest eigenvalue of the risk's Hessian: 2 D^2 alpha^{2D-2} |X|_2^2 / n at t = 0 for the
        squared loss, and of order D^2 |beta|^{(2D-2)/D} |X|_2^2 / n later.

        Parameters
        ----------
        X : array (n, d)
        y : array (n,) or (n, 1)
            Targets; labels in {-1, +1} for the logistic loss.
        t_max : float
            Final time, >= 0.
        dt : float
            Time step, > 0; ceil(t_max / dt) steps are taken.
        method : str
            An integrator of the core (``mfntk._registry.INTEGRATORS``: euler, heun, rk4).
        loss : str
            A loss of the core (``mfntk._registry.LOSSES``: squared, logistic).
        weight_decay : float
            lambda >= 0: the field gains -lambda w.
        temperature : float
            tau >= 0: Langevin noise sqrt(2 tau) dB on (w_+, w_-) (needs ``method="euler"``).
        seed : int
            Seed of the noise.
        linearized : bool
            Train the linearization at the initial parameters alongside; it ends in ``linearized_``.
        record_every : float or None
            Time between records of ``history_`` (rounded to whole steps; None: about 100 records).
        threads : int or None
            OpenMP threads (results do not depend on it). None: all available.

        Returns
        -------
        self
            With ``history_``: a dict of float64 arrays ``t``, ``step``, ``train_risk`` and, with
            ``linearized``, ``linearized_distance`` = |f(w_t) - fbar_t| / |f(w_0) - y| on the
            training set (Chizat, Oyallon, Bach); and ``linearized_``: the linearized model's
            parameters as a DiagonalLinear (None without ``linearized``), see
            :meth:`linearized_predict`.

        Raises
        ------
        ValueError, TypeError
            For invalid arguments (the message names the argument).
        DivergenceError
            When the parameters become non-finite or the training risk exceeds
            ``divergence_factor`` (the default of :func:`mfntk.simulate`) times max(initial risk, 1);
            the message says at which step and time.
        """
        self.check_particles()
        X, Y = self._data(X, y)
        t_max = check_float(t_max, "t_max", minimum=0.0)
        dt = check_float(dt, "dt", minimum=0.0, strict=True)
        info = integrator_info(method)
        temperature = check_float(temperature, "temperature", minimum=0.0)
        if temperature > 0 and not info.supports_temperature:
            raise ValueError(f"method: {method!r} cannot integrate temperature > 0; use 'euler' (Euler-Maruyama)")
        seed = check_int(seed, "seed", minimum=0, maximum=MAX_SEED)
        linearized = check_bool(linearized, "linearized")
        if not t_max / dt <= MAX_STEPS:
            raise ValueError(f"t_max, dt: t_max / dt = {t_max / dt:.3g} steps is too many (at most 2**53)")
        steps_total = int(math.ceil(t_max / dt - 1e-9)) if t_max > 0 else 0
        if record_every is None:
            record_steps = max(1, steps_total // 100)
        else:
            record_steps = max(1, int(round(check_float(record_every, "record_every", minimum=0.0, strict=True) / dt)))
        # the engine's buffers are O(n + d) values beside the data: nothing large to check here
        engine = self._engine(X, Y, loss, weight_decay, temperature, seed, linearized, threads)
        layout = engine.layout()
        state = np.zeros(layout["size"], dtype=self.dtype)
        state[: self.n_params] = self.get_flat()
        reference = self.copy()
        if linearized:
            engine.set_reference(self.get_flat())
            state[layout["linearized"]:] = self.get_flat()
        bar = reference.copy()
        f0 = self.predict(X).astype(np.float64)
        scale = np.linalg.norm(f0 - Y)
        history = {"t": [], "step": [], "train_risk": []}
        if linearized:
            history["linearized_distance"] = []

        def record(step):
            self.set_flat(state[: self.n_params])
            F = self.predict(X)
            history["t"].append(step * dt)
            history["step"].append(step)
            with np.errstate(over="ignore", invalid="ignore"):
                train = risk(loss, F, Y)
            history["train_risk"].append(train)
            first = history["train_risk"][0]
            if not math.isfinite(train) or train > divergence_factor * max(first, 1.0):
                raise DivergenceError(f"fit: the training risk exploded to {train:.4g} (from {first:.4g}) at step "
                                      f"{step} (t = {step * dt:.6g}); the flow diverged: reduce dt (now {dt:g})")
            if linearized:
                bar.set_flat(state[layout["linearized"]:])
                fbar = reference.linearized_predict(bar, X).astype(np.float64)
                distance = np.linalg.norm(F.astype(np.float64) - fbar)
                history["linearized_distance"].append(distance / scale if scale > 0 else distance)

        divergence_factor = RunOptions.defaults()["divergence_factor"]
        step = 0
        record(step)
        while step < steps_total:
            count = min(record_steps - step % record_steps, steps_total - step)
            done, finite = engine.advance(state, count, dt, method, step)
            step += done
            if not finite:
                raise DivergenceError(f"fit: the parameters became non-finite (NaN or inf) at step {step} "
                                      f"(t = {step * dt:.6g}); the flow diverged: reduce dt (now {dt:g})")
            record(step)
        self.history_ = {key: np.asarray(values, dtype=np.float64) for key, values in history.items()}
        self.linearized_ = bar if linearized else None
        return self

    def __repr__(self):
        return f"DiagonalLinear(d={self.d}, alpha={self.alpha:g}, depth={self.depth}, dtype={self.dtype.name!r})"
