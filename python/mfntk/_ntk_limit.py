"""Frozen-kernel (NTK-limit) dynamics of a network (SPEC 4)."""
from __future__ import annotations

import numpy as np

from . import kernels
from ._network import TwoLayer
from ._solvers import SpectralFactor
from ._validation import as_matrix, check_eigh_memory, resolve_threads


class NTKLimit:
    """The gradient-flow dynamics of a network whose tangent kernel stays frozen at K_0.

    With K_0 = K_mu0 the empirical tangent kernel of the initial particles (SPEC 4) on the
    training inputs X, matrix-valued for k outputs ((n k, n k), entry (i k + p, l k + q) =
    K_pq(x_i, x_l), see :func:`mfntk.kernels.empirical` with ``output="matrix"``), and
    u_0 = y - f_0(X) flattened to n k values in the same order:

        u_t = exp(-t K_0 / n) u_0                                  on the training set,
        f_t(x) = f_0(x) + K_0(x, X) K_0^{-1} (I - exp(-t K_0 / n)) u_0   anywhere,

    which is exactly what the linearized model trained by :func:`mfntk.simulate` (with
    ``linearized=True``) follows, for any k, and what a wide network follows in the NTK
    scaling. K_0 is factored once (symmetric eigendecomposition of the (n k, n k) matrix;
    negative eigenvalues from rounding are clipped, and reported by ``n_clipped`` and
    ``min_eigenvalue``); every later time costs O(n^2 k^2), and a prediction at new points
    one matrix-free product K_0(X2, X) c (O((n + n2) N (d + k)), no kernel matrix on X2).
    t = inf is the ridgeless interpolant f_0 + K_0(x, X) K_0^+ u_0.

    For k > 1 the outputs are coupled through the blocks K_pq, p != q, of the finite-width
    kernel; as N -> infinity they vanish and every output follows the same scalar kernel
    (:meth:`mfntk.kernels.Analytic.from_network`). Memory O((n k)^2), time O((n k)^3).

    Parameters
    ----------
    net : TwoLayer
        The network at t = 0 (its particles are copied).
    X : array (n, d), Y : array (n,) or (n, k)
        Training data (squared loss).
    rcond : float or None
        Relative cutoff of the pseudo-inverse at t = inf (see ``SpectralFactor``).
    threads : int or None
    centered : bool
        The limit of the centred model F = f(theta) - f(theta_0) (``simulate(centered=True)``):
        f_0 = 0 in the formulas above.

    Attributes
    ----------
    K0 : ndarray (n k, n k)
    factor : SpectralFactor
    n_clipped, min_eigenvalue : int, float

    References
    ----------
    Jacot, Gabriel, Hongler (2018), Neural tangent kernel, NeurIPS, Eq. (7)-(8).
    Lee et al. (2019), Wide neural networks of any depth evolve as linear models under gradient
    descent, NeurIPS, Eq. (9)-(11).

    Examples
    --------
    >>> import mfntk as mf, numpy as np
    >>> X = np.random.default_rng(0).standard_normal((20, 3)); y = np.sin(X[:, 0])
    >>> limit = mf.NTKLimit(mf.TwoLayer(3, 256, scaling="ntk"), X, y)
    >>> bool(np.allclose(limit.predict(X, t=np.inf), y, atol=1e-8))
    True
    """

    def __init__(self, net, X, Y, rcond=None, threads=None, centered=False):
        if not isinstance(net, TwoLayer):
            raise TypeError(f"net: expected an mfntk.TwoLayer, got {type(net).__name__}")
        self.net = net.copy()
        self.threads = resolve_threads(threads)
        self.X = net.check_inputs(X, note_copy=False)
        check_eigh_memory(self.X.shape[0], "X", "NTKLimit's kernel matrix K_0")
        Y_arr = np.asarray(Y)
        self._vector = Y_arr.ndim == 1
        self.Y = as_matrix(Y, "Y", allow_vector=True)
        if self.Y.shape[0] != self.X.shape[0]:
            raise ValueError(f"Y: has {self.Y.shape[0]} rows but X has {self.X.shape[0]}")
        if self.Y.shape[1] != net.outputs:
            raise ValueError(f"Y: expected {net.outputs} output column(s) to match the network, got {self.Y.shape[1]}")
        self.kernel = kernels.Empirical(self.net, kind="ntk", threads=self.threads, output="matrix")
        self.centered = bool(centered)
        self.f0 = self._initial(self.X)
        self.u0 = self.Y - self.f0
        self.K0 = self.kernel(self.X).astype(np.float64)
        self.factor = SpectralFactor(self.K0, rcond=rcond, n=self.X.shape[0])
        self.n_clipped = self.factor.n_clipped
        self.min_eigenvalue = self.factor.min_eigenvalue
        self._coef_cache = {}

    def _shape(self, out):
        return out[:, 0] if self._vector else out

    def _flat(self, U):
        """(n, k) values as the (n k, 1) column the matrix kernel acts on (row i k + p)."""
        return U.reshape(-1, 1)

    def coef(self, t):
        """K_0^{-1} (I - exp(-t K_0 / n)) u_0, shape (n, k): f_t = f_0 + K_0(., X) coef."""
        key = float(t)
        if key not in self._coef_cache:
            self._coef_cache[key] = self.factor.flow_coef(self._flat(self.u0), key).reshape(self.u0.shape)
        return self._coef_cache[key]

    def residual(self, t):
        """u_t = exp(-t K_0 / n) u_0 on the training set."""
        return self._shape(self.factor.flow_residual(self._flat(self.u0), t).reshape(self.u0.shape))

    def predict(self, X2, t=np.inf):
        """f_t(X2) = f_0(X2) + K_0(X2, X) K_0^{-1} (I - exp(-t K_0 / n)) u_0."""
        X2 = self.net.check_inputs(X2, "X2")
        coef = self._flat(self.coef(t)).astype(self.net.dtype)
        flow = self.kernel.cross_matvec(X2, self.X, coef).astype(np.float64).reshape(X2.shape[0], -1)
        return self._shape(self._initial(X2) + flow)

    def _initial(self, X):
        """f_0 on X (zero for the centred model)."""
        if self.centered:
            return np.zeros((X.shape[0], self.net.outputs))
        return self.net.predict(X, threads=self.threads).astype(np.float64)
