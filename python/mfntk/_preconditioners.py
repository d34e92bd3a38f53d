"""Low-rank preconditioners of kernel systems (K + ridge I) X = Y, and the Nystrom features.

The kernel's condition number grows like n / ridge, and plain (or Jacobi-preconditioned)
conjugate gradient needs about sqrt(lambda_max / ridge) iterations. A rank-r approximation
K ~ U diag(s) U^T (U orthonormal, s descending) that captures the top of the spectrum gives the
preconditioner of Frangella, Tropp and Udell [FTU23]_,

    P^{-1} v = (s_r + ridge) U diag(1 / (s + ridge)) U^T v + (v - U U^T v),

O(n r) per apply, under which the spectrum of (K + ridge I) lies in [1, (lambda_{r+1} + ridge) /
ridge]-ish: the iteration count then depends on the tail of K's spectrum, not on its top.
Two ways to get the factor, both through the kernel's columns only:

- :func:`nystrom` -- M centres (uniform, or by approximate ridge leverage scores), the columns
  K_nM = K(X, X_C), K_MM its rows C, K_MM = V diag(lam) V^T (eigenvalues below a relative cutoff
  dropped), B = K_nM V lam^{-1/2}, so that B B^T = K_nM K_MM^+ K_Mn (the Nystrom approximation),
  and U, s from the eigen-decomposition of B^T B (:func:`eigen_factor`). This is also the
  feature map of Nystrom kernel ridge regression (:class:`mfntk.NystromRegressor`, FALKON
  [RCR17]_).
- :func:`pivoted_cholesky` -- greedy pivoted Cholesky K ~ L L^T on the residual diagonal, the
  pivots' columns computed a few at a time; then U, s from L.

B and U are written over the columns K_nM, a row block at a time: the factor of a kernel
object's columns takes one n k x M k array (and M k x M k ones), not the three of K_nM, B and an
SVD's workspace (the columns of a formed matrix, a strided view, are copied once).

Kernels enter through :class:`KernelColumns` (columns of a kernel object, of a dense or
precomputed matrix, of the centred kernel C K C of ``fit_intercept``), which knows the
multi-output layout of a matrix kernel: with k outputs per point, row i k + p, and a centre
brings all k of its columns.

References
----------
.. [FTU23] Z. Frangella, J. A. Tropp and M. Udell, "Randomized Nystrom preconditioning",
   SIAM J. Matrix Anal. Appl. 44(2), 2023 (Algorithm 2.1 and eq. (5.3): the preconditioner).
.. [RCR17] A. Rudi, L. Carratino and L. Rosasco, "FALKON: an optimal large scale kernel method",
   NeurIPS 2017 (Nystrom kernel ridge regression with M ~ sqrt(n) centres).
.. [MM17] C. Musco and C. Musco, "Recursive sampling for the Nystrom method", NeurIPS 2017
   (centres sampled by ridge leverage scores).
.. [HFS12] H. Harbrecht, M. Peters and R. Schneider, "On the low-rank approximation by the
   pivoted Cholesky decomposition", Appl. Numer. Math. 62(4), 2012.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.linalg.blas

from ._backend import get_backend
from ._validation import (as_generator, check_choice, check_int, check_memory, format_bytes, memory_left,
                          resolve_threads)

__all__ = ["CENTER_SELECTIONS", "KernelColumns", "LowRankPreconditioner", "check_centers", "check_centers_memory",
           "default_centers", "eigen_factor", "in_place_product", "leading_columns", "nystrom", "nystrom_features",
           "pivoted_cholesky", "select_centers"]

#: How centres are drawn: uniformly without replacement, or by approximate ridge leverage scores.
CENTER_SELECTIONS = ("uniform", "leverage")
#: Points per kernel call when the columns K(X, X_C) are computed by rows.
ROW_BLOCK = 4096
#: Pivots whose columns one kernel call of the pivoted Cholesky computes.
PIVOT_BATCH = 16
#: Default centres per sqrt(n) of the CG preconditioners, by the work of one kernel product (a
#: kernel's ``product_work``; "quadratic" when it has none): the ReLU NTK on MNIST-shaped data
#: (d = 784, ridge 1) took 67 CG iterations at n = 60,000 with M = 1000 and 24 with M = 3000 (42.5
#: -> 13.6 min); the empirical NTK (d = 32, N = 4096, n = 50,000) fits fastest near M = 1000.
CENTERS_PER_ROOT_N = {"linear": 4.0, "quadratic": 12.0}
#: Eigenvalues of B^T B at or below this fraction of the largest are dropped by eigen_factor:
#: forming B^T B squares B's condition number, so U's column i carries a relative rounding error
#: of about eps sqrt(r) s_1 / s_i, which the cutoff keeps below 1e-4 up to r = 2 10^5 (far inside
#: what keeps P^{-1} positive definite for any ridge).
GRAM_RCOND = 1e-9
#: Elements of the row blocks of a product written over its factor (in_place_product).
PRODUCT_BLOCK = 1 << 22


def default_centers(n, outputs=1, per_root=4.0):
    """The default number of centres for n points: min(n, max(1000, per_root sqrt(n))), fewer
    when the n k x M k columns and their factors would take more than half the available memory.

    As a preconditioner, M should exceed the number of eigenvalues of K well above the ridge:
    for the NTK of data in d dimensions the spectrum falls in steps (1, d, d (d + 1) / 2, ...
    eigenvalues of sizes about n, n / d, n / d^2, ...), and M of about twice the count above the
    ridge removes them. The empirical NTK with d = 32, n = 20,000 and ridge 1 has 561 such
    eigenvalues (degrees 0 to 2); M = 200, 566, 700, 1000, 1400 and 2000 took CG from 133
    iterations to 82, 82, 59, 33, 23 and 19, and 1000 gave the shortest fit (docs/TUNING.md).
    FALKON's statistical rate needs M of order sqrt(n) [RCR17]_, hence the growth with n. Where a
    kernel product costs O(n^2) (a matrix, an analytic kernel) the columns K(X, X_C) cost about
    M / n of one product and more centres pay: :data:`CENTERS_PER_ROOT_N`.
    """
    size = int(min(n, max(1000, math.ceil(per_root * math.sqrt(n)))))
    free = memory_left()
    if free is not None:
        rows = float(n) * outputs
        # rows x (M k) + 4 (M k)^2 doubles <= free / 2
        a, b = 4.0 * 8.0 * outputs ** 2, 8.0 * rows * outputs
        fit = (-b + math.sqrt(b * b + 4.0 * a * 0.5 * max(free, 0))) / (2.0 * a)
        size = min(size, max(1, int(fit)))
    return size


# ---------------------------------------------------------------------------------------------
class KernelColumns:
    """Columns K[:, C] of a kernel on n points with k outputs each (k > 1: a matrix kernel).

    Rows and columns of a matrix kernel are indexed i k + p (point i, output p); the columns of
    a set of points C are the k columns of each, in that order, so ``self(C)`` has shape
    (n k, |C| k). Use the constructors :meth:`from_kernel` and :meth:`from_matrix`.

    Parameters
    ----------
    block : callable
        points (m,) int -> float array (n k, m k), the columns of those points.
    n : int
        Number of points.
    outputs : int
        k.
    diagonal : callable
        () -> diag(K), (n k,), float64.
    dtype : numpy dtype
        The precision the kernel is computed in (its rounding sets the cutoffs).
    fast : KernelColumns or None
        The same columns computed faster in a lower precision (float32), which :func:`nystrom`
        builds its preconditioner from where that precision suffices: a preconditioner need only
        be close to K (the solver's stopping rule is on K's own residuals).
    """

    def __init__(self, block, n, outputs, diagonal, dtype=np.float64, fast=None):
        self._block = block
        self.n = int(n)
        self.outputs = int(outputs)
        self._diagonal = diagonal
        dtype = np.dtype(dtype)
        self.dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
        self.fast = fast

    @property
    def eps(self):
        """The machine epsilon of the kernel's precision."""
        return float(np.finfo(self.dtype).eps)

    @property
    def rows(self):
        """n k: the size of the system."""
        return self.n * self.outputs

    def row_indices(self, points):
        """The rows i k + p of the points (p = 0..k-1 for each point in turn)."""
        points = np.asarray(points, dtype=np.intp)
        return (points[:, None] * self.outputs + np.arange(self.outputs)).reshape(-1)

    def __call__(self, points):
        """K[:, rows of points] in float64, shape (n k, len(points) k)."""
        points = np.asarray(points, dtype=np.intp)
        out = np.asarray(self._block(points), dtype=np.float64)
        want = (self.rows, points.size * self.outputs)
        if out.shape != want:
            raise ValueError(f"kernel: returned columns of shape {out.shape}, expected {want}")
        if not np.all(np.isfinite(out)):
            raise FloatingPointError("kernel: returned non-finite values")
        return out

    def diagonal(self):
        """diag(K), shape (n k,), float64."""
        return np.asarray(self._diagonal(), dtype=np.float64).reshape(-1)

    @classmethod
    def from_matrix(cls, K, outputs=1, dtype=None):
        """The columns of a dense symmetric matrix K (n k, n k) (a view, not copied); ``dtype``:
        the precision K was computed in, when K was converted since (default K's)."""
        K = np.asarray(K)
        outputs = check_int(outputs, "outputs")
        if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] % outputs:
            raise ValueError(f"K: expected a square matrix of n x {outputs} rows, got shape {K.shape}")
        self = cls(None, K.shape[0] // outputs, outputs, lambda: np.diagonal(K).copy(),
                   K.dtype if dtype is None else dtype)
        self._block = lambda points: K[:, self.row_indices(points)]
        return self

    @classmethod
    def from_kernel(cls, kernel, X, outputs=None, fast=False):
        """The columns K(X, X_C) of a kernel object (a callable k(X, X2)), row block by row block.

        Parameters
        ----------
        kernel : callable
            k(X, X2) -> (n1, n2) or, for a matrix kernel, (n1 k, n2 k).
        X : ndarray (n, d)
        outputs : int or None
            k; None: read from the shape of one kernel call (rows / points).
        fast : bool
            Also give the columns in float32 (``fast``) when the kernel is float64 and has
            ``astype`` (its float32 copy).

        Notes
        -----
        The diagonal is ``kernel.diag(X)`` for a scalar kernel that has one, otherwise the
        diagonals of the blocks K(X_b, X_b) of 64 points (only the pivoted Cholesky needs it).
        """
        self = cls._from_kernel(kernel, X, outputs)
        if fast and hasattr(kernel, "astype") and np.dtype(getattr(kernel, "dtype", None)) == np.float64:
            self.fast = cls._from_kernel(kernel.astype(np.float32), X.astype(np.float32), self.outputs)
        return self

    @classmethod
    def _from_kernel(cls, kernel, X, outputs):
        n = X.shape[0]
        if outputs is None:
            probe = np.asarray(kernel(X[:1], X[:1]))
            if probe.ndim != 2 or probe.shape[0] != probe.shape[1] or probe.shape[0] < 1:
                raise ValueError(f"kernel: returned shape {probe.shape} for one point, expected (k, k)")
            outputs = probe.shape[0]

        def block(points):
            cols = X[points]
            out = np.empty((n * outputs, points.size * outputs))
            for i0 in range(0, n, ROW_BLOCK):
                i1 = min(n, i0 + ROW_BLOCK)
                out[i0 * outputs:i1 * outputs] = kernel(X[i0:i1], cols)
            return out

        def diagonal():
            if outputs == 1 and hasattr(kernel, "diag"):
                return kernel.diag(X)
            out = np.empty(n * outputs)
            for i0 in range(0, n, 64):
                i1 = min(n, i0 + 64)
                out[i0 * outputs:i1 * outputs] = np.diagonal(np.asarray(kernel(X[i0:i1], X[i0:i1])))
            return out

        dtype = getattr(kernel, "dtype", None)
        return cls(block, n, outputs, diagonal, X.dtype if dtype is None else dtype)

    def centred(self, row_means):
        """The columns of C K C, C = I - 1 1^T / n (scalar kernels), from the row means m = K 1 / n:
        (C K C)[:, c] = C (K[:, c] - m), and diag(C K C) = diag(K) - 2 m + mean(m)."""
        if self.outputs != 1:
            raise ValueError("centred: only for a scalar kernel (one output per point)")
        m = np.asarray(row_means, dtype=np.float64).reshape(-1)
        parent = self

        def block(points):
            out = parent(points) - m[:, None]
            return out - out.mean(axis=0)

        return KernelColumns(block, self.n, 1, lambda: parent.diagonal() - 2.0 * m + float(m.mean()), self.dtype,
                             None if self.fast is None else self.fast.centred(row_means))


# ---------------------------------------------------------------------------------------------
class LowRankPreconditioner:
    """P^{-1} V = (s_r + mu) U diag(1 / (s + mu)) U^T V + (V - U U^T V), for K + ridge I ([FTU23]_).

    Parameters
    ----------
    U : ndarray (n, r)
        Orthonormal columns.
    s : ndarray (r,)
        The approximation's eigenvalues, descending, >= 0.
    ridge : float >= 0
        The shift of the system.
    centers : ndarray or None
        The points whose columns built the factor (reported by the estimators).

    Attributes
    ----------
    mu : float
        The shift used: ridge, raised to 1e-10 s_1 when smaller (ridge = 0 would make P^{-1}
        singular on the approximation's null space).
    top : float
        s_1, a lower bound of K's largest eigenvalue (K - U diag(s) U^T is positive
        semi-definite for a Nystrom or partial Cholesky approximation); it bounds the numerical
        floor of :func:`mfntk._solvers.conjugate_gradient` from below.
    """

    def __init__(self, U, s, ridge, centers=None):
        self.U = np.ascontiguousarray(U, dtype=np.float64)
        self.s = np.asarray(s, dtype=np.float64)
        self.top = float(self.s[0]) if self.s.size else 0.0
        self.mu = max(float(ridge), 1e-10 * self.top, np.finfo(np.float64).tiny)
        smallest = float(self.s[-1]) if self.s.size else 0.0
        self._scale = (smallest + self.mu) / (self.s + self.mu) - 1.0
        self.centers = centers

    @property
    def rank(self):
        return self.s.size

    def __call__(self, V):
        V = np.asarray(V, dtype=np.float64)
        out = get_backend().low_rank_update(self.U, self._scale, np.ascontiguousarray(V.reshape(V.shape[0], -1)),
                                            resolve_threads(None))
        return out.reshape(V.shape)


def _rows_to_front(B, q, rows):
    """Write ``rows(i0, i1, out)`` ((i1 - i0, q), computed into ``out`` from B's rows [i0, i1)
    before they are written) for consecutive row blocks over B's flat memory from its start, and
    return the (n, q) view. Row i lands at flat offsets [i q, (i + 1) q), over rows of B at most
    i when q <= r: rows already read, so nothing is overwritten before it is used. ``out`` is one
    scratch block, reused (a new array per block would fault in its pages every time)."""
    n, r = B.shape
    flat = B.reshape(-1)
    step = max(1, PRODUCT_BLOCK // max(r, 1))
    scratch = np.empty((min(step, n), q), dtype=B.dtype)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        flat[i0 * q:i1 * q] = rows(i0, i1, scratch[:i1 - i0]).reshape(-1)
    return flat[:n * q].reshape(n, q)


def in_place_product(B, T):
    """B @ T for B (n, r) and T (r, q), q <= r, written over B's memory when B is C-contiguous
    (an (n, q) view of it is returned; B is then no longer valid), otherwise a new array."""
    if T.shape[1] > B.shape[1] or not B.flags.c_contiguous or not B.flags.writeable:
        return B @ T
    T = np.ascontiguousarray(T, dtype=B.dtype)
    return _rows_to_front(B, T.shape[1], lambda i0, i1, out: np.matmul(B[i0:i1], T, out=out))


def leading_columns(B, q):
    """B[:, :q] as a C-contiguous (n, q) array, in B's memory when B is C-contiguous (B is then
    no longer valid)."""
    if q == B.shape[1] or not B.flags.c_contiguous or not B.flags.writeable:
        return np.ascontiguousarray(B[:, :q])

    def rows(i0, i1, out):
        out[...] = B[i0:i1, :q]
        return out
    return _rows_to_front(B, q, rows)


def eigen_factor(B):
    """U (n, q) with orthonormal columns and s (q,) descending, U diag(s) U^T = B B^T, for B (n, r).

    From the eigen-decomposition B^T B = Q diag(s) Q^T (r x r): U = B Q diag(s)^{-1/2}, written
    over B (:func:`in_place_product`), so no n x r workspace (an SVD of B needs two).
    Eigenvalues at or below ``GRAM_RCOND`` s_1 are dropped: B^T B squares B's condition number,
    and the columns of U built from them would lose their relative accuracy (an SVD of B would
    keep them, at the price of its n x r workspace).
    """
    if B.shape[1] == 0:
        return np.zeros((B.shape[0], 0)), np.zeros(0)
    s, Q = _gram_eigenpairs(B.T @ B)
    return in_place_product(B, Q / np.sqrt(s)), s


def _low_rank(B, ridge, centers):
    """The preconditioner of the approximation B B^T (B (n, r), overwritten)."""
    U, s = eigen_factor(B)
    return LowRankPreconditioner(U, s, ridge, centers)


# ---------------------------------------------------------------------------------------------
def check_centers_memory(columns, size, name="centers"):
    """MemoryError naming ``centers``, before allocating, when the n k x M k columns (written
    over by the factor) and four M k x M k arrays cannot fit."""
    m = size * columns.outputs
    nbytes = 8.0 * (columns.rows * m + 4.0 * m * m) + 16.0 * PRODUCT_BLOCK
    check_memory(nbytes, name, f"{size} centres on {columns.n} points ({columns.rows} x {m} kernel columns in "
                               f"float64, {format_bytes(8.0 * columns.rows * m)}, and their factors)")


def check_centers(centers, n):
    """The number of centres: an int in [1, n] (ValueError naming ``centers``)."""
    size = check_int(centers, "centers", minimum=1)
    if size > n:
        raise ValueError(f"centers: must be at most the number of training points n = {n}, got {size}")
    return size


def nystrom_features(columns, centers, rcond=None):
    """The Nystrom feature map on the training points: B with B B^T = K_nM K_MM^+ K_Mn.

    Parameters
    ----------
    columns : KernelColumns
    centers : ndarray (M,) of int
        Distinct point indices.
    rcond : float or None
        Eigenvalues of K_MM at or below rcond * its largest are dropped (rounding noise); None:
        M k eps, eps that of the kernel's precision (``columns.dtype``; the convention of
        ``scipy.linalg.pinvh``).

    Returns
    -------
    B : ndarray (n k, r)
        Written over the columns K_nM, which are not kept.
    T : ndarray (M k, r)
        K_MM's pseudo-inverse square root on its range: B = K_nM T, T^T K_MM T = I.
    """
    K_nM, T = _columns_and_inverse_root(columns, centers, rcond)
    return in_place_product(K_nM, T), T


def _columns_and_inverse_root(columns, centers, rcond=None):
    """K_nM = columns(centers) and T = V lam^{-1/2} over the eigenpairs of K_MM above rcond
    times its largest (None: M k eps, as :func:`nystrom_features`), so T^T K_MM T = I."""
    centers = np.asarray(centers, dtype=np.intp)
    K_nM = columns(centers)
    K_MM = K_nM[columns.row_indices(centers)]
    lam, V = scipy.linalg.eigh(0.5 * (K_MM + K_MM.T), check_finite=False)
    top = float(lam[-1]) if lam.size else 0.0
    rcond = K_MM.shape[0] * columns.eps if rcond is None else float(rcond)
    keep = lam > max(rcond * top, 0.0)
    return K_nM, V[:, keep] / np.sqrt(lam[keep])


def _gram_eigenpairs(G):
    """s (descending) and Q of the symmetric r x r Gram matrix G (overwritten), the eigenvalues at
    or below ``GRAM_RCOND`` s_1 dropped (see :func:`eigen_factor`)."""
    s, Q = scipy.linalg.eigh(G, check_finite=False, overwrite_a=True)
    s, Q = s[::-1], Q[:, ::-1]
    keep = s > GRAM_RCOND * max(float(s[0]), 0.0)
    return s[keep], Q[:, keep]


def select_centers(columns, size, selection="uniform", ridge=0.0, random_state=0):
    """``size`` distinct points: uniformly, or by approximate ridge leverage scores ([MM17]_).

    "leverage": a uniform pilot Nystrom approximation of the same size gives the scores
    l_i = [K_nys (K_nys + ridge I)^{-1}]_ii = sum_j U_ij^2 s_j / (s_j + ridge) (summed over a
    point's k rows), and the centres are drawn proportionally to them, without replacement (a
    floor of 1e-3 times the mean score keeps every point possible). ridge = 0 uses 1e-6 s_1.

    Returns
    -------
    ndarray (size,) of int, sorted.
    """
    selection = check_choice(selection, "center_selection", CENTER_SELECTIONS)
    size = check_centers(size, columns.n)
    rng = as_generator(random_state, "random_state")
    pilot = np.sort(rng.choice(columns.n, size=size, replace=False))
    if selection == "uniform" or size == columns.n:
        return pilot
    U, s = eigen_factor(nystrom_features(columns, pilot)[0])
    mu = ridge if ridge > 0.0 else 1e-6 * float(s[0] if s.size else 1.0)
    scores = (U ** 2) @ (s / (s + mu))
    scores = scores.reshape(columns.n, columns.outputs).sum(axis=1)
    scores = np.maximum(scores, 1e-3 * float(scores.mean()) + np.finfo(np.float64).tiny)
    return np.sort(rng.choice(columns.n, size=size, replace=False, p=scores / scores.sum()))


def nystrom(columns, centers=None, ridge=0.0, selection="uniform", random_state=0):
    """The Nystrom preconditioner of K + ridge I ([FTU23]_ with the centres of [RCR17]_).

    With ``columns.fast`` the factor comes from the float32 columns, unless K_MM then has
    eigenvalues below float32's resolution (M k eps_32 times its largest: dropped, the factor's
    rank < M k), where the approximation error would be float32's rounding rather than K's
    spectrum beyond the centres; then from the exact columns.

    Parameters
    ----------
    columns : KernelColumns
    centers : int, array of int or None
        Number M of centres (None: :func:`default_centers`), or the point indices themselves.
    ridge : float >= 0
    selection : {"uniform", "leverage"}
        See :func:`select_centers`.
    random_state : int, numpy Generator or None

    Returns
    -------
    LowRankPreconditioner
        With ``centers`` the point indices used.

    Raises
    ------
    ValueError
        A bad ``centers`` or ``selection``.
    MemoryError
        When the n k x M k columns do not fit (the message names ``centers``).
    """
    if centers is None or np.ndim(centers) == 0:
        size = default_centers(columns.n, columns.outputs) if centers is None else check_centers(centers, columns.n)
        check_centers_memory(columns, size)
        idx = select_centers(columns, size, selection, ridge, random_state)
    else:
        idx = np.unique(np.asarray(centers, dtype=np.intp))
        if idx.size == 0 or idx[0] < 0 or idx[-1] >= columns.n:
            raise ValueError(f"centers: indices must lie in [0, {columns.n}), got {np.asarray(centers)!r}")
        check_centers_memory(columns, idx.size)
    if columns.fast is not None:
        factor = _float32_factor(columns.fast, idx)
        if factor is not None:
            return LowRankPreconditioner(*factor, ridge, idx)
    return _low_rank(nystrom_features(columns, idx)[0], ridge, idx)


def _float32_factor(columns, centers):
    """U, s of the Nystrom approximation from float32 columns, or None when K_MM loses rank to
    float32's rounding (its spectrum reaches below M k eps_32 of its largest eigenvalue).

    A syrk and one product with the n k x M k columns instead of three products (about half
    the flops): B^T B = T^T (K_nM^T K_nM) T and U = K_nM (T Q s^{-1/2}). Forming K_nM^T K_nM
    squares K_nM's range, but T is bounded by the float32 cutoff, |T|^2 <= 1 / (M k eps_32
    lam_1), and K_nM^T K_nM <= |K| K_MM, so the syrk's rounding (sums of n terms: ~sqrt(n)
    eps_64 typically, n eps_64 at worst) reaches B^T B as about sqrt(n) eps_64 |K| / (M k eps_32)
    ~ 4e-10 s_1 at n = 50,000, M = 1000 (at worst 1e-7 s_1). It can only shift the smallest kept
    eigenvalues s; U stays orthonormal and s >= 0, so P stays positive definite and the CG
    solution exact, at most a little less well preconditioned.
    """
    K_nM, T = _columns_and_inverse_root(columns, centers)
    if T.shape[1] < T.shape[0]:
        return None
    G = scipy.linalg.blas.dsyrk(1.0, K_nM.T, trans=0, lower=0)   # K_nM^T K_nM, upper triangle
    G = np.triu(G) + np.triu(G, 1).T
    s, Q = _gram_eigenpairs(T.T @ G @ T)
    return in_place_product(K_nM, T @ (Q / np.sqrt(s))), s


def pivoted_cholesky(columns, rank=None, ridge=0.0, tol=1e-10, batch=PIVOT_BATCH):
    """The preconditioner of K + ridge I from a greedy pivoted Cholesky K ~ L L^T ([HFS12]_).

    Points are pivots: ``batch`` at a time, the points of largest residual diagonal (summed over
    their k rows) have their columns computed by one kernel call; each of their rows is then
    eliminated in turn, largest residual first, and skipped when its residual is at most
    ``tol`` * trace(K) (already spanned). So L is the exact Cholesky factor of the chosen rows;
    only the order within a batch is greedy on a diagonal that is ``batch`` pivots old.

    Parameters
    ----------
    columns : KernelColumns
    rank : int or None
        Number of pivot points (None: :func:`default_centers`).
    ridge : float >= 0
    tol : float
        Relative residual trace at which the factorisation stops early.
    batch : int

    Returns
    -------
    LowRankPreconditioner
        With ``centers`` the pivot points, in pivot order.
    """
    size = default_centers(columns.n, columns.outputs) if rank is None else check_centers(rank, columns.n)
    check_centers_memory(columns, size)
    k = columns.outputs
    residual = np.maximum(columns.diagonal(), 0.0)
    if residual.shape[0] != columns.rows:
        raise ValueError(f"kernel: diagonal of length {residual.shape[0]}, expected {columns.rows}")
    trace = float(residual.sum())
    L = np.zeros((columns.rows, size * k))
    used = 0
    chosen = []
    taken = np.zeros(columns.n, dtype=bool)
    while len(chosen) < size and float(residual.sum()) > tol * trace:
        score = residual.reshape(columns.n, k).sum(axis=1)
        score[taken] = -1.0
        want = min(batch, size - len(chosen))
        pts = np.argsort(score)[::-1][:want]
        pts = pts[score[pts] > 0.0]
        if pts.size == 0:
            break
        G = columns(pts)
        G -= L[:, :used] @ L[columns.row_indices(pts), :used].T
        rows = columns.row_indices(pts)
        for j in range(pts.size):  # pts are in descending order of score
            taken[pts[j]] = True
            chosen.append(int(pts[j]))
            for p in range(k):
                row = int(pts[j]) * k + p
                col = j * k + p
                pivot = float(residual[row])
                if pivot <= tol * trace:
                    continue
                v = G[:, col] / math.sqrt(pivot)
                L[:, used] = v
                used += 1
                residual -= v * v
                np.maximum(residual, 0.0, out=residual)
                # the batch's later columns lose this direction too
                G[:, col + 1:] -= np.outer(v, v[rows[col + 1:]])
    return _low_rank(leading_columns(L, used), ridge, np.asarray(chosen, dtype=np.intp))
