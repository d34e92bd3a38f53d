"""The :class:`Dataset` container and :func:`as_dataset` (conventions: see :mod:`mfntk.datasets`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._validation import as_generator, as_matrix, check_choice, check_int, check_str

__all__ = ["Dataset", "as_dataset", "TASKS"]

#: Values of :attr:`Dataset.task`.
TASKS = ("regression", "classification")


def _check_pair(X, y, name: str, xw: str = "X", yw: str = "y", d: int | None = None):
    """X (n, d) and y (n, k) (a 1-D y becomes one column): float64, C-contiguous, finite, non-empty."""
    X = as_matrix(X, f"{name}: {xw}", columns=d)
    y = as_matrix(y, f"{name}: {yw}", allow_vector=True)
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
        check_str(self.name, f"{name}: name")
        check_choice(self.task, f"{name}: task", TASKS)
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
        m = check_int(m, "m")
        if self.sampler is None:
            raise ValueError(
                f"{self.name}: this data set has no sampler (fresh samples are needed for "
                "online SGD and the population risk); use a test split instead"
            )
        gen = as_generator(rng, "rng")
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
    check_str(name, "name")
    if isinstance(data, Dataset):
        return data.validate(name)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"{name}: expected a Dataset or a pair (X, y) of arrays; got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
        )
    X, y = _check_pair(data[0], data[1], name)
    return Dataset(X, y, name=name)
