"""Data sets, input laws and teachers for mfntk.

Everything the simulations train on (SPEC section 8):

* the :class:`Dataset` container and :func:`as_dataset`, which turns a pair ``(X, y)``
  into one with validation (``_container.py``);
* input laws :func:`gaussian_inputs` (N(0, I_d)) and :func:`sphere_inputs` (uniform on
  the sphere of radius sqrt(d)) (``inputs.py``);
* teachers :class:`SingleNeuron`, :class:`TwoLayerTeacher`, :class:`Quadratic`,
  :class:`LowDim`, :class:`SparseLinear`, or any Python callable (``teachers.py``), and
  :func:`teacher_dataset` which labels random inputs with one of them (``synthetic.py``);
* the classification problems :func:`gaussian_mixture` (Ghorbani-Mei-Misiakiewicz-
  Montanari) and :func:`isotropic_gaussians` (Mei-Montanari-Nguyen) (``synthetic.py``);
* real data: :func:`digits` (scikit-learn, no download), :func:`mnist` / :func:`load_idx`
  for user-supplied MNIST-format IDX files, and :func:`npz` for arrays in a NumPy archive
  (``real.py``);
* the registry :data:`DATA_KINDS` of the kinds a ``[data]`` table of a configuration file may
  name, each declared once with its options next to the functions that make it, and
  :func:`from_config` which builds a data set from such a table (``_registry.py``).

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
* Arguments are checked by :mod:`mfntk._validation`: every message starts with the
  argument's name.

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

from ._container import TASKS, Dataset, as_dataset
from ._registry import DATA_KINDS, DEFAULT_KIND, DataKind, data_kind, describe_data_kinds, from_config
from .inputs import INPUT_LAWS, INPUTS, gaussian_inputs, sphere_inputs
from .teachers import (
    TEACHER_KINDS, LowDim, Quadratic, SingleNeuron, SparseLinear, Teacher, TwoLayerTeacher, as_teacher,
    teacher_from_spec,
)
from .synthetic import (
    SAMPLER_KINDS, MixtureSampler, TeacherSampler, gaussian_mixture, isotropic_gaussians, sampler_from_spec,
    sampler_spec, teacher_dataset,
)
from .real import digits, load_idx, mnist, npz

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
    # the registry of [data] kinds
    "DATA_KINDS",
    "DataKind",
    "data_kind",
    "describe_data_kinds",
    "from_config",
    "npz",
]
