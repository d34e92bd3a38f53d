"""The one door to the compiled core.

Every forward, vjp, jvp, Gram, matvec, feature map and dynamics call of the package goes
through a :class:`Backend` object; nothing else imports ``mfntk._core``. A network carries
its backend (``TwoLayer(..., backend=...)``) and everything computed from the network uses
it; functions without a network (the analytic kernels, the feature models) take the default
one. Another backend (MPI, GPU) is a new subclass registered in :data:`BACKENDS`, selected
by one argument.

Arguments are the core's: ``p`` is any object with the particle arrays ``a`` (N, k), ``W``
(N, d), ``b`` (N,) or None and the activation's ``activation`` (name) and ``c0``, all
C-contiguous of one float dtype; inputs are validated before they get here.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import _core

__all__ = ["Backend", "CPUBackend", "BACKENDS", "CHUNK_SECONDS", "get_backend"]


class Backend:
    """What a backend provides (the methods of :class:`CPUBackend`).

    Results must be bit-identical for any number of threads (and, for a distributed
    backend, of processes), so that a run does not depend on where it ran.
    """

    name = "abstract"

    def __repr__(self):
        return f"{type(self).__name__}()"


class CPUBackend(Backend):
    """The OpenMP C++ core on this machine (tiled passes, fixed reduction order)."""

    name = "cpu"

    # ---- the network's passes (unscaled: the factor alpha / N is the caller's) ------------
    def forward(self, p, X, threads):
        """sum_j a_j sigma(<w_j, x_i> + b_j), shape (n, k)."""
        return _core.forward(p.activation, p.c0, p.a, p.W, p.b, X, threads)

    def vjp(self, p, X, R, threads, a=None):
        """J^T R: the gradients (gA, gW, gb) of sum_i <R_i, sum_j a_j sigma(...)> (a replaces p.a)."""
        return _core.vjp(p.activation, p.c0, p.a if a is None else a, p.W, p.b, X, R, threads)

    def jvp(self, p, X, ta, tW, tb, threads, a=None):
        """J t: the directional derivative along (ta, tW, tb) (None: zero), shape (n, k)."""
        return _core.jvp(p.activation, p.c0, p.a if a is None else a, p.W, p.b, X, ta, tW, tb, threads)

    def activation(self, name, c0, Z, order):
        """sigma (order 0), sigma' (1) or sigma'' (2) of the activation ``name`` on Z, elementwise."""
        return _core.activation(name, c0, Z, order)

    # ---- tangent kernels ------------------------------------------------------------------
    def gram(self, p, X, X2, kind, threads, output="mean", chunk_seconds=None):
        """The empirical kernel K(X, X2) (X2 None: K(X, X), symmetric), SPEC 4: (n1, n2) for
        ``output="mean"``, (n1 k, n2 k) for ``"matrix"``.

        The core computes it in units of work, here in calls of about ``chunk_seconds`` each
        (None: :data:`CHUNK_SECONDS`; 0: one unit per call; inf: one call), so that a Ctrl-C is
        answered between calls; the result does not depend on the grouping, bit for bit.
        """
        cls = _core.EmpiricalGram64 if p.a.dtype == np.float64 else _core.EmpiricalGram32
        plan = cls(p.activation, p.c0, p.a, p.W, p.b, X, X2, kind, output, threads)
        return _drive(plan, chunk_seconds)

    def matvec(self, p, X, V, kind, threads, output="mean", X_rows=None, chunk_seconds=None):
        """K(X_rows, X) V without forming K (X_rows None: X); V has one row per point of X (mean)
        or per point and output (matrix, row i k + p). Driven in calls as :meth:`gram`."""
        cls = _core.EmpiricalMatvec64 if p.a.dtype == np.float64 else _core.EmpiricalMatvec32
        plan = cls(p.activation, p.c0, p.a, p.W, p.b, X, V, kind, output, threads, X_rows)
        return _drive(plan, chunk_seconds)

    def analytic_gram(self, activation, c0, X, X2, kind, w_std, a_std, b_std, bias, method, order, tol, threads):
        """The infinite-width kernel (SPEC 5) and its quadrature report."""
        return _core.analytic_gram(activation, c0, X, X2, kind, w_std, a_std, b_std, bias, method, order, tol,
                                   threads)

    def analytic_diag(self, activation, c0, X, kind, w_std, a_std, b_std, bias, method, order, tol, threads):
        """diag K(X, X) of the infinite-width kernel in O(n d), and its quadrature report."""
        return _core.analytic_diag(activation, c0, X, kind, w_std, a_std, b_std, bias, method, order, tol, threads)

    def analytic_matvec(self, activation, c0, X, V, kind, w_std, a_std, b_std, bias, method, order, tol, threads,
                        X_rows=None, chunk_seconds=None):
        """K(X_rows, X) V of the infinite-width kernel without forming K (X_rows None: X), and its
        quadrature report; driven in calls as :meth:`gram`."""
        cls = _core.AnalyticMatvec64 if X.dtype == np.float64 else _core.AnalyticMatvec32
        plan = cls(activation, c0, X, V, kind, w_std, a_std, b_std, bias, method, order, tol, threads, X_rows)
        return _drive(plan, chunk_seconds)

    # ---- dynamics -------------------------------------------------------------------------
    def dynamics(self, net, *, loss, weight_decay, temperature, seed, residual_dynamics, linearized, threads,
                 cache_bytes):
        """The integrator of the distributional dynamics (SPEC 3-4) for ``net``'s shapes.

        The returned engine owns the data (``set_data``), the offsets o_i subtracted from the
        model on the full-batch points (``set_offset``, the centred model), the reference of
        the linearized model (``set_reference``), the state layout (``layout()``), the field
        (``field(state)``) and ``advance(state, steps, dt, method, step0, X_batches,
        Y_batches, offset_batches) -> (done, finite)``.
        """
        options = _core_options(_core.DynamicsOptions, dict(
            N=net.width, d=net.d, k=net.outputs, bias=net.bias, output_bias=net.output_bias, alpha=net.alpha,
            loss=loss, weight_decay=weight_decay, temperature=temperature, seed=seed,
            residual_dynamics=residual_dynamics, linearized=linearized, threads=threads, cache_bytes=cache_bytes))
        cls = _core.Dynamics64 if net.dtype == np.float64 else _core.Dynamics32
        return cls(options, net.activation, net.c0)

    def preactivation_cache_bytes(self, net, n):
        """Bytes of :meth:`dynamics`'s pre-activation cache on n points (kept when within its
        ``cache_bytes``): the n N values of X W^T or, for relu with one output, their signs
        (one bit each)."""
        return _core.preactivation_cache_bytes(net.activation, n, net.width, net.outputs, net.dtype.itemsize)

    def diagonal_dynamics(self, model, *, loss, weight_decay, temperature, seed, residual_dynamics, linearized,
                          threads):
        """The integrator of the gradient flow of a diagonal linear network (``model``: ``d``,
        ``depth``, ``dtype``), f(x) = <w_+^D - w_-^D, x>, in gradient-flow time of the empirical risk.

        The returned engine has the methods of :meth:`dynamics`'s (``set_data``, ``set_offset``,
        ``layout()``, ``field(state)``, ``advance(state, steps, dt, method, step0, X_batches,
        Y_batches, offset_batches)``) on the state [w_+ | w_- (| g) (| wbar_+ | wbar_-)], except
        that ``set_reference(w0)`` takes the reference parameters only (the linearized model is
        linear in x, so it also runs on minibatches).
        """
        options = _core_options(_core.DiagonalOptions, dict(
            d=model.d, depth=model.depth, loss=loss, weight_decay=weight_decay, temperature=temperature, seed=seed,
            residual_dynamics=residual_dynamics, linearized=linearized, threads=threads))
        cls = _core.DiagonalDynamics64 if model.dtype == np.float64 else _core.DiagonalDynamics32
        return cls(options)


def _core_options(cls, values):
    """An options struct of the core, filled field by field from ``values`` by the names it declares."""
    options = cls()
    values = dict(values)
    for field in cls.fields:
        setattr(options, field, values.pop(field))
    assert not values, f"options the core does not declare: {sorted(values)}"
    return options


#: Seconds of work per call into the core for the kernels' long passes: a Ctrl-C waits at most
#: about this long (the unit of work bounds it from below; see ``_drive``).
CHUNK_SECONDS = 1.0


def _drive(plan, seconds=None):
    """Advance a core computation (``units``, ``done``, ``advance(count)``, ``result()``) to its
    end in calls of about ``seconds`` each, and return its result.

    The first call does one unit; later ones as many as the measured time per unit allows,
    growing at most fourfold per call. Between calls Python runs its signal handlers, so a
    Ctrl-C raises KeyboardInterrupt within about one call.
    """
    seconds = CHUNK_SECONDS if seconds is None else float(seconds)
    total = plan.units
    if math.isinf(seconds):
        plan.advance(total)
        return plan.result()
    count = 1
    while plan.done < total:
        count = min(count, total - plan.done)
        start = time.perf_counter()
        plan.advance(count)
        per_unit = (time.perf_counter() - start) / count
        count = max(1, min(4 * count, int(seconds / per_unit) if per_unit > 0 else 4 * count))
    return plan.result()


#: The backends by name (the ``backend=`` argument).
BACKENDS = {"cpu": CPUBackend}
_DEFAULT = {}


def get_backend(backend=None):
    """The backend for ``backend``: None (the default CPU backend), a name of
    :data:`BACKENDS`, or a :class:`Backend` instance (returned as is)."""
    if backend is None:
        backend = "cpu"
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: unknown value {backend!r}; expected one of {', '.join(map(repr, BACKENDS))} "
                         "or a mfntk Backend instance")
    if backend not in _DEFAULT:
        _DEFAULT[backend] = BACKENDS[backend]()
    return _DEFAULT[backend]
