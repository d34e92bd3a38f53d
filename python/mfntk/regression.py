"""Kernel regression, kernel classification and the finite-width RF / NT models (SPEC 6).

- :class:`KernelRegressor` -- kernel ridge(less) regression and the time-t kernel gradient
  flow (early stopping), with a precomputed kernel matrix or a kernel object
  (:class:`mfntk.kernels.Analytic`, :class:`mfntk.kernels.Empirical`, or any callable k(X, X2)).
- :class:`KernelClassifier` -- the same on one-hot targets, prediction by argmax, score =
  accuracy.
- :class:`RandomFeatures`, :class:`NeuralTangent` -- least squares over the second-layer
  weights (N features) or over the first-layer directions (N d features) of a two-layer
  network at fixed random first-layer weights: the RF and NT models of
  Ghorbani-Mei-Misiakiewicz-Montanari.

All follow scikit-learn's conventions: ``__init__`` only stores its arguments, ``fit`` checks
them and returns ``self``, fitted attributes end in ``_``, ``predict`` raises
:class:`sklearn.exceptions.NotFittedError` before ``fit``, ``get_params``/``set_params``/
``clone`` work, ``score`` is R^2 (regressors) or accuracy (classifier).

Objective and the ridge. With n training points, KernelRegressor solves

    min_f  sum_i |y_i - f(x_i)|^2 + ridge |f|_H^2      ->  fhat(x) = K(x, X) (K + ridge I)^{-1} Y,

exactly the objective of :class:`sklearn.kernel_ridge.KernelRidge`, so its ``alpha`` *is* our
``ridge`` (for the normalised objective (1/n) sum_i |y_i - f(x_i)|^2 + lambda |f|_H^2, ridge =
n lambda). ridge = 0 is the minimum-norm interpolant (pseudo-inverse).

References
----------
.. [GMMM19] S. Mei, T. Misiakiewicz, B. Ghorbani and A. Montanari, "Limitations of lazy training
   of two-layers neural networks", NeurIPS 2019 (the RF and NT classes; Theorems 1-2 for a
   quadratic target).
.. [GMMM21] B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari, "Linearized two-layers neural
   networks in high dimension", Ann. Statist. 49(2), 2021 (eq. (2)-(3): F_RF and F_NT).
.. [JGH18] A. Jacot, F. Gabriel and C. Hongler, "Neural tangent kernel", NeurIPS 2018
   (Section 5: the kernel gradient flow, f_t = f_0 + K(x,X) K^{-1}(I - exp(-t K / n))(y - f_0)).
"""
from __future__ import annotations

import math
import types

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._options import RunOptions
from ._registry import check_activation
from ._preconditioners import (CENTER_SELECTIONS, CENTERS_PER_ROOT_N, KernelColumns, check_centers,
                                check_centers_memory, default_centers, nystrom, nystrom_features, pivoted_cholesky,
                                select_centers)
from ._solvers import (
    ConvergenceWarning,
    NumericalRidgeWarning,
    SolverFallbackWarning,
    SpectralFactor,
    centre_kernel,
    centred_matvec,
    check_kernel_matrix,
    conjugate_gradient,
    lanczos_flow,
    solve_psd,
)
from ._validation import (as_matrix, check_bool, check_choice, check_eigh_memory, check_float, check_int, check_memory,
                          format_bytes, resolve_threads)

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6: the estimator's method of the same job
    def _validate_data(estimator, /, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

__all__ = [
    "ConvergenceWarning",
    "KernelClassifier",
    "KernelRegressor",
    "NeuralTangent",
    "NumericalRidgeWarning",
    "NystromClassifier",
    "NystromRegressor",
    "RandomFeatures",
    "SolverFallbackWarning",
]

SOLVERS = ("auto", "cholesky", "eigh", "cg")
#: Preconditioners of the "cg" solver (None: none at all).
PRECONDITIONERS = ("auto", "nystrom", "pivoted-cholesky", "jacobi", None)
#: Smallest n for which preconditioner="auto" builds a Nystrom preconditioner (with ridge > 0):
#: below it CG is cheap anyway and the n x M columns would cost as much as the iterations saved.
AUTO_NYSTROM_MIN_N = 2000


def _float_dtype_of(A):
    """float32 for float32 (or float16) arrays, float64 otherwise."""
    dt = getattr(A, "dtype", None)
    return np.dtype(np.float32) if dt is not None and dt.kind == "f" and dt.itemsize <= 4 else np.dtype(np.float64)


def _rows_like(Y, n, name="Y"):
    """Y as float64 (n, k); also whether it was 1-D."""
    arr = np.asarray(Y) if not isinstance(Y, np.ndarray) else Y
    Y2 = as_matrix(Y, name, dtype=np.float64, allow_vector=True)
    if Y2.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows (one per training point), got shape {arr.shape}")
    return Y2, arr.ndim == 1


def _check_regression_data(estimator, X, Y, dtype):
    """scikit-learn's checks of (X, Y) for a multi-output regressor (they set ``n_features_in_``):
    X a dense 2-D numeric array of `dtype`, Y with one row per sample; Y as float64 (n, k), and
    whether it was 1-D."""
    X, Y = _validate_data(estimator, X, Y, dtype=dtype, multi_output=True, y_numeric=True)
    Y2, vector = _rows_like(Y, X.shape[0])
    return X, Y2, vector


class _Float32Product:
    """V -> K32 V in float64 by the operator of a kernel's float32 copy, for CG's mixed-precision
    iterations; ``cache_bytes``: what that operator keeps."""

    def __init__(self, operator):
        self.operator, self.cache_bytes = operator, operator.cache_bytes

    def __call__(self, V):
        return np.asarray(self.operator(np.asarray(V, dtype=np.float32)), dtype=np.float64)


def _fast_operator(kernel, X, cache_mb):
    """A :class:`_Float32Product` of ``kernel`` on X, or None unless the kernel is float64 and has
    ``astype`` and ``operator`` (kernels.Empirical)."""
    if not (hasattr(kernel, "astype") and hasattr(kernel, "operator")) or np.dtype(kernel.dtype) != np.float64:
        return None
    return _Float32Product(kernel.astype("float32").operator(np.asarray(X, dtype=np.float32), cache_mb=cache_mb))


def _check_preconditioner(value):
    if value is not None and not (isinstance(value, str) and value in PRECONDITIONERS):
        raise ValueError(f"preconditioner: unknown value {value!r}; expected one of "
                         f"{', '.join(map(repr, PRECONDITIONERS))}")
    return value


def _identity(V):
    return V


def _check_kernel(kernel):
    """A kernel model's ``kernel``: "precomputed" or a callable kernel object."""
    if isinstance(kernel, str):
        if kernel != "precomputed":
            raise ValueError(f"kernel: unknown value {kernel!r}; expected 'precomputed' or a kernel object "
                             "(mfntk.kernels.Analytic, mfntk.kernels.Empirical or a callable k(X, X2))")
    elif not callable(kernel):
        raise TypeError(f"kernel: expected 'precomputed' or a callable kernel object, got {type(kernel).__name__}")


def _kernel_expansion(estimator, X2, points, coef, const, chunk):
    """K(X2, points) coef + const in blocks of ``chunk`` rows (the kernel matrix never whole)."""
    out = np.empty((X2.shape[0], coef.shape[1]))
    for i0 in range(0, X2.shape[0], chunk):
        K2 = np.asarray(estimator._kernel_matrix(X2[i0:i0 + chunk], points), dtype=np.float64)
        out[i0:i0 + chunk] = K2 @ coef + const
    return out


def _decision_inputs(estimator, X):
    """X checked for a fitted kernel model's decision values (for a precomputed kernel: the
    columns K(X2, X_train), one per training point)."""
    check_is_fitted(estimator)
    try:
        return _validate_data(estimator, X, reset=False, dtype=estimator._DTYPES)
    except ValueError as exc:
        shape = getattr(X, "shape", ())
        if estimator._precomputed() and len(shape) == 2 and shape[1] != estimator.n_fit_:
            raise ValueError(f"{exc} A precomputed kernel K(X2, X_train) needs one column per training "
                             "point.") from exc
        raise


def _stored(values, vector):
    """(n, k) coefficients or (k,) constants as stored: the single column of a 1-D target."""
    if np.ndim(values) == 1:
        return float(values[0]) if vector else values
    return values[:, 0].copy() if vector else values


def _column(values):
    """Stored coefficients as (n, k)."""
    return values[:, None] if values.ndim == 1 else values


# =============================================================================================
# kernel regression
# =============================================================================================
class _KernelModel(BaseEstimator):
    """Shared parameters, fitting on (n, k) targets, and decision values."""

    #: Input dtypes kept as they are (others are converted to the first).
    _DTYPES = (np.float64, np.float32)

    def __init__(self, kernel="precomputed", ridge=0.0, t=None, solver="auto", tol=None, max_iter=None, rcond=None,
                 max_dense=16384, fit_intercept=False, preconditioner="auto", centers=None, center_selection="uniform",
                 random_state=0, progress=None):
        self.kernel = kernel
        self.ridge = ridge
        self.t = t
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.rcond = rcond
        self.max_dense = max_dense
        self.fit_intercept = fit_intercept
        self.preconditioner = preconditioner
        self.centers = centers
        self.center_selection = center_selection
        self.random_state = random_state
        self.progress = progress

    # -- parameters -----------------------------------------------------------------------------
    def _precomputed(self):
        return isinstance(self.kernel, str) and self.kernel == "precomputed"

    def _check_params(self):
        _check_kernel(self.kernel)
        ridge = check_float(self.ridge, "ridge", minimum=0.0)
        t = None if self.t is None else check_float(self.t, "t", minimum=0.0, allow_inf=True)
        solver = check_choice(self.solver, "solver", SOLVERS)
        if t is not None and solver == "cholesky":
            raise ValueError("solver: 'cholesky' cannot compute the kernel flow at time t; use 'eigh', 'cg' or "
                             "'auto' (or t=None)")
        tol = None if self.tol is None else check_float(self.tol, "tol", minimum=0.0, strict=True)
        max_iter = None if self.max_iter is None else check_int(self.max_iter, "max_iter")
        rcond = None if self.rcond is None else check_float(self.rcond, "rcond", minimum=0.0)
        max_dense = check_int(self.max_dense, "max_dense")
        intercept = check_bool(self.fit_intercept, "fit_intercept")
        if t is not None and solver == "cg" and intercept:
            raise ValueError("fit_intercept: the kernel flow at time t with a trained constant needs solver='eigh' "
                             "(or 'auto'); solver='cg' computes the flow without one")
        _check_preconditioner(self.preconditioner)
        if self.centers is not None:
            check_int(self.centers, "centers")
        check_choice(self.center_selection, "center_selection", CENTER_SELECTIONS)
        return ridge, t, solver, tol, max_iter, rcond, max_dense, intercept

    def _validate_X(self, X, name="X"):
        validate = getattr(self.kernel, "validate", None)
        if validate is not None:
            return validate(X, name)
        return as_matrix(X, name, dtype=np.float64)

    def _kernel_matrix(self, X, X2=None):
        K = self.kernel(X) if X2 is None else self.kernel(X, X2)
        K = np.asarray(K)
        want = (X.shape[0], X.shape[0] if X2 is None else X2.shape[0])
        if K.shape != want:
            raise ValueError(f"kernel: returned shape {K.shape}, expected {want}")
        return K

    # -- fitting --------------------------------------------------------------------------------
    def _fit_targets(self, X, Y2, vector):
        """Fit on X (checked by scikit-learn: float64 or float32, 2-D) and float64 targets (n, k)."""
        ridge, t, solver, tol, max_iter, rcond, max_dense, intercept = self._check_params()
        if self._precomputed():
            kdtype = _float_dtype_of(X)
            K = check_kernel_matrix(X, "X")
            n = K.shape[0]
            Xfit = None
        else:
            Xfit = self._validate_X(X, "X")
            n = Xfit.shape[0]
            K = None
            kdtype = getattr(self.kernel, "dtype", None)
            kdtype = np.dtype(Xfit.dtype if kdtype is None else kdtype)
        if solver == "auto":
            large = K is None and hasattr(self.kernel, "matvec") and n > max_dense
            if t is not None:
                solver = "cg" if large and not intercept else "eigh"
            elif large:
                solver = "cg"
            else:
                solver = "cholesky" if ridge > 0.0 else "eigh"
        # without a flow, the constant is the mean residual: solve for the centred targets
        centred = intercept and t is None
        Ybar = Y2.mean(axis=0) if centred else None
        Yfit = Y2 - Ybar if centred else Y2
        const = np.zeros(Y2.shape[1])
        # the fitted attributes are set together at the end: an interrupted fit (Ctrl-C) changes none
        fitted = {"centers_": None, "preconditioner_": None}
        if solver == "cg":
            flow = t is not None and not math.isinf(t)  # t = inf: the ridge solve
            fast = None   # a float32 product for CG's mixed-precision iterations, where the kernel has one
            if K is not None:
                matvec, diag = (lambda V: K @ V), np.diag(K).copy()
                columns = KernelColumns.from_matrix(K, dtype=kdtype)
            elif hasattr(self.kernel, "matvec"):
                # K(X, X) on the training points: the kernel's operator where it has one (it keeps
                # what the products share, e.g. the empirical kernel's signs of X W^T), its float32
                # copy's for the iterations of mixed-precision CG; one memory budget for both
                budget = RunOptions.defaults()["cache_mb"]
                fast = None if flow else _fast_operator(self.kernel, Xfit, budget)
                if hasattr(self.kernel, "operator"):
                    matvec = self.kernel.operator(Xfit, cache_mb=budget - getattr(fast, "cache_bytes", 0) / 2 ** 20)
                else:
                    matvec = lambda V: self.kernel.matvec(Xfit, V)  # noqa: E731
                diag = self.kernel.diag(Xfit) if hasattr(self.kernel, "diag") else None
                columns = KernelColumns.from_kernel(self.kernel, Xfit, outputs=1, fast=True)
            else:
                raw = self._kernel_matrix(Xfit)
                Kd = check_kernel_matrix(raw, "kernel(X)")
                matvec, diag = (lambda V: Kd @ V), np.diag(Kd).copy()
                columns = KernelColumns.from_matrix(Kd, dtype=_float_dtype_of(raw))
            if centred:
                matvec, diag, row_means = centred_matvec(matvec, diag, n)
                columns = columns.centred(row_means)
                if fast is not None:
                    fast = centred_matvec(fast, None, n)[0]
            kind = self.preconditioner
            sharded = bool(getattr(getattr(self.kernel, "net", None), "sharded", False))
            if flow:
                kind = None  # Lanczos is not preconditioned
            elif kind == "auto":
                kind = "nystrom" if ridge > 0.0 and n >= AUTO_NYSTROM_MIN_N and not sharded else "jacobi"
            if sharded and kind in ("nystrom", "pivoted-cholesky"):
                # its centres are drawn (and their number capped by free memory) in each process
                raise ValueError(f"preconditioner: {kind!r} is not available with a kernel of a network sharded "
                                 "over MPI ranks; use 'jacobi' (the default there) or None")
            if kind == "jacobi" and diag is None:
                kind = None  # a kernel without a diagonal: nothing to precondition with
            centers = self.centers
            if centers is None and kind in ("nystrom", "pivoted-cholesky"):
                work = getattr(self.kernel, "product_work", "quadratic") if K is None else "quadratic"
                if work not in CENTERS_PER_ROOT_N:
                    raise ValueError(f"kernel: product_work must be one of {', '.join(map(repr, CENTERS_PER_ROOT_N))}, "
                                     f"got {work!r}")
                centers = default_centers(n, columns.outputs, CENTERS_PER_ROOT_N[work])
            if kind == "nystrom":
                precond = nystrom(columns, centers, ridge, self.center_selection, self.random_state)
                fitted["centers_"] = precond.centers
            elif kind == "pivoted-cholesky":
                precond = pivoted_cholesky(columns, centers, ridge)
                fitted["centers_"] = precond.centers
            elif kind is None:
                precond = _identity  # diag(K), if known, still bounds the spectrum for the floor
            else:
                precond = None  # Jacobi, from diag
            if tol is None:
                tol = 1e-5 if kdtype.itemsize <= 4 else 1e-8
            if flow:
                coef, info = lanczos_flow(matvec, Yfit, t, n, ridge, tol=tol, max_iter=max_iter, stacklevel=4,
                                          progress=self.progress)
            else:
                coef, info = conjugate_gradient(matvec, Yfit, shift=ridge, tol=tol, max_iter=max_iter, diag=diag,
                                                stacklevel=4, preconditioner=precond, progress=self.progress,
                                                rcond=n * float(np.finfo(kdtype).eps) if rcond is None else rcond,
                                                fast_matvec=fast)
            if centred:  # C K C ignores the coefficients' mean; K does not
                coef -= coef.mean(axis=0)
                const = Ybar - row_means @ coef
            fitted.update(n_iter_=info["iterations"], residual_=info["residual"], preconditioner_=kind)
            used = "cg"
        else:
            # the n x n kernel (unless precomputed) and its factorisation, before computing either
            check_eigh_memory(n, "X", "the kernel matrix and its factorisation",
                              matrices=8 if intercept and t is not None else 5)
            if K is None:
                raw = self._kernel_matrix(Xfit)
                kdtype = _float_dtype_of(raw)
                K = check_kernel_matrix(raw, "kernel(X)")
            if rcond is None:  # pseudo-inverse cutoff: n * eps of the precision K was computed in
                rcond = n * float(np.finfo(kdtype).eps)
            if t is not None:
                factor = SpectralFactor(K, rcond=rcond)
                if intercept:
                    coef, const = factor.flow_coef_intercept(Y2, t, ridge)
                else:
                    coef = factor.flow_coef(Y2, t, ridge, stacklevel=4)
                used = "eigh"
            elif centred:
                Kc, row_means = centre_kernel(K)
                coef, used, _ = solve_psd(Kc, Yfit, ridge, solver, rcond, stacklevel=4)
                coef -= coef.mean(axis=0)
                const = Ybar - row_means @ coef
            else:
                coef, used, _ = solve_psd(K, Yfit, ridge, solver, rcond, stacklevel=4)
            fitted["n_iter_"] = 1
        for name, value in fitted.items():
            setattr(self, name, value)
        self.X_fit_ = Xfit
        self.dual_coef_ = _stored(coef, vector)
        self.intercept_ = _stored(const, vector)
        self.solver_ = used
        self.n_fit_ = n
        self._vector = vector
        return self

    def _decision(self, X, chunk=4096):
        X = _decision_inputs(self, X)
        coef = _column(self.dual_coef_)
        const = np.atleast_1d(self.intercept_)
        if self._precomputed():
            return np.asarray(X, dtype=np.float64) @ coef + const
        X2 = self._validate_X(X, "X")
        if self.solver_ == "cg" and hasattr(self.kernel, "cross_matvec"):
            return np.asarray(self.kernel.cross_matvec(X2, self.X_fit_, coef), dtype=np.float64) + const
        return _kernel_expansion(self, X2, self.X_fit_, coef, const, chunk)

    def _more_tags(self):  # scikit-learn < 1.6
        return {"pairwise": self._precomputed()}

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self._precomputed()
        return tags


_INTERCEPT_DOC = """fit_intercept : bool
        Fit an unpenalised constant c as well: fhat = f + c minimises
        sum_i |y_i - f(x_i) - c|^2 + ridge |f|_H^2 (one constant per output column), solved as
        (C K C + ridge I) a = C Y with C = I - 1 1^T / n the centring projector, c = mean(Y) -
        mean(K a) -- the bordered system [[K + ridge I, 1], [1^T, 0]] [a; c] = [Y; 0]; ridge = 0
        gives the minimum-norm interpolant with a free constant. At a flow time t the constant is
        trained by the flow too, as the output bias of a network: dc/dt = (1/n) sum_i r_i with
        r = Y - f - c (with ridge = 0 this is the kernel flow of K + 1); see
        :meth:`mfntk._solvers.SpectralFactor.flow_coef_intercept`. So only at t = None (or
        t = inf with ridge > 0) does adding a constant to Y add it to the predictions. False (the
        default): no constant."""


class KernelRegressor(RegressorMixin, _KernelModel):
    __doc__ = """Kernel ridge(less) regression and time-t kernel gradient flow (SPEC 6).

    fhat(x) = K(x, X) (K + ridge I)^{-1} Y, or at a finite flow time t (early stopping),
    fhat_t(x) = K(x, X) (K + ridge I)^{-1} (I - exp(-t (K + ridge I) / n)) Y: the kernel gradient
    flow started from f = 0 on (1/2n) sum_i |y_i - f(x_i)|^2 + (ridge/2n) |f|_H^2, whose
    coefficients obey dc/dt = -(1/n)((K + ridge I) c - Y). With ridge = 0 this is SPEC 4's
    du/dt = -(1/n) K u on the training set (n the number of training points).

    Parameters
    ----------
    kernel : "precomputed" or kernel object
        "precomputed": ``fit`` takes K(X, X) (n, n) and ``predict`` K(X2, X) (m, n). Otherwise
        a callable ``k(X, X2=None)`` -- :class:`mfntk.kernels.Analytic`,
        :class:`mfntk.kernels.Empirical` (whose ``matvec`` enables matrix-free CG) or any function.
    ridge : float >= 0
        Ridge (sklearn's KernelRidge ``alpha``; see the module notes). 0: ridgeless. A ridge at
        or below the numerical floor of the spectrum, rcond * max eigenvalue of K, cannot
        regularise (those eigenvalues are rounding noise): the direct solvers then treat it as 0
        -- the pseudo-inverse with that cutoff -- with a NumericalRidgeWarning, and "cg" raises
        numpy.linalg.LinAlgError (a ValueError) when the system is singular there.
    t : float or None
        Kernel-flow time (>= 0, ``np.inf`` allowed); None: the limit t = inf, i.e. plain kernel
        ridge regression. t = 0 predicts 0.
    solver : {"auto", "cholesky", "eigh", "cg"}
        "cholesky": LAPACK Cholesky of K + ridge I (falls back to "eigh" with a
        SolverFallbackWarning when K + ridge I is not numerically positive definite).
        "eigh": symmetric eigendecomposition; ridgeless solutions use the pseudo-inverse with
        relative cutoff ``rcond``. "cg": conjugate gradient on (K + ridge I) c = Y, matrix-free
        for kernels with a ``matvec`` (the empirical NTK: O(n N d) per iteration and column, no
        n x n matrix), preconditioned (see ``preconditioner``); for a float64 empirical kernel in
        mixed precision: the iterations take the products of its float32 copy, and true
        residuals from the float64 one replace the recursive ones every hundredfold fall and decide
        convergence (reliable updates); at a finite flow time t, Lanczos
        on K for phi_t(K) Y (:func:`mfntk._solvers.lanczos_flow`: O(n) memory per step and
        column, an error estimate and a ConvergenceWarning; not with ``fit_intercept``).
        "auto": "cg" for a matvec kernel with n > max_dense (with t and fit_intercept: "eigh"),
        else "eigh" when t is given, "cholesky" when ridge > 0 and "eigh" when ridge = 0.
    tol : float or None
        CG relative residual tolerance (Lanczos: estimated relative error); None: 1e-8 (1e-5
        for a float32 kernel).
    max_iter : int or None
        CG iteration limit (None: 10 n; Lanczos: min(n, 500), its basis checked to fit in
        memory). Non-convergence warns (ConvergenceWarning) with the residual reached.
    rcond : float or None
        Pseudo-inverse cutoff relative to the largest eigenvalue, and the numerical floor of the
        ridge; None: n * eps of K's dtype.
    max_dense : int
        Largest n for which "auto" forms the n x n matrix of a matvec kernel.
    {intercept}
    preconditioner : {"auto", "nystrom", "pivoted-cholesky", "jacobi", None}
        Preconditioner of the "cg" solver (ignored by the others). "nystrom": a rank-M Nystrom
        approximation U diag(s) U^T of the kernel (of the centred kernel with
        ``fit_intercept``) from its columns K(X, X_C) at M centres, applied as
        P^{-1} = (s_M + ridge) U diag(1 / (s + ridge)) U^T + (I - U U^T) (Frangella, Tropp and
        Udell), O(n M) memory and work per iteration: CG's iteration count then depends on the
        tail of the spectrum (the empirical NTK at n = 50,000, d = 32, ridge 1: M = 1000 centres
        take CG from 191 iterations to 48, and the fit from 117 s to 50 s). "pivoted-cholesky": the same apply with a
        greedy pivoted Cholesky factor of rank M (needs diag(K): blocks of the kernel for a
        kernel without ``diag``). "jacobi": diag(K) + ridge when the kernel has a ``diag`` (a
        precomputed or dense kernel, :class:`mfntk.kernels.Analytic`), else none. None: none.
        "auto": "nystrom" when ridge > 0 and n >= 2000, else "jacobi". With the kernel of a
        network sharded over MPI ranks (``Empirical(net)``, ``net`` built with ``comm``) only
        "jacobi" and None ("auto" is "jacobi"): the centres would be drawn in each process.
    centers : int or None
        Rank M of the "nystrom" and "pivoted-cholesky" preconditioners; None:
        min(n, max(1000, 4 sqrt(n))) for a kernel whose product is linear in n
        (:class:`mfntk.kernels.Empirical`), min(n, max(1000, 12 sqrt(n))) for one whose product
        is quadratic (a matrix, :class:`mfntk.kernels.Analytic`: there the columns cost little
        beside the iterations they save), fewer when memory is short. The n x M columns are
        checked to fit in memory first.
    center_selection : {"uniform", "leverage"}
        Nystrom centres drawn uniformly without replacement, or proportionally to approximate
        ridge leverage scores (from a uniform pilot Nystrom approximation of the same size).
    random_state : int, numpy Generator or None
        Seed of the centres' draw (None: not reproducible).
    progress : bool or None
        The "cg" solver's iterations and largest relative residual (Lanczos: error estimate) on
        stderr: None, a counter on a terminal once the solve has run 2 s, and off a terminal a
        line every 30 s once it has run that long (a short fit writes nothing); True, from the
        first iteration; False, nothing. Ctrl-C stops a fit between kernel products
        (KeyboardInterrupt); the coefficients of an earlier fit stay as they were.

    Attributes
    ----------
    dual_coef_ : ndarray (n,) or (n, k)
        Coefficients a with fhat(x) = K(x, X) a + intercept_ (1-D when Y was 1-D).
    intercept_ : float or ndarray (k,)
        The constant c (a float when Y was 1-D); 0.0 without ``fit_intercept``.
    X_fit_ : ndarray (n, d) or None
        The training inputs (a validated copy), None for a precomputed kernel.
    solver_ : str
        The solver actually used ("cholesky", "eigh" or "cg").
    n_iter_ : int
        CG (or Lanczos) iterations; 1 for the direct solvers (one factorisation).
    residual_ : ndarray (k,)
        CG relative residuals (Lanczos: error estimates) reached (only after a "cg" fit).
    preconditioner_ : str or None
        The CG preconditioner used ("nystrom", "pivoted-cholesky", "jacobi" or None; None
        after a direct solve).
    centers_ : ndarray (M,) of int or None
        The training points whose kernel columns built the preconditioner ("nystrom",
        "pivoted-cholesky"), else None.
    n_features_in_ : int
        Columns of X (n for a precomputed kernel).

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> rng = np.random.default_rng(0)
    >>> X, X2 = rng.standard_normal((20, 3)), rng.standard_normal((5, 3))
    >>> y = np.sin(X[:, 0])
    >>> k = mf.kernels.Analytic(activation="relu", kind="ntk")
    >>> reg = mf.KernelRegressor(kernel=k).fit(X, y)          # ridgeless: interpolates
    >>> bool(np.allclose(reg.predict(X), y))
    True
    >>> early = mf.KernelRegressor(kernel=k, t=5.0).fit(X, y)  # early-stopped kernel flow
    >>> early.predict(X2).shape
    (5,)
    >>> shifted = mf.KernelRegressor(kernel=k, ridge=0.1, fit_intercept=True)
    >>> a, b = shifted.fit(X, y).predict(X2), shifted.fit(X, y + 10.0).predict(X2)
    >>> bool(np.allclose(b - a, 10.0))
    True
    """.replace("{intercept}", _INTERCEPT_DOC)

    def fit(self, X, Y):
        """Fit on inputs X (n, d) -- or K (n, n) when kernel="precomputed" -- and targets Y.

        Parameters
        ----------
        X : array_like (n, d), or (n, n) when precomputed
        Y : array_like (n,) or (n, k)

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, or inputs that are not finite numeric arrays of matching lengths.
        """
        X, Y2, vector = _check_regression_data(self, X, Y, self._DTYPES)
        return self._fit_targets(X, Y2, vector)

    def predict(self, X):
        """Predictions at X (m, d) -- or from K(X2, X_train) (m, n) when precomputed.

        Returns
        -------
        ndarray (m,) when Y was 1-D, (m, k) otherwise.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        """
        out = self._decision(X)
        return out[:, 0] if self._vector else out

    def predict_class(self, X):
        """Argmax over the output columns of :meth:`predict` (for one-hot targets): indices (m,)."""
        out = self._decision(X)
        if out.shape[1] < 2:
            raise ValueError("predict_class: needs a model fitted on one-hot targets with >= 2 columns")
        return np.argmax(out, axis=1)

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class KernelClassifier(ClassifierMixin, _KernelModel):
    """Kernel classification by regression on one-hot targets and argmax (SPEC 6).

    The labels y are encoded one-hot (column c is 1 for class ``classes_[c]``, 0 otherwise),
    regressed exactly as :class:`KernelRegressor` does, and a point is assigned the class of
    its largest output. ``score`` is the accuracy.

    Parameters
    ----------
    kernel, ridge, t, solver, tol, max_iter, rcond, max_dense, fit_intercept, preconditioner, centers, \
center_selection, random_state, progress
        As for :class:`KernelRegressor` (with ``fit_intercept``, one constant per class).

    Attributes
    ----------
    classes_ : ndarray (C,)
    dual_coef_ : ndarray (n, C)
    intercept_ : ndarray (C,)
        One constant per class column (zeros without ``fit_intercept``).
    X_fit_, solver_, n_iter_, residual_, preconditioner_, centers_, n_features_in_
        As for :class:`KernelRegressor`.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> rng = np.random.default_rng(1)
    >>> X = rng.standard_normal((40, 2)); y = np.where(X[:, 0] > 0, "right", "left")
    >>> clf = mf.KernelClassifier(kernel=mf.kernels.Analytic(kind="ntk"), ridge=1e-3).fit(X, y)
    >>> clf.score(X, y)
    1.0
    """

    def fit(self, X, y):
        """Fit on inputs X (or a precomputed K) and class labels y.

        Parameters
        ----------
        X : array_like (n, d), or (n, n) when precomputed
        y : array_like (n,)
            Labels (any type numpy can sort); a column (n, 1) is accepted with scikit-learn's
            DataConversionWarning.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Continuous or multi-output targets, fewer than 2 classes, or bad inputs.
        """
        X, y = _validate_data(self, X, y, dtype=self._DTYPES)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y: needs at least 2 classes, got {classes.size} class")
        Y = np.zeros((y.shape[0], classes.size))
        Y[np.arange(y.shape[0]), codes] = 1.0
        self._fit_targets(X, Y, False)
        self.classes_ = classes
        return self

    def decision_function(self, X):
        """The regression outputs, one column per class: (m, C); for two classes the difference
        of the second and the first column, (m,), positive for ``classes_[1]``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        """
        out = self._decision(X)
        return out[:, 1] - out[:, 0] if out.shape[1] == 2 else out

    def predict(self, X):
        """The class of the largest output, (m,)."""
        out = self._decision(X)
        return self.classes_[np.argmax(out, axis=1)]


# =============================================================================================
# Nystrom kernel ridge regression
# =============================================================================================
def _ridge_least_squares(B, Y, ridge):
    """argmin_b |B b - Y|^2 + ridge |b|^2 for B (n, r), n >= r; ridge = 0: the minimum-norm
    least-squares solution.

    With a ridge well above the rounding floor of B^T B (r eps |B|^2, where its eigenvalues are
    noise), the normal equations (B^T B + ridge I) b = B^T Y are as well conditioned as the
    problem, (|B|^2 + ridge) / ridge, and cost one product n r^2 at the GEMM rate and one
    Cholesky r^3 / 3 -- at n = 20,000, r = 5,000 about 20x less than the SVD of B. Otherwise
    (ridge at the floor, or a failed factorisation) the SVD of B, which does not square its
    condition number.
    """
    G = B.T @ B
    top = float(np.max(np.diag(G))) if G.size else 0.0
    if ridge > max(B.shape) * np.finfo(np.float64).eps * top * B.shape[1]:
        G[np.diag_indices_from(G)] += ridge
        try:
            return scipy.linalg.cho_solve(scipy.linalg.cho_factor(G, check_finite=False), B.T @ Y,
                                          check_finite=False)
        except np.linalg.LinAlgError:
            pass
    U, sv, Wt = scipy.linalg.svd(B, full_matrices=False, check_finite=False)
    if ridge > 0.0:
        filt = sv / (sv ** 2 + ridge)
    else:
        keep = sv > max(B.shape) * np.finfo(np.float64).eps * (sv[0] if sv.size else 0.0)
        filt = np.zeros_like(sv)
        filt[keep] = 1.0 / sv[keep]
    return Wt.T @ (filt[:, None] * (U.T @ Y))


class _NystromModel(BaseEstimator):
    """Shared parameters, fitting on (n, k) targets, and decision values of the Nystrom models."""

    _DTYPES = (np.float64, np.float32)

    def __init__(self, kernel="precomputed", ridge=0.0, centers=None, center_selection="uniform", random_state=0,
                 fit_intercept=False):
        self.kernel = kernel
        self.ridge = ridge
        self.centers = centers
        self.center_selection = center_selection
        self.random_state = random_state
        self.fit_intercept = fit_intercept

    _precomputed = _KernelModel._precomputed
    _validate_X = _KernelModel._validate_X
    _kernel_matrix = _KernelModel._kernel_matrix
    _more_tags = _KernelModel._more_tags

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self._precomputed()
        return tags

    def _fit_targets(self, X, Y2, vector):
        """Fit on X (checked by scikit-learn) and float64 targets (n, k)."""
        _check_kernel(self.kernel)
        ridge = check_float(self.ridge, "ridge", minimum=0.0)
        selection = check_choice(self.center_selection, "center_selection", CENTER_SELECTIONS)
        intercept = check_bool(self.fit_intercept, "fit_intercept")
        if self._precomputed():
            K = check_kernel_matrix(X, "X")
            columns = KernelColumns.from_matrix(K, dtype=_float_dtype_of(X))
            Xfit = None
        else:
            Xfit = self._validate_X(X, "X")
            columns = KernelColumns.from_kernel(self.kernel, Xfit, outputs=1)
        n = columns.n
        size = default_centers(n) if self.centers is None else check_centers(self.centers, n)
        check_centers_memory(columns, size)
        idx = select_centers(columns, size, selection, ridge, self.random_state)
        B, T = nystrom_features(columns, idx)
        const = np.zeros(Y2.shape[1])
        if intercept:  # an unpenalised constant: centre the features and the targets
            mean_B, mean_Y = B.mean(axis=0), Y2.mean(axis=0)
            B -= mean_B
            Yfit = Y2 - mean_Y
        else:
            Yfit = Y2
        b = _ridge_least_squares(B, Yfit, ridge)
        if intercept:
            const = mean_Y - mean_B @ b
        self.centers_ = idx
        self.X_centers_ = None if Xfit is None else Xfit[idx].copy()
        self.dual_coef_ = _stored(T @ b, vector)
        self.intercept_ = _stored(const, vector)
        self.n_fit_ = n
        self.rank_ = int(T.shape[1])
        self._vector = vector
        return self

    def _decision(self, X, chunk=4096):
        X = _decision_inputs(self, X)
        coef = _column(self.dual_coef_)
        const = np.atleast_1d(self.intercept_)
        if self._precomputed():
            return np.asarray(X, dtype=np.float64)[:, self.centers_] @ coef + const
        return _kernel_expansion(self, self._validate_X(X, "X"), self.X_centers_, coef, const, chunk)


_NYSTROM_DOC = """
    Parameters
    ----------
    kernel : "precomputed" or kernel object
        "precomputed": ``fit`` takes K(X, X) (n, n) and ``predict`` K(X2, X) (m, n), of which
        only the columns of the centres are read. Otherwise a callable ``k(X, X2=None)``
        (:class:`mfntk.kernels.Analytic`, :class:`mfntk.kernels.Empirical` or any function),
        called only on blocks K(X, X_C) and K(X2, X_C).
    ridge : float >= 0
        As in :class:`KernelRegressor`. 0: the minimum-norm least-squares solution.
    centers : int or None
        Number M of centres; None: min(n, max(1000, 4 sqrt(n))).
    center_selection : {"uniform", "leverage"}
        Centres drawn uniformly without replacement, or proportionally to approximate ridge
        leverage scores (from a uniform pilot Nystrom approximation of the same size).
    random_state : int, numpy Generator or None
        Seed of the centres' draw (None: not reproducible).
    fit_intercept : bool
        Fit an unpenalised constant c as well (one per output column): the Nystrom features are
        centred with their training means, as scikit-learn's Ridge does.
"""


class NystromRegressor(RegressorMixin, _NystromModel):
    __doc__ = """Nystrom kernel ridge regression (FALKON's estimator, direct solve).

    With M centres X_C among the n training points, the coefficients alpha (M,) or (M, k) minimise

        |K_nM alpha - Y|^2 + ridge alpha^T K_MM alpha,        fhat(x) = K(x, X_C) alpha,

    K_nM = K(X, X_C), K_MM = K(X_C, X_C) ([RCR17]_). With K_MM = V diag(lam) V^T (eigenvalues
    below M eps times the largest dropped, eps that of the kernel's dtype) and T = V lam^{-1/2}, alpha = T b where b is the
    ridge regression of Y on the n x r features B = K_nM T (B B^T is the Nystrom approximation
    of K), solved by the Cholesky factorisation of B^T B + ridge I (the SVD of B when the ridge is
    at the rounding floor or the factorisation fails): O(n M^2) time, O(n M) memory, and no n x n
    matrix. With
    M = n (and K positive definite) this is :class:`KernelRegressor`'s solution.
""" + _NYSTROM_DOC + """
    Attributes
    ----------
    centers_ : ndarray (M,) of int
        Indices of the centres among the training points.
    X_centers_ : ndarray (M, d) or None
        The centres (None for a precomputed kernel).
    dual_coef_ : ndarray (M,) or (M, k)
        alpha: fhat(x) = K(x, X_centers_) dual_coef_ + intercept_.
    intercept_ : float or ndarray (k,)
    rank_ : int
        Numerical rank r of K_MM.
    n_features_in_ : int

    Raises
    ------
    MemoryError
        From ``fit``, before allocating, when the n x M columns do not fit (naming ``centers``).

    References
    ----------
    .. [RCR17] A. Rudi, L. Carratino and L. Rosasco, "FALKON: an optimal large scale kernel
       method", NeurIPS 2017.

    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 3)); y = np.sin(X[:, 0])
    >>> k = mf.kernels.Analytic(activation="relu", kind="ntk")
    >>> reg = mf.NystromRegressor(kernel=k, ridge=1e-2, centers=100).fit(X, y)
    >>> reg.dual_coef_.shape, reg.score(X, y) > 0.8
    ((100,), True)
    """

    def fit(self, X, Y):
        """Fit on inputs X (n, d) -- or K (n, n) when kernel="precomputed" -- and targets Y.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters or inputs.
        MemoryError
            When the n x M kernel columns cannot fit.
        """
        X, Y2, vector = _check_regression_data(self, X, Y, self._DTYPES)
        return self._fit_targets(X, Y2, vector)

    def predict(self, X):
        """Predictions at X (m, d) -- or from K(X2, X_train) (m, n) when precomputed: (m,) or (m, k)."""
        out = self._decision(X)
        return out[:, 0] if self._vector else out

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True, "pairwise": self._precomputed()}

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class NystromClassifier(ClassifierMixin, _NystromModel):
    __doc__ = """Classification by Nystrom kernel ridge regression on one-hot targets and argmax.

    As :class:`KernelClassifier`, with the regression of :class:`NystromRegressor`.
""" + _NYSTROM_DOC + """
    Attributes
    ----------
    classes_ : ndarray (C,)
    centers_, X_centers_, dual_coef_ (M, C), intercept_ (C,), rank_, n_features_in_
        As for :class:`NystromRegressor`.
    """

    fit = KernelClassifier.fit
    decision_function = KernelClassifier.decision_function
    predict = KernelClassifier.predict


# =============================================================================================
# finite-width random-features and neural-tangent models
# =============================================================================================
class _FeatureModel(RegressorMixin, BaseEstimator):
    _kind = None  # "rf" | "nt"

    def __init__(self, width=100, activation="relu", ridge=0.0, w_std=None, bias=False, b_std=0.0, c0=0.0, seed=0,
                 formulation="auto", net=None, threads=None, fit_intercept=False):
        self.width = width
        self.activation = activation
        self.ridge = ridge
        self.w_std = w_std
        self.bias = bias
        self.b_std = b_std
        self.c0 = c0
        self.seed = seed
        self.formulation = formulation
        self.net = net
        self.threads = threads
        self.fit_intercept = fit_intercept

    # -- the fixed first layer ------------------------------------------------------------------
    def _network(self, d):
        from ._network import TwoLayer

        if self.net is not None:
            from .kernels import _check_net

            net = _check_net(self.net)
            if getattr(net, "sharded", False):   # the features are the particles' own: all of them, here
                net.require_whole("net")
            if net.d != d:
                raise ValueError(f"X: has {d} columns but net.d = {net.d}")
            return net
        return TwoLayer(d, self.width, activation=self.activation, bias=self.bias, w_std=self.w_std, a_std=1.0,
                        b_std=self.b_std, seed=self.seed, c0=self.c0, a_init="rademacher")

    def _particles(self, net):
        """The network's particles in float64, as the backend takes them."""
        as64 = lambda x: None if x is None else np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
        return types.SimpleNamespace(activation=net.activation, c0=float(net.c0), a=as64(net.a), W=as64(net.W),
                                     b=as64(net.b), backend=net.backend)

    def _n_features(self, N, d, bias):
        return N if self._kind == "rf" else N * d + (N if bias else 0)

    def _features(self, X, i0, i1):
        """Phi(X[i0:i1]) with Phi Phi^T = the empirical kernel of the fixed network (kind rf or nt)."""
        p = self._particles_
        a, W, b = p.a, p.W, p.b
        N = W.shape[0]
        Xc = X[i0:i1]
        Z = Xc @ W.T
        if b is not None:
            Z += b
        scale = 1.0 / math.sqrt(N)
        # sigma and sigma' of the core's policies, as in the kernels Phi Phi^T must equal
        if self._kind == "rf":
            return p.backend.activation(self._act, self._c0, Z, 0) * scale
        D = p.backend.activation(self._act, self._c0, Z, 1) * (np.sqrt(np.einsum("jk,jk->j", a, a)) * scale)
        Phi = (D[:, :, None] * Xc[:, None, :]).reshape(Xc.shape[0], -1)
        if b is not None:
            Phi = np.concatenate([Phi, D], axis=1)
        return Phi

    def _chunk(self):
        return max(1, int(2 ** 22 // max(self.n_features_, 1)))

    def _check_memory(self, n, d, ridge, formulation, intercept=False):
        """MemoryError before fitting when the network, the features' matrix (n x n kernel or p x p
        Gram) and its factorisation cannot fit in the available memory (with an intercept: the
        centred kernel, or the outer product of a chunk's mean, one matrix more)."""
        if self.net is not None:
            from .kernels import _check_net

            N, bias = int(_check_net(self.net).width), self.net.b is not None
        else:
            N, bias = self.width, bool(self.bias)
        p = self._n_features(N, d, bias)
        if formulation == "auto":
            formulation = "kernel" if n < p else "primal"
        m = n if formulation == "kernel" else p
        network = 16.0 * N * (1 + d + (1 if bias else 0)) * (self.net is None)
        if formulation == "kernel":  # K (and the core's first-layer part for nt)
            matrices, chunks = 1 + (self._kind == "nt"), 0.0
        else:  # G and the product Phi^T Phi of a chunk; chunks of 2^22 feature values
            matrices, chunks = 2, 3 * 8.0 * 2 ** 22
        matrices += 1 if ridge > 0 else 4  # Cholesky: a copy; eigendecomposition: a copy, V, workspace
        matrices += 1 if intercept else 0
        nbytes = network + matrices * 8.0 * m * m + chunks
        check_memory(nbytes, "width", f"{type(self).__name__} of width {N} ({p} features) on {n} points, "
                                      f"{formulation} formulation ({m} x {m} matrix: {format_bytes(8.0 * m * m)})")

    # -- fit / predict --------------------------------------------------------------------------
    def fit(self, X, Y):
        """Least squares (with ridge) over the model's free weights, and the constant with
        ``fit_intercept``; returns self.

        Parameters
        ----------
        X : array_like (n, d)
        Y : array_like (n,) or (n, k)

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, or inputs that are not finite numeric arrays of matching lengths.
        MemoryError
            When the features' matrix and its factorisation cannot fit in memory.
        """
        ridge = check_float(self.ridge, "ridge", minimum=0.0)
        formulation = check_choice(self.formulation, "formulation", ("auto", "kernel", "primal"))
        intercept = check_bool(self.fit_intercept, "fit_intercept")
        threads = resolve_threads(self.threads)
        if self.net is None:
            check_int(self.width, "width")
            check_activation(self.activation)
        X, Y2, vector = _check_regression_data(self, X, Y, np.float64)
        X = np.ascontiguousarray(X)
        n, d = X.shape
        self._check_memory(n, d, ridge, formulation, intercept)
        net = self._network(d)
        self.network_ = net
        self._act, self._c0 = net.activation, float(net.c0)
        self._particles_ = self._particles(net)
        self.n_features_ = self._n_features(net.width, d, net.b is not None)
        if formulation == "auto":
            formulation = "kernel" if n < self.n_features_ else "primal"
        p = self._particles_
        const = np.zeros(Y2.shape[1])
        if formulation == "kernel":
            K = p.backend.gram(p, X, None, self._kind, threads)
            if intercept:  # the kernel of the centred features (see mfntk._solvers.centre_kernel)
                Ybar = Y2.mean(axis=0)
                K, row_means = centre_kernel(K)
                coef, used, _ = solve_psd(K, Y2 - Ybar, ridge, "auto", stacklevel=3)
                coef -= coef.mean(axis=0)
                const = Ybar - row_means @ coef
            else:
                coef, used, _ = solve_psd(K, Y2, ridge, "auto", stacklevel=3)
            self.dual_coef_ = _stored(coef, vector)
            self.X_fit_ = X.copy()
            self.coef_ = None
        else:
            G, PY, mean_phi, mean_y = self._normal_equations(X, Y2, intercept)
            coef, used, _ = solve_psd(G, PY, ridge, "auto", stacklevel=3)
            if intercept:
                const = mean_y - mean_phi @ coef
            self.coef_ = _stored(coef, vector)
            self.dual_coef_ = None
            self.X_fit_ = None
        self.intercept_ = _stored(const, vector)
        self.formulation_ = formulation
        self.solver_ = used
        self._vector = vector
        return self

    def _normal_equations(self, X, Y2, centred):
        """Phi^T Phi and Phi^T Y over chunks of rows; with ``centred``, those of the centred
        features and targets, and the means.

        The centred sums are merged chunk by chunk (Chan, Golub and LeVeque's pairwise update:
        C = C_a + C_b + (n_a n_b / n) (m_b - m_a)(m_b - m_a)^T), which does not lose the digits
        that Phi^T Phi - n m m^T would when the features' mean is large.
        """
        n = X.shape[0]
        p = self.n_features_
        G = np.zeros((p, p))
        PY = np.zeros((p, Y2.shape[1]))
        mean_phi, mean_y = np.zeros(p), np.zeros(Y2.shape[1])
        step = self._chunk()
        seen = 0
        for i0 in range(0, n, step):
            Phi = self._features(X, i0, min(n, i0 + step))
            Yc = Y2[i0:i0 + step]
            if not centred:
                G += Phi.T @ Phi
                PY += Phi.T @ Yc
                continue
            rows = Phi.shape[0]
            m_phi, m_y = Phi.mean(axis=0), Yc.mean(axis=0)
            Phi -= m_phi
            G += Phi.T @ Phi
            PY += Phi.T @ (Yc - m_y)
            total = seen + rows
            dphi, dy = m_phi - mean_phi, m_y - mean_y
            weight = seen * rows / total
            G += weight * np.outer(dphi, dphi)
            PY += weight * np.outer(dphi, dy)
            mean_phi += dphi * (rows / total)
            mean_y += dy * (rows / total)
            seen = total
        return G, PY, mean_phi, mean_y

    def predict(self, X):
        """Predictions (m,) or (m, k) at X (m, d).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        """
        check_is_fitted(self)
        X = np.ascontiguousarray(_validate_data(self, X, reset=False, dtype=np.float64))
        const = np.atleast_1d(self.intercept_)
        if self.formulation_ == "kernel":
            p = self._particles_
            coef = _column(self.dual_coef_)
            out = np.empty((X.shape[0], coef.shape[1]))
            threads = resolve_threads(self.threads)
            for i0 in range(0, X.shape[0], 4096):
                K2 = p.backend.gram(p, X[i0:i0 + 4096], self.X_fit_, self._kind, threads)
                out[i0:i0 + 4096] = K2 @ coef + const
        else:
            coef = _column(self.coef_)
            out = np.empty((X.shape[0], coef.shape[1]))
            step = self._chunk()
            for i0 in range(0, X.shape[0], step):
                out[i0:i0 + step] = self._features(X, i0, min(X.shape[0], i0 + step)) @ coef + const
        return out[:, 0] if self._vector else out

    def risk(self, X, Y, normalized=False):
        """Test risk on (X, Y).

        normalized=False: the mean over samples of (1/2)|y - f(x)|^2 (SPEC 2's squared loss).
        normalized=True: mean |y - f(x)|^2 / mean |y|^2, i.e. R / ||f*||^2 of [GMMM19]_
        Theorems 1-2 when Y = f*(X).
        """
        P = self.predict(X)
        Y2, _ = _rows_like(Y, P.shape[0])
        P = P[:, None] if P.ndim == 1 else P
        err = np.sum((Y2 - P) ** 2, axis=1)
        if normalized:
            return float(np.mean(err) / np.mean(np.sum(Y2 ** 2, axis=1)))
        return float(0.5 * np.mean(err))

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


_FEATURE_DOC = """
    Parameters
    ----------
    width : int
        Number N of neurons.
    activation : str
        sigma: relu, tanh, erf, sigmoid, softplus, quadratic (u^2 + c0) or identity.
    ridge : float >= 0
        Penalty ridge |theta|^2 added to sum_i |y_i - f(x_i)|^2 (0: minimum-norm least squares).
    w_std : float or None
        First-layer weights w_j ~ N(0, w_std^2 I_d); None: 1/sqrt(d).
    bias : bool
        Whether neurons have biases b_j ~ N(0, b_std^2).
    b_std, c0 : float
    seed : int
        The random first layer is that of ``mfntk.TwoLayer(d, width, ..., a_init="rademacher",
        seed=seed)`` (exposed as ``network_``), so the model pairs with
        ``mfntk.kernels.Empirical(network_, kind=...)``.
    formulation : {"auto", "kernel", "primal"}
        "kernel": through the n x n kernel matrix Phi Phi^T (the empirical kernel of the network,
        from the C++ core); "primal": normal equations Phi^T Phi (p x p) accumulated over
        chunks of rows; "auto": "kernel" when n < p features, "primal" otherwise. Both give the
        same predictor (ridge > 0: (Phi^T Phi + ridge I)^{-1} Phi^T Y = Phi^T (Phi Phi^T + ridge I)^{-1} Y;
        ridge = 0: the minimum-norm least-squares solution).
    net : mfntk.TwoLayer or None
        Use this network's first layer (and |a_j| for NT) instead; width, activation, w_std,
        bias, b_std, c0 and seed are then ignored.
    threads : int or None
    fit_intercept : bool
        Fit an unpenalised constant c as well, as scikit-learn's Ridge does: minimise
        sum_i |y_i - Phi(x_i) theta - c|^2 + ridge |theta|^2 by centring the features and the
        targets with their training means, solving for theta, and c = mean(Y) - mean(Phi) theta
        (one constant per output column; ridge = 0: the least-squares solution of smallest
        |theta|, the constant free). Adding a constant to Y then adds it to the predictions.
        False (the default): no constant.

    Attributes
    ----------
    network_ : TwoLayer
        The network holding the fixed weights.
    n_features_ : int
        p.
    formulation_ : str
    coef_ : ndarray (p,) or (p, k) or None
        Weights of the features (primal formulation).
    dual_coef_ : ndarray (n,) or (n, k) or None
        Kernel coefficients (kernel formulation): fhat(x) = K(x, X) dual_coef_ + intercept_.
    intercept_ : float or ndarray (k,)
        The constant c (a float when Y was 1-D); 0.0 without ``fit_intercept``.
    X_fit_ : ndarray or None
        Training inputs (kernel formulation).
    solver_ : str
    n_features_in_ : int
        d.
"""


class RandomFeatures(_FeatureModel):
    __doc__ = """Random-features (RF) model: least squares over the second-layer weights (SPEC 6).

    F_RF = { f(x) = sum_j theta_j sigma(<w_j, x> + b_j) / sqrt(N) : theta in R^N } at fixed random
    w_j ([GMMM21]_ eq. (2); [GMMM19]_ Theorem 1). The feature map Phi(x) = (sigma(<w_j, x> +
    b_j) / sqrt(N))_j has Phi Phi^T = the empirical "rf" kernel of the network.
""" + _FEATURE_DOC + """
    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 5)); y = X[:, 0] ** 2
    >>> rf = mf.RandomFeatures(width=50, activation="relu", ridge=1e-6).fit(X, y)
    >>> rf.formulation_, rf.n_features_
    ('primal', 50)
    """
    _kind = "rf"


class NeuralTangent(_FeatureModel):
    __doc__ = """Neural-tangent (NT) model: least squares over the first-layer directions (SPEC 6).

    F_NT = { f(x) = sum_j |a_j| sigma'(<w_j, x> + b_j) (<v_j, x> + c_j) / sqrt(N) : v_j in R^d
    (c_j in R with bias) } at fixed random w_j, b_j ([GMMM21]_ eq. (3); [GMMM19]_ Theorem 2),
    N d (+ N) features; Phi Phi^T = the empirical "nt" kernel of the network (|a_j| = 1 with the
    default Rademacher second layer).
""" + _FEATURE_DOC + """
    Examples
    --------
    >>> import numpy as np, mfntk as mf
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 5)); y = X[:, 0] * X[:, 1]
    >>> nt = mf.NeuralTangent(width=40, activation="relu").fit(X, y)   # 200 features > 30 points
    >>> nt.formulation_, bool(np.allclose(nt.predict(X), y))
    ('kernel', True)
    """
    _kind = "nt"

