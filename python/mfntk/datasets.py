"""Data sets, input laws and teachers for mfntk.

Everything the simulations train on (SPEC section 8):

* the :class:`Dataset` container and :func:`as_dataset`, which turns a pair ``(X, y)``
  into one with validation;
* input laws :func:`gaussian_inputs` (N(0, I_d)) and :func:`sphere_inputs` (uniform on
  the sphere of radius sqrt(d));
* teachers :class:`SingleNeuron`, :class:`TwoLayerTeacher`, :class:`Quadratic`,
  :class:`LowDim`, :class:`SparseLinear`, or any Python callable, and
  :func:`teacher_dataset` which labels random inputs with one of them;
* the classification problems :func:`gaussian_mixture` (Ghorbani-Mei-Misiakiewicz-
  Montanari) and :func:`isotropic_gaussians` (Mei-Montanari-Nguyen);
* real data: :func:`digits` (scikit-learn, no download) and :func:`mnist` /
  :func:`load_idx` for user-supplied MNIST-format IDX files.

Conventions (shared by the whole package)
-----------------------------------------
* ``X`` is ``(n, d)`` and ``y`` is ``(n, k)``, both float64 and C-contiguous; ``y`` is
  always 2-D, a 1-D ``y`` becomes one column.
* Classification targets are ``{-1, +1}`` for one output (k = 1) and one-hot rows for
  k > 1; the one-hot rows made here use the values 0 and 1 (the argmax rule works
  the same with -1/+1 rows, which :class:`Dataset` also accepts).
* Synthetic inputs have E[x x^T] = I_d so that <w, x> ~ N(0, 1) for a unit vector w;
  real images are centred and their rows scaled to norm sqrt(d), the same scale.
* Randomness comes only from ``np.random.default_rng(seed)``: the same seed gives the
  same arrays, bit for bit.

References
----------
.. [GMMM19] B. Ghorbani, S. Mei, T. Misiakiewicz, A. Montanari, "Limitations of lazy
   training of two-layers neural networks", NeurIPS 2019, arXiv:1906.08899.
.. [MMN18] S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape of
   two-layer neural networks", PNAS 115(33), 2018, arXiv:1804.06561.
.. [LeCun98] Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning
   applied to document recognition", Proc. IEEE 86(11), 1998 (the IDX format).
"""

from __future__ import annotations

import gzip
import numbers
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import _activations

__all__ = [
    "Dataset",
    "LowDim",
    "Quadratic",
    "SingleNeuron",
    "SparseLinear",
    "Teacher",
    "TwoLayerTeacher",
    "as_dataset",
    "as_teacher",
    "digits",
    "gaussian_inputs",
    "gaussian_mixture",
    "isotropic_gaussians",
    "load_idx",
    "mnist",
    "sphere_inputs",
    "teacher_dataset",
]

#: Names of the input laws accepted by ``inputs=``.
INPUT_LAWS = ("gaussian", "sphere")
#: Values of :attr:`Dataset.task`.
TASKS = ("regression", "classification")


# ---------------------------------------------------------------------------------------
# argument checks (Python owns validation and messages; the C++ core trusts its inputs)
# ---------------------------------------------------------------------------------------


def _check_int(value, name: str, minimum: int = 1) -> int:
    """An integer >= minimum (bool and float are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer; got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name}: must be {what}; got {value}")
    return value


def _check_real(value, name: str, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """A finite real number in [lo, hi] (bounds open when asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number; got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}: must be finite; got {value}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name}: must be {'>' if lo_open else '>='} {lo}; got {value}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ValueError(f"{name}: must be {'<' if hi_open else '<='} {hi}; got {value}")
    return value


def _check_choice(value, name: str, choices) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string; got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {', '.join(choices)}")
    return value


def _rng(seed, name: str = "seed") -> np.random.Generator:
    """``np.random.default_rng(seed)`` with a checked seed.

    A Generator is used as is (and advanced); an int or a SeedSequence seeds a new
    one; None draws fresh entropy from the OS (not reproducible).
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name}: expected an int, a numpy Generator or None; got {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"{name}: must be a non-negative integer; got {seed}")
    return np.random.default_rng(int(seed))


def _as_float_array(a, name: str) -> np.ndarray:
    """Float64 array from a numeric array-like (TypeError for non-numeric data)."""
    if a is None:
        raise TypeError(f"{name}: expected a numeric array; got None")
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # ragged nested lists, odd objects
        raise ValueError(f"{name}: cannot be converted to an array ({exc})") from None
    if arr.dtype.kind in "biuf":
        return np.ascontiguousarray(arr, dtype=np.float64)
    if arr.dtype.kind == "O" and all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in arr.flat
    ):
        return np.ascontiguousarray(arr.astype(np.float64))
    raise TypeError(f"{name}: expected real numbers; got an array of dtype {arr.dtype}")


def _check_finite(arr: np.ndarray, name: str) -> None:
    """ValueError naming the first row holding NaN or inf."""
    if np.isfinite(arr).all():
        return
    flat = arr.reshape(-1)
    first = int(np.flatnonzero(~np.isfinite(flat))[0])
    what = "NaN" if np.isnan(flat[first]) else "inf"
    if arr.ndim == 2:
        raise ValueError(f"{name} contains {what} (first at row {first // arr.shape[1]})")
    raise ValueError(f"{name} contains {what} (first at index {first})")


def _as_X(X, name: str, what: str = "X", d: int | None = None) -> np.ndarray:
    """(n, d) float64 C-contiguous, n > 0, d > 0, finite."""
    arr = _as_float_array(X, f"{name}: {what}")
    if arr.ndim != 2:
        hint = " (use X.reshape(-1, 1) for one feature)" if arr.ndim == 1 else ""
        raise ValueError(f"{name}: {what} must be 2-D (n, d); got shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: {what} has no rows (n = 0)")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: {what} has no columns (d = 0)")
    if d is not None and arr.shape[1] != d:
        raise ValueError(f"{name}: {what} has {arr.shape[1]} columns but d = {d}")
    _check_finite(arr, f"{name}: {what}")
    return arr


def _as_Y(y, name: str, what: str = "y") -> np.ndarray:
    """(n, k) float64 C-contiguous (a 1-D y becomes one column), finite, k > 0."""
    arr = _as_float_array(y, f"{name}: {what}")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{name}: {what} must be 1-D (n,) or 2-D (n, k); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: {what} has no rows (n = 0)")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: {what} has no columns (k = 0)")
    _check_finite(arr, f"{name}: {what}")
    return arr


def _check_pair(X, y, name: str, xw: str = "X", yw: str = "y", d: int | None = None):
    X = _as_X(X, name, xw, d)
    y = _as_Y(y, name, yw)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: {xw} has {X.shape[0]} rows but {yw} has {y.shape[0]}")
    return X, y


def _check_labels(y: np.ndarray, name: str, what: str) -> None:
    """Classification targets: {-1, +1} for k = 1, one-hot (0/1 or -1/+1) for k > 1."""
    if y.shape[1] == 1:
        if not np.all(np.abs(y) == 1.0):
            raise ValueError(
                f"{name}: {what} must hold labels -1/+1 for classification with one output"
            )
        return
    zero_one = np.all((y == 0.0) | (y == 1.0))
    pm_one = np.all(np.abs(y) == 1.0)
    if not (zero_one or pm_one) or not np.all(np.sum(y == 1.0, axis=1) == 1):
        raise ValueError(
            f"{name}: {what} must be one-hot rows (a single 1, the rest 0 or all -1) "
            "for classification with k > 1 outputs"
        )


# ---------------------------------------------------------------------------------------
# the Dataset container
# ---------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Dataset:
    """A training set, an optional test split and an optional population sampler.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Training inputs; stored as float64, C-contiguous.
    y : array-like, shape (n, k) or (n,)
        Training targets; stored as float64 (n, k), always 2-D.
    X_test, y_test : array-like, optional
        Held-out split with the same d and k (both or neither).
    sampler : callable, optional
        ``sampler(rng, m) -> (X, y)`` drawing m fresh samples from the population
        (``rng`` a ``numpy.random.Generator``); needed for online SGD and for
        estimating the population risk. Use :meth:`sample` to call it with checks.
    name : str
        Short name, used in messages and reprs.
    task : {"regression", "classification"}
        For "classification", y is -1/+1 (k = 1) or one-hot rows (k > 1, 0/1 or
        -1/+1 values); this is checked.
    description : str
        One line saying what the data are (law, teacher, preprocessing).
    teacher : callable, optional
        The noiseless target function ``X -> (n, k)``, when there is one.
    info : dict
        Anything else worth keeping (parameters of the law, integer labels, ...).

    Attributes
    ----------
    n, d, k : int
        Number of training samples, input dimension, number of outputs.
    n_test : int
        Size of the test split (0 when absent).

    Raises
    ------
    TypeError, ValueError
        For non-numeric or malformed arrays, mismatched sizes, NaN/inf, unknown task,
        labels that do not fit the task, or a sampler that is not callable.

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset(np.zeros((5, 3)), np.ones(5), name="toy")
    >>> ds.n, ds.d, ds.k, ds.y.shape
    (5, 3, 1, (5, 1))
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    sampler: Callable[[np.random.Generator, int], tuple] | None = None
    name: str = "data"
    task: str = "regression"
    description: str = ""
    teacher: Callable[[np.ndarray], np.ndarray] | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.validate("Dataset")

    # -- checks ---------------------------------------------------------------------
    def validate(self, name: str = "data") -> "Dataset":
        """Check (and convert in place, without copying arrays already float64 and
        C-contiguous) every field; messages start with ``name``. Returns self."""
        if not isinstance(self.name, str):
            raise TypeError(f"{name}: name must be a string; got {type(self.name).__name__}")
        _check_choice(self.task, f"{name}: task", TASKS)
        self.X, self.y = _check_pair(self.X, self.y, name)
        if (self.X_test is None) != (self.y_test is None):
            raise ValueError(f"{name}: give both X_test and y_test, or neither")
        if self.X_test is not None:
            self.X_test, self.y_test = _check_pair(
                self.X_test, self.y_test, name, "X_test", "y_test", d=self.X.shape[1]
            )
            if self.y_test.shape[1] != self.y.shape[1]:
                raise ValueError(
                    f"{name}: y_test has {self.y_test.shape[1]} columns but y has {self.y.shape[1]}"
                )
        if self.task == "classification":
            _check_labels(self.y, name, "y")
            if self.y_test is not None:
                _check_labels(self.y_test, name, "y_test")
        if self.sampler is not None and not callable(self.sampler):
            raise TypeError(f"{name}: sampler must be callable as sampler(rng, m)")
        if self.teacher is not None and not callable(self.teacher):
            raise TypeError(f"{name}: teacher must be callable as teacher(X)")
        if not isinstance(self.info, dict):
            raise TypeError(f"{name}: info must be a dict")
        return self

    # -- sizes ----------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of training samples."""
        return self.X.shape[0]

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.X.shape[1]

    @property
    def k(self) -> int:
        """Number of outputs (columns of y)."""
        return self.y.shape[1]

    @property
    def n_test(self) -> int:
        """Size of the test split, 0 when there is none."""
        return 0 if self.X_test is None else self.X_test.shape[0]

    @property
    def has_test(self) -> bool:
        return self.X_test is not None

    @property
    def has_sampler(self) -> bool:
        return self.sampler is not None

    # -- fresh samples --------------------------------------------------------------
    def sample(self, m: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``m`` fresh samples from the population through :attr:`sampler`.

        Parameters
        ----------
        m : int
            Number of samples (> 0).
        rng : numpy.random.Generator or int or None
            Generator to draw from (advanced in place), or a seed for a new one.

        Returns
        -------
        X : ndarray, shape (m, d)
        y : ndarray, shape (m, k)

        Raises
        ------
        ValueError
            If the data set has no sampler or the sampler returns arrays of the wrong
            shape or non-finite values.
        """
        m = _check_int(m, "m")
        if self.sampler is None:
            raise ValueError(
                f"{self.name}: this data set has no sampler (fresh samples are needed for "
                "online SGD and the population risk); use a test split instead"
            )
        gen = _rng(rng, "rng")
        out = self.sampler(gen, m)
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(f"{self.name}: sampler must return a pair (X, y)")
        X, y = _check_pair(*out, f"{self.name}: sampler", d=self.d)
        if X.shape[0] != m:
            raise ValueError(f"{self.name}: sampler returned {X.shape[0]} rows; asked for {m}")
        if y.shape[1] != self.k:
            raise ValueError(f"{self.name}: sampler returned k = {y.shape[1]}; data have k = {self.k}")
        return X, y

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"task={self.task!r}", f"n={self.n}", f"d={self.d}", f"k={self.k}"]
        if self.has_test:
            parts.append(f"n_test={self.n_test}")
        parts.append(f"sampler={'yes' if self.has_sampler else 'no'}")
        if self.description:
            parts.append(f"description={self.description!r}")
        return f"Dataset({', '.join(parts)})"


def as_dataset(data, *, name: str = "data") -> Dataset:
    """Turn ``data`` into a validated :class:`Dataset`.

    Parameters
    ----------
    data : Dataset or (X, y)
        A Dataset (validated and returned as is) or a pair of array-likes, X of
        shape (n, d) and y of shape (n,) or (n, k). Arrays are converted to float64
        C-contiguous (a copy only when they are not already).
    name : str, default "data"
        Name of the argument, used at the start of every error message.

    Returns
    -------
    Dataset
        With task "regression" when built from a pair.

    Raises
    ------
    TypeError
        If ``data`` is neither a Dataset nor a pair, or holds non-numeric values.
    ValueError
        For arrays of the wrong number of dimensions, X and y with different numbers
        of rows, n = 0 or d = 0, or NaN / inf values (the message gives the first row).

    Examples
    --------
    >>> import numpy as np
    >>> ds = as_dataset((np.ones((4, 2)), [1, 2, 3, 4]))
    >>> ds.X.dtype, ds.y.shape
    (dtype('float64'), (4, 1))
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a string; got {type(name).__name__}")
    if isinstance(data, Dataset):
        return data.validate(name)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"{name}: expected a Dataset or a pair (X, y) of arrays; got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
        )
    X, y = _check_pair(data[0], data[1], name)
    return Dataset(X, y, name=name)


# ---------------------------------------------------------------------------------------
# input laws
# ---------------------------------------------------------------------------------------


def gaussian_inputs(rng, n: int, d: int) -> np.ndarray:
    """Draw n inputs from N(0, I_d).

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Generator (advanced in place) or seed.
    n, d : int
        Number of samples and dimension (both > 0).

    Returns
    -------
    ndarray, shape (n, d), float64, C-contiguous

    Examples
    --------
    >>> gaussian_inputs(0, 3, 2).shape
    (3, 2)
    """
    n = _check_int(n, "n")
    d = _check_int(d, "d")
    return _rng(rng, "rng").standard_normal((n, d))


def sphere_inputs(rng, n: int, d: int) -> np.ndarray:
    """Draw n inputs uniformly on the sphere of radius sqrt(d) in R^d.

    With this radius E[x x^T] = I_d, as for N(0, I_d) inputs, so <w, x> has variance
    |w|^2 (approximately N(0, |w|^2) for large d).

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Generator (advanced in place) or seed.
    n, d : int
        Number of samples and dimension (both > 0).

    Returns
    -------
    ndarray, shape (n, d), float64, C-contiguous
        Every row has Euclidean norm sqrt(d) (to rounding).

    Examples
    --------
    >>> import numpy as np
    >>> X = sphere_inputs(0, 4, 9)
    >>> np.allclose(np.linalg.norm(X, axis=1), 3.0)
    True
    """
    n = _check_int(n, "n")
    d = _check_int(d, "d")
    g = _rng(rng, "rng").standard_normal((n, d))
    norms = np.sqrt(np.einsum("ij,ij->i", g, g))
    # a zero row has probability 0; guard anyway so that no division warning escapes
    norms[norms == 0.0] = 1.0
    return g * (np.sqrt(d) / norms)[:, None]


_INPUT_FUNCS = {"gaussian": gaussian_inputs, "sphere": sphere_inputs}


# ---------------------------------------------------------------------------------------
# teachers
# ---------------------------------------------------------------------------------------


def _check_output(out, n: int, name: str) -> np.ndarray:
    """Output of a user function: (n,) or (n, k) numbers, finite -> (n, k) float64."""
    arr = _as_float_array(out, f"{name}: output")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] == 0:
        raise ValueError(
            f"{name}: output must have shape ({n},) or ({n}, k) for {n} inputs; got {arr.shape}"
        )
    _check_finite(arr, f"{name}: output")
    return arr


def _activation(activation, c0, name: str = "activation"):
    """(callable, label) from a name of NAMES or a callable u -> sigma(u)."""
    if callable(activation):
        label = getattr(activation, "__name__", type(activation).__name__)
        return activation, label
    if not isinstance(activation, str):
        raise TypeError(f"{name}: expected a name or a callable; got {type(activation).__name__}")
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

    def __call__(self, X) -> np.ndarray:
        name = type(self).__name__
        X = _as_X(X, name, "X", d=self.d)
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
    >>> t = SingleNeuron(5, "tanh", seed=1)
    >>> t(gaussian_inputs(0, 3, 5)).shape
    (3, 1)
    """

    def __init__(self, d, activation="relu", w=None, seed=0, *, normalize=True, c0=0.0):
        self.d = _check_int(d, "d")
        self.sigma, self.activation = _activation(activation, c0)
        self.c0, self._user_sigma = c0, callable(activation)
        self.seed = seed
        self.k = 1
        if w is None:
            w = _rng(seed).standard_normal(self.d)
            w = w / np.linalg.norm(w)
            self._given = False
        else:
            w = _as_float_array(w, "w")
            if w.shape != (self.d,):
                raise ValueError(f"w: expected shape ({self.d},); got {w.shape}")
            _check_finite(w, "w")
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

    def __init__(self, d, width, activation="relu", seed=0, *, a=None, W=None, normalize=True, c0=0.0):
        self.d = _check_int(d, "d")
        self.width = _check_int(width, "width")
        self.sigma, self.activation = _activation(activation, c0)
        self.c0, self._user_sigma = c0, callable(activation)
        self.seed = seed
        rng = _rng(seed)
        if W is None:
            W = _unit_rows(rng.standard_normal((self.width, self.d)), "W")
        else:
            W = _as_float_array(W, "W")
            if W.shape != (self.width, self.d):
                raise ValueError(f"W: expected shape ({self.width}, {self.d}); got {W.shape}")
            _check_finite(W, "W")
            if normalize:
                W = _unit_rows(W, "W")
        if a is None:
            a = rng.choice(np.array([-1.0, 1.0]), size=(self.width, 1))
        else:
            a = _as_float_array(a, "a")
            if a.ndim == 1:
                a = a.reshape(-1, 1)
            if a.ndim != 2 or a.shape[0] != self.width or a.shape[1] == 0:
                raise ValueError(f"a: expected shape ({self.width},) or ({self.width}, k); got {a.shape}")
            _check_finite(a, "a")
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
        self.d = _check_int(d, "d")
        self.seed = seed
        self.k = 1
        self._given = B is not None
        if B is None:
            G = _rng(seed).standard_normal((self.d, self.d))
            B = G @ G.T
            B = B / (np.sqrt(2.0) * np.linalg.norm(B))
        else:
            B = _as_float_array(B, "B")
            if B.shape != (self.d, self.d):
                raise ValueError(f"B: expected shape ({self.d}, {self.d}); got {B.shape}")
            _check_finite(B, "B")
        self.B = np.ascontiguousarray(0.5 * (B + B.T))
        self.b0 = -float(np.trace(self.B)) if b0 is None else _check_real(b0, "b0")

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

    def __init__(self, d, r, phi=None, seed=0, *, U=None):
        self.d = _check_int(d, "d")
        self.r = _check_int(r, "r")
        if self.r > self.d:
            raise ValueError(f"r: must be <= d = {self.d}; got {self.r}")
        if phi is not None and not callable(phi):
            raise TypeError(
                f"phi: expected a callable phi(Z) with Z of shape (n, r); got {type(phi).__name__}"
            )
        self.seed = seed
        self._default_phi = phi is None
        self.phi = _sum_tanh if phi is None else phi
        self.k = 1 if phi is None else None  # unknown for a user phi until called
        self._given = U is not None
        if U is None:
            Q, R = np.linalg.qr(_rng(seed).standard_normal((self.d, self.r)))
            # fix the signs so that U does not depend on LAPACK's sign convention
            U = Q * np.where(np.diag(R) < 0, -1.0, 1.0)
        else:
            U = _as_float_array(U, "U")
            if U.shape != (self.d, self.r):
                raise ValueError(f"U: expected shape ({self.d}, {self.r}); got {U.shape}")
            _check_finite(U, "U")
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

    def __init__(self, d, s, seed=0, *, beta=None):
        self.d = _check_int(d, "d")
        self.s = _check_int(s, "s")
        if self.s > self.d:
            raise ValueError(f"s: must be <= d = {self.d}; got {self.s}")
        self.seed = seed
        self.k = 1
        self._given = beta is not None
        if beta is None:
            rng = _rng(seed)
            support = np.sort(rng.choice(self.d, size=self.s, replace=False))
            beta = np.zeros(self.d)
            beta[support] = rng.choice(np.array([-1.0, 1.0]), size=self.s) / np.sqrt(self.s)
        else:
            beta = _as_float_array(beta, "beta")
            if beta.shape != (self.d,):
                raise ValueError(f"beta: expected shape ({self.d},); got {beta.shape}")
            _check_finite(beta, "beta")
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
        X = _as_X(X, "teacher", "X", d=self.d)
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
        d = _check_int(d, "d")
    if isinstance(teacher, Teacher):
        if d is not None and teacher.d is not None and teacher.d != d:
            raise ValueError(f"d: is {d} but the teacher has d = {teacher.d}")
        return teacher
    if not callable(teacher):
        raise TypeError(f"teacher: expected a callable g(X) -> y; got {type(teacher).__name__}")
    return _CallableTeacher(teacher, d)


# ---------------------------------------------------------------------------------------
# synthetic data sets
# ---------------------------------------------------------------------------------------


class TeacherSampler:
    """Population sampler of :func:`teacher_dataset`: X from the input law,
    y = teacher(X) + noise * N(0, 1). Stored in trajectory files as data (see
    :func:`sampler_spec`) when its teacher is a built-in one."""

    def __init__(self, teacher: Teacher, d: int, inputs: str, noise: float):
        self.teacher, self.d, self.inputs, self.noise = teacher, d, inputs, noise

    def __call__(self, rng, m):
        rng = _rng(rng, "rng")
        X = _INPUT_FUNCS[self.inputs](rng, m, self.d)
        y = self.teacher(X)
        if self.noise > 0.0:
            y = y + self.noise * rng.standard_normal(y.shape)
        return X, y

    def __repr__(self):
        return f"TeacherSampler({self.teacher!r}, inputs={self.inputs!r}, noise={self.noise})"

    def spec(self):
        teacher = self.teacher.spec()
        if teacher is None:
            return None
        return {"kind": "teacher", "d": self.d, "inputs": self.inputs, "noise": float(self.noise), "teacher": teacher}

    @classmethod
    def _from_spec(cls, s):
        d = _check_int(s["d"], "d")
        return cls(teacher_from_spec(s["teacher"]), d, _check_choice(s["inputs"], "inputs", INPUT_LAWS),
                   _check_real(s["noise"], "noise", lo=0.0))


def teacher_dataset(teacher, d, n_train, n_test=0, inputs="gaussian", noise=0.0, seed=0) -> Dataset:
    """Inputs from a law, labels from a teacher, plus label noise.

    x ~ N(0, I_d) (``inputs="gaussian"``) or uniform on the sphere of radius sqrt(d)
    (``"sphere"``), and y = teacher(x) + noise * eps with eps ~ N(0, I_k). The test
    split and the sampler draw from the same law, noise included (so their risk
    estimates the population risk, whose floor is noise^2/2 for the squared loss);
    the noiseless function is kept as ``Dataset.teacher``.

    Parameters
    ----------
    teacher : Teacher or callable
        A teacher of this module or any ``g(X) -> (n,) or (n, k)``.
    d : int
        Input dimension (must match ``teacher.d`` for built-in teachers).
    n_train : int
        Training samples (> 0).
    n_test : int, default 0
        Test samples (0: no test split).
    inputs : {"gaussian", "sphere"}, default "gaussian"
    noise : float, default 0.0
        Standard deviation of the additive Gaussian label noise (>= 0).
    seed : int, default 0
        Seed of the inputs and the noise (the teacher has its own seed).

    Returns
    -------
    Dataset
        task "regression", with a sampler.

    Examples
    --------
    >>> ds = teacher_dataset(SingleNeuron(10), 10, n_train=50, n_test=20, seed=1)
    >>> ds.X.shape, ds.y.shape, ds.X_test.shape
    ((50, 10), (50, 1), (20, 10))
    """
    d = _check_int(d, "d")
    t = as_teacher(teacher, d)
    n_train = _check_int(n_train, "n_train")
    n_test = _check_int(n_test, "n_test", minimum=0)
    inputs = _check_choice(inputs, "inputs", INPUT_LAWS)
    noise = _check_real(noise, "noise", lo=0.0)
    sampler = TeacherSampler(t, d, inputs, noise)
    rng = _rng(seed)
    X, y = sampler(rng, n_train)
    X_test, y_test = sampler(rng, n_test) if n_test > 0 else (None, None)
    return Dataset(
        X, y, X_test, y_test, sampler=sampler, name="teacher", task="regression",
        description=f"{inputs} inputs in d={d}, y = {t!r} + {noise:g} * N(0,1)",
        teacher=t, info={"inputs": inputs, "noise": noise, "seed": seed},
    )


def _balanced_signs(rng, m):
    """Labels +-1 with probability 1/2 each, shape (m, 1)."""
    return np.where(rng.random((m, 1)) < 0.5, -1.0, 1.0)


class MixtureSampler:
    """y = +-1 with probability 1/2, x | y ~ N(0, diag(scale(y))^2): the sampler of
    :func:`gaussian_mixture` and :func:`isotropic_gaussians`."""

    def __init__(self, sd_plus: np.ndarray, sd_minus: np.ndarray):
        self.sd_plus, self.sd_minus = sd_plus, sd_minus

    def __call__(self, rng, m):
        rng = _rng(rng, "rng")
        y = _balanced_signs(rng, m)
        g = rng.standard_normal((m, self.sd_plus.shape[0]))
        X = g * np.where(y > 0, self.sd_plus[None, :], self.sd_minus[None, :])
        return X, y

    def __repr__(self):
        return f"MixtureSampler(d={self.sd_plus.shape[0]})"

    def spec(self):
        return {"kind": "mixture", "sd_plus": self.sd_plus, "sd_minus": self.sd_minus}

    @classmethod
    def _from_spec(cls, s):
        sd_plus, sd_minus = _as_float_array(s["sd_plus"], "sd_plus"), _as_float_array(s["sd_minus"], "sd_minus")
        if sd_plus.ndim != 1 or sd_plus.shape != sd_minus.shape:
            raise ValueError(f"sd_plus, sd_minus: expected two vectors of one length; got {sd_plus.shape} "
                             f"and {sd_minus.shape}")
        _check_finite(sd_plus, "sd_plus")
        _check_finite(sd_minus, "sd_minus")
        return cls(sd_plus, sd_minus)


#: The teachers and samplers that trajectory files store as data, by the ``kind`` of their spec.
TEACHER_KINDS = {"single_neuron": SingleNeuron, "two_layer": TwoLayerTeacher, "quadratic": Quadratic,
                 "low_dim": LowDim, "sparse_linear": SparseLinear}
SAMPLER_KINDS = {"teacher": TeacherSampler, "mixture": MixtureSampler}


def sampler_spec(sampler) -> dict | None:
    """A sampler as data, or None when it is not one of :data:`SAMPLER_KINDS` built from
    data alone (a user function anywhere in it).

    The spec is a dict whose values are str, int, float, numpy arrays or nested specs,
    with a ``kind`` naming the class; :func:`sampler_from_spec` rebuilds an identical
    sampler (same draws, bit for bit) from it without running any stored code.
    """
    if type(sampler) not in SAMPLER_KINDS.values():
        return None
    return sampler.spec()


def _from_spec(registry, spec, what):
    if not isinstance(spec, dict):
        raise TypeError(f"{what}: expected a dict; got {type(spec).__name__}")
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


def sampler_from_spec(spec):
    """The sampler described by ``spec`` (see :func:`sampler_spec`); no code is run from it.

    Raises
    ------
    ValueError, TypeError
        When the spec names an unknown kind, lacks a field or holds a bad value.
    """
    return _from_spec(SAMPLER_KINDS, spec, "sampler spec")


def _delta_diagonal(delta, d):
    """Diagonal of Delta for gaussian_mixture (see its docstring)."""
    if isinstance(delta, numbers.Real) and not isinstance(delta, (bool, np.bool_)):
        delta = _check_real(delta, "delta", lo=0.0, hi=1.0, hi_open=True)
        return delta * np.where(np.arange(d) % 2 == 0, 1.0, -1.0)
    diag = _as_float_array(delta, "delta")
    if diag.shape != (d,):
        raise ValueError(f"delta: expected a float or an array of shape ({d},); got shape {diag.shape}")
    _check_finite(diag, "delta")
    if np.any(np.abs(diag) >= 1.0):
        raise ValueError(
            "delta: every diagonal entry must lie in (-1, 1) so that I +- Delta is positive definite"
        )
    return diag


def gaussian_mixture(d, n_train, n_test=0, delta=0.5, seed=0) -> Dataset:
    """Two centred Gaussians with covariances I + Delta and I - Delta ([GMMM19]_).

    y = +1 or -1 with probability 1/2 each, and x | y=+1 ~ N(0, I_d + Delta),
    x | y=-1 ~ N(0, I_d - Delta), with Delta diagonal. The classes differ only in
    their second moments, so no linear function of x separates them; the Bayes
    classifier is the quadratic sign(x^T A x + c) with
    A = diag(1/(1 - Delta_ii) - 1/(1 + Delta_ii)) / 2.

    Parameters
    ----------
    d : int
        Input dimension.
    n_train : int
        Training samples (> 0).
    n_test : int, default 0
        Test samples (0: no test split).
    delta : float or array-like of shape (d,), default 0.5
        A float 0 <= delta < 1 gives Delta = delta * diag(+1, -1, +1, -1, ...): the
        alternating signs make trace(Delta) = 0 (for even d), so the norm |x| carries
        (almost) no information and the classifier must find the directions. An array
        gives the diagonal of Delta, each entry in (-1, 1). GMMM19's asymptotics
        keep |Delta|_F = O(1), i.e. a float delta of order 1/sqrt(d)
        (``delta=c / np.sqrt(d)``); the default 0.5 is a much easier problem.
    seed : int, default 0

    Returns
    -------
    Dataset
        task "classification", k = 1, labels -1/+1, with a sampler;
        ``info["Delta"]`` is the diagonal of Delta.

    References
    ----------
    .. [GMMM19] B. Ghorbani, S. Mei, T. Misiakiewicz, A. Montanari, "Limitations of
       lazy training of two-layers neural networks", NeurIPS 2019, Section 3.

    Examples
    --------
    >>> ds = gaussian_mixture(20, n_train=100, n_test=50, seed=0)
    >>> import numpy as np
    >>> ds.task, ds.k, np.unique(ds.y).tolist()
    ('classification', 1, [-1.0, 1.0])
    """
    d = _check_int(d, "d")
    n_train = _check_int(n_train, "n_train")
    n_test = _check_int(n_test, "n_test", minimum=0)
    diag = _delta_diagonal(delta, d)
    sampler = MixtureSampler(np.sqrt(1.0 + diag), np.sqrt(1.0 - diag))
    rng = _rng(seed)
    X, y = sampler(rng, n_train)
    X_test, y_test = sampler(rng, n_test) if n_test > 0 else (None, None)
    desc = (
        f"GMMM mixture in d={d}: x|y=+1 ~ N(0, I+Delta), x|y=-1 ~ N(0, I-Delta), "
        f"Delta diagonal with |Delta|_F={np.linalg.norm(diag):.4g}"
    )
    return Dataset(
        X, y, X_test, y_test, sampler=sampler, name="gaussian_mixture", task="classification",
        description=desc, info={"Delta": diag, "seed": seed},
    )


def isotropic_gaussians(d, n_train, n_test=0, delta=0.5, seed=0) -> Dataset:
    """Centred isotropic Gaussians of Mei-Montanari-Nguyen ([MMN18]_, Section 2.1).

    y = +1 or -1 with probability 1/2 each, x | y=+1 ~ N(0, (1 + delta)^2 I_d) and
    x | y=-1 ~ N(0, (1 - delta)^2 I_d). The classes differ only in the norm of x.

    Parameters
    ----------
    d : int
        Input dimension.
    n_train : int
        Training samples (> 0).
    n_test : int, default 0
        Test samples (0: no test split).
    delta : float, default 0.5
        0 <= delta < 1.
    seed : int, default 0

    Returns
    -------
    Dataset
        task "classification", k = 1, labels -1/+1, with a sampler.

    References
    ----------
    .. [MMN18] S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape
       of two-layer neural networks", PNAS 115(33), 2018.

    Examples
    --------
    >>> ds = isotropic_gaussians(10, n_train=30, seed=0)
    >>> ds.X.shape, ds.y.shape
    ((30, 10), (30, 1))
    """
    d = _check_int(d, "d")
    n_train = _check_int(n_train, "n_train")
    n_test = _check_int(n_test, "n_test", minimum=0)
    delta = _check_real(delta, "delta", lo=0.0, hi=1.0, hi_open=True)
    sampler = MixtureSampler(np.full(d, 1.0 + delta), np.full(d, 1.0 - delta))
    rng = _rng(seed)
    X, y = sampler(rng, n_train)
    X_test, y_test = sampler(rng, n_test) if n_test > 0 else (None, None)
    return Dataset(
        X, y, X_test, y_test, sampler=sampler, name="isotropic_gaussians", task="classification",
        description=f"MMN isotropic Gaussians in d={d}: x|y=+-1 ~ N(0, (1 +- {delta:g})^2 I)",
        info={"delta": delta, "seed": seed},
    )


# ---------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------


def _preprocess_images(X_train, X_test, pixel_max):
    """pixels / pixel_max, centred by the training mean, rows scaled to norm sqrt(d)."""
    mean = (X_train / pixel_max).mean(axis=0)
    out = []
    for X in (X_train, X_test):
        if X is None:
            out.append(None)
            continue
        Z = X / pixel_max - mean
        norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
        if np.any(norms == 0.0):
            raise ValueError("an image equals the mean image and cannot be scaled to norm sqrt(d)")
        out.append(np.ascontiguousarray(Z * (np.sqrt(Z.shape[1]) / norms)[:, None]))
    return out


def _one_hot(labels, n_classes):
    Y = np.zeros((labels.shape[0], n_classes))
    Y[np.arange(labels.shape[0]), labels] = 1.0
    return Y


def digits(test_size=0.25, seed=0, one_hot=True) -> Dataset:
    """scikit-learn's handwritten digits (1797 images 8 x 8, 10 classes; no download).

    Preprocessing: pixels / 16 (to [0, 1]), centred by the mean image of the
    *training* split, then each row scaled to Euclidean norm sqrt(64) = 8, so the
    inputs have the same scale as the synthetic ones (E|x|^2 = d) and <w, x> = O(1)
    for w ~ N(0, I/d). The test split uses the training mean.

    Parameters
    ----------
    test_size : float, default 0.25
        Fraction of samples in the test split, 0 < test_size < 1; the split is
        stratified by class (``sklearn.model_selection.train_test_split``).
    seed : int, default 0
        Seed of the split.
    one_hot : bool, default True
        True: y has 10 columns, 1 for the class and 0 elsewhere (task
        "classification"; predict by argmax). False: y is the digit 0..9 as one
        float column (task "regression").

    Returns
    -------
    Dataset
        No sampler. ``info["labels"]`` and ``info["labels_test"]`` hold the integer
        classes.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.

    Examples
    --------
    >>> ds = digits()
    >>> ds.n + ds.n_test, ds.d, ds.k
    (1797, 64, 10)
    """
    test_size = _check_real(test_size, "test_size", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if not isinstance(one_hot, (bool, np.bool_)):
        raise TypeError(f"one_hot: expected a bool; got {type(one_hot).__name__}")
    seed_int = _check_int(seed, "seed", minimum=0)
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "digits() needs scikit-learn; install it with `pip install scikit-learn`"
        ) from exc
    raw = load_digits()
    X_all = np.asarray(raw.data, dtype=np.float64)
    labels_all = np.asarray(raw.target, dtype=np.int64)
    X_tr, X_te, l_tr, l_te = train_test_split(
        X_all, labels_all, test_size=test_size, random_state=seed_int, stratify=labels_all
    )
    X_tr, X_te = _preprocess_images(X_tr, X_te, 16.0)
    if one_hot:
        y_tr, y_te, task = _one_hot(l_tr, 10), _one_hot(l_te, 10), "classification"
    else:
        y_tr, y_te, task = l_tr.astype(np.float64), l_te.astype(np.float64), "regression"
    return Dataset(
        X_tr, y_tr, X_te, y_te, name="digits", task=task,
        description="sklearn digits 8x8: pixels/16, centred, rows to norm 8; "
        + ("one-hot 0/1 targets" if one_hot else "digit value as target"),
        info={"labels": l_tr, "labels_test": l_te, "seed": seed_int, "test_size": test_size},
    )


# IDX format: 0x00 0x00, a type code, the number of dimensions, then one big-endian
# uint32 per dimension, then the data in C order, big-endian.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), uncompressed or gzip-compressed.

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, and one
    big-endian uint32 per dimension; the data follow in C order, big-endian.
    Compression is recognised by the gzip magic bytes, not the file name.

    Parameters
    ----------
    path : str or os.PathLike
        File to read (e.g. ``train-images-idx3-ubyte.gz``).

    Returns
    -------
    ndarray
        Of the stored shape and type, in native byte order (e.g. uint8 (60000, 28, 28)
        for MNIST training images).

    Raises
    ------
    ValueError
        For a bad magic number (non-zero first bytes, unknown type code, zero
        dimensions), a truncated file or a size that does not match the header, or a
        corrupt gzip stream.

    References
    ----------
    Y. LeCun, C. Cortes, C. Burges, "The MNIST database of handwritten digits"
    (format description), and [LeCun98]_.
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path: expected a file path; got {type(path).__name__}")
    where = os.fsdecode(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"load_idx: {where}: corrupt or truncated gzip data ({exc})") from None
    if len(raw) < 4:
        raise ValueError(f"load_idx: {where}: truncated file ({len(raw)} bytes, no IDX header)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_TYPES or ndim == 0:
        raise ValueError(
            f"load_idx: {where}: bad magic number 0x{raw[:4].hex()} (expected 0x0000 + a type "
            f"code in {{{', '.join(f'0x{c:02x}' for c in _IDX_TYPES)}}} + ndim >= 1)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"load_idx: {where}: truncated file (header needs {header} bytes, got {len(raw)})")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got < expected:
        raise ValueError(
            f"load_idx: {where}: truncated file (shape {shape} needs {expected} data bytes, got {got})"
        )
    if got > expected:
        raise ValueError(
            f"load_idx: {where}: size mismatch (shape {shape} needs {expected} data bytes, "
            f"file has {got})"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _idx_pair(images_path, labels_path, what):
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    if images.ndim < 2:
        raise ValueError(f"mnist: {what} images must have at least 2 dimensions; got shape {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"mnist: {what} labels must be 1-D; got shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"mnist: {what} has {images.shape[0]} images but {labels.shape[0]} labels"
        )
    if labels.dtype.kind not in "iu" or labels.min() < 0:
        raise ValueError(f"mnist: {what} labels must be non-negative integers")
    return images.reshape(images.shape[0], -1).astype(np.float64), labels.astype(np.int64)


def mnist(images_path, labels_path, test_images_path=None, test_labels_path=None, *,
          n_train=None, n_test=None, one_hot=True, n_classes=10, pixel_max=255.0) -> Dataset:
    """MNIST (or Fashion-MNIST, ...) from user-supplied IDX files.

    Images are flattened to rows and preprocessed like :func:`digits`: pixels /
    ``pixel_max``, centred by the training mean image, rows scaled to norm sqrt(d)
    (sqrt(784) = 28 for MNIST). Targets are one-hot rows with values 0/1.

    Parameters
    ----------
    images_path, labels_path : str or os.PathLike
        Training images (n, h, w) and labels (n,) in IDX format (e.g.
        ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``).
    test_images_path, test_labels_path : str or os.PathLike, optional
        Test split (both or neither).
    n_train, n_test : int, optional
        Keep only the first n_train / n_test samples (default: all).
    one_hot : bool, default True
        False: y is the class index as one float column (task "regression").
    n_classes : int, default 10
    pixel_max : float, default 255.0

    Returns
    -------
    Dataset
        No sampler; ``info["labels"]`` (and ``info["labels_test"]``) hold the classes.

    Raises
    ------
    ValueError
        For unreadable IDX files (see :func:`load_idx`), images and labels of
        different lengths, or labels >= n_classes.
    """
    if (test_images_path is None) != (test_labels_path is None):
        raise ValueError("mnist: give both test_images_path and test_labels_path, or neither")
    n_classes = _check_int(n_classes, "n_classes", minimum=2)
    pixel_max = _check_real(pixel_max, "pixel_max", lo=0.0, lo_open=True)
    if not isinstance(one_hot, (bool, np.bool_)):
        raise TypeError(f"one_hot: expected a bool; got {type(one_hot).__name__}")
    if n_train is not None:
        n_train = _check_int(n_train, "n_train")
    if n_test is not None:
        n_test = _check_int(n_test, "n_test")
    X_tr, l_tr = _idx_pair(images_path, labels_path, "training set")
    if n_train is not None:
        X_tr, l_tr = X_tr[:n_train], l_tr[:n_train]
    X_te = l_te = None
    if test_images_path is not None:
        X_te, l_te = _idx_pair(test_images_path, test_labels_path, "test set")
        if X_te.shape[1] != X_tr.shape[1]:
            raise ValueError(
                f"mnist: test images have {X_te.shape[1]} pixels but training images {X_tr.shape[1]}"
            )
        if n_test is not None:
            X_te, l_te = X_te[:n_test], l_te[:n_test]
    for lab, what in ((l_tr, "training"), (l_te, "test")):
        if lab is not None and lab.max() >= n_classes:
            raise ValueError(f"n_classes: is {n_classes} but the {what} labels reach {lab.max()}")
    X_tr, X_te = _preprocess_images(X_tr, X_te, pixel_max)
    if one_hot:
        y_tr = _one_hot(l_tr, n_classes)
        y_te = None if l_te is None else _one_hot(l_te, n_classes)
        task = "classification"
    else:
        y_tr = l_tr.astype(np.float64)
        y_te = None if l_te is None else l_te.astype(np.float64)
        task = "regression"
    info: dict[str, Any] = {"labels": l_tr}
    if l_te is not None:
        info["labels_test"] = l_te
    return Dataset(
        X_tr, y_tr, X_te, y_te, name="mnist", task=task,
        description=f"IDX images {os.fsdecode(images_path)}: pixels/{pixel_max:g}, centred, "
        f"rows to norm sqrt({X_tr.shape[1]})",
        info=info,
    )
