"""The diagonal linear network f_w(x) = <w_+^D - w_-^D, x> (Woodworth et al. 2020), the second
particle model of the package: coordinate i is the particle (w_+i, w_-i), and the particles
interact through the residual. Its dynamics run in the compiled core (the backend's
``diagonal_dynamics``) and it is trained by :func:`mfntk.simulate`, with the records of a
two-layer run; this module holds the model, its tangent kernel, its linearization and the
methods a simulation calls."""
from __future__ import annotations

import copy as _copy
import math

import numpy as np

from . import _diagnostics
from ._backend import get_backend
from ._validation import (as_matrix, check_finite, check_float, check_gram_memory, check_int, check_memory,
                          resolve_dtype)

__all__ = ["DiagonalLinear", "DiagonalLayout"]


class DiagonalLayout:
    """The parameters (w_+, w_-) as one flat vector [w_+ | w_-]: the layout of
    ``DiagonalLinear.get_flat`` and of the particle block of the engine's state. The only place
    that decodes it."""

    outputs = 1

    def __init__(self, d):
        self.d = d
        self.size = 2 * d

    def shapes(self):
        """The shape of each block, by name."""
        return {"w_plus": (self.d,), "w_minus": (self.d,)}

    def split(self, flat):
        """(w_plus (d,), w_minus (d,)): views of the first ``size`` entries of ``flat``."""
        return flat[: self.d], flat[self.d: self.size]

    def join(self, w_plus, w_minus, out=None):
        """The flat vector of (w_plus, w_minus) (a new array, or written into ``out``)."""
        return np.concatenate([w_plus, w_minus], out=out)


class DiagonalLinear:
    """Diagonal linear network of depth D: f_w(x) = <w_+^D - w_-^D, x>, elementwise powers.

    Initialised at w_+ = w_- = alpha 1, so that f = 0 at t = 0. The scale alpha moves the
    gradient flow between the kernel regime (alpha large: the model stays close to its
    linearization and ends near the minimum-l2 interpolant) and the rich regime (alpha small:
    towards the minimum-l1 interpolant for D = 2). Train it with :func:`mfntk.simulate` (full
    batch or minibatches, squared or logistic loss, the records of a two-layer run). Time is
    gradient-flow time of the empirical risk (1/n) sum_i l(f(x_i), y_i), so that the Euler step
    with dt = eta is gradient descent with learning rate eta (:func:`mfntk.euler_dt` is the
    identity). A stable step needs about dt < 2 / lambda_max, with lambda_max the largest
    eigenvalue of the risk's Hessian: 2 D^2 alpha^{2D-2} |X|_2^2 / n at t = 0 for the squared
    loss, and of order D^2 |beta|^{(2D-2)/D} |X|_2^2 / n later.

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
    >>> X = np.random.default_rng(0).standard_normal((20, 3))
    >>> traj = mf.simulate(model, (X, X[:, 0]), t_max=1.0, dt=0.1, method="euler", progress=False)
    >>> traj.net.beta.shape
    (3,)
    """

    #: The model's kind in the registry of :mod:`mfntk._models` (and in trajectory files).
    kind = "diagonal_linear"
    outputs = 1
    #: Blocks with a displacement series of their own: none (a run records the overall
    #: displacement only; ``displacement_a``, ``_W``, ``_b`` are the two-layer network's).
    displacement_layers = ()

    def __init__(self, d, alpha=1.0, depth=2, dtype="float64", *, backend=None):
        self.d, self.alpha, self.depth, self.dtype = self._arguments(d, alpha, depth, dtype)
        check_memory(2 * self.d * self.dtype.itemsize, "d", self.description)
        self.layout = DiagonalLayout(self.d)
        self.backend = get_backend(backend)
        self.w_plus = np.full(self.d, self.alpha, dtype=self.dtype)
        self.w_minus = np.full(self.d, self.alpha, dtype=self.dtype)

    @staticmethod
    def _arguments(d, alpha, depth, dtype):
        """The constructor's arguments checked: (d, alpha, depth, dtype)."""
        d = check_int(d, "d")
        alpha = check_float(alpha, "alpha", minimum=0.0, strict=True)
        depth = check_int(depth, "depth", minimum=2)
        dtype = resolve_dtype(dtype)
        if math.log(alpha) * (2 * depth - 2) >= math.log(float(np.finfo(dtype).max)):
            raise ValueError(f"alpha: alpha^(2 depth - 2) = {alpha:g}^{2 * depth - 2} overflows "
                             f"{dtype.name}; choose a smaller alpha or depth")
        return d, alpha, depth, dtype

    @classmethod
    def layout_of(cls, config):
        """(layout, dtype) of the model ``cls(**config)`` would build, without building it (the
        arguments are checked, nothing is allocated): how a file reader sizes what it reads."""
        unknown = sorted(set(config) - {"d", "alpha", "depth", "dtype"})
        if unknown:
            raise TypeError(f"DiagonalLinear: unknown argument {unknown[0]!r}")
        d, _, _, dtype = cls._arguments(config["d"], config.get("alpha", 1.0), config.get("depth", 2),
                                        config.get("dtype", "float64"))
        return DiagonalLayout(d), dtype

    @property
    def description(self):
        """The model in a few words, for messages."""
        return f"a diagonal linear network with d = {self.d}"

    # ---- parameters as one flat vector [w_+ | w_-] ----------------------------------------
    @property
    def n_params(self):
        return self.layout.size

    def get_flat(self, out=None):
        """The parameters as one flat vector [w_plus, w_minus] (a copy, or written into ``out``)."""
        return self.layout.join(self.w_plus, self.w_minus, out=out)

    def set_flat(self, w, copy=True):
        """Set the parameters from a flat vector laid out as get_flat() (copied; with
        ``copy=False`` views of it, for a caller that owns the vector).

        Raises ValueError for a wrong shape or a non-finite value.
        """
        w = np.asarray(w, dtype=self.dtype)
        if w.shape != (self.n_params,):
            raise ValueError(f"w: expected shape ({self.n_params},), got {w.shape}")
        check_finite(w, "w")
        w_plus, w_minus = self.layout.split(w)
        self.w_plus, self.w_minus = (w_plus.copy(), w_minus.copy()) if copy else (w_plus, w_minus)

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

    def linearized_predict(self, bar, X, threads=None):
        """fbar(X) = f_0(X) + J_0 (wbar - w_0) of the linearization at this model, shape (n, 1)
        (``threads``: as for :meth:`predict`)."""
        X = self.check_inputs(X)
        return (X @ self.linearized_beta(bar).astype(self.dtype))[:, None]

    # ---- what a simulation calls (the model protocol of mfntk._models) --------------------
    def dynamics(self, *, loss, weight_decay, temperature, seed, residual_dynamics, linearized, threads,
                 cache_bytes=0):
        """The core's integrator of the gradient flow for this model (the backend's
        ``diagonal_dynamics``). ``cache_bytes`` is accepted for the interface of
        :meth:`mfntk.TwoLayer.dynamics` and unused: the passes over X keep no cache."""
        return self.backend.diagonal_dynamics(
            self, loss=loss, weight_decay=weight_decay, temperature=temperature, seed=seed,
            residual_dynamics=residual_dynamics, linearized=linearized, threads=threads)

    @staticmethod
    def set_reference(engine, theta0, f0):
        """Give ``engine`` the linearized model's reference point w_0 (fbar is linear in x: the
        engine computes f_0 itself, ``f0`` is not needed)."""
        engine.set_reference(theta0)

    def learning_rate(self, dt):
        """The gradient-descent learning rate of an Euler step dt: dt itself (gradient-flow time)."""
        return dt

    def euler_dt(self, eta):
        """The Euler step of gradient descent with learning rate eta: eta itself."""
        return eta

    def step_flops(self, n, options):
        """Floating-point operations of one evaluation of the field on n points: 2 n d per pass
        over X; the forward pass (f, and fbar with the same pass) and the gradient pass
        X^T r (with the residual-dynamics and linearized residuals) count one each per vector,
        and the residual dynamics add the pass X u."""
        vectors = 2 + (2 if options.residual_dynamics else 0) + (2 if options.linearized else 0)
        return 2.0 * n * self.d * vectors

    def engine_memory(self, n, batch, options):
        """(values, cache bytes) of the engine beyond its state and stage buffers for n training
        points and ``batch`` points per step: the d-vectors beta, c_+-, G (and the reference and
        gradients of the optional blocks), the per-block partial sums of X^T r (at most 64
        row blocks), and the n-vectors f, r of a step's points; no cache."""
        rd, lin = options.residual_dynamics, options.linearized
        vectors = 1 + int(rd) + int(lin)
        block = max(512, -(-batch // 64))
        blocks = -(-batch // block)
        values = (4 + vectors * blocks + (2 if rd else 0) + (7 if lin else 0)) * self.d
        values += 2 * batch + (n if rd else 0) + (2 * batch if lin else 0)
        return values, 0.0

    def probe_kernel(self, X, threads=None):
        """The tangent kernel on X (:meth:`tangent_kernel`), the kernel of a run's diagnostics."""
        return self.tangent_kernel(X)

    def parameter_blocks(self):
        """The parameters by block name, copies: ``w_plus``, ``w_minus``."""
        return {"w_plus": self.w_plus.copy(), "w_minus": self.w_minus.copy()}

    def tangent_change(self, previous, X):
        """|J(w) - J(w_prev)|_F / |J(w_prev)|_F on X, J the Jacobian of f in w = (w_+, w_-), from
        the blocks ``previous`` (see :func:`mfntk._diagnostics.diagonal_tangent_change`)."""
        return _diagnostics.diagonal_tangent_change(
            self.depth, (previous["w_plus"], previous["w_minus"]), (self.w_plus, self.w_minus), X)

    def __repr__(self):
        return f"DiagonalLinear(d={self.d}, alpha={self.alpha:g}, depth={self.depth}, dtype={self.dtype.name!r})"
