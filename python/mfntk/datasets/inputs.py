"""Input laws: x ~ N(0, I_d) and x uniform on the sphere of radius sqrt(d) (both E[x x^T] = I_d)."""

from __future__ import annotations

import numpy as np

from .._validation import as_generator, check_int

__all__ = ["gaussian_inputs", "sphere_inputs", "INPUTS", "INPUT_LAWS"]


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
    n = check_int(n, "n")
    d = check_int(d, "d")
    return as_generator(rng, "rng").standard_normal((n, d))


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
    n = check_int(n, "n")
    d = check_int(d, "d")
    g = as_generator(rng, "rng").standard_normal((n, d))
    norms = np.sqrt(np.einsum("ij,ij->i", g, g))
    # a zero row has probability 0; guard anyway so that no division warning escapes
    norms[norms == 0.0] = 1.0
    return g * (np.sqrt(d) / norms)[:, None]


#: The input laws by the name that ``inputs=`` accepts: ``law(rng, n, d) -> (n, d)``.
INPUTS = {"gaussian": gaussian_inputs, "sphere": sphere_inputs}
#: Names of the input laws accepted by ``inputs=``.
INPUT_LAWS = tuple(INPUTS)
