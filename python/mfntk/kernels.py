"""Tangent kernels of two-layer networks: infinite-width (analytic) and empirical (SPEC 4-5).

For a network f(x) = (alpha/N) sum_j a_j sigma(<w_j, x> + b_j) with k outputs (a_j in R^k) the
tangent kernel is matrix-valued, a k x k block per pair of points; it splits into the
second-layer part "rf", the first-layer part "nt" and their sum "ntk":

    K_pq(x, x') = (1/N) sum_j [ delta_pq s_j(x) s_j(x') + a_jp a_jq s'_j(x) s'_j(x') (<x, x'> + [bias]) ]

with s_j(x) = sigma(<w_j, x> + b_j). It does not depend on alpha. The empirical kernels come
in two forms (``output=``): "mean", the (n1, n2) kernel (1/k) sum_p K_pp of one output, and
"matrix", the (n1 k, n2 k) matrix with entry (i k + p, l k + q) = K_pq(x_i, x'_l), which drives
the residual dynamics and the linearized model. For k = 1 both are the scalar kernel. At
initialisation, as N -> infinity (independent components of a_j, E a_p^2 = a_std^2),
K_pq -> delta_pq K_ntk, the analytic kernel, at rate N^-1/2: with w ~ N(0, w_std^2 I),
b ~ N(0, b_std^2) and (u, v) the centred Gaussian pair of variances
w_std^2 |x|^2 + b_std^2, w_std^2 |x'|^2 + b_std^2 and covariance w_std^2 <x, x'> + b_std^2,

    K_rf  = E[sigma(u) sigma(v)]
    K_nt  = a_std^2 (<x, x'> + [bias]) E[sigma'(u) sigma'(v)]
    K_ntk = K_rf + K_nt

Functions: :func:`analytic`, :func:`empirical`. Kernel objects (callable as ``k(X, X2=None)``,
usable by :class:`mfntk.KernelRegressor`): :class:`Analytic`, :class:`Empirical`; the empirical
kernel on fixed points as a linear operator: :class:`EmpiricalOperator` (``Empirical.operator``).
neural-tangents' conventions: :func:`neural_tangents` (its kernels of a two-layer
Dense-activation-Dense network, computed by :func:`analytic`), :func:`nt_time` and
:func:`nt_ridge` (the time and ``diag_reg`` of its predictors in :class:`mfntk.KernelRegressor`'s
units).

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
.. [NT20] R. Novak, L. Xiao, J. Hron, J. Lee, A. A. Alemi, J. Sohl-Dickstein and S. S. Schoenholz,
   "Neural Tangents: fast and easy infinite neural networks in Python", ICLR 2020.
.. [SD20] J. Sohl-Dickstein, R. Novak, S. S. Schoenholz and J. Lee, "On the infinite width limit
   of neural networks with a standard parameterization", arXiv:2001.07301, 2020.
.. [L19] J. Lee, L. Xiao, S. S. Schoenholz, Y. Bahri, R. Novak, J. Sohl-Dickstein and
   J. Pennington, "Wide neural networks of any depth evolve as linear models under gradient
   descent", NeurIPS 2019 (the predictions of gradient flow on the squared loss with a fixed
   kernel: the closed forms of neural-tangents' ``predict`` module).
"""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import scipy.sparse.linalg

from ._backend import get_backend
from ._registry import (
    ACTIVATIONS,
    KERNEL_KINDS,
    KERNEL_OUTPUTS,
    activation_info,
    check_activation,
    check_kernel_kind,
    check_kernel_output,
    kernel_kind_info,
    kernel_output_info,
)
from ._solvers import check_kernel_matrix
from ._validation import (as_matrix, check_bool, check_choice, check_float, check_gram_memory, check_int,
                          check_memory, resolve_dtype, resolve_threads)

__all__ = ["Analytic", "Empirical", "EmpiricalOperator", "QuadratureWarning", "analytic", "empirical", "neural_tangents", "nt_ridge",
           "nt_time", "KINDS", "OUTPUTS", "ACTIVATIONS"]

#: Kernel kinds and activations: the core's registry (mfntk._registry).
KINDS = KERNEL_KINDS
#: Forms of an empirical kernel's result (mfntk._registry): "mean" (n1, n2), "matrix" (n1 k, n2 k).
OUTPUTS = KERNEL_OUTPUTS
METHODS = ("auto", "closed", "quadrature")
#: Activations whose Gaussian moments have a closed form in the core.
CLOSED_FORM = tuple(name for name in ACTIVATIONS if activation_info(name).closed_form_kernel)
#: Largest quad_order accepted (quad_order M fixes (M + 1) // 2 Hermite terms per point; the
#: automatic order stops at 1024, i.e. 512 terms).
MAX_QUAD_ORDER = 2048


class QuadratureWarning(UserWarning):
    """The quadrature of an analytic kernel may not have reached its tolerance.

    The message states the largest relative error bound over the entries, which bounds the
    actual error (see :func:`analytic`, Notes)."""


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


def _max_norm(A):
    """max_i |A_i| without overflow or underflow of |A_i|^2."""
    scale = float(np.max(np.abs(A)))
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    B = np.asarray(A, dtype=np.float64) / scale
    return scale * math.sqrt(float(np.max(np.einsum("ij,ij->i", B, B))))


def _warn_quadrature(info, activation, tol, X, X2, w_std, b_std, fixed_order):
    """Warn when a quadrature entry may be less accurate than ``tol``, stating a true bound.

    ``info["bound_f"]``, ``info["bound_d"]`` are the largest relative error bounds over the
    entries (the Mehler series' truncation bound where the series was used, the accuracy of
    the direct integration elsewhere), relative to sqrt(E[g(u)^2] E[g(v)^2]).
    """
    if not info["quadrature"]:
        return
    bound = max(info["bound_f"], info["bound_d"])
    if not activation_info(activation).smooth:
        warnings.warn(
            f"activation {activation!r} is not smooth: its Gauss-Hermite (Mehler series) quadrature converges "
            f"slowly; relative error bound reached {bound:.1e} with {max(info['terms_f'], info['terms_d'])} "
            f"Hermite terms. Use method='auto' for the closed form.", QuadratureWarning, stacklevel=3)
    elif bound > tol:
        s_max = max(math.hypot(w_std * _max_norm(A), b_std) for A in (X, X2) if A is not None)
        if fixed_order:
            hint = (f"the Mehler series of a fixed quad_order={info['order']} does not converge there; use "
                    "quad_order=None (automatic: the series where it converges, direct integration elsewhere)")
        else:
            hint = (f"the direct integration is accurate to {info['direct_accuracy']:.0e}: a smaller quad_tol "
                    "cannot be met")
        warnings.warn(
            f"quadrature for {activation!r} reached a relative accuracy of {bound:.1e} only (quad_tol={tol:.1e}): "
            f"the largest pre-activation standard deviation is {s_max:.3g}; {hint}.", QuadratureWarning,
            stacklevel=3)


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
        Root mean square of the second-layer weights (E a^2 = a_std^2; for a network with k
        outputs, E a_p^2 = a_std^2 for every output p: the kernel is that of each output).
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
        None (default): automatic -- 32, 64, ..., 512 Hermite terms per point until every
        point's series tail meets ``quad_tol``, and direct integration of the entries where the
        series still does not (see Notes). An int M: exactly (M + 1) // 2 terms and the series
        only, whatever its accuracy (the warning then states the bound reached); M <= 2048.
    quad_tol : float
        Relative tolerance of the quadrature (see Notes), in [1e-15, 1).
    threads : int or None
        OpenMP threads (None: all cores available to the process).
    return_info : bool
        Also return a dict: ``quadrature`` (bool), ``order`` (twice the Hermite terms computed
        per point, or the given quad_order), ``nodes`` (of the rule of the Hermite coefficients),
        ``terms_f``/``terms_d`` (Mehler terms used for sigma and sigma'), ``bound_f``/``bound_d``
        (the largest relative error bound over the entries, see Notes), ``direct_f``/``direct_d``
        (entries integrated directly) and ``direct_accuracy`` (the bound of those entries).

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
        Quadrature on a non-smooth activation, or an entry whose error bound exceeds
        ``quad_tol``; the message states the largest bound, which bounds the actual error.

    Notes
    -----
    Closed forms, with s1, s2 the standard deviations of (u, v), rho their correlation and
    theta = arccos(rho):

    - relu, arc-cosine kernels of orders 1 and 0 ([CS09]_ eq. 6-7):
      E[relu(u) relu(v)] = s1 s2 (sin theta + (pi - theta) cos theta) / (2 pi),
      E[1{u>0} 1{v>0}] = (pi - theta) / (2 pi).
    - erf ([W97]_ eq. 11): E[erf(u) erf(v)] = (2/pi) arcsin(2 Cov / sqrt((1 + 2 Var u)(1 + 2 Var v)));
      E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 Var u)(1 + 2 Var v) - 4 Cov^2).
    - quadratic u^2 + c0 (Isserlis): Var u Var v + 2 Cov^2 + c0 (Var u + Var v) + c0^2; 4 Cov.
    - identity: Cov; 1.

    They are evaluated in a scaled form: from |x| (a scaled norm), s and the correlation of the
    unit vectors (w x, b) / s, with 1 - rho and 1 + rho from |a - a'|^2 / 2, |a + a'|^2 / 2 for
    nearly parallel points, and theta = atan2(sin theta, rho). So no entry under- or overflows
    unless its value does (relu: K(c X) = c^2 K(X) from c ~ 1e-150 to 1e150), identical points
    have rho = 1 exactly, and ``analytic(X, X)`` equals ``analytic(X)`` and
    :meth:`Analytic.diag` its diagonal to a few roundings.

    Quadrature, relative to sqrt(E[g(u)^2] E[g(v)^2]) with g = sigma for the rf part and
    g = sigma' for the nt part (which carries the factor a_std^2 (<x, x'> + [bias])):

    1. Mehler series: E[g(u) g(v)] = sum_k rho^k g_k(s1) g_k(s2), with
       g_k(s) = E[g(s Z) He_k(Z)] / sqrt(k!) computed for every point by a composite
       Gauss-Legendre rule in z (refined towards z = 0 down to the scale 1/s of g(s z), so the
       coefficients are accurate for every s). With K terms and tails
       T_i = E[g(s_i Z)^2] - sum_{k<K} g_k(s_i)^2, Cauchy-Schwarz bounds the truncation error of
       an entry by |rho|^K sqrt(T_i T_j); K is the smallest with T_i <= quad_tol E[g(s_i Z)^2] at
       every point, at most 512.
    2. Where that bound still exceeds quad_tol (large variances with |rho| near 1: the series
       needs ~Var u terms there) and sigma saturates (tanh, sigmoid, softplus; erf with
       method="quadrature"), the entry is integrated directly: g = G + e with
       G = A + B erf(kappa t) + C S_kappa(t) (S_kappa a smooth relu), whose Gaussian moments and
       conditional expectations are closed forms (the arcsin kernel and its primitives), and a
       remainder e that decays exponentially; what is left are one-dimensional integrals of e
       (graded Gauss-Legendre) and a nested one against the conditional law of v given u
       (trapezoidal rules, spectrally accurate for these analytic integrands), relative accuracy
       ``info["direct_accuracy"]`` = 1e-13. Identical points use E[g(u)^2] of the coefficient rule.

    The reported ``bound_f``/``bound_d`` are the largest of these per-entry bounds, and a
    :class:`QuadratureWarning` is raised when they exceed quad_tol. Measured against nested
    adaptive integration (scipy.integrate.quad) for tanh, sigmoid and softplus with
    sqrt(Var u) from 1e-3 to 1e4 and correlations from -1 to 1, every entry is within its bound.
    For a kink (relu) the series converges only algebraically (the warning reports the bound).

    Cost: the Gram part is one GEMM of the unit vectors (row panels over threads, in double
    precision); the rest is elementwise, O(1) per entry for closed forms, O(K) for the series
    and ~1e4 operations for a directly integrated entry. Memory O(n1 n2 + (n1 + n2)(d + M)),
    M ~ 2000 the nodes of the coefficient rule.

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
    _warn_quadrature(info, activation, tol, X, X2, w_std, b_std, order > 0)
    return (K, info) if return_info else K


class Analytic:
    """Infinite-width kernel as an object, callable as ``k(X, X2=None)`` (SPEC 5, 7).

    The parameters are those of :func:`analytic`; they are checked at construction and the
    kernel is evaluated at each call. ``w_std=None`` means 1/sqrt(d) with the d of the data.
    :meth:`matvec` gives K(X, X) V and :meth:`cross_matvec` K(X2, X) V without forming any
    n x n matrix, which :class:`mfntk.KernelRegressor` uses with its conjugate-gradient solver
    (chosen by ``solver="auto"`` for n > ``max_dense``).

    Parameters
    ----------
    activation, kind, w_std, a_std, b_std, c0, bias, method, quad_order, quad_tol, threads
        See :func:`analytic`.
    output_bias : bool
        The kernel of a network with a trained output bias: + 1 in the "rf" and "ntk" kinds
        (docs/MATH.md, section 4).

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
                 method="auto", quad_order=None, quad_tol=1e-12, threads=None, output_bias=False):
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
        self.output_bias = check_bool(output_bias, "output_bias")

    _PARAMS = ("activation", "kind", "w_std", "a_std", "b_std", "c0", "bias", "method", "quad_order", "quad_tol",
               "threads", "output_bias")

    @classmethod
    def from_network(cls, net, kind="ntk", **kwargs):
        """The analytic kernel matching the initialisation law of a :class:`mfntk.TwoLayer`.

        Uses the network's activation, c0, w_std, a_std, b_std and bias. For k outputs this is
        the limit of every diagonal block K_pp of the matrix kernel and of the ``"mean"`` empirical
        kernel (1/k) sum_p K_pp, since E a_p^2 = a_std^2 for each output (the off-diagonal blocks
        tend to 0): the per-output kernel, with no factor k (SPEC 4-5). Other keyword arguments
        (method, quad_order, ...) are passed on.
        """
        _check_net(net)
        bias = bool(net.bias)
        return cls(activation=net.activation, kind=kind, w_std=float(net.w_std), a_std=float(net.a_std),
                   b_std=float(net.b_std) if bias else 0.0, c0=float(net.c0), bias=bias,
                   output_bias=bool(getattr(net, "output_bias", False)), **kwargs)

    def _kwargs(self):
        """The arguments of :func:`analytic` (all parameters but ``output_bias``)."""
        return {p: getattr(self, p) for p in self._PARAMS if p != "output_bias"}

    @property
    def _constant(self):
        """The output bias's constant kernel: 1 in "rf" and "ntk", else 0."""
        return 1.0 if self.output_bias and self.kind != "nt" else 0.0

    def __call__(self, X, X2=None):
        """K(X, X2), shape (n1, n2); see :func:`analytic`."""
        K = analytic(X, X2, **self._kwargs())
        if self._constant:
            K += self._constant
        return K

    def _core_args(self, X):
        """The backend's keyword arguments after the points (kind, w_std, a_std, b_std, bias,
        method, order, tol, threads) for data X of dimension d (w_std None: 1/sqrt(d))."""
        order, tol = _check_quad(self.method, self.quad_order, self.quad_tol, self.activation)
        w_std = 1.0 / math.sqrt(X.shape[1]) if self.w_std is None else float(self.w_std)
        b_std = float(self.b_std)
        return dict(kind=self.kind, w_std=w_std, a_std=float(self.a_std), b_std=b_std,
                    bias=_resolve_bias(self.bias, b_std), method=self.method, order=order, tol=tol,
                    threads=resolve_threads(self.threads))

    def diag(self, X):
        """diag K(X, X), shape (n,), in O(n d) (used e.g. as a Jacobi preconditioner)."""
        X = self.validate(X)
        a = self._core_args(X)
        D, info = get_backend().analytic_diag(self.activation, float(self.c0), X, **a)
        _warn_quadrature(info, self.activation, a["tol"], X, None, a["w_std"], a["b_std"], a["order"] > 0)
        return D + self._constant if self._constant else D

    def matvec(self, X, V):
        """K(X, X) V without forming K.

        Parameters
        ----------
        X : array_like, shape (n, d)
        V : array_like, shape (n,) or (n, m)
            Converted to X's float dtype.

        Returns
        -------
        ndarray, shape of V
            float32 when X is float32 (computed in float64 throughout), float64 otherwise.

        Raises
        ------
        ValueError
            For a bad X or V (the message names it): shapes, non-finite values.

        Warns
        -----
        QuadratureWarning
            As :meth:`__call__`.

        Notes
        -----
        The entries are those of :func:`analytic`, evaluated in blocks of 256 x 256 (the Gram
        part of a block by a GEMM in float64, then the closed form or quadrature) and multiplied
        by V as they come, so memory is O(n (d + m)): no n x n matrix. Only the blocks on and
        above the diagonal are evaluated (K is symmetric): n^2 d flops for the GEMMs. The
        work is done in calls of about a second (:data:`mfntk._backend.CHUNK_SECONDS`), so that
        Ctrl-C interrupts it within about that long; the result is the same, bit for bit, for
        any thread count and grouping of the calls. :class:`mfntk.KernelRegressor` uses this
        product (with :meth:`diag` and :meth:`cross_matvec`) for its conjugate-gradient solver.

        Examples
        --------
        >>> import numpy as np, mfntk as mf
        >>> k = mf.kernels.Analytic(activation="relu", kind="ntk")
        >>> X = np.random.default_rng(0).standard_normal((300, 5))
        >>> V = np.ones(300)
        >>> bool(np.allclose(k.matvec(X, V), k(X) @ V))
        True
        """
        return self._product(X, None, V)

    def cross_matvec(self, X2, X, V):
        """K(X2, X) V without forming K(X2, X); V as in :meth:`matvec` for the points X, one row
        of the result per point of X2 (float32 when X and X2 are float32)."""
        return self._product(X, X2, V)

    def _product(self, X, X2, V):
        """K(X2, X) V (X2 None: K(X, X) V, symmetric)."""
        raw1 = X if isinstance(X, np.ndarray) else np.asarray(X)
        raw2 = None if X2 is None else (X2 if isinstance(X2, np.ndarray) else np.asarray(X2))
        dtype = _float_dtype(raw1, raw2)
        X = as_matrix(X, "X", dtype=dtype)
        X2 = None if X2 is None else as_matrix(X2, "X2", dtype=dtype, columns=X.shape[1])
        vector = np.ndim(V) == 1
        shape = np.shape(V)
        V = as_matrix(V, "V", dtype=dtype, allow_vector=True)
        if V.shape[0] != X.shape[0]:
            raise ValueError(f"V: expected {X.shape[0]} rows (one per point of X), got shape {shape}")
        a = self._core_args(X)
        n, n2, m = X.shape[0], 0 if X2 is None else X2.shape[0], V.shape[1]
        quadrature = a["method"] == "quadrature" or self.activation not in CLOSED_FORM
        nbytes = (8.0 * (n + n2) * (X.shape[1] + 4 + (16 * (a["order"] or 1024) if quadrature else 0))
                  + 8.0 * m * (4 * n + n2) + 3 * 8.0 * 256 * 256 * a["threads"])
        check_memory(nbytes, "X", f"the points and vectors of the product K(X{'' if X2 is None else '2, X'}) V "
                                  f"({n} points, {m} column(s))")
        out, info = get_backend().analytic_matvec(self.activation, float(self.c0), X, V, **a, X_rows=X2)
        _warn_quadrature(info, self.activation, a["tol"], X, X2, a["w_std"], a["b_std"], a["order"] > 0)
        if self._constant:
            out += self._constant * V.sum(axis=0)
        return out[:, 0] if vector else out

    def validate(self, X, name="X"):
        """X as the C-contiguous float array this kernel computes with (checked)."""
        return as_matrix(X, name, dtype=_float_dtype(X if isinstance(X, np.ndarray) else np.asarray(X)))

    # scikit-learn style parameter access (KernelRegressor.get_params(deep=True), clone)
    def get_params(self, deep=True):
        """The constructor arguments, as a dict."""
        return {p: getattr(self, p) for p in self._PARAMS}

    def set_params(self, **params):
        """Set constructor arguments (checked again); returns self."""
        unknown = set(params) - set(self._PARAMS)
        if unknown:
            raise ValueError(f"set_params: unknown parameter(s) {sorted(unknown)}; expected {list(self._PARAMS)}")
        kw = self.get_params()
        kw.update(params)
        self.__init__(**kw)
        return self

    def __eq__(self, other):
        return type(other) is type(self) and self.get_params() == other.get_params()

    __hash__ = None

    def __repr__(self):
        kw = self._kwargs()
        shown = ["activation", "kind", "w_std", "a_std", "b_std", "c0", "bias"]
        kw["output_bias"] = self.output_bias
        extra = [p for p in ("method", "quad_order", "quad_tol", "threads", "output_bias")
                 if kw[p] != {"method": "auto", "quad_order": None, "quad_tol": 1e-12, "threads": None,
                              "output_bias": False}[p]]
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
        self.shard = getattr(net, "shard", None)   # the chunks whose kernels are summed (a TwoLayer's)
        self.k = self.a.shape[1]
        self.output_bias = bool(getattr(net, "output_bias", False))

    def check(self, X, name):
        return as_matrix(X, name, dtype=self.dtype, columns=self.d, copy_note=True)

    def astype(self, dtype):
        """These particles in ``dtype`` (copies)."""
        other = copy.copy(self)
        other.dtype = np.dtype(dtype)
        other.a, other.W = (np.ascontiguousarray(x, dtype=other.dtype) for x in (self.a, self.W))
        other.b = None if self.b is None else np.ascontiguousarray(self.b, dtype=other.dtype)
        return other

    def rows(self, n, output):
        """Rows of a kernel's result on n points: n (mean), n k (matrix)."""
        return n * self.k if kernel_output_info(output).matrix else n

    def _with_output_bias(self, kind):
        # the output bias c is a second-layer parameter with gradient 1: + delta_pq in "rf", "ntk"
        return self.output_bias and kind != "nt"

    def gram(self, X, X2, kind, output, threads):
        K = self.backend.gram(self, X, X2, kind, threads, output=output)
        if self._with_output_bias(kind):
            if kernel_output_info(output).matrix:
                k = self.k
                blocks = K.reshape(K.shape[0] // k, k, K.shape[1] // k, k)
                for p in range(k):
                    blocks[:, p, :, p] += 1
            else:
                K += 1
        return K

    def matvec(self, X, V, kind, output, threads, X_rows=None, signs=None):
        """K(X_rows, X) V (X_rows None: X); ``signs``: the backend's sign cache of X."""
        out = self.backend.matvec(self, X, V, kind, threads, output=output, X_rows=X_rows, signs=signs)
        if self._with_output_bias(kind):
            if kernel_output_info(output).matrix:
                k = self.k
                sums = V.reshape(-1, k, V.shape[1]).sum(axis=0)          # (k, m): per output
                out += np.tile(sums, (out.shape[0] // k, 1))
            else:
                out += V.sum(axis=0, keepdims=True)
        return out


def _on_comm(net, comm):
    """``net``, sharded over ``comm`` when one is given (``TwoLayer.shard_over``)."""
    if comm is None:
        return net
    if not hasattr(net, "shard_over"):
        raise ValueError(f"comm: {type(net).__name__} cannot be sharded over MPI ranks")
    return net.shard_over(comm)


def empirical(net, X, X2=None, kind="ntk", threads=None, output="mean", comm=None):
    """Empirical tangent kernel K_mu(X, X2) of a network (SPEC 4).

    For k outputs the tangent kernel is a k x k matrix per pair of points,

        K_pq(x, x') = (1/N) sum_j [ delta_pq s_j(x) s_j(x') + a_jp a_jq s'_j(x) s'_j(x') (<x, x'> + [bias]) ],

    with the parts "rf" (first term), "nt" (second) and "ntk" (both), s_j(x) = sigma(<w_j, x> + b_j).
    A network with an output bias (``output_bias=True``) adds delta_pq to "rf" and "ntk" (the
    bias's gradient is 1 and it moves at rate (1/n) sum_i r_i: docs/MATH.md).

    Parameters
    ----------
    net : mfntk.TwoLayer
    X : array_like, shape (n1, d)
    X2 : array_like, shape (n2, d), optional
        None: X (the symmetric Gram matrix, exactly symmetric).
    kind : {"rf", "nt", "ntk"}
    threads : int or None
    output : {"mean", "matrix"}
        "mean": the (n1, n2) kernel of one output, (1/k) sum_p K_pp(x, x')
        = (1/N) sum_j [ s_j(x) s_j(x') + (|a_j|^2 / k) s'_j(x) s'_j(x') (<x, x'> + [bias]) ], whose
        infinite-width limit is :func:`analytic` with the network's law
        (``Analytic.from_network(net)``). "matrix": the (n1 k, n2 k) matrix with entry
        (i k + p, l k + q) = K_pq(x_i, x'_l), the kernel of the residual dynamics and of the
        linearized model (:class:`mfntk.NTKLimit`); ``K.reshape(n1, k, n2, k)[i, p, l, q]`` is
        K_pq(x_i, x'_l). For k = 1 both are the scalar kernel, the same numbers.
    comm : mpi4py communicator, optional
        Compute it with the particles sharded over the ranks of ``comm`` (as the network's own
        ``comm``: :class:`mfntk.MPIBackend`); every rank gets the kernel, the same numbers as
        in one process.

    Returns
    -------
    ndarray, shape (n1, n2) or (n1 k, n2 k), of the network's dtype
        X and X2 are converted to it (a UserWarning notes a float conversion).

    Notes
    -----
    Computed in the C++ core over (samples x particles) tiles, O(n1 n2 N) operations for the
    mean and O(n1 n2 k^2 N) for the matrix (plus O((n1 + n2) N d)), O(n1 n2 k^2) memory and no
    (n x N) array. The work is done in calls of about a second
    (:data:`mfntk._backend.CHUNK_SECONDS`), so that Ctrl-C interrupts it within about that
    long; the result is the same, bit for bit, as in one call and for any thread count.

    As N -> infinity at initialisation, with the components of a_j independent and
    E a_p^2 = a_std^2, K_pq -> delta_pq K_ntk at rate N^-1/2 ([JGH18]_ Theorem 1): the blocks
    off the diagonal vanish and the mean kernel tends to :func:`analytic`. (A scalar kernel with
    |a_j|^2 = sum_p a_jp^2 in its first-layer part would tend to k times the first-layer part of
    any one output's kernel.)

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> net = mf.TwoLayer(d=2, width=4, seed=0)
    >>> K = mf.kernels.empirical(net, np.eye(2), kind="nt")
    >>> K.shape
    (2, 2)
    >>> net3 = mf.TwoLayer(d=2, width=4, outputs=3, seed=0)
    >>> mf.kernels.empirical(net3, np.eye(2), output="matrix").shape
    (6, 6)
    """
    net = _on_comm(_check_net(net), comm)
    kind = _check_kind(kind)
    output = check_kernel_output(output)
    threads = resolve_threads(threads)
    p = _Particles(net, copy=False)
    X = p.check(X, "X")
    X2 = None if X2 is None else p.check(X2, "X2")
    blocks = net.outputs ** 2 if output == "matrix" else 1
    check_gram_memory(X, X2, matrices=(1 + kernel_kind_info(kind).first_layer) * blocks,
                      per_row=3 * 256 * X.itemsize)
    return p.gram(X, X2, kind, output, threads)


class Empirical:
    """Empirical tangent kernel of a network, as an object (SPEC 4, 7).

    Callable as ``k(X, X2=None)``; :meth:`matvec` gives K(X, X) V and :meth:`cross_matvec`
    K(X2, X) V without forming any n x n matrix (O(n N d) per column: one vjp and one jvp of
    the network); :meth:`operator` gives K(X, X) on fixed points as a linear operator whose
    products keep what they share (for relu, the signs of X W^T: half the work), which
    :class:`mfntk.KernelRegressor` uses with its conjugate-gradient solver.

    Parameters
    ----------
    net : mfntk.TwoLayer
        The network. Its particles are copied at construction: the kernel is that of the
        network as it was then (later changes of ``net`` do not affect it).
    kind : {"rf", "nt", "ntk"}
    threads : int or None
    output : {"mean", "matrix"}
        The (n1, n2) kernel of one output or the (n1 k, n2 k) matrix kernel (see
        :func:`empirical`). With "matrix", the vectors V of :meth:`matvec` and
        :meth:`cross_matvec` have one row per point and output (row i k + p: a target Y of
        shape (n, k) enters as ``Y.reshape(-1)``). :class:`mfntk.KernelRegressor` takes a
        "mean" kernel (one n x n matrix shared by the outputs).
    comm : mpi4py communicator, optional
        Shard the network's particles over the ranks of ``comm`` (as :func:`empirical`); ``net``
        is then that sharded network.

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

    #: Work of one kernel product K V per column: O(n N d), linear in n (the analytic kernels'
    #: and a matrix's are O(n^2)). The CG preconditioner's default number of centres reads it.
    product_work = "linear"

    _PARAMS = ("net", "kind", "threads", "output")

    def __init__(self, net, kind="ntk", threads=None, output="mean", comm=None):
        net = _on_comm(_check_net(net), comm)
        _check_kind(kind)
        check_kernel_output(output)
        if threads is not None:
            resolve_threads(threads)
        self.net = net
        self.kind = kind
        self.threads = threads
        self.output = output
        self._p = _Particles(net, copy=True)

    @property
    def dtype(self):
        return self._p.dtype

    @property
    def width(self):
        return self.net.width

    @property
    def d(self):
        return self._p.d

    def validate(self, X, name="X"):
        """X as a C-contiguous (n, d) array of the network's dtype (checked)."""
        return self._p.check(X, name)

    def __call__(self, X, X2=None):
        """K(X, X2), shape (n1, n2) or (n1 k, n2 k); see :func:`empirical`."""
        threads = resolve_threads(self.threads)
        X = self._p.check(X, "X")
        X2 = None if X2 is None else self._p.check(X2, "X2")
        blocks = self._p.a.shape[1] ** 2 if self.output == "matrix" else 1
        check_gram_memory(X, X2, matrices=(1 + kernel_kind_info(self.kind).first_layer) * blocks,
                          per_row=3 * 256 * X.itemsize)
        return self._p.gram(X, X2, self.kind, self.output, threads)

    def _vectors(self, V, n, name="V"):
        arr = np.asarray(V)
        vector = arr.ndim == 1
        V = as_matrix(V, name, dtype=self._p.dtype, allow_vector=True)
        rows = self._p.rows(n, self.output)
        if V.shape[0] != rows:
            per = "one per point of X" if rows == n else f"one per point of X and output, {n} x {self._p.k}"
            raise ValueError(f"{name}: expected {rows} rows ({per}), got shape {arr.shape}")
        return V, vector

    def matvec(self, X, V):
        """K(X, X) V without forming K; V of shape (rows,) or (rows, m), rows = n (mean) or
        n k (matrix); the result has V's shape."""
        threads = resolve_threads(self.threads)
        X = self._p.check(X, "X")
        V, vector = self._vectors(V, X.shape[0])
        out = self._p.matvec(X, V, self.kind, self.output, threads)
        return out[:, 0] if vector else out

    def cross_matvec(self, X2, X, V):
        """K(X2, X) V without forming K(X2, X); V as in :meth:`matvec` for the points X; one
        row of the result per point of X2 (mean) or per point and output (matrix)."""
        threads = resolve_threads(self.threads)
        X = self._p.check(X, "X")
        X2 = self._p.check(X2, "X2")
        V, vector = self._vectors(V, X.shape[0])
        out = self._p.matvec(X, V, self.kind, self.output, threads, X_rows=X2)
        return out[:, 0] if vector else out

    def astype(self, dtype):
        """This kernel computed in ``dtype`` ("float32" or "float64"), the particles rounded to it:
        in float32 about twice as fast, to float32's accuracy (what :class:`mfntk.KernelRegressor`'s
        CG iterates with and builds its preconditioner from). The copy keeps ``net``, so its
        ``get_params`` (and ``clone``, ``set_params``) give the kernel in the network's dtype."""
        dtype = resolve_dtype(dtype)
        other = copy.copy(self)
        other._p = self._p.astype(dtype)
        return other

    def operator(self, X, cache_mb=None):
        """K(X, X) on the fixed points X as a linear operator (:class:`EmpiricalOperator`): the
        product of :meth:`matvec`, with the signs of X W^T kept between products where they fit
        ``cache_mb`` (None: the default of the simulations' ``cache_mb``)."""
        return EmpiricalOperator(self, X, cache_mb)

    def analytic(self, **kwargs):
        """The infinite-width counterpart of the mean kernel (the limit of every diagonal block
        of the matrix kernel): ``Analytic.from_network(self.net, kind=self.kind)``."""
        return Analytic.from_network(self.net, kind=self.kind, **kwargs)

    def get_params(self, deep=True):
        """The constructor arguments, as a dict."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params):
        """Set constructor arguments (the particles are copied again); returns self."""
        unknown = set(params) - set(self._PARAMS)
        if unknown:
            raise ValueError(f"set_params: unknown parameter(s) {sorted(unknown)}; expected {list(self._PARAMS)}")
        kw = self.get_params()
        kw.update(params)
        self.__init__(**kw)
        return self

    def __repr__(self):
        return f"Empirical(net={self.net!r}, kind={self.kind!r}, output={self.output!r})"


# ---------------------------------------------------------------------------------------------
# neural-tangents conventions
# ---------------------------------------------------------------------------------------------
#: Activations that neural-tangents' stax layers compute identically: stax.Relu(), stax.Erf().
NT_ACTIVATIONS = ("relu", "erf")
#: What neural-tangents' ``kernel_fn(x1, x2, get)`` returns for ``get``.
NT_KINDS = ("nngp", "ntk")
#: The ``parameterization`` of neural-tangents' Dense layer.
NT_PARAMETERIZATIONS = ("ntk", "standard")


def _nt_inputs(X, W_std, b_std):
    """(W_std x / sqrt(d), b_std) per row: the inputs on which neural-tangents' first Dense layer
    in the "ntk" parameterization is a layer with weights N(0, I_{d+1}) and no bias."""
    column = np.full((X.shape[0], 1), b_std, dtype=X.dtype)
    return np.ascontiguousarray(np.hstack([X * (W_std / math.sqrt(X.shape[1])), column]))


def neural_tangents(X, X2=None, kind="ntk", activation="relu", W_std=1.0, b_std=None, parameterization="ntk",
                    width=None, threads=None):
    """neural-tangents' infinite-width kernel of a two-layer network, in its conventions.

    The numbers of ``kernel_fn(X, X2, get=kind)`` for::

        init_fn, apply_fn, kernel_fn = stax.serial(
            stax.Dense(width, W_std=W_std, b_std=b_std, parameterization=parameterization),
            stax.Relu(),        # or stax.Erf()
            stax.Dense(1, W_std=W_std, b_std=b_std, parameterization=parameterization))

    computed by :func:`analytic` with the conventions mapped (see Notes) ([NT20]_).

    Parameters
    ----------
    X : array_like, shape (n1, d)
    X2 : array_like, shape (n2, d), optional
        None means X (an exactly symmetric matrix).
    kind : {"ntk", "nngp"}
        neural-tangents' ``get``: the neural tangent kernel of the output or its NNGP kernel (the
        covariance of the output at initialisation).
    activation : {"relu", "erf"}
        ``stax.Relu()`` or ``stax.Erf()`` (erf(u), its defaults a = b = 1, c = 0).
    W_std : float >= 0
        ``W_std`` of both Dense layers.
    b_std : float >= 0 or None
        ``b_std`` of both Dense layers; None (neural-tangents' default) means no biases. In the
        "standard" parameterization b_std = 0 differs from None: a bias initialised at zero still
        contributes its gradient (1) to the NTK.
    parameterization : {"ntk", "standard"}
        ``parameterization`` of both Dense layers: "ntk", z = W_std / sqrt(fan_in) W x + b_std b
        with W, b ~ N(0, 1); "standard", z = W x + b with W ~ N(0, W_std^2 / fan_in) and
        b ~ N(0, b_std^2) ([SD20]_).
    width : int or None
        ``out_dim`` of the first Dense layer. The "standard" NTK grows linearly with it and needs
        it; the other kernels do not depend on it (neural-tangents ignores it there too).
    threads : int or None
        OpenMP threads (None: all cores available to the process).

    Returns
    -------
    ndarray, shape (n1, n2)
        float32 when X (and X2) are float32, float64 otherwise.

    Raises
    ------
    TypeError, ValueError
        For a bad argument (the message names it): shapes, non-finite values, X2 with another
        d, an unknown kind, activation or parameterization, a negative W_std or b_std, a missing
        width for the "standard" NTK.

    Notes
    -----
    neural-tangents divides the input Gram matrix by d, so the first layer's pre-activations
    (u, v) have covariance Sigma1(x, x') = W_std^2 <x, x'> / d + b_std^2 (b_std = 0 when None) in
    both parameterizations, and (with phi the activation)::

        NNGP  = W_std^2 E[phi(u) phi(v)] + b_std^2
        NTK   = NNGP + W_std^2 E[phi'(u) phi'(v)] Sigma1(x, x')                 ("ntk")
        NTK   = width E[phi(u) phi(v)] + W_std^2 E[phi'(u) phi'(v)] (<x, x'> + [bias]) + [bias]
                                                                               ("standard")

    ([bias] = 1 when b_std is not None). The mapping onto mfntk's kernels (SPEC 5), which is how
    they are computed here:

    - "ntk" parameterization: with xhat = (W_std x / sqrt(d), b_std) in R^(d+1), the
      network is W_std times mfntk's network with w ~ N(0, I_(d+1)), a ~ N(0, 1) and no bias on
      the inputs xhat, plus an output bias b_std. Hence
      ``NNGP = W_std**2 * analytic(xhat, kind="rf", w_std=1, bias=False) + b_std**2`` and
      ``NTK = W_std**2 * analytic(xhat, kind="ntk", w_std=1, a_std=1, bias=False) + b_std**2``.
    - "standard" parameterization: the network is sum_j a_j phi(<w_j, x> + b_j) + b_out with
      mfntk's law w_std = W_std / sqrt(d), b_std, a_std = W_std / sqrt(width); its NTK is the sum
      over the width of the per-particle products, ``width`` times mfntk's mean (1/N) sum_j,
      plus the output bias's 1: ``NTK = width * analytic(X, kind="ntk", w_std=W_std/sqrt(d),
      a_std=W_std/sqrt(width), b_std=b_std, bias=b_std is not None) + [bias]``.

    The same identities hold at finite width between neural-tangents' empirical NTK and
    :func:`empirical` of the mfntk network with those laws (``mf.TwoLayer(d + 1, N, w_std=1.0)``
    on xhat, or ``mf.TwoLayer(d, N, w_std=W_std/sqrt(d), a_std=W_std/sqrt(N), b_std=b_std,
    bias=b_std is not None)`` with width N).

    mfntk's own defaults (w_std = 1/sqrt(d), a_std = 1, no bias) differ from neural-tangents'
    W_std = 1 network by the factor d on the first-layer part only:
    NTK_nt = analytic(kind="rf") + analytic(kind="nt") / d, because mfntk differentiates with
    respect to w = W / sqrt(d) where neural-tangents differentiates with respect to W.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> K = mf.kernels.neural_tangents(X, activation="relu", W_std=1.0)   # NTK, no bias
    >>> np.round(K, 4)      # diagonal 1/4 + 1/4 (|x|^2 / d = 1/2), off it 1/(4 pi) + 0
    array([[0.5   , 0.0796],
           [0.0796, 0.5   ]])

    In :class:`mfntk.KernelRegressor`, with :func:`nt_time` and :func:`nt_ridge`:

    >>> import functools
    >>> kern = functools.partial(mf.kernels.neural_tangents, W_std=1.5, b_std=0.1)
    >>> reg = mf.KernelRegressor(kernel=kern, t=mf.kernels.nt_time(100.0, learning_rate=0.5)).fit(X, [1.0, -1.0])
    """
    activation = check_choice(activation, "activation", NT_ACTIVATIONS)
    kind = check_choice(kind, "kind", NT_KINDS)
    parameterization = check_choice(parameterization, "parameterization", NT_PARAMETERIZATIONS)
    W_std = _check_std(W_std, "W_std")
    b = 0.0 if b_std is None else _check_std(b_std, "b_std")
    width = None if width is None else check_int(width, "width")
    standard_ntk = parameterization == "standard" and kind == "ntk"
    if standard_ntk and width is None:
        raise ValueError("width: the NTK of the 'standard' parameterization grows with the hidden width (out_dim "
                         "of the first Dense layer); give it")
    dtype = _float_dtype(np.asarray(X), None if X2 is None else np.asarray(X2))
    X = as_matrix(X, "X", dtype=dtype)
    X2 = None if X2 is None else as_matrix(X2, "X2", dtype=dtype, columns=X.shape[1])
    if standard_ntk:
        bias = b_std is not None
        K = analytic(X, X2, activation, "ntk", w_std=W_std / math.sqrt(X.shape[1]), a_std=W_std / math.sqrt(width),
                     b_std=b, bias=bias, threads=threads)
        return width * K + float(bias)
    Xhat = _nt_inputs(X, W_std, b)
    X2hat = None if X2 is None else _nt_inputs(X2, W_std, b)
    K = analytic(Xhat, X2hat, activation, "rf" if kind == "nngp" else "ntk", w_std=1.0, a_std=1.0, b_std=0.0,
                 bias=False, threads=threads)
    return W_std ** 2 * K + b ** 2


def nt_time(t, learning_rate=1.0, outputs=1):
    """The kernel-flow time of :class:`mfntk.KernelRegressor` equal to time ``t`` of neural-tangents.

    neural-tangents' ``predict.gradient_descent_mse(k_train_train, y_train, learning_rate)`` and
    ``predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, learning_rate)`` predict,
    at time ``t`` (training steps, continuous),

        f_t(x) = K(x, X) Kr^{-1} (I - exp(-learning_rate t Kr / m)) Y,   m = y_train.size = n k,

    gradient flow on the loss (1 / 2m) sum_i |f(x_i) - y_i|^2 ([L19]_), with Kr = K + r I the
    regularised kernel (:func:`nt_ridge`). :class:`mfntk.KernelRegressor` predicts
    K(x, X) Kr^{-1} (I - exp(-t' Kr / n)) Y (SPEC 4, 6), the flow of (1 / 2n) sum_i |f(x_i) - y_i|^2.
    The two agree for the same kernel matrix when t' / n = learning_rate t / (n k):

        t' = learning_rate * t / outputs.

    Parameters
    ----------
    t : float >= 0 or None
        neural-tangents' ``t`` (``np.inf`` allowed). None, its infinite time, gives None, which is
        :class:`mfntk.KernelRegressor`'s ``t=None`` (the limit t = inf).
    learning_rate : float > 0
        neural-tangents' ``learning_rate``.
    outputs : int >= 1
        k, the number of columns of ``y_train`` (its size divided by the number of training
        points): neural-tangents normalises the loss by every entry of ``y_train``.

    Returns
    -------
    float or None
        ``t`` for :class:`mfntk.KernelRegressor`.

    Raises
    ------
    TypeError, ValueError
        A negative or non-numeric ``t``, a ``learning_rate`` <= 0, ``outputs`` < 1.

    Examples
    --------
    >>> import mfntk as mf
    >>> mf.kernels.nt_time(1000.0, learning_rate=0.1, outputs=10)
    10.0
    """
    if t is None:
        return None
    t = check_float(t, "t", minimum=0.0, allow_inf=True)
    learning_rate = check_float(learning_rate, "learning_rate", minimum=0.0, strict=True)
    return learning_rate * t / check_int(outputs, "outputs")


def nt_ridge(K_train, diag_reg, diag_reg_absolute_scale=False):
    """The ``ridge`` of :class:`mfntk.KernelRegressor` equal to neural-tangents' ``diag_reg``.

    neural-tangents' predictors (``predict.gradient_descent_mse``,
    ``predict.gradient_descent_mse_ensemble``, ``predict.gp_inference``) add r I to the training
    kernel with r = diag_reg * trace(K_train) / n (the mean of its diagonal), or r = diag_reg
    when ``diag_reg_absolute_scale=True``, both in the inverse and in the exponent of the
    time-t predictor; :class:`mfntk.KernelRegressor` does the same with r = ``ridge``
    (see :func:`nt_time`).

    Parameters
    ----------
    K_train : array_like, shape (n, n)
        The training kernel (``kernel_fn(x_train, None, get)``): finite, square, symmetric.
    diag_reg : float >= 0
    diag_reg_absolute_scale : bool
        neural-tangents' argument of that name.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        A K_train that is not a finite symmetric square matrix, a negative diag_reg, a
        non-boolean diag_reg_absolute_scale.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> mf.kernels.nt_ridge(np.diag([1.0, 3.0]), 0.1)     # 0.1 * mean(1, 3)
    0.2
    """
    K = check_kernel_matrix(K_train, "K_train")
    diag_reg = check_float(diag_reg, "diag_reg", minimum=0.0)
    if check_bool(diag_reg_absolute_scale, "diag_reg_absolute_scale"):
        return diag_reg
    return diag_reg * float(np.trace(K)) / K.shape[0]


class EmpiricalOperator(scipy.sparse.linalg.LinearOperator):
    """The empirical kernel K(X, X) on fixed points, as a symmetric linear operator.

    ``op(V)``, ``op @ V`` and ``op.matvec`` / ``op.matmat`` give K(X, X) V, the numbers of
    :meth:`Empirical.matvec` bit for bit; it also serves scipy's iterative solvers
    (``scipy.sparse.linalg.cg``, ``eigsh`` for the top of K's spectrum).

    For a relu network and one output per product (the "mean" kernel, or the matrix kernel of
    one output), the first product also stores the signs of X W^T (+ b), n N bits, and every
    later product reads them instead of recomputing X W^T: its two passes (J^T v, then J g)
    are then one GEMM each instead of two, about half the time. The signs are kept when they fit
    ``cache_mb``; otherwise, and for the other kernels, every product recomputes X W^T.

    Parameters
    ----------
    kernel : Empirical
    X : array (n, d)
        The points; copied (the operator does not see later changes of X).
    cache_mb : float or None
        Memory budget of the sign cache in MiB (0: no cache); None: the default of the
        simulations' option ``cache_mb``.

    Attributes
    ----------
    cache_bytes : int
        Bytes of the sign cache (0: none).

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> net = mf.TwoLayer(d=3, width=64, seed=1)
    >>> k = mf.kernels.Empirical(net)
    >>> X = np.random.default_rng(0).standard_normal((5, 3))
    >>> op = k.operator(X)
    >>> bool(np.array_equal(op(np.ones((5, 1))), k.matvec(X, np.ones((5, 1)))))
    True
    """

    def __init__(self, kernel, X, cache_mb=None):
        from ._options import RunOptions
        if not isinstance(kernel, Empirical):
            raise TypeError(f"kernel: expected a mfntk.kernels.Empirical, got {type(kernel).__name__}")
        cache_opt = RunOptions.opts()["cache_mb"]
        cache_mb = RunOptions.defaults()["cache_mb"] if cache_mb is None else cache_opt.check(cache_mb, "cache_mb")
        X = np.array(kernel.validate(X, "X"), copy=True)
        X.flags.writeable = False
        # the kernel as it is now: its particles, kind and output are the cached signs' (a later
        # set_params of the kernel does not reach the operator)
        self._p, self._kind, self._output, self._threads = kernel._p, kernel.kind, kernel.output, kernel.threads
        self._vectors = kernel._vectors
        rows = self._p.rows(X.shape[0], self._output)
        super().__init__(dtype=self._p.dtype, shape=(rows, rows))
        self.kernel = kernel
        self.X = X
        self._signs = self._p.backend.matvec_sign_cache(self._p, X.shape[0], self._output, cache_mb * 2 ** 20)
        self.cache_bytes = 0 if self._signs is None else self._signs.nbytes

    def _matmat(self, V):
        V, _ = self._vectors(V, self.X.shape[0])
        return self._p.matvec(self.X, V, self._kind, self._output, resolve_threads(self._threads), signs=self._signs)

    def _matvec(self, v):
        return self._matmat(np.reshape(v, (-1, 1)))[:, 0]

    def _adjoint(self):
        return self

    def __call__(self, V):
        """K(X, X) V, V of shape (rows,) or (rows, m) (a ValueError naming V otherwise)."""
        V, vector = self._vectors(V, self.X.shape[0])
        out = self._matmat(V)
        return out[:, 0] if vector else out

    def __repr__(self):
        return (f"EmpiricalOperator(kernel={self.kernel!r}, n={self.X.shape[0]}, "
                f"cache_bytes={self.cache_bytes})")
