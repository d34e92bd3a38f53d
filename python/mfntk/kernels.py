"""Tangent kernels of two-layer networks: infinite-width (analytic) and empirical (SPEC 4-5).

For a network f(x) = (alpha/N) sum_j a_j sigma(<w_j, x> + b_j) the tangent kernel splits into
the second-layer part "rf", the first-layer part "nt" and their sum "ntk":

    K_mu(x, x') = (1/N) sum_j [ s_j(x) s_j(x') + |a_j|^2 s'_j(x) s'_j(x') (<x, x'> + [bias]) ]

with s_j(x) = sigma(<w_j, x> + b_j). It does not depend on alpha. At initialisation, as
N -> infinity, it converges (at rate N^-1/2) to the analytic kernel: with w ~ N(0, w_std^2 I),
b ~ N(0, b_std^2), E|a|^2 = a_std^2 and (u, v) the centred Gaussian pair of variances
w_std^2 |x|^2 + b_std^2, w_std^2 |x'|^2 + b_std^2 and covariance w_std^2 <x, x'> + b_std^2,

    K_rf  = E[sigma(u) sigma(v)]
    K_nt  = a_std^2 (<x, x'> + [bias]) E[sigma'(u) sigma'(v)]
    K_ntk = K_rf + K_nt

Functions: :func:`analytic`, :func:`empirical`. Kernel objects (callable as ``k(X, X2=None)``,
usable by :class:`mfntk.KernelRegressor`): :class:`Analytic`, :class:`Empirical`.

Everything is computed in the C++ core with OpenMP (``threads`` per call, None = all cores).

References
----------
.. [CS09] Y. Cho and L. K. Saul, "Kernel methods for deep learning", NIPS 2009 (arc-cosine
   kernels, eq. 6-7).
.. [W97] C. K. I. Williams, "Computing with infinite networks", NIPS 1997 (the erf kernel,
   eq. 11).
.. [JGH18] A. Jacot, F. Gabriel and C. Hongler, "Neural tangent kernel: convergence and
   generalization in neural networks", NeurIPS 2018 (eq. 4 and Theorem 1).
.. [GMMM21] B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari, "Linearized two-layers neural
   networks in high dimension", Ann. Statist. 49(2), 2021 (the RF and NT kernels, Section 2).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ._backend import get_backend
from ._registry import (
    ACTIVATIONS,
    KERNEL_KINDS,
    activation_info,
    check_activation,
    check_kernel_kind,
    kernel_kind_info,
)
from ._validation import as_matrix, check_choice, check_float, check_gram_memory, check_int, resolve_threads

__all__ = ["Analytic", "Empirical", "QuadratureWarning", "analytic", "empirical", "KINDS", "ACTIVATIONS"]

#: Kernel kinds and activations: the core's registry (mfntk._registry).
KINDS = KERNEL_KINDS
METHODS = ("auto", "closed", "quadrature")
#: Activations whose Gaussian moments have a closed form in the core.
CLOSED_FORM = tuple(name for name in ACTIVATIONS if activation_info(name).closed_form_kernel)
#: Largest Gauss-Hermite order accepted (the automatic order stops at 1024).
MAX_QUAD_ORDER = 2048


class QuadratureWarning(UserWarning):
    """The Gauss-Hermite quadrature of an analytic kernel did not reach its tolerance."""


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------
def _float_dtype(*arrays):
    """float32 when every given array is float32, float64 otherwise (no silent down-cast)."""
    given = [a for a in arrays if a is not None]
    if given and all(getattr(a, "dtype", None) == np.float32 for a in given):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _check_kind(kind):
    return check_kernel_kind(kind)


def _check_activation(activation):
    if not isinstance(activation, str):
        raise TypeError(f"activation: expected a name (str), got {type(activation).__name__}")
    return check_activation(activation)


def _check_quad(method, quad_order, quad_tol, activation):
    check_choice(method, "method", METHODS)
    if method == "closed" and activation not in CLOSED_FORM:
        raise ValueError(f"method: 'closed' is not available for activation {activation!r} "
                         f"(closed forms: {', '.join(CLOSED_FORM)}); use 'auto' or 'quadrature'")
    order = 0 if quad_order is None else check_int(quad_order, "quad_order", minimum=1)
    if order > MAX_QUAD_ORDER:
        raise ValueError(f"quad_order: must be <= {MAX_QUAD_ORDER}, got {order}")
    tol = check_float(quad_tol, "quad_tol", minimum=0.0, strict=True)
    if not 1e-15 <= tol < 1.0:
        raise ValueError(f"quad_tol: must be in [1e-15, 1), got {tol}")
    return order, tol


def _check_std(value, name):
    return check_float(value, name, minimum=0.0)


def _resolve_bias(bias, b_std):
    if bias is None:
        return b_std > 0.0
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias: expected True, False or None, got {type(bias).__name__}")
    return bool(bias)


def _warn_quadrature(info, activation, tol, X, X2, w_std, b_std):
    """Warn when the quadrature was used for a non-smooth activation or missed its tolerance."""
    if not info["quadrature"]:
        return
    bound = max(info["bound_f"], info["bound_d"])
    if not activation_info(activation).smooth:
        warnings.warn(
            f"activation {activation!r} is not smooth: its Gauss-Hermite (Mehler series) quadrature converges "
            f"slowly; relative truncation bound reached {bound:.1e} with a rule of order {info['order']}. "
            f"Use method='auto' for the closed form.", QuadratureWarning, stacklevel=3)
    elif bound > tol:
        norms = [float(np.max(np.einsum("ij,ij->i", A, A, dtype=np.float64))) for A in (X, X2) if A is not None]
        s_max = math.sqrt(w_std * w_std * max(norms) + b_std * b_std)
        warnings.warn(
            f"quadrature for {activation!r} reached a relative accuracy of {bound:.1e} only (quad_tol={tol:.1e}) "
            f"with a rule of order {info['order']}: the largest pre-activation standard deviation is "
            f"{s_max:.3g}; raise quad_order (max {MAX_QUAD_ORDER}) or quad_tol.", QuadratureWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# analytic kernels
# ---------------------------------------------------------------------------------------------
def analytic(X, X2=None, activation="relu", kind="ntk", w_std=None, a_std=1.0, b_std=0.0, c0=0.0, bias=None,
             method="auto", quad_order=None, quad_tol=1e-12, threads=None, return_info=False):
    """Infinite-width kernel K(X, X2) of a two-layer network at initialisation (SPEC 5).

    Parameters
    ----------
    X : array_like, shape (n1, d)
    X2 : array_like, shape (n2, d), optional
        Second set of points; None means X (the symmetric Gram matrix, upper triangle
        evaluated and mirrored, so the result is exactly symmetric).
    activation : str
        relu, tanh, erf, sigmoid, softplus, quadratic (u^2 + c0) or identity.
    kind : {"rf", "nt", "ntk"}
        Second-layer part, first-layer part, or their sum.
    w_std : float or None
        Standard deviation of the first-layer weights; None means 1/sqrt(d).
    a_std : float
        Root mean square of the second-layer weights (E|a|^2 = a_std^2; for a network with k
        outputs, use a_std * sqrt(k), as :meth:`Analytic.from_network` does).
    b_std : float
        Standard deviation of the biases.
    c0 : float
        Constant of the quadratic activation.
    bias : bool or None
        Whether the network has biases, i.e. whether the term <x, x'> + 1 (instead of <x, x'>)
        multiplies E[sigma' sigma'] in K_nt. None means ``b_std > 0``. A network with biases
        initialised at zero has ``bias=True, b_std=0``.
    method : {"auto", "closed", "quadrature"}
        "auto": the closed form for relu, erf, quadratic and identity, quadrature otherwise;
        "closed": closed form only (ValueError for other activations); "quadrature": always
        quadrature (a :class:`QuadratureWarning` for relu, which is not smooth).
    quad_order : int or None
        Order M of the Gauss-Hermite rule. None: automatic, M = 128, 256, 512, 1024 until the
        tolerance is met.
    quad_tol : float
        Relative tolerance of the quadrature (see Notes), in [1e-15, 1).
    threads : int or None
        OpenMP threads (None: all cores available to the process).
    return_info : bool
        Also return a dict: ``quadrature`` (bool), ``order``, ``terms_f``/``terms_d`` (Hermite
        terms used for sigma and sigma'), ``bound_f``/``bound_d`` (relative truncation bounds).

    Returns
    -------
    K : ndarray, shape (n1, n2)
        float32 when X (and X2) are float32, float64 otherwise.
    info : dict
        Only with ``return_info=True``.

    Raises
    ------
    TypeError, ValueError
        For a bad argument (the message names it): shapes, non-finite values, X2 with another
        d, unknown kind/activation/method, negative standard deviations.

    Warns
    -----
    QuadratureWarning
        Quadrature on a non-smooth activation, or a tolerance not met at the largest order.

    Notes
    -----
    Closed forms, with theta = arccos(Cov(u, v) / sqrt(Var u Var v)):

    - relu, arc-cosine kernels of orders 1 and 0 ([CS09]_ eq. 6-7):
      E[relu(u) relu(v)] = sqrt(Var u Var v) (sin theta + (pi - theta) cos theta) / (2 pi),
      E[1{u>0} 1{v>0}] = (pi - theta) / (2 pi).
    - erf ([W97]_ eq. 11): E[erf(u) erf(v)] = (2/pi) arcsin(2 Cov / sqrt((1 + 2 Var u)(1 + 2 Var v)));
      E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 Var u)(1 + 2 Var v) - 4 Cov^2).
    - quadratic u^2 + c0 (Isserlis): Var u Var v + 2 Cov^2 + c0 (Var u + Var v) + c0^2; 4 Cov.
    - identity: Cov; 1.

    Quadrature: Gauss-Hermite on the bivariate Gaussian, made separable by Mehler's formula:
    with rho the correlation of (u, v) and s, s' their standard deviations,
    E[g(u) h(v)] = sum_k rho^k g_k(s) h_k(s'), where g_k(s) = E[g(s Z) He_k(Z)] / sqrt(k!) are
    computed for every point with one M-point Gauss-Hermite rule. The series is cut at the
    smallest K for which every point has sum_{k>=K} g_k^2 <= quad_tol E[g(s Z)^2]; by
    Cauchy-Schwarz every entry then has a truncation error at most
    quad_tol * sqrt(E[g(u)^2] E[g(v)^2]) (g = sigma for the rf part, sigma' for the nt part,
    which carries the factor a_std^2 (<x, x'> + [bias])). The number of terms needed grows like
    the variance: with the default tolerance 1e-12 and the automatic order, tanh reaches it up to
    sqrt(Var u) = 2 (1e-10 at 2.5, 1e-8 at 3, 2e-6 at 4), sigmoid up to 4 and softplus up to 5;
    beyond, a QuadratureWarning gives the accuracy reached. For a kink (relu) the series converges only algebraically (the warning
    then reports ~1e-3 relative accuracy). Measured against adaptive 2-D integration, the error is
    below the bound (e.g. tanh at sqrt(Var u) = 1: 4e-13 on the diagonal, 1e-16 off it).

    Cost: the Gram part X X2^T is one GEMM (row panels over threads, written straight into the
    output); the rest is elementwise, O(1) per entry for closed forms and O(K) for the series.
    Memory O(n1 n2 + (n1 + n2)(d + M)).

    Examples
    --------
    Two-layer ReLU on unit vectors, w ~ N(0, I): NTK(x, x) = 1/2 + 1/2 = 1.

    >>> import numpy as np, mfntk as mf
    >>> X = np.eye(2)
    >>> K = mf.kernels.analytic(X, activation="relu", kind="ntk", w_std=1.0)
    >>> np.round(K, 4)
    array([[1.    , 0.1592],
           [0.1592, 1.    ]])
    """
    activation = _check_activation(activation)
    kind = _check_kind(kind)
    a_std = _check_std(a_std, "a_std")
    b_std = _check_std(b_std, "b_std")
    c0 = check_float(c0, "c0")
    bias = _resolve_bias(bias, b_std)
    order, tol = _check_quad(method, quad_order, quad_tol, activation)
    threads = resolve_threads(threads)
    raw1 = np.asarray(X) if not isinstance(X, np.ndarray) else X
    raw2 = None if X2 is None else (np.asarray(X2) if not isinstance(X2, np.ndarray) else X2)
    dtype = _float_dtype(raw1, raw2)
    X = as_matrix(X, "X", dtype=dtype)
    X2 = None if X2 is None else as_matrix(X2, "X2", dtype=dtype, columns=X.shape[1])
    d = X.shape[1]
    w_std = 1.0 / math.sqrt(d) if w_std is None else _check_std(w_std, "w_std")
    check_gram_memory(X, X2, per_row=16 * (order or 1024) * (method == "quadrature" or activation not in CLOSED_FORM))
    K, info = get_backend().analytic_gram(activation, c0, X, X2, kind, w_std, a_std, b_std, bias, method, order,
                                          tol, threads)
    _warn_quadrature(info, activation, tol, X, X2, w_std, b_std)
    return (K, info) if return_info else K


class Analytic:
    """Infinite-width kernel as an object, callable as ``k(X, X2=None)`` (SPEC 5, 7).

    The parameters are those of :func:`analytic`; they are checked at construction and the
    kernel is evaluated at each call. ``w_std=None`` means 1/sqrt(d) with the d of the data.

    Parameters
    ----------
    activation, kind, w_std, a_std, b_std, c0, bias, method, quad_order, quad_tol, threads
        See :func:`analytic`.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> k = mf.kernels.Analytic(activation="erf", kind="rf", w_std=1.0)
    >>> float(np.round(k(np.ones((1, 1)))[0, 0], 6))   # (2/pi) arcsin(2/3)
    0.464559

    The kernel that a network's empirical kernel converges to:

    >>> net = mf.TwoLayer(d=3, width=10, activation="tanh", bias=True, b_std=0.5)
    >>> mf.kernels.Analytic.from_network(net, kind="nt")
    Analytic(activation='tanh', kind='nt', w_std=0.5773502691896258, a_std=1.0, b_std=0.5, c0=0.0, bias=True)
    """

    def __init__(self, activation="relu", kind="ntk", w_std=None, a_std=1.0, b_std=0.0, c0=0.0, bias=None,
                 method="auto", quad_order=None, quad_tol=1e-12, threads=None):
        _check_activation(activation)
        _check_kind(kind)
        if w_std is not None:
            _check_std(w_std, "w_std")
        _check_std(a_std, "a_std")
        _resolve_bias(bias, _check_std(b_std, "b_std"))
        check_float(c0, "c0")
        _check_quad(method, quad_order, quad_tol, activation)
        if threads is not None:
            resolve_threads(threads)
        self.activation = activation
        self.kind = kind
        self.w_std = w_std
        self.a_std = a_std
        self.b_std = b_std
        self.c0 = c0
        self.bias = bias
        self.method = method
        self.quad_order = quad_order
        self.quad_tol = quad_tol
        self.threads = threads

    _PARAMS = ("activation", "kind", "w_std", "a_std", "b_std", "c0", "bias", "method", "quad_order", "quad_tol",
               "threads")

    @classmethod
    def from_network(cls, net, kind="ntk", **kwargs):
        """The analytic kernel matching the initialisation law of a :class:`mfntk.TwoLayer`.

        Uses the network's activation, c0, w_std, b_std and bias; a_std becomes
        ``net.a_std * sqrt(net.outputs)`` since the empirical kernel carries |a_j|^2 (SPEC 4).
        Other keyword arguments (method, quad_order, ...) are passed on.
        """
        _check_net(net)
        bias = bool(net.bias)
        return cls(activation=net.activation, kind=kind, w_std=float(net.w_std),
                   a_std=float(net.a_std) * math.sqrt(net.outputs), b_std=float(net.b_std) if bias else 0.0,
                   c0=float(net.c0), bias=bias, **kwargs)

    def _kwargs(self):
        return {p: getattr(self, p) for p in self._PARAMS}

    def __call__(self, X, X2=None):
        """K(X, X2), shape (n1, n2); see :func:`analytic`."""
        return analytic(X, X2, **self._kwargs())

    def diag(self, X):
        """diag K(X, X), shape (n,), in O(n d) (used e.g. as a Jacobi preconditioner)."""
        kw = self._kwargs()
        activation = kw["activation"]
        order, tol = _check_quad(kw["method"], kw["quad_order"], kw["quad_tol"], activation)
        X = as_matrix(X, "X", dtype=_float_dtype(X if isinstance(X, np.ndarray) else np.asarray(X)))
        w_std = 1.0 / math.sqrt(X.shape[1]) if kw["w_std"] is None else float(kw["w_std"])
        b_std = float(kw["b_std"])
        D, info = get_backend().analytic_diag(activation, float(kw["c0"]), X, kw["kind"], w_std, float(kw["a_std"]),
                                              b_std, _resolve_bias(kw["bias"], b_std), kw["method"], order, tol,
                                              resolve_threads(kw["threads"]))
        _warn_quadrature(info, activation, tol, X, None, w_std, b_std)
        return D

    def validate(self, X, name="X"):
        """X as the C-contiguous float array this kernel computes with (checked)."""
        return as_matrix(X, name, dtype=_float_dtype(X if isinstance(X, np.ndarray) else np.asarray(X)))

    # scikit-learn style parameter access (KernelRegressor.get_params(deep=True), clone)
    def get_params(self, deep=True):
        """The constructor arguments, as a dict."""
        return self._kwargs()

    def set_params(self, **params):
        """Set constructor arguments (checked again); returns self."""
        unknown = set(params) - set(self._PARAMS)
        if unknown:
            raise ValueError(f"set_params: unknown parameter(s) {sorted(unknown)}; expected {list(self._PARAMS)}")
        kw = self._kwargs()
        kw.update(params)
        self.__init__(**kw)
        return self

    def __eq__(self, other):
        return type(other) is type(self) and self._kwargs() == other._kwargs()

    __hash__ = None

    def __repr__(self):
        kw = self._kwargs()
        shown = ["activation", "kind", "w_std", "a_std", "b_std", "c0", "bias"]
        extra = [p for p in ("method", "quad_order", "quad_tol", "threads")
                 if kw[p] != {"method": "auto", "quad_order": None, "quad_tol": 1e-12, "threads": None}[p]]
        return "Analytic(" + ", ".join(f"{p}={kw[p]!r}" for p in shown + extra) + ")"


# ---------------------------------------------------------------------------------------------
# empirical kernels
# ---------------------------------------------------------------------------------------------
def _check_net(net):
    needed = ("activation", "c0", "a", "W", "b", "dtype", "check_inputs", "width", "d", "outputs", "w_std",
              "a_std", "b_std", "bias")
    if not all(hasattr(net, attr) for attr in needed):
        raise TypeError(f"net: expected a mfntk.TwoLayer, got {type(net).__name__}")
    return net


class _Particles:
    """The arrays of a network, as the core takes them."""

    def __init__(self, net, copy):
        cp = (lambda x: None if x is None else np.array(x, copy=True)) if copy else (lambda x: x)
        self.activation = net.activation
        self.c0 = float(net.c0)
        self.backend = getattr(net, "backend", None) or get_backend()
        self.dtype = np.dtype(net.dtype)
        self.a = cp(np.ascontiguousarray(net.a, dtype=self.dtype))
        self.W = cp(np.ascontiguousarray(net.W, dtype=self.dtype))
        self.b = None if net.b is None else cp(np.ascontiguousarray(net.b, dtype=self.dtype))
        self.N, self.d = self.W.shape

    def check(self, X, name):
        return as_matrix(X, name, dtype=self.dtype, columns=self.d, copy_note=True)

    def gram(self, X, X2, kind, threads):
        return self.backend.gram(self, X, X2, kind, threads)

    def matvec(self, X, V, kind, threads):
        return self.backend.matvec(self, X, V, kind, threads)

    def cross_matvec(self, Xrows, Xcols, V, kind, threads):
        """K(Xrows, Xcols) V = (1/N) J_{|a|^2}(Xrows) J_1(Xcols)^T V, column by column."""
        ones = np.ones((self.N, 1), dtype=self.dtype)
        a2 = np.ascontiguousarray(np.einsum("jk,jk->j", self.a, self.a)[:, None], dtype=self.dtype)
        out = np.empty((Xrows.shape[0], V.shape[1]), dtype=self.dtype)
        parts = kernel_kind_info(kind)
        for c in range(V.shape[1]):
            r = np.ascontiguousarray(V[:, c:c + 1], dtype=self.dtype)
            gA, gW, gb = self.backend.vjp(self, Xcols, r, threads, a=ones)
            ta = gA if parts.second_layer else None
            tW = gW if parts.first_layer else None
            tb = gb if parts.first_layer else None
            out[:, c] = self.backend.jvp(self, Xrows, ta, tW, tb, threads, a=a2)[:, 0]
        out /= self.dtype.type(self.N)
        return out


def empirical(net, X, X2=None, kind="ntk", threads=None):
    """Empirical tangent kernel K_mu(X, X2) of a network (SPEC 4).

    K(x, x') = (1/N) sum_j [ s_j(x) s_j(x') + |a_j|^2 s'_j(x) s'_j(x') (<x, x'> + [bias]) ],
    with the parts "rf" (first term), "nt" (second) and "ntk" (both), s_j(x) = sigma(<w_j, x> + b_j).

    Parameters
    ----------
    net : mfntk.TwoLayer
    X : array_like, shape (n1, d)
    X2 : array_like, shape (n2, d), optional
        None: X (the symmetric Gram matrix).
    kind : {"rf", "nt", "ntk"}
    threads : int or None

    Returns
    -------
    ndarray, shape (n1, n2), of the network's dtype
        X and X2 are converted to it (a UserWarning notes a float conversion).

    Notes
    -----
    Computed in the C++ core over (samples x particles) tiles, O(n1 n2 N + (n1 + n2) N d)
    operations and O(n1 n2) memory. As N -> infinity at initialisation it converges to
    :func:`analytic` with the same law (``Analytic.from_network(net)``) at rate N^-1/2
    ([JGH18]_ Theorem 1).

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> net = mf.TwoLayer(d=2, width=4, seed=0)
    >>> K = mf.kernels.empirical(net, np.eye(2), kind="nt")
    >>> K.shape
    (2, 2)
    """
    _check_net(net)
    kind = _check_kind(kind)
    threads = resolve_threads(threads)
    p = _Particles(net, copy=False)
    X = p.check(X, "X")
    X2 = None if X2 is None else p.check(X2, "X2")
    check_gram_memory(X, X2, matrices=1 + kernel_kind_info(kind).first_layer, per_row=3 * 256 * X.itemsize)
    return p.gram(X, X2, kind, threads)


class Empirical:
    """Empirical tangent kernel of a network, as an object (SPEC 4, 7).

    Callable as ``k(X, X2=None)``; :meth:`matvec` gives K(X, X) V and :meth:`cross_matvec`
    K(X2, X) V without forming any n x n matrix (O(n N d) per column: one vjp and one jvp of
    the network), which :class:`mfntk.KernelRegressor` uses with its conjugate-gradient solver.

    Parameters
    ----------
    net : mfntk.TwoLayer
        The network. Its particles are copied at construction: the kernel is that of the
        network as it was then (later changes of ``net`` do not affect it).
    kind : {"rf", "nt", "ntk"}
    threads : int or None

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> net = mf.TwoLayer(d=3, width=64, seed=1)
    >>> k = mf.kernels.Empirical(net, kind="ntk")
    >>> X = np.random.default_rng(0).standard_normal((5, 3))
    >>> V = np.ones((5, 1))
    >>> bool(np.allclose(k.matvec(X, V), k(X) @ V))
    True
    """

    def __init__(self, net, kind="ntk", threads=None):
        _check_net(net)
        _check_kind(kind)
        if threads is not None:
            resolve_threads(threads)
        self.net = net
        self.kind = kind
        self.threads = threads
        self._p = _Particles(net, copy=True)

    @property
    def dtype(self):
        return self._p.dtype

    @property
    def width(self):
        return self._p.N

    @property
    def d(self):
        return self._p.d

    def validate(self, X, name="X"):
        """X as a C-contiguous (n, d) array of the network's dtype (checked)."""
        return self._p.check(X, name)

    def __call__(self, X, X2=None):
        """K(X, X2), shape (n1, n2); see :func:`empirical`."""
        threads = resolve_threads(self.threads)
        X = self._p.check(X, "X")
        X2 = None if X2 is None else self._p.check(X2, "X2")
        check_gram_memory(X, X2, matrices=1 + kernel_kind_info(self.kind).first_layer, per_row=3 * 256 * X.itemsize)
        return self._p.gram(X, X2, self.kind, threads)

    def _vectors(self, V, n, name="V"):
        arr = np.asarray(V)
        vector = arr.ndim == 1
        V = as_matrix(V, name, dtype=self._p.dtype, allow_vector=True)
        if V.shape[0] != n:
            raise ValueError(f"{name}: expected {n} rows (one per point of X), got shape {arr.shape}")
        return V, vector

    def matvec(self, X, V):
        """K(X, X) V without forming K; V of shape (n,) or (n, m), result of the same shape."""
        threads = resolve_threads(self.threads)
        X = self._p.check(X, "X")
        V, vector = self._vectors(V, X.shape[0])
        out = self._p.matvec(X, V, self.kind, threads)
        return out[:, 0] if vector else out

    def cross_matvec(self, X2, X, V):
        """K(X2, X) V without forming K(X2, X); V of shape (n,) or (n, m) with n = len(X)."""
        threads = resolve_threads(self.threads)
        X = self._p.check(X, "X")
        X2 = self._p.check(X2, "X2")
        V, vector = self._vectors(V, X.shape[0])
        out = self._p.cross_matvec(X2, X, V, self.kind, threads)
        return out[:, 0] if vector else out

    def analytic(self, **kwargs):
        """The infinite-width counterpart: ``Analytic.from_network(self.net, kind=self.kind)``."""
        return Analytic.from_network(self.net, kind=self.kind, **kwargs)

    def get_params(self, deep=True):
        """The constructor arguments, as a dict."""
        return {"net": self.net, "kind": self.kind, "threads": self.threads}

    def set_params(self, **params):
        """Set constructor arguments (the particles are copied again); returns self."""
        unknown = set(params) - {"net", "kind", "threads"}
        if unknown:
            raise ValueError(f"set_params: unknown parameter(s) {sorted(unknown)}; expected ['net', 'kind', 'threads']")
        kw = self.get_params()
        kw.update(params)
        self.__init__(**kw)
        return self

    def __repr__(self):
        return f"Empirical(net={self.net!r}, kind={self.kind!r})"
