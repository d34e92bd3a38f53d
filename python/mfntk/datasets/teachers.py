"""Teachers: fixed target functions x -> y in R^k, stored in trajectory files as data.

The built-in teachers (:class:`SingleNeuron`, :class:`TwoLayerTeacher`, :class:`Quadratic`,
:class:`LowDim`, :class:`SparseLinear`) are registered in :data:`TEACHER_KINDS` under the
``kind`` of their :meth:`Teacher.spec`; any other callable ``g(X) -> (n,) or (n, k)`` is
wrapped by :func:`as_teacher`.
"""

from __future__ import annotations

import numpy as np

from .. import _activations
from .._validation import as_array, as_generator, as_matrix, check_float, check_int

__all__ = ["Teacher", "SingleNeuron", "TwoLayerTeacher", "Quadratic", "LowDim", "SparseLinear", "as_teacher",
           "teacher_from_spec", "TEACHER_KINDS"]


def _check_output(out, n: int, name: str) -> np.ndarray:
    """Output of a user function: (n,) or (n, k) numbers, finite -> (n, k) float64."""
    arr = as_array(out, f"{name}: output", shape=[(n,), (n, None)])
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def _activation(activation, c0, name: str = "activation"):
    """(callable, label) from a name of NAMES or a callable u -> sigma(u)."""
    if callable(activation):
        label = getattr(activation, "__name__", type(activation).__name__)
        return activation, label
    if not isinstance(activation, str):
        raise TypeError(f"{name}: expected a name or a callable, got {type(activation).__name__}")
    return _activations.get(activation, c0=c0), activation


def _unit_rows(W: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(W, axis=1)
    if np.any(norms == 0.0):
        raise ValueError(f"{name}: has a zero row, which cannot be normalised to unit norm")
    return W / norms[:, None]


class Teacher:
    """Base class of the teachers: a fixed target function x -> y in R^k.

    Subclasses set ``d`` and ``k`` and implement ``_eval(X) -> (n, k)``.
    ``teacher(X)`` checks X (2-D, d columns, finite), converts it to float64 and
    returns a float64 array of shape (n, k).
    """

    d: int
    k: int | None = 1
    #: The constructor arguments that a ``[data]`` table of kind "teacher" sets, each with the
    #: key that holds it (besides d and seed = teacher_seed, which every teacher takes).
    config_keys: dict = {}

    def __call__(self, X) -> np.ndarray:
        name = type(self).__name__
        X = as_matrix(X, f"{name}: X", columns=self.d)
        return _check_output(self._eval(X), X.shape[0], name)

    def _eval(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def spec(self) -> dict | None:
        """The teacher as data: a dict of names, numbers and arrays from which
        :func:`teacher_from_spec` rebuilds it exactly, or None when it holds a user
        function (which only a pickle could store)."""
        return None


class SingleNeuron(Teacher):
    """Single-neuron teacher y = sigma(<w*, x>) with |w*| = 1.

    With N(0, I_d) or sphere(sqrt(d)) inputs, <w*, x> is (close to) N(0, 1).

    Parameters
    ----------
    d : int
        Input dimension.
    activation : str or callable, default "relu"
        One of :data:`mfntk._activations.NAMES`, or a vectorised callable.
    w : array-like, shape (d,), optional
        Teacher direction. Default: uniform on the unit sphere, drawn from ``seed``.
    seed : int or Generator, default 0
        Seed for w.
    normalize : bool, default True
        Rescale a given ``w`` to unit norm (the drawn one always has unit norm).
    c0 : float, default 0.0
        Constant of the quadratic activation.

    Attributes
    ----------
    w : ndarray, shape (d,)
    sigma : callable

    Examples
    --------
    >>> from mfntk.datasets import gaussian_inputs
    >>> t = SingleNeuron(5, "tanh", seed=1)
    >>> t(gaussian_inputs(0, 3, 5)).shape
    (3, 1)
    """

    config_keys = {"activation": "activation"}

    def __init__(self, d, activation="relu", w=None, seed=0, *, normalize=True, c0=0.0):
        self.d = check_int(d, "d")
        self.sigma, self.activation = _activation(activation, c0)
        self.c0, self._user_sigma = c0, callable(activation)
        self.seed = seed
        self.k = 1
        if w is None:
            w = as_generator(seed).standard_normal(self.d)
            w = w / np.linalg.norm(w)
            self._given = False
        else:
            w = as_array(w, "w", shape=(self.d,))
            if normalize:
                w = _unit_rows(w.reshape(1, -1), "w")[0]
            self._given = True
        self.w = np.ascontiguousarray(w)

    def _eval(self, X):
        return self.sigma(X @ self.w)[:, None]

    def spec(self):
        if self._user_sigma:
            return None
        return {"kind": "single_neuron", "d": self.d, "activation": self.activation, "c0": float(self.c0),
                "w": self.w}

    @classmethod
    def _from_spec(cls, s):
        return cls(s["d"], s["activation"], w=s["w"], normalize=False, c0=s["c0"])

    def __repr__(self):
        src = "w=given" if self._given else f"seed={self.seed!r}"
        return f"SingleNeuron(d={self.d}, activation={self.activation!r}, {src})"


class TwoLayerTeacher(Teacher):
    """Two-layer teacher y = (1/width) sum_j a_j sigma(<w_j, x>), |w_j| = 1.

    Parameters
    ----------
    d : int
        Input dimension.
    width : int
        Number of teacher neurons m.
    activation : str or callable, default "relu"
    seed : int or Generator, default 0
        Seed for the parameters that are not given.
    a : array-like, shape (width,) or (width, k), optional
        Output weights; k = number of outputs. Default: independent random signs +-1
        (k = 1).
    W : array-like, shape (width, d), optional
        Input weights. Default: rows uniform on the unit sphere.
    normalize : bool, default True
        Rescale the rows of a given ``W`` to unit norm.
    c0 : float, default 0.0
        Constant of the quadratic activation.

    Attributes
    ----------
    W : ndarray, shape (width, d)
    a : ndarray, shape (width, k)

    Examples
    --------
    >>> t = TwoLayerTeacher(6, 4, seed=0)
    >>> t.W.shape, t.a.shape
    ((4, 6), (4, 1))
    """

    config_keys = {"width": "teacher_width", "activation": "activation"}

    def __init__(self, d, width, activation="relu", seed=0, *, a=None, W=None, normalize=True, c0=0.0):
        self.d = check_int(d, "d")
        self.width = check_int(width, "width")
        self.sigma, self.activation = _activation(activation, c0)
        self.c0, self._user_sigma = c0, callable(activation)
        self.seed = seed
        rng = as_generator(seed)
        if W is None:
            W = _unit_rows(rng.standard_normal((self.width, self.d)), "W")
        else:
            W = as_array(W, "W", shape=(self.width, self.d))
            if normalize:
                W = _unit_rows(W, "W")
        if a is None:
            a = rng.choice(np.array([-1.0, 1.0]), size=(self.width, 1))
        else:
            a = as_array(a, "a", shape=[(self.width,), (self.width, None)])
            if a.ndim == 1:
                a = a.reshape(-1, 1)
        self.W = np.ascontiguousarray(W)
        self.a = np.ascontiguousarray(a)
        self.k = self.a.shape[1]

    def _eval(self, X):
        return self.sigma(X @ self.W.T) @ self.a / self.width

    def spec(self):
        if self._user_sigma:
            return None
        return {"kind": "two_layer", "d": self.d, "width": self.width, "activation": self.activation,
                "c0": float(self.c0), "W": self.W, "a": self.a}

    @classmethod
    def _from_spec(cls, s):
        return cls(s["d"], s["width"], s["activation"], a=s["a"], W=s["W"], normalize=False, c0=s["c0"])

    def __repr__(self):
        return (
            f"TwoLayerTeacher(d={self.d}, width={self.width}, activation={self.activation!r}, "
            f"k={self.k}, seed={self.seed!r})"
        )


class Quadratic(Teacher):
    """Quadratic target y = b0 + <x, B x> of [GMMM19]_ (Section 2, "quadratic functions").

    Parameters
    ----------
    d : int
        Input dimension.
    b0 : float, optional
        Offset. Default ``-trace(B)``, which centres y: E<x, B x> = trace(B) for any
        input law with E[x x^T] = I (Gaussian and sphere(sqrt(d)) inputs).
    B : array-like, shape (d, d), optional
        The matrix; a non-symmetric B is replaced by (B + B^T)/2, which defines the
        same function. Default: a random positive semi-definite matrix
        B = G G^T (G with i.i.d. N(0, 1) entries), rescaled so that
        |B|_F = 1/sqrt(2); then Var y = 2 |B|_F^2 = 1 under N(0, I_d) inputs.
        GMMM19 take B PSD as well.
    seed : int or Generator, default 0
        Seed for the default B.

    Attributes
    ----------
    B : ndarray, shape (d, d), symmetric
    b0 : float

    References
    ----------
    .. [GMMM19] B. Ghorbani, S. Mei, T. Misiakiewicz, A. Montanari, "Limitations of
       lazy training of two-layers neural networks", NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> q = Quadratic(3, b0=1.0, B=np.eye(3))
    >>> q(np.array([[1.0, 2.0, 0.0]]))
    array([[6.]])
    """

    def __init__(self, d, b0=None, B=None, seed=0):
        self.d = check_int(d, "d")
        self.seed = seed
        self.k = 1
        self._given = B is not None
        if B is None:
            G = as_generator(seed).standard_normal((self.d, self.d))
            B = G @ G.T
            B = B / (np.sqrt(2.0) * np.linalg.norm(B))
        else:
            B = as_array(B, "B", shape=(self.d, self.d))
        self.B = np.ascontiguousarray(0.5 * (B + B.T))
        self.b0 = -float(np.trace(self.B)) if b0 is None else check_float(b0, "b0")

    def _eval(self, X):
        return (self.b0 + np.einsum("ij,ij->i", X @ self.B, X))[:, None]

    def spec(self):
        return {"kind": "quadratic", "d": self.d, "b0": self.b0, "B": self.B}

    @classmethod
    def _from_spec(cls, s):
        return cls(s["d"], b0=s["b0"], B=s["B"])  # B is symmetric: (B + B^T) / 2 gives it back exactly

    def __repr__(self):
        src = "B=given" if self._given else f"seed={self.seed!r}"
        return (
            f"Quadratic(d={self.d}, b0={self.b0:.4g}, |B|_F={np.linalg.norm(self.B):.4g}, {src})"
        )


def _sum_tanh(Z: np.ndarray) -> np.ndarray:
    """Default phi of LowDim: sum_i tanh(z_i) / sqrt(r)."""
    return np.tanh(Z).sum(axis=1) / np.sqrt(Z.shape[1])


class LowDim(Teacher):
    """Low-dimensional target y = phi(U^T x) with U (d, r) orthonormal columns.

    Only the r-dimensional subspace spanned by U matters; the other d - r
    directions are pure noise, which feature-learning (mean-field) training can
    discover and a fixed kernel cannot.

    Parameters
    ----------
    d : int
        Input dimension.
    r : int
        Dimension of the relevant subspace, 1 <= r <= d.
    phi : callable, optional
        ``phi(Z)`` with Z of shape (n, r), returning (n,) or (n, k). Default:
        phi(z) = (1/sqrt(r)) sum_i tanh(z_i), a smooth odd function with mean 0 and
        variance E[tanh(g)^2] ~= 0.394 under N(0, I) inputs, for every r.
    seed : int or Generator, default 0
        Seed for U (the Q factor of a Gaussian d x r matrix).
    U : array-like, shape (d, r), optional
        Explicit subspace; its columns must be orthonormal (to 1e-8).

    Attributes
    ----------
    U : ndarray, shape (d, r)
    phi : callable

    Examples
    --------
    >>> import numpy as np
    >>> t = LowDim(8, 2, seed=0)
    >>> np.allclose(t.U.T @ t.U, np.eye(2))
    True
    """

    config_keys = {"r": "r"}

    def __init__(self, d, r, phi=None, seed=0, *, U=None):
        self.d = check_int(d, "d")
        self.r = check_int(r, "r")
        if self.r > self.d:
            raise ValueError(f"r: must be <= d = {self.d}, got {self.r}")
        if phi is not None and not callable(phi):
            raise TypeError(
                f"phi: expected a callable phi(Z) with Z of shape (n, r), got {type(phi).__name__}"
            )
        self.seed = seed
        self._default_phi = phi is None
        self.phi = _sum_tanh if phi is None else phi
        self.k = 1 if phi is None else None  # unknown for a user phi until called
        self._given = U is not None
        if U is None:
            Q, R = np.linalg.qr(as_generator(seed).standard_normal((self.d, self.r)))
            # fix the signs so that U does not depend on LAPACK's sign convention
            U = Q * np.where(np.diag(R) < 0, -1.0, 1.0)
        else:
            U = as_array(U, "U", shape=(self.d, self.r))
            if not np.allclose(U.T @ U, np.eye(self.r), atol=1e-8, rtol=0.0):
                raise ValueError("U: columns must be orthonormal (U^T U = I)")
        self.U = np.ascontiguousarray(U)

    def _eval(self, X):
        out = _check_output(self.phi(X @ self.U), X.shape[0], "LowDim: phi")
        self.k = out.shape[1]
        return out

    def spec(self):
        if not self._default_phi:
            return None
        return {"kind": "low_dim", "d": self.d, "r": self.r, "U": self.U}

    @classmethod
    def _from_spec(cls, s):
        return cls(s["d"], s["r"], U=s["U"])

    def __repr__(self):
        phi = "sum(tanh(z))/sqrt(r)" if self._default_phi else getattr(self.phi, "__name__", "phi")
        src = "U=given" if self._given else f"seed={self.seed!r}"
        return f"LowDim(d={self.d}, r={self.r}, phi={phi}, {src})"


class SparseLinear(Teacher):
    """Sparse linear target y = <beta, x> with s non-zero coefficients.

    The teacher of diagonal linear networks (Woodworth et al. 2020): the support is
    s coordinates drawn uniformly without replacement and the non-zero entries are
    +-1/sqrt(s) with random signs, so |beta| = 1 and Var y = 1 for N(0, I_d) inputs.

    Parameters
    ----------
    d : int
        Input dimension.
    s : int
        Number of non-zeros, 1 <= s <= d.
    seed : int or Generator, default 0
        Seed for the support and the signs.
    beta : array-like, shape (d,), optional
        Explicit coefficients (``s`` must then equal its number of non-zeros).

    Attributes
    ----------
    beta : ndarray, shape (d,)
    support : ndarray of int, sorted indices of the non-zeros

    Examples
    --------
    >>> t = SparseLinear(10, 3, seed=0)
    >>> int((t.beta != 0).sum())
    3
    """

    config_keys = {"s": "s"}

    def __init__(self, d, s, seed=0, *, beta=None):
        self.d = check_int(d, "d")
        self.s = check_int(s, "s")
        if self.s > self.d:
            raise ValueError(f"s: must be <= d = {self.d}, got {self.s}")
        self.seed = seed
        self.k = 1
        self._given = beta is not None
        if beta is None:
            rng = as_generator(seed)
            support = np.sort(rng.choice(self.d, size=self.s, replace=False))
            beta = np.zeros(self.d)
            beta[support] = rng.choice(np.array([-1.0, 1.0]), size=self.s) / np.sqrt(self.s)
        else:
            beta = as_array(beta, "beta", shape=(self.d,))
            nnz = int(np.count_nonzero(beta))
            if nnz != self.s:
                raise ValueError(f"s: is {self.s} but beta has {nnz} non-zeros")
        self.beta = np.ascontiguousarray(beta)
        self.support = np.flatnonzero(self.beta)

    def _eval(self, X):
        return (X @ self.beta)[:, None]

    def spec(self):
        return {"kind": "sparse_linear", "d": self.d, "s": self.s, "beta": self.beta}

    @classmethod
    def _from_spec(cls, s):
        return cls(s["d"], s["s"], beta=s["beta"])

    def __repr__(self):
        src = "beta=given" if self._given else f"seed={self.seed!r}"
        return f"SparseLinear(d={self.d}, s={self.s}, support={self.support.tolist()}, {src})"


class _CallableTeacher(Teacher):
    """Wraps a user function g(X) -> (n,) or (n, k), checking its output."""

    def __init__(self, fn, d=None):
        self.fn = fn
        self.d = d
        self.k = None

    def __call__(self, X):
        X = as_matrix(X, "teacher: X", columns=self.d)
        out = _check_output(self.fn(X), X.shape[0], "teacher")
        self.k = out.shape[1]
        return out

    def __repr__(self):
        return f"teacher({getattr(self.fn, '__name__', type(self.fn).__name__)})"


def as_teacher(teacher, d: int | None = None) -> Teacher:
    """Return ``teacher`` as a :class:`Teacher`.

    A built-in teacher is returned as is (after checking that its dimension is
    ``d`` when ``d`` is given); any other callable ``g(X) -> (n,) or (n, k)`` is
    wrapped so that its output is checked at every call (shape, numbers, finiteness)
    and returned as float64 (n, k).

    Raises
    ------
    TypeError
        If ``teacher`` is not callable.
    ValueError
        If its dimension differs from ``d``.
    """
    if d is not None:
        d = check_int(d, "d")
    if isinstance(teacher, Teacher):
        if d is not None and teacher.d is not None and teacher.d != d:
            raise ValueError(f"d: is {d} but the teacher has d = {teacher.d}")
        return teacher
    if not callable(teacher):
        raise TypeError(f"teacher: expected a callable g(X) -> y, got {type(teacher).__name__}")
    return _CallableTeacher(teacher, d)


#: The teachers and samplers that trajectory files store as data, by the ``kind`` of their spec.
TEACHER_KINDS = {"single_neuron": SingleNeuron, "two_layer": TwoLayerTeacher, "quadratic": Quadratic,
                 "low_dim": LowDim, "sparse_linear": SparseLinear}


def _from_spec(registry, spec, what):
    if not isinstance(spec, dict):
        raise TypeError(f"{what}: expected a dict, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in registry:
        raise ValueError(f"{what}: unknown kind {kind!r}; expected one of {', '.join(registry)}")
    try:
        return registry[kind]._from_spec(spec)
    except KeyError as exc:
        raise ValueError(f"{what}: the {kind!r} spec lacks the field {exc.args[0]!r}") from None


def teacher_from_spec(spec) -> Teacher:
    """The teacher described by ``spec`` (see :meth:`Teacher.spec`); no code is run from it."""
    return _from_spec(TEACHER_KINDS, spec, "teacher spec")

