"""Argument checks shared by every public entry point.

Every check raises TypeError or ValueError with a message that starts with the argument's
name, so a user sees at once which argument is wrong and why.
"""
from __future__ import annotations

import numbers
import os
import warnings

import numpy as np

DTYPES = {"float64": np.float64, "float32": np.float32}


def resolve_dtype(dtype, name="dtype"):
    """Map "float64"/"float32" (or the numpy types) to a numpy dtype."""
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in DTYPES:
        raise ValueError(f"{name}: unsupported dtype {dtype!r}; expected 'float64' or 'float32'")
    return np.dtype(DTYPES[key])


def resolve_threads(threads, name="threads"):
    """None means every core this process may use; otherwise a positive int."""
    if threads is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
            return max(1, os.cpu_count() or 1)
    return check_int(threads, name, minimum=1)


def check_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def check_float(value, name, minimum=None, strict=False, allow_inf=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if np.isnan(value) or (np.isinf(value) and not allow_inf):
        raise ValueError(f"{name}: must be finite, got {value}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        relation = ">" if strict else ">="
        raise ValueError(f"{name}: must be {relation} {minimum}, got {value}")
    return value


def check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def as_matrix(x, name, dtype=np.float64, columns=None, allow_vector=False, copy_note=False):
    """Convert to a finite C-contiguous 2-D array of `dtype`.

    A 1-D input becomes a column when `allow_vector`. When `copy_note` is set and the
    conversion had to copy a float array (other dtype or layout), a UserWarning says so.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be converted to an array ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name}: complex values are not supported")
    if arr.ndim == 1 and allow_vector:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: must not be empty, got shape {arr.shape}")
    if columns is not None and arr.shape[1] != columns:
        raise ValueError(f"{name}: expected {columns} columns, got shape {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=dtype)
    if copy_note and np.issubdtype(arr.dtype, np.floating) and arr.dtype != out.dtype:
        warnings.warn(f"{name}: converted from {arr.dtype} to {out.dtype} (a copy)", UserWarning, stacklevel=3)
    bad = ~np.isfinite(out)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        what = "NaN" if np.isnan(out).any() else "inf"
        raise ValueError(f"{name}: contains {what} (first non-finite value in row {row})")
    return out
