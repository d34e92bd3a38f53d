"""Synthetic data sets: inputs from a law labelled by a teacher, and the Gaussian
classification problems of [GMMM19]_ and [MMN18]_; their samplers, stored in trajectory files
as data (:func:`sampler_spec`, :func:`sampler_from_spec`), and their ``[data]`` kinds.

References
----------
.. [GMMM19] B. Ghorbani, S. Mei, T. Misiakiewicz, A. Montanari, "Limitations of lazy
   training of two-layers neural networks", NeurIPS 2019, arXiv:1906.08899.
.. [MMN18] S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape of
   two-layer neural networks", PNAS 115(33), 2018, arXiv:1804.06561.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from .. import _activations
from .._options import Options, option
from .._validation import as_array, as_generator, check_choice, check_float, check_int
from ._container import Dataset
from ._registry import data_kind
from .inputs import INPUT_LAWS, INPUTS
from .teachers import TEACHER_KINDS, Teacher, _from_spec, as_teacher, teacher_from_spec

__all__ = ["TeacherSampler", "MixtureSampler", "teacher_dataset", "gaussian_mixture", "isotropic_gaussians",
           "sampler_spec", "sampler_from_spec", "SAMPLER_KINDS"]


class TeacherSampler:
    """Population sampler of :func:`teacher_dataset`: X from the input law,
    y = teacher(X) + noise * N(0, 1). Stored in trajectory files as data (see
    :func:`sampler_spec`) when its teacher is a built-in one."""

    def __init__(self, teacher: Teacher, d: int, inputs: str, noise: float):
        self.teacher, self.d, self.inputs, self.noise = teacher, d, inputs, noise

    def __call__(self, rng, m):
        rng = as_generator(rng, "rng")
        X = INPUTS[self.inputs](rng, m, self.d)
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
        d = check_int(s["d"], "d")
        return cls(teacher_from_spec(s["teacher"]), d, check_choice(s["inputs"], "inputs", INPUT_LAWS),
                   check_float(s["noise"], "noise", minimum=0.0))


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
    >>> from mfntk.datasets import SingleNeuron
    >>> ds = teacher_dataset(SingleNeuron(10), 10, n_train=50, n_test=20, seed=1)
    >>> ds.X.shape, ds.y.shape, ds.X_test.shape
    ((50, 10), (50, 1), (20, 10))
    """
    d = check_int(d, "d")
    t = as_teacher(teacher, d)
    n_train = check_int(n_train, "n_train")
    n_test = check_int(n_test, "n_test", minimum=0)
    inputs = check_choice(inputs, "inputs", INPUT_LAWS)
    noise = check_float(noise, "noise", minimum=0.0)
    sampler = TeacherSampler(t, d, inputs, noise)
    rng = as_generator(seed)
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
        rng = as_generator(rng, "rng")
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
        sd_plus = as_array(s["sd_plus"], "sd_plus", shape=(None,))
        sd_minus = as_array(s["sd_minus"], "sd_minus", shape=sd_plus.shape)
        return cls(sd_plus, sd_minus)



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
        delta = check_float(delta, "delta", minimum=0.0, maximum=1.0, strict_maximum=True)
        return delta * np.where(np.arange(d) % 2 == 0, 1.0, -1.0)
    diag = as_array(delta, "delta")
    if diag.shape != (d,):
        raise ValueError(f"delta: expected a float or an array of shape ({d},), got shape {diag.shape}")
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
    d = check_int(d, "d")
    n_train = check_int(n_train, "n_train")
    n_test = check_int(n_test, "n_test", minimum=0)
    diag = _delta_diagonal(delta, d)
    sampler = MixtureSampler(np.sqrt(1.0 + diag), np.sqrt(1.0 - diag))
    rng = as_generator(seed)
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
    d = check_int(d, "d")
    n_train = check_int(n_train, "n_train")
    n_test = check_int(n_test, "n_test", minimum=0)
    delta = check_float(delta, "delta", minimum=0.0, maximum=1.0, strict_maximum=True)
    sampler = MixtureSampler(np.full(d, 1.0 + delta), np.full(d, 1.0 - delta))
    rng = as_generator(seed)
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


# ---------------------------------------------------------------------------------------
# the [data] kinds of these data sets
# ---------------------------------------------------------------------------------------


def _teacher_data(teacher, d, n_train, n_test, inputs, noise, seed, teacher_seed, **keys) -> Dataset:
    """:func:`teacher_dataset` with the built-in teacher ``teacher``, whose constructor takes the
    keys named by its ``config_keys``."""
    cls = TEACHER_KINDS[teacher]
    made = cls(d, seed=teacher_seed, **{arg: keys[key] for arg, key in cls.config_keys.items()})
    return teacher_dataset(made, d, n_train, n_test, inputs=inputs, noise=noise, seed=seed)


@data_kind("teacher", build=_teacher_data)
@dataclasses.dataclass(frozen=True)
class TeacherData(Options):
    """Inputs from a law labelled by a built-in teacher, plus Gaussian label noise (regression)."""

    section = "data"

    teacher: str = option("single_neuron", "choice", "The teacher: SingleNeuron, TwoLayerTeacher, Quadratic, "
                          "LowDim or SparseLinear of mfntk.datasets.", choices=tuple(TEACHER_KINDS))
    d: int = option(20, "int", "Input dimension.", minimum=1)
    n_train: int = option(256, "int", "Training samples.", minimum=1)
    n_test: int = option(1000, "int", "Test samples (0: none; a run then draws its test set from the "
                         "sampler).", minimum=0)
    inputs: str = option("gaussian", "choice", "Input law: N(0, I_d), or uniform on the sphere of radius "
                         "sqrt(d).", choices=INPUT_LAWS)
    noise: float = option(0.0, "float", "Standard deviation of the Gaussian label noise.", minimum=0.0)
    seed: int = option(1, "int", "Seed of the inputs and the noise.", minimum=0)
    teacher_seed: int = option(0, "int", "Seed of the teacher's parameters.", minimum=0)
    activation: str = option("relu", "choice", "Activation of single_neuron and two_layer.",
                             choices=_activations.NAMES)
    teacher_width: int = option(4, "int", "Neurons of two_layer.", minimum=1)
    r: int = option(2, "int", "Dimension of the relevant subspace of low_dim (r <= d).", minimum=1)
    s: int = option(3, "int", "Non-zero coefficients of sparse_linear (s <= d).", minimum=1)


@dataclasses.dataclass(frozen=True)
class _TwoGaussians(Options):
    """The options shared by the two-Gaussian classification problems."""

    section = "data"

    d: int = option(20, "int", "Input dimension.", minimum=1)
    n_train: int = option(256, "int", "Training samples.", minimum=1)
    n_test: int = option(1000, "int", "Test samples (0: none).", minimum=0)
    seed: int = option(0, "int", "Seed of the samples.", minimum=0)


@data_kind("gaussian_mixture", build=gaussian_mixture)
@dataclasses.dataclass(frozen=True)
class MixtureData(_TwoGaussians):
    """Two centred Gaussians with covariances I + Delta and I - Delta, labels +-1 (GMMM19)."""

    delta: float = option(0.5, "float", "Delta = delta diag(+1, -1, +1, ...), 0 <= delta < 1.", minimum=0.0)


@data_kind("isotropic_gaussians", build=isotropic_gaussians)
@dataclasses.dataclass(frozen=True)
class IsotropicData(_TwoGaussians):
    """Centred Gaussians of covariances (1 + delta)^2 I and (1 - delta)^2 I, labels +-1 (MMN18)."""

    delta: float = option(0.5, "float", "0 <= delta < 1.", minimum=0.0)
