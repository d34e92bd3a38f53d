"""Linear-algebra machinery of kernel regression and of frozen-kernel dynamics (SPEC 4, 6).

Dense solves run in float64 through LAPACK (``scipy.linalg.cho_factor``/``cho_solve``,
``scipy.linalg.eigh``), which is fast and multithreaded by the BLAS; large matrix-free solves
use the conjugate-gradient loop of this module over a user-supplied product ``K V``.

Public API (used by :class:`mfntk.KernelRegressor`, :class:`mfntk.RandomFeatures`,
:class:`mfntk.NeuralTangent` and the frozen-kernel dynamics ``mfntk.NTKLimit``):

- :class:`SpectralFactor` -- symmetric eigendecomposition K = V diag(lam) V^T, computed once,
  then ridge, ridgeless (pseudo-inverse) and time-t kernel-flow coefficients and the
  training-set flow of the residual, each O(n^2 k) per call.
- :func:`cholesky_solve` -- (K + ridge I)^{-1} Y by Cholesky, ``None`` when the factorisation
  fails or the matrix is numerically singular (the caller falls back).
- :func:`solve_psd` -- the robust dispatcher: Cholesky, eigendecomposition, or Cholesky with a
  warned fallback to the eigendecomposition; never returns NaN.
- :func:`conjugate_gradient` -- block CG on (K + shift I) X = B over a matvec, optionally
  Jacobi-preconditioned or with any preconditioner (the Nystrom and pivoted-Cholesky ones of
  :mod:`mfntk._preconditioners`); warns :class:`ConvergenceWarning` with the residual reached.
- :func:`lanczos_flow` -- the time-t kernel-flow coefficients phi_t(K) Y over a matvec (Lanczos,
  with an a-posteriori error estimate and a ConvergenceWarning).
- :func:`check_kernel_matrix` -- validation of a precomputed square kernel matrix.
- :func:`centre_kernel`, :func:`centred_matvec` -- the kernel of the centred features,
  C K C with C = I - 1 1^T / n, densely or as a product: kernel ridge with an unpenalised
  constant (``fit_intercept``) solves (C K C + ridge I) c = C Y.
- warnings :class:`ConvergenceWarning`, :class:`SolverFallbackWarning`,
  :class:`IndefiniteKernelWarning`, :class:`NumericalRidgeWarning`.

The numerical floor of a ridge. Eigenvalues of K below rcond * max(lam) (rcond = n eps by
default) are rounding noise: their eigenvectors, and the sign of the eigenvalues, are not
determined by K. A ridge at or below that floor cannot regularise them -- (K + ridge I)^{-1}
would amplify the noise by up to 1 / ridge -- so every solver here treats such a ridge as
ridgeless: the eigendecomposition uses the pseudo-inverse with that cutoff (SPEC 6) and says so
(:class:`NumericalRidgeWarning`), and conjugate gradient, which has no cutoff, refuses a system
that is singular below the floor (:class:`numpy.linalg.LinAlgError`, a ValueError) instead of
returning the amplified noise.
"""
from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np
import scipy.linalg

from ._validation import as_matrix, check_float

__all__ = [
    "ConvergenceWarning",
    "IndefiniteKernelWarning",
    "NumericalRidgeWarning",
    "SolverFallbackWarning",
    "SolverProgress",
    "SpectralFactor",
    "centre_kernel",
    "centred_matvec",
    "check_kernel_matrix",
    "cholesky_solve",
    "conjugate_gradient",
    "flow_filter",
    "lanczos_flow",
    "solve_psd",
]


PROGRESS_DELAY = 2.0          # seconds before a terminal shows the progress of a solve (progress=None)
PROGRESS_LOG_SECONDS = 30.0   # interval of the progress lines of a solve written off a terminal


class SolverProgress:
    """The progress of an iterative solve: its iterations and the largest relative residual (or
    error estimate) of its columns.

    ``progress=None`` (what the estimators pass by default): on a terminal a tqdm counter once
    the solve has run :data:`PROGRESS_DELAY` seconds; off a terminal (a log, a batch job) a line
    once it has run :data:`PROGRESS_LOG_SECONDS` seconds, then at most one per that interval, and
    a last one. A short solve writes nothing. ``True``: the same from the first iteration.
    ``False``: nothing. Use as a context manager: leaving it by an exception (Ctrl-C) ends the
    lines with "stopped".
    """

    def __init__(self, name, progress, stream=None):
        self.name, self.progress = name, progress
        self.stream = sys.stderr if stream is None else stream
        self.start = self.last = time.perf_counter()
        self.bar, self.lines = None, False
        self.iteration, self.residual = 0, float("nan")
        if progress is False:
            return
        try:
            terminal = self.stream.isatty()
        except (AttributeError, ValueError):
            terminal = False
        if terminal:
            from tqdm.auto import tqdm
            self.bar = tqdm(desc=name, unit="it", delay=0.0 if progress else PROGRESS_DELAY, leave=False,
                            file=self.stream)
        elif progress:
            self._line("started")

    def _line(self, what):
        self.lines = True
        print(f"{self.name}: {what}: iteration {self.iteration}, relative residual {self.residual:.3g}, "
              f"{time.perf_counter() - self.start:.1f} s", file=self.stream, flush=True)

    def update(self, iteration, residual):
        self.iteration, self.residual = iteration, residual
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"residual {residual:.3g}", refresh=False)
        elif self.progress is not False:
            now = time.perf_counter()
            if now - self.last >= PROGRESS_LOG_SECONDS:
                self.last = now
                self._line("running")

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if self.bar is not None:
            self.bar.close()
        elif self.lines:
            self._line("finished" if kind is None else "stopped")
        return False


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance (the message gives the residual)."""


class SolverFallbackWarning(UserWarning):
    """A direct solve failed or was ill-conditioned; the message names the fallback used."""


class IndefiniteKernelWarning(UserWarning):
    """A kernel matrix has negative eigenvalues beyond rounding (they were clipped to 0)."""


class NumericalRidgeWarning(UserWarning):
    """A ridge at or below the numerical floor rcond * max eigenvalue: treated as ridgeless."""


def _floor_message(ridge, floor, rcond, top):
    return (f"ridge={ridge:.3g} is at or below the numerical floor of the kernel's spectrum "
            f"(rcond * max eigenvalue = {rcond:.3g} * {top:.3g} = {floor:.3g}), where eigenvalues are rounding "
            f"noise that a ridge this small cannot regularise")


# ---------------------------------------------------------------------------------------------
def check_kernel_matrix(K, name="K", sym_rtol=1e-6):
    """A precomputed kernel matrix as a finite, square, symmetric float64 array.

    Parameters
    ----------
    K : array_like, shape (n, n)
    name : str
        Argument name used in error messages.
    sym_rtol : float
        Largest accepted asymmetry max|K - K^T| / max|K|; within it, K is symmetrised
        (K + K^T) / 2 (a copy; the input is never modified).

    Raises
    ------
    ValueError
        Not square, non-finite, or not symmetric.
    """
    K = as_matrix(K, name, dtype=np.float64)
    if K.shape[0] != K.shape[1]:
        raise ValueError(f"{name}: a precomputed kernel must be square (n, n), got shape {K.shape}")
    scale, asym = _symmetry(K)
    if asym > sym_rtol * max(scale, np.finfo(np.float64).tiny):
        raise ValueError(f"{name}: a precomputed kernel must be symmetric; max|K - K^T| = {asym:.3g} "
                         f"(relative {asym / scale:.3g})")
    if asym > 0.0:  # (K + K^T) / 2 in one copy, block by block
        out = np.empty_like(K)
        for i in range(0, K.shape[0], 512):
            out[i:i + 512] = 0.5 * (K[i:i + 512] + K[:, i:i + 512].T)
        K = out
    return K


def centre_kernel(K, block=512):
    """C K C, C = I - 1 1^T / n, and the row means of K: the kernel of the centred features.

    For features Phi with K = Phi Phi^T, C K C = (Phi - mean) (Phi - mean)^T. Kernel ridge with
    an unpenalised constant, min over f in H and c of sum_i (y_i - f(x_i) - c)^2 + ridge |f|_H^2,
    has f = K(., X) a with (C K C + ridge I) a = C Y, a summing to 0 (the pseudo-inverse at
    ridge = 0), and c = mean(Y) - mean(K a) = mean(Y) - m^T a, m the row means returned here.
    That is the bordered system [[K + ridge I, 1], [1^T, 0]] [a; c] = [Y; 0].

    Parameters
    ----------
    K : ndarray (n, n), float64, symmetric
        Not modified (the result is a new array, filled block by block).

    Returns
    -------
    Kc : ndarray (n, n)
    row_means : ndarray (n,)
    """
    m = K.mean(axis=1)
    grand = float(m.mean())
    Kc = np.empty_like(K, dtype=np.float64)
    for i in range(0, K.shape[0], block):
        Kc[i:i + block] = K[i:i + block] - m[i:i + block, None] - m[None, :] + grand
    return Kc, m


def centred_matvec(matvec, diag=None, n=None):
    """The product V -> C K C V from V -> K V, C = I - 1 1^T / n (see :func:`centre_kernel`).

    Parameters
    ----------
    matvec : callable
        V (n, m) -> K V (n, m), K symmetric.
    diag : ndarray (n,) or None
        diag(K); when given, diag(C K C) is returned too (a Jacobi preconditioner for
        :func:`conjugate_gradient`, and a lower bound of its largest eigenvalue).
    n : int or None
        Rows of K (required without ``diag``).

    Returns
    -------
    centred : callable
        V -> C K C V.
    centred_diag : ndarray (n,) or None
        diag(C K C) = diag(K) - 2 m + mean(m).
    row_means : ndarray (n,)
        m = K 1 / n (one product), for the constant mean(Y) - m^T a.
    """
    n = len(diag) if n is None else int(n)
    m = np.asarray(matvec(np.full((n, 1), 1.0 / n)), dtype=np.float64)[:, 0]

    def centred(V):
        V = V - V.mean(axis=0)
        out = np.asarray(matvec(V), dtype=np.float64)
        return out - out.mean(axis=0)

    cdiag = None if diag is None else np.asarray(diag, dtype=np.float64) - 2.0 * m + float(m.mean())
    return centred, cdiag, m


def _symmetry(K, block=512):
    """max|K| and max|K - K^T|, block by block (cache-friendly, O(block^2) extra memory)."""
    n = K.shape[0]
    scale = asym = 0.0
    for i in range(0, n, block):
        for j in range(i, n, block):
            a = K[i:i + block, j:j + block]
            scale = max(scale, float(np.max(np.abs(a))))
            if j > i or n > 1:
                asym = max(asym, float(np.max(np.abs(a - K[j:j + block, i:i + block].T))))
    return scale, asym


def _as_rhs(Y, n, name="Y"):
    arr = np.asarray(Y)
    Y = as_matrix(Y, name, dtype=np.float64, allow_vector=True)
    if Y.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows, got shape {arr.shape}")
    return Y, arr.ndim == 1


def _check_time(t, name="t"):
    t = check_float(t, name, minimum=0.0, allow_inf=True)
    return t


def flow_filter(lam, t, n, ridge=0.0):
    """phi_t(lam) = (1 - exp(-t (lam + ridge) / n)) / (lam + ridge), elementwise, stably.

    The limit lam + ridge -> 0 is t / n; written with expm1 so that no digits are lost for
    t (lam + ridge) / n small. ``t = inf`` gives 1 / (lam + ridge) where lam + ridge > 0 and 0
    elsewhere (the caller applies its pseudo-inverse cutoff before).
    """
    x = np.asarray(lam, dtype=np.float64) + ridge
    if math.isinf(t):
        out = np.zeros_like(x)
        pos = x > 0.0
        out[pos] = 1.0 / x[pos]
        return out
    tau = t / n
    z = tau * x
    out = np.empty_like(x)
    small = np.abs(z) < 1e-8
    out[small] = tau * (1.0 - 0.5 * z[small])  # series of -expm1(-z)/x = tau (1 - z/2 + ...)
    big = ~small
    out[big] = -np.expm1(-z[big]) / x[big]
    return out


class SpectralFactor:
    """Symmetric eigendecomposition K = V diag(lam) V^T of a kernel matrix, computed once.

    Used for ridgeless and ridge kernel regression and for the time-t kernel gradient flow
    (SPEC 4, 6): on the training set the residual obeys du/dt = -(1/n) K u, so

    - ``flow_residual(U0, t)`` = exp(-t K / n) U0 (the training-set residual at time t),
    - ``flow_coef(Y, t)`` = K^{-1} (I - exp(-t K / n)) Y, whose product with K(x, X) is the
      function learned at time t from f = 0: fhat_t(x) = K(x, X) flow_coef(Y, t). For the
      frozen-kernel (NTK-limit) dynamics, f_t(x) = f_0(x) + K0(x, X) flow_coef(u0, t) with
      u0 = y - f_0 on the training set.

    All coefficients are V diag(g(lam)) V^T Y for a filter g (see :meth:`apply`): O(n^2 k) per
    call after the O(n^3) factorisation (LAPACK ``syevd`` via :func:`scipy.linalg.eigh`).

    Parameters
    ----------
    K : array_like, shape (n, n)
        Symmetric positive semi-definite kernel matrix (copied to float64; never modified).
        Use :func:`check_kernel_matrix` first for untrusted input.
    rcond : float or None
        Relative cutoff of the pseudo-inverse: eigenvalues <= rcond * max(lam) count as zero
        in the ridgeless solution. None means n * eps, eps the machine epsilon of K's dtype
        (the convention of ``scipy.linalg.pinvh``).
    n : int or None
        The number n of the flow's time scale t / n (SPEC 4: the number of training points);
        None means K.shape[0].

    Attributes
    ----------
    eigenvalues : ndarray (n,)
        Ascending, negative values clipped to 0.
    eigenvectors : ndarray (n, n)
    min_eigenvalue : float
        The smallest eigenvalue before clipping.
    n_clipped : int
        How many eigenvalues were negative (and clipped to 0).
    cutoff : float
        rcond * max(lam): the pseudo-inverse threshold.
    rank : int
        Number of eigenvalues above the cutoff.

    Warns
    -----
    IndefiniteKernelWarning
        When an eigenvalue is below -cutoff, i.e. negative beyond rounding (K is not a
        positive semi-definite kernel matrix); such eigenvalues are clipped to 0 as well.

    Examples
    --------
    >>> import numpy as np
    >>> K = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> F = SpectralFactor(K)
    >>> y = np.array([1.0, 0.0])
    >>> bool(np.allclose(K @ F.pinv(y), y))
    True
    >>> bool(np.allclose(F.flow_coef(y, t=0.0), 0.0))
    True
    >>> bool(np.allclose(F.flow_coef(y, t=np.inf), F.pinv(y)))
    True
    """

    def __init__(self, K, rcond=None, n=None):
        K_in = np.asarray(K)
        eps = float(np.finfo(K_in.dtype).eps) if np.issubdtype(K_in.dtype, np.floating) else float(
            np.finfo(np.float64).eps)
        K = as_matrix(K, "K", dtype=np.float64)
        if K.shape[0] != K.shape[1]:
            raise ValueError(f"K: expected a square matrix, got shape {K.shape}")
        size = K.shape[0]
        self.n = size if n is None else int(n)
        if self.n < 1:
            raise ValueError(f"n: must be >= 1, got {n}")
        self.rcond = size * eps if rcond is None else check_float(rcond, "rcond", minimum=0.0)
        # scipy 1.11 sizes syevd's workspace wrongly for a 1 x 1 matrix: the default driver there
        lam, V = scipy.linalg.eigh(K, lower=True, check_finite=False, driver="evd" if size > 1 else None)
        top = max(float(np.max(np.abs(lam))), 0.0)
        self.cutoff = self.rcond * top
        self.min_eigenvalue = float(lam[0])
        self.n_clipped = int(np.count_nonzero(lam < 0.0))
        if self.min_eigenvalue < -max(self.cutoff, 0.0) and self.min_eigenvalue < 0.0:
            warnings.warn(
                f"K: not positive semi-definite beyond rounding: smallest eigenvalue {self.min_eigenvalue:.3g} "
                f"(relative {self.min_eigenvalue / top if top else float('-inf'):.3g}); {self.n_clipped} negative "
                f"eigenvalue(s) clipped to 0", IndefiniteKernelWarning, stacklevel=2)
        self.eigenvalues = np.maximum(lam, 0.0)
        self.eigenvectors = V
        self.rank = int(np.count_nonzero(self.eigenvalues > self.cutoff))

    # -- the one primitive ---------------------------------------------------------------------
    def apply(self, g, Y):
        """V diag(g) V^T Y for filter values g (n,) and Y (n,) or (n, k) (same shape out)."""
        Y2, vector = _as_rhs(Y, self.eigenvalues.shape[0])
        out = self.eigenvectors @ (np.asarray(g, dtype=np.float64)[:, None] * (self.eigenvectors.T @ Y2))
        return out[:, 0] if vector else out

    # -- regression coefficients ---------------------------------------------------------------
    def pinv(self, Y, rcond=None):
        """K^+ Y: eigenvalues <= rcond * max(lam) (default: the factor's cutoff) are dropped."""
        cutoff = self.cutoff if rcond is None else check_float(rcond, "rcond", minimum=0.0) * float(
            np.max(self.eigenvalues, initial=0.0))
        lam = self.eigenvalues
        g = np.zeros_like(lam)
        keep = lam > cutoff
        g[keep] = 1.0 / lam[keep]
        return self.apply(g, Y)

    @property
    def top(self):
        """The largest eigenvalue (after clipping)."""
        return float(np.max(self.eigenvalues, initial=0.0))

    def ridge(self, Y, ridge, stacklevel=2):
        """(K + ridge I)^{-1} Y; ridge = 0 gives :meth:`pinv`.

        A ridge > 0 at or below the numerical floor ``cutoff`` (= rcond * max eigenvalue) is
        treated as 0 -- the pseudo-inverse with that cutoff -- with a
        :class:`NumericalRidgeWarning` (see the module notes).
        """
        ridge = check_float(ridge, "ridge", minimum=0.0)
        if ridge == 0.0:
            return self.pinv(Y)
        if ridge <= self.cutoff:
            warnings.warn(f"{_floor_message(ridge, self.cutoff, self.rcond, self.top)}; treated as ridgeless: the "
                          f"pseudo-inverse with cutoff {self.cutoff:.3g} (rank {self.rank} of "
                          f"{self.eigenvalues.shape[0]}). Use ridge > {self.cutoff:.3g} to regularise, or ridge=0.",
                          NumericalRidgeWarning, stacklevel=stacklevel)
            return self.pinv(Y)
        return self.apply(1.0 / (self.eigenvalues + ridge), Y)

    def flow_coef(self, Y, t, ridge=0.0, stacklevel=2):
        """Coefficients of the time-t kernel gradient flow started from f = 0.

        c_t = (K + ridge I)^{-1} (I - exp(-t (K + ridge I) / n)) Y, so that
        fhat_t(x) = K(x, X) c_t. This is the flow dc/dt = -(1/n)((K + ridge I) c - Y), i.e.
        gradient flow in function space on (1/2n) sum_i (y_i - f(x_i))^2 + (ridge/2n) |f|_H^2;
        with ridge = 0 it is SPEC 4's du/dt = -(1/n) K u. t = 0 gives 0; t = inf gives the
        ridge solution (ridge > 0) or the pseudo-inverse (ridge = 0, with the cutoff).
        Eigenvalues lam + ridge -> 0 are handled stably (limit t / n, via expm1).
        """
        t = _check_time(t)
        ridge = check_float(ridge, "ridge", minimum=0.0)
        if math.isinf(t):
            return self.ridge(Y, ridge, stacklevel=stacklevel + 1)
        return self.apply(flow_filter(self.eigenvalues, t, self.n, ridge), Y)

    def flow_coef_intercept(self, Y, t, ridge=0.0):
        """Coefficients and constant of the time-t flow of f + c, c an unpenalised constant.

        The gradient flow started from f = 0, c = 0 on
        (1/2n) sum_i (y_i - f(x_i) - c)^2 + (ridge/2n) |f|_H^2, f = K(., X) a:

            da/dt = (1/n) (r - ridge a),   dc/dt = (1/n) sum_i r_i,   r = Y - K a - c 1,

        the constant being the output bias of a network, trained with the same step. With
        ridge = 0, c = 1^T a at all times and the training predictions flow with the kernel K + 1
        (the tangent kernel of the network with its bias). In orthonormal coordinates of the
        features, theta = V Lam^{1/2} s (eigenvalues above the cutoff), the parameters (s, c) flow
        with the symmetric matrix H = B^T B + diag(ridge I, 0), B = [V Lam^{1/2}, 1], and
        (s, c)_t = H^{-1} (I - exp(-t H / n)) B^T Y; then a = V Lam^{-1/2} s. t = inf: with
        ridge > 0 the ridge solution with an unpenalised constant (as without t); with
        ridge = 0 the minimum-norm interpolant of the kernel K + 1, where the norm counts c too.

        Parameters
        ----------
        Y : array_like (n,) or (n, k)
        t : float >= 0 or inf
        ridge : float >= 0

        Returns
        -------
        coef : ndarray (n,) or (n, k)
        intercept : float or ndarray (k,)
        """
        t = _check_time(t)
        ridge = check_float(ridge, "ridge", minimum=0.0)
        Y2, vector = _as_rhs(Y, self.eigenvalues.shape[0])
        keep = self.eigenvalues > self.cutoff
        V, lam = self.eigenvectors[:, keep], self.eigenvalues[keep]
        root = np.sqrt(lam)
        r, size = lam.shape[0], V.shape[0]
        g = root * V.sum(axis=0)                      # Lam^{1/2} V^T 1
        H = np.zeros((r + 1, r + 1))
        H[np.arange(r), np.arange(r)] = lam + ridge
        H[:r, r] = H[r, :r] = g
        H[r, r] = size
        rhs = np.concatenate([root[:, None] * (V.T @ Y2), Y2.sum(axis=0, keepdims=True)])
        Z = SpectralFactor(H, rcond=self.rcond, n=self.n).flow_coef(rhs, t)
        coef = V @ (Z[:r] / root[:, None])
        intercept = Z[r]
        return (coef[:, 0], float(intercept[0])) if vector else (coef, intercept)

    def flow_residual(self, U0, t):
        """exp(-t K / n) U0: the training-set residual of the flow at time t (SPEC 4).

        At t = inf the components of U0 outside the range of K (eigenvalues <= cutoff) remain.
        """
        t = _check_time(t)
        lam = self.eigenvalues
        if math.isinf(t):
            g = (lam <= self.cutoff).astype(np.float64)
        else:
            g = np.exp(-(t / self.n) * lam)
        return self.apply(g, U0)

    def flow_fit(self, Y, t):
        """(I - exp(-t K / n)) Y = K flow_coef(Y, t): the training-set predictions at time t."""
        Y2, vector = _as_rhs(Y, self.eigenvalues.shape[0])
        out = Y2 - self.flow_residual(Y2, t)
        return out[:, 0] if vector else out


# ---------------------------------------------------------------------------------------------
#: Order of the diagonal blocks of :func:`blocked_cholesky`, which :func:`cholesky_solve` takes
#: above 3 blocks (one potrf below: 36% faster at n = 8192, and OpenBLAS's fails only above 15,500).
CHOLESKY_BLOCK = 4096


def blocked_cholesky(A, block=None):
    """The lower Cholesky factor of A (n, n), Fortran-ordered, in place (its strict upper triangle
    is not part of the result), by diagonal blocks of ``block`` (:data:`CHOLESKY_BLOCK`): LAPACK's
    potrf on each diagonal block, BLAS's trsm on the panel below it and GEMMs for the trailing
    lower triangle, each on one block x block piece (temporaries of a few such pieces). The same
    arithmetic as one potrf, in pieces: the multithreaded potrf of OpenBLAS 0.3.30 (scipy's and
    numpy's wheels) crashes with a segmentation fault at n = 16,384 on AVX-512 CPUs with two
    threads, while its potrf on blocks of up to ~15,000 and its GEMMs do not.

    Raises
    ------
    numpy.linalg.LinAlgError
        When A is not positive definite (the range of the failing leading minor's order in the
        message).
    """
    block = CHOLESKY_BLOCK if block is None else int(block)
    n = A.shape[0]
    trsm = scipy.linalg.get_blas_funcs("trsm", (A,))
    for j0 in range(0, n, block):
        j1 = min(n, j0 + block)
        try:
            A[j0:j1, j0:j1] = scipy.linalg.cholesky(A[j0:j1, j0:j1], lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError(f"a leading minor of order {j0 + 1} to {j1} is not positive definite") from None
        L = A[j0:j1, j0:j1]
        for i0 in range(j1, n, block):  # the panel below, A_ij L_jj^{-T}, a block of rows at a time
            i1 = min(n, i0 + block)
            A[i0:i1, j0:j1] = trsm(1.0, L, A[i0:i1, j0:j1], side=1, lower=1, trans_a=1)
        for i0 in range(j1, n, block):  # the trailing lower triangle, block by block
            i1 = min(n, i0 + block)
            for k0 in range(j1, i1, block):
                k1 = min(n, k0 + block)
                A[i0:i1, k0:k1] -= A[i0:i1, j0:j1] @ A[k0:k1, j0:j1].T
    return A


def cholesky_solve(K, Y, ridge=0.0):
    """(K + ridge I)^{-1} Y by Cholesky (LAPACK's potrf, by :func:`blocked_cholesky` above
    3 ``CHOLESKY_BLOCK``; then potrs via scipy.linalg.cho_solve).

    Parameters
    ----------
    K : ndarray (n, n), float64, symmetric
        Not modified (a copy is factored).
    Y : ndarray (n, k), float64
    ridge : float >= 0

    Returns
    -------
    (coef, rcond) or (None, reason)
        ``coef`` (n, k) and LAPACK's estimate (pocon) of the reciprocal condition number of
        K + ridge I; ``None`` and a string when the factorisation failed (not positive definite)
        or the matrix is singular to working precision (rcond < eps, the criterion of
        scipy.linalg.solve's LinAlgWarning), so that the caller can fall back.
    """
    # K is symmetric: the transpose of a C-ordered copy is K in Fortran order, which LAPACK
    # factors in place (no transposing copy).
    C = np.array(K, dtype=np.float64, copy=True, order="C")
    if ridge:
        C.flat[:: C.shape[0] + 1] += ridge
    # symmetric: 1-norm = inf-norm; by blocks of contiguous rows, without an n x n temporary
    anorm = max(float(np.abs(C[i:i + 256]).sum(axis=1).max()) for i in range(0, C.shape[0], 256))
    A = C.T
    try:
        if A.shape[0] > 3 * CHOLESKY_BLOCK:
            c, lower = blocked_cholesky(A), True
        else:  # one potrf, in place: faster where it is safe (n <= 12,288 by default)
            c, lower = scipy.linalg.cho_factor(A, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError as exc:
        return None, f"Cholesky failed ({exc})"
    pocon = scipy.linalg.get_lapack_funcs("pocon", (c,))
    rcond, info = pocon(c, anorm, uplo="L")
    rcond = float(rcond)
    if info != 0 or not np.isfinite(rcond) or rcond < np.finfo(np.float64).eps:
        return None, f"K + ridge I is numerically singular (reciprocal condition number {rcond:.2g})"
    coef = scipy.linalg.cho_solve((c, lower), Y, check_finite=False)
    if not np.all(np.isfinite(coef)):
        return None, "Cholesky solve produced non-finite values"
    return coef, rcond


def solve_psd(K, Y, ridge=0.0, solver="auto", rcond=None, stacklevel=3):
    """(K + ridge I)^{-1} Y for a symmetric positive semi-definite K, robustly.

    Parameters
    ----------
    K : ndarray (n, n) float64 (validated, symmetric)
    Y : ndarray (n, k) float64
    ridge : float >= 0
    solver : {"auto", "cholesky", "eigh"}
        "auto": Cholesky when ridge > 0, the eigendecomposition (pseudo-inverse) when ridge = 0.
        "cholesky": Cholesky even at ridge = 0. "eigh": always the eigendecomposition.
        A failed or numerically singular Cholesky falls back to the eigendecomposition, with a
        :class:`SolverFallbackWarning` naming the cutoff used.
    rcond : float or None
        Pseudo-inverse cutoff of the eigendecomposition (see :class:`SpectralFactor`); also the
        numerical floor of the ridge: 0 < ridge <= rcond * max eigenvalue is treated as 0 (the
        pseudo-inverse) with a :class:`NumericalRidgeWarning`, whatever the solver.

    Returns
    -------
    coef : ndarray (n, k)
    used : str
        "cholesky" or "eigh".
    factor : SpectralFactor or None
        The eigendecomposition when it was used (reusable, e.g. for flows).
    """
    if solver not in ("auto", "cholesky", "eigh"):
        raise ValueError(f"solver: unknown value {solver!r}; expected 'auto', 'cholesky' or 'eigh'")
    if ridge > 0.0 and solver != "eigh":
        # the floor rcond * max eigenvalue is at most rcond * |K|_inf: only a ridge below that needs the
        # spectrum to tell (a Cholesky factorisation would succeed and amplify the rounding noise)
        eff = K.shape[0] * float(np.finfo(np.float64).eps) if rcond is None else rcond
        anorm = max((float(np.abs(K[i:i + 256]).sum(axis=1).max()) for i in range(0, K.shape[0], 256)), default=0.0)
        if ridge <= eff * anorm:
            solver = "eigh"
    if solver == "cholesky" or (solver == "auto" and ridge > 0.0):
        coef, info = cholesky_solve(K, Y, ridge)
        if coef is not None:
            return coef, "cholesky", None
        factor = SpectralFactor(K, rcond=rcond)
        cut = factor.rcond if ridge == 0.0 else 0.0
        warnings.warn(f"{info}; fell back to the symmetric eigendecomposition"
                      + (f" with pseudo-inverse cutoff {cut:.2g} * max eigenvalue" if ridge == 0.0 else "")
                      + f" (rank {factor.rank} of {K.shape[0]})", SolverFallbackWarning, stacklevel=stacklevel)
        return factor.ridge(Y, ridge, stacklevel=stacklevel + 1), "eigh", factor
    factor = SpectralFactor(K, rcond=rcond)
    return factor.ridge(Y, ridge, stacklevel=stacklevel + 1), "eigh", factor


# ---------------------------------------------------------------------------------------------
#: Mixed precision (``conjugate_gradient(fast_matvec=...)``): the recursive residual of CG with
#: the fast product drifts from the true one by that product's error, so when it has fallen to
#: RELIABLE_DROP times the last true residual, below tol, or RELIABLE_EVERY iterations after the
#: last, the true one replaces it, computed with the float64 product ("reliable updates"); a
#: replacement that finds less than 1 / STALL_GAIN of progress since the last ends the fast
#: products. They are used only while the shift exceeds FAST_RCOND sqrt(n) lambda_max (the fast
#: product's rounding, float32 summed over sqrt(n)-ish terms, would otherwise make A' + shift I
#: indefinite or swamp the small eigenvalues).
RELIABLE_DROP = 0.01
RELIABLE_EVERY = 100
STALL_GAIN = 2.0
FAST_RCOND = float(np.finfo(np.float32).eps)
#: A replaced residual more than RESTART_GAP times the recursive one restarts its column's search
#: directions (they were conjugate for the drifted residual, not the true one).
RESTART_GAP = 2.0


def conjugate_gradient(matvec, B, shift=0.0, tol=1e-8, max_iter=None, diag=None, x0=None, stacklevel=3, rcond=None,
                       preconditioner=None, progress=False, fast_matvec=None):
    """Block conjugate gradient for (A + shift I) X = B, A symmetric positive semi-definite.

    Each column is an independent CG run (its own step sizes); the product A V is taken for
    all active columns at once, so a matrix-free matvec (e.g. the empirical NTK product of
    :meth:`mfntk.kernels.Empirical.matvec`, O(n N d) per column) is called once per iteration.

    Parameters
    ----------
    matvec : callable
        V (n, m) -> A V (n, m).
    B : ndarray (n, k)
    shift : float >= 0
        The ridge.
    tol : float
        Stop a column when |b - (A + shift I) x| <= tol |b|.
    max_iter : int or None
        Default 10 n (enough in exact arithmetic is n).
    diag : ndarray (n,) or None
        diag(A) for a Jacobi preconditioner M = diag(A) + shift (unless ``preconditioner`` is
        given; diag(A) then only bounds lambda_max from below, for the floor).
    x0 : ndarray (n, k) or None
        Starting point (default 0; from 0 on a singular consistent system CG converges to the
        minimum-norm solution).
    rcond : float or None
        The numerical floor of the spectrum relative to the largest eigenvalue (default n eps):
        a shift at or below rcond * lambda_max does not regularise A (see the module notes).
        lambda_max is estimated from below by diag(A) and the Rayleigh quotients p^T A p / p^T p
        of the search directions, so the floor used never exceeds the true one.
    preconditioner : callable or None
        V (n, m) -> M^{-1} V for a symmetric positive definite M ~ A + shift I, e.g. a
        :class:`mfntk._preconditioners.LowRankPreconditioner` (Nystrom or pivoted Cholesky),
        whose ``top`` attribute, a lower bound of lambda_max(A), is used for the floor too. The
        stopping rule stays the unpreconditioned relative residual.
    progress : bool or None
        The iterations and the largest relative residual on stderr (:class:`SolverProgress`).
    fast_matvec : callable or None
        A cheaper, less accurate product V -> A' V with A' ~ A (e.g. the kernel in float32):
        mixed-precision CG with reliable updates [SV96]_. The iterations take their products
        A' P from it (the iterate and every vector stay float64); whenever a column's recursive
        residual has fallen to RELIABLE_DROP times its last true residual, or below ``tol``, the
        true residual B - (A + shift I) X, from ``matvec``, replaces it. A column stops only on
        a true residual <= ``tol``: the result is that of ``matvec``'s system. Where the fast
        product is too inaccurate for the system (a replacement finds too little progress, a
        non-positive curvature p^T (A' + shift I) p, or the shift at or below FAST_RCOND
        sqrt(n) times the largest eigenvalue seen) every column restarts from its true residual
        and the iterations go on with ``matvec``.

    Returns
    -------
    X : ndarray (n, k)
    info : dict
        ``iterations`` (int), ``residual`` (ndarray (k,), relative residual norms reached),
        ``converged`` (bool), ``true_residuals`` (int, the products with ``matvec`` that
        replaced recursive residuals; 0 without ``fast_matvec``).

    References
    ----------
    .. [SV96] G. L. G. Sleijpen and H. A. van der Vorst, "Reliable updated residuals in hybrid
       Bi-CG methods", Computing 56, 1996; M. A. Clark et al., "Solving lattice QCD systems of
       equations using mixed precision solvers on GPUs", Comput. Phys. Commun. 181, 2010.

    Warns
    -----
    ConvergenceWarning
        When some column has not reached ``tol`` after ``max_iter`` iterations or CG broke down
        (a non-positive curvature p^T (A + shift I) p, i.e. A + shift I is singular or
        indefinite); the last iterate is returned, finite. Only for a shift above the floor.
    NumericalRidgeWarning
        A shift > 0 at or below the floor, on a system that CG solved anyway (consistent): the
        shift had no effect.

    Raises
    ------
    numpy.linalg.LinAlgError
        (a ValueError) When the shift is at or below the numerical floor and the system is
        singular there: CG broke down, did not converge, or its iterate grew beyond
        |b| / floor (it would only amplify rounding noise). The message gives the floor, the
        ridge that would regularise, and the eigendecomposition's pseudo-inverse as the way to
        a ridgeless solution.
    FloatingPointError
        When the matvec returns non-finite values.
    """
    B = np.asarray(B, dtype=np.float64)
    n, k = B.shape
    max_iter = 10 * n if max_iter is None else int(max_iter)
    rcond = n * float(np.finfo(np.float64).eps) if rcond is None else float(rcond)
    top = float(np.max(diag)) if diag is not None and len(diag) else 0.0  # a lower bound of lambda_max(A)
    top = max(top, float(getattr(preconditioner, "top", 0.0)))
    X = np.zeros((n, k)) if x0 is None else np.array(x0, dtype=np.float64, copy=True)
    if preconditioner is not None:
        if not callable(preconditioner):
            raise TypeError(f"preconditioner: expected a callable V -> M^-1 V, got {type(preconditioner).__name__}")

        def precondition(V):
            out = np.asarray(preconditioner(V), dtype=np.float64)
            if out.shape != V.shape:
                raise ValueError(f"preconditioner: returned shape {out.shape}, expected {V.shape}")
            return out
    elif diag is not None:
        minv = 1.0 / np.maximum(np.asarray(diag, dtype=np.float64) + shift, np.finfo(np.float64).tiny)

        def precondition(V):
            return V * minv[:, None]
    else:
        def precondition(V):
            return V

    def product(function, name):
        def op(V):
            out = np.asarray(function(V), dtype=np.float64)
            if out.shape != V.shape:
                raise ValueError(f"{name}: returned shape {out.shape}, expected {V.shape}")
            if not np.all(np.isfinite(out)):
                raise FloatingPointError(f"{name}: returned non-finite values")
            if shift:
                out = out + shift * V
            return out
        return op

    op = product(matvec, "matvec")
    # the iterations' product: the fast one while the shift is above its floor
    fast_floor = FAST_RCOND * math.sqrt(n)
    fast = fast_matvec is not None and shift > fast_floor * top
    step_op = product(fast_matvec, "fast_matvec") if fast else op

    bnorm = np.linalg.norm(B, axis=0)
    bnorm_safe = np.where(bnorm > 0.0, bnorm, 1.0)
    R = B - op(X) if x0 is not None else B.copy()
    Z = precondition(R)
    P = Z.copy()
    rz = np.einsum("ij,ij->j", R, Z)
    res = np.linalg.norm(R, axis=0) / bnorm_safe
    active = res > tol
    broke = np.zeros(k, dtype=bool)
    blown = np.zeros(k, dtype=bool)
    it = true_residuals = 0
    last_true = res.copy()   # each column's relative residual at its last true residual
    since = np.zeros(k, dtype=np.int64)   # iterations since it

    def true_residual(cols):
        """R and res of the columns from ``matvec``'s product, replacing the recursive ones."""
        nonlocal true_residuals
        R[:, cols] = B[:, cols] - op(np.ascontiguousarray(X[:, cols]))
        res[cols] = np.linalg.norm(R[:, cols], axis=0) / bnorm_safe[cols]
        true_residuals += 1

    def hand_over(cols, fresh=None):
        """On with ``matvec``'s product: every column restarts from its true residual (computed
        here unless it is among ``fresh``, whose true residuals were just computed)."""
        nonlocal fast, step_op
        fast, step_op = False, op
        stale = cols if fresh is None else np.setdiff1d(cols, fresh)
        if stale.size:
            true_residual(stale)
        Zc = precondition(R[:, cols])
        P[:, cols] = Zc
        rz[cols] = np.einsum("ij,ij->j", R[:, cols], Zc)
        active[cols] = res[cols] > tol

    with SolverProgress("conjugate gradient", progress) as report:
        while active.any() and it < max_iter:
            cols = np.flatnonzero(active)
            if fast and shift <= fast_floor * top:   # the largest eigenvalue seen has grown past the fast floor
                hand_over(cols)
                continue
            AP = step_op(np.ascontiguousarray(P[:, cols]))
            pAp = np.einsum("ij,ij->j", P[:, cols], AP)
            pp = np.einsum("ij,ij->j", P[:, cols], P[:, cols])
            ok = pp > 0.0
            if ok.any():
                top = max(top, float(np.max(pAp[ok] / pp[ok])) - shift)
            bad = ~(pAp > 0.0)
            if bad.any() and fast:   # A' + shift I need not be positive definite where A + shift I is
                hand_over(cols)
                continue
            if bad.any():
                broke[cols[bad]] = True
                active[cols[bad]] = False
                keep = ~bad
                cols, AP, pAp = cols[keep], AP[:, keep], pAp[keep]
                if cols.size == 0:
                    break
            alpha = rz[cols] / pAp
            X[:, cols] += alpha * P[:, cols]
            R[:, cols] -= alpha * AP
            res[cols] = np.linalg.norm(R[:, cols], axis=0) / bnorm_safe[cols]
            restart = np.zeros(cols.size, dtype=bool)
            if fast:
                since[cols] += 1
                judged = (res[cols] <= RELIABLE_DROP * last_true[cols]) | (since[cols] >= RELIABLE_EVERY)
                due = judged | (res[cols] <= tol)
                if due.any():
                    d = cols[due]
                    recursive = res[d]
                    true_residual(d)
                    since[d] = 0
                    # a true residual far from the recursive one: the directions are no longer
                    # conjugate for it, start them afresh
                    restart[due] = res[d] > RESTART_GAP * recursive
                    stalled = np.any(res[cols[judged]] * STALL_GAIN > last_true[cols[judged]])
                    last_true[d] = res[d]
                    if stalled:   # the fast product is too inaccurate for this system
                        hand_over(cols, fresh=d)
                        it += 1
                        report.update(it, float(np.max(res)))
                        continue
            Zc = precondition(R[:, cols])
            rz_new = np.einsum("ij,ij->j", R[:, cols], Zc)
            beta = np.where(restart, 0.0, rz_new / rz[cols])
            P[:, cols] = Zc + beta * P[:, cols]
            rz[cols] = rz_new
            active[cols] = res[cols] > tol
            it += 1
            floor = rcond * top
            if shift <= floor:  # a numerically singular system: stop a column whose iterate only amplifies noise
                grown = np.linalg.norm(X[:, cols], axis=0) * floor > bnorm[cols]
                if grown.any():
                    blown[cols[grown]] = True
                    active[cols[grown]] = False
            report.update(it, float(np.max(res)))
    converged = bool(np.all(res <= tol))
    floor = rcond * top
    if shift <= floor:
        blown |= np.linalg.norm(X, axis=0) * floor > bnorm
        if not converged or blown.any():
            why = ("broke down (non-positive curvature)" if broke.any() else
                   "diverged" if blown.any() else f"did not converge in {it} iterations")
            raise np.linalg.LinAlgError(
                f"conjugate gradient: the system is singular to working precision: "
                f"{_floor_message(shift, floor, rcond, top)}, and CG {why} (relative residual "
                f"{float(np.max(res)):.3g}, |x| up to {float(np.max(np.linalg.norm(X, axis=0))):.3g} for |b| up to "
                f"{float(np.max(bnorm)):.3g}). Use a ridge well above {floor:.3g} (CG needs about "
                f"sqrt(max eigenvalue / ridge) iterations), or the eigendecomposition (solver='eigh'), whose "
                f"ridgeless solution is the pseudo-inverse with a stated cutoff.")
        if shift > 0.0:
            warnings.warn(f"{_floor_message(shift, floor, rcond, top)}; it had no effect: conjugate gradient "
                          f"converged on the (consistent) system as if ridge=0.", NumericalRidgeWarning,
                          stacklevel=stacklevel)
    if not converged:
        why = "broke down (non-positive curvature: the matrix is singular or indefinite)" if broke.any() else (
            f"did not converge in {it} iterations")
        warnings.warn(f"conjugate gradient {why}: relative residual {float(np.max(res)):.3g} > tol {tol:.3g}; "
                      f"returning the last iterate", ConvergenceWarning, stacklevel=stacklevel)
    return X, {"iterations": it, "residual": res, "converged": converged, "true_residuals": true_residuals}


# ---------------------------------------------------------------------------------------------
def lanczos_flow(matvec, B, t, n, ridge=0.0, tol=1e-8, max_iter=None, stacklevel=3, progress=False):
    """phi_t(A) B, phi_t(lam) = (1 - exp(-t (lam + ridge) / n)) / (lam + ridge), by Lanczos.

    The coefficients of the time-t kernel flow (see :func:`flow_filter` and
    :meth:`SpectralFactor.flow_coef`) without an eigendecomposition: for each column b, j
    Lanczos steps on A from b / |b| give an orthonormal basis Q_j of the Krylov space and the
    tridiagonal T_j = Q_j^T A Q_j, and phi_t(A) b ~ |b| Q_j phi_t(T_j) e_1 ([S92]_). The basis is
    fully reorthogonalised (O(n j) memory per column). The error estimate is the change of the
    approximation over the last step, |f_j - f_{j-1}| / |f_j| (f_j = |b| phi_t(T_j) e_1 in the
    basis, where the norms are those of the vectors in R^n): a column stops when it is <= tol,
    or exactly when its Krylov space is invariant. phi_t is bounded by t / n, so unlike a
    ridge solve the flow amplifies no rounding noise: there is no numerical floor to check.
    The columns run in lockstep, one matvec call per step.

    Parameters
    ----------
    matvec : callable
        V (n, m) -> A V (n, m), A symmetric positive semi-definite.
    B : ndarray (n, k)
    t : float, finite, >= 0
    n : int
        The flow's time scale t / n (the number of training points).
    ridge : float >= 0
    tol : float
    max_iter : int or None
        Lanczos steps at most (the basis holds max_iter vectors per column); None:
        min(rows, 500), checked to fit in memory.
    progress : bool or None
        The steps and the largest error estimate on stderr (:class:`SolverProgress`).

    Returns
    -------
    X : ndarray (n, k)
    info : dict
        ``iterations``, ``residual`` (the error estimates reached, (k,)), ``converged``.

    Warns
    -----
    ConvergenceWarning
        When some column has not reached ``tol`` in ``max_iter`` steps (the last
        approximation is returned).

    References
    ----------
    .. [S92] Y. Saad, "Analysis of some Krylov subspace approximations to the matrix exponential
       operator", SIAM J. Numer. Anal. 29(1), 1992.
    """
    from ._validation import check_memory

    B = np.asarray(B, dtype=np.float64)
    rows, k = B.shape
    t = check_float(t, "t", minimum=0.0)
    max_iter = min(rows, 500) if max_iter is None else int(max_iter)
    check_memory(8.0 * rows * k * (max_iter + 4), "max_iter",
                 f"the Lanczos basis of {max_iter} steps for {k} column(s) of {rows} rows")
    X = np.zeros((rows, k))
    bnorm = np.linalg.norm(B, axis=0)
    res = np.zeros(k)
    active = bnorm > 0.0
    if t == 0.0 or not active.any():
        return X, {"iterations": 0, "residual": res, "converged": True}
    Q = np.zeros((max_iter, rows, k))
    Q[0][:, active] = B[:, active] / bnorm[active]
    alpha = np.zeros((max_iter, k))
    beta = np.zeros((max_iter, k))
    coef = [None] * k     # phi_t(T_j) e_1 |b| of each column at its last step
    steps = np.zeros(k, dtype=int)

    def approximation(c, j):
        a, b = alpha[:j, c], beta[:j - 1, c]
        if j == 1:
            lam, V = a.copy(), np.ones((1, 1))
        else:
            lam, V = scipy.linalg.eigh_tridiagonal(a, b)
        return bnorm[c] * (V @ (flow_filter(lam, t, n, ridge) * V[0]))

    it = 0
    with SolverProgress("Lanczos", progress) as report:
        while active.any() and it < max_iter:
            cols = np.flatnonzero(active)
            W = np.asarray(matvec(np.ascontiguousarray(Q[it][:, cols])), dtype=np.float64)
            if W.shape != (rows, cols.size):
                raise ValueError(f"matvec: returned shape {W.shape}, expected {(rows, cols.size)}")
            if not np.all(np.isfinite(W)):
                raise FloatingPointError("matvec: returned non-finite values")
            alpha[it, cols] = np.einsum("ij,ij->j", Q[it][:, cols], W)
            # full reorthogonalisation against the basis, twice (Kahan's "twice is enough"); the basis of
            # the active columns is a view while they all are, else one copy per step
            basis = Q[:it + 1] if cols.size == Q.shape[2] else Q[:it + 1][:, :, cols]
            for _ in range(2):
                H = np.einsum("snj,nj->sj", basis, W)
                W -= np.einsum("snj,sj->nj", basis, H)
            it += 1
            for pos, c in enumerate(cols):
                steps[c] = it
                f = approximation(c, it)
                prev = coef[c]
                change = np.linalg.norm(f - np.append(prev, 0.0)) if prev is not None else np.inf
                coef[c] = f
                res[c] = change / max(np.linalg.norm(f), np.finfo(np.float64).tiny)
                b = float(np.linalg.norm(W[:, pos]))
                scale = max(abs(alpha[it - 1, c]), beta[it - 2, c] if it > 1 else 0.0, np.finfo(np.float64).tiny)
                if b <= 1e-13 * scale:  # an invariant Krylov space: f is exact
                    res[c] = 0.0
                    active[c] = False
                elif res[c] <= tol:
                    active[c] = False
                elif it < max_iter:
                    beta[it - 1, c] = b
                    Q[it][:, c] = W[:, pos] / b
            report.update(it, float(np.max(res)))
    for c in range(k):
        if coef[c] is not None:
            X[:, c] = Q[:steps[c], :, c].T @ coef[c]
    converged = bool(np.all(res <= tol))
    if not converged:
        warnings.warn(f"Lanczos kernel flow did not converge in {it} steps: estimated relative error "
                      f"{float(np.max(res)):.3g} > tol {tol:.3g}; returning the last approximation",
                      ConvergenceWarning, stacklevel=stacklevel)
    return X, {"iterations": it, "residual": res, "converged": converged}
