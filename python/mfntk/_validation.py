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
#: Largest thread count accepted (OpenMP takes an int; no machine has more cores).
MAX_THREADS = 2 ** 16
#: Largest seed accepted: seeds are stored as int64 and the core's counters take uint64.
MAX_SEED = 2 ** 63 - 1


def resolve_dtype(dtype, name="dtype"):
    """Map "float64"/"float32" (or the numpy types) to a numpy dtype."""
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in DTYPES:
        raise ValueError(f"{name}: unsupported dtype {dtype!r}; expected 'float64' or 'float32'")
    return np.dtype(DTYPES[key])


def resolve_threads(threads, name="threads"):
    """None means every core this process may use; otherwise an int in [1, MAX_THREADS]."""
    if threads is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
            return max(1, os.cpu_count() or 1)
    return check_int(threads, name, minimum=1, maximum=MAX_THREADS)


def check_int(value, name, minimum=1, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: must be <= {maximum}, got {value}")
    return int(value)


def check_float(value, name, minimum=None, strict=False, allow_inf=False, maximum=None, strict_maximum=False):
    """A real number as a float; ``strict`` / ``strict_maximum`` exclude the bounds themselves."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if np.isnan(value) or (np.isinf(value) and not allow_inf):
        raise ValueError(f"{name}: must be finite, got {value}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        relation = ">" if strict else ">="
        raise ValueError(f"{name}: must be {relation} {minimum}, got {value}")
    if maximum is not None and (value > maximum or (strict_maximum and value == maximum)):
        relation = "<" if strict_maximum else "<="
        raise ValueError(f"{name}: must be {relation} {maximum}, got {value}")
    return value


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__}")
    return bool(value)


def check_str(value, name):
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def check_path(value, name):
    """A file path (str, bytes or os.PathLike), returned as given."""
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{name}: expected a file path, got {type(value).__name__}")
    return value


def as_generator(seed, name="seed"):
    """``np.random.default_rng(seed)`` with a checked seed.

    A Generator is used as is (and advanced by the caller's draws); an int >= 0 or a
    SeedSequence seeds a new one; None draws fresh entropy from the OS (not reproducible).
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name}: expected an int, a numpy Generator or None, got {type(seed).__name__}")
    return np.random.default_rng(check_int(seed, name, minimum=0, maximum=MAX_SEED))


def check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def _numeric(x, name):
    """``np.asarray(x)`` of real numbers (bool, int, float; an object array only of real numbers)."""
    if x is None:
        raise TypeError(f"{name}: expected a numeric array, got None")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be converted to an array ({exc})") from None
    if np.iscomplexobj(arr):
        raise TypeError(f"{name}: complex values are not supported")
    if arr.dtype == object and arr.size and all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in arr.flat):
        return arr.astype(np.float64)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def check_finite(arr, name):
    """ValueError naming the first non-finite value (its row for a matrix, its index otherwise)."""
    bad = ~np.isfinite(arr)
    if not bad.any():
        return arr
    first = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
    what = "NaN" if np.isnan(arr[first]) else "inf"
    if arr.ndim == 0:
        raise ValueError(f"{name}: is {what}")
    where = f"in row {first[0]}" if arr.ndim == 2 else f"at index {first[0] if arr.ndim == 1 else first}"
    raise ValueError(f"{name}: contains {what} (first non-finite value {where})")


def _show_shape(shape):
    parts = ["k" if s is None else str(s) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def as_array(x, name, shape=None, dtype=np.float64):
    """Convert numeric data to a finite C-contiguous array of `dtype` (no copy when it already is one).

    ``shape``, when given, is a tuple or a list of allowed tuples (None: any size >= 1 along that
    axis, shown as k).
    """
    arr = _numeric(x, name)
    if shape is not None:
        shapes = shape if isinstance(shape, list) else [shape]
        if not any(arr.ndim == len(s) and all(n >= 1 if w is None else w == n for w, n in zip(s, arr.shape))
                   for s in shapes):
            raise ValueError(f"{name}: expected shape {' or '.join(map(_show_shape, shapes))}, got {arr.shape}")
    return check_finite(np.ascontiguousarray(arr, dtype=dtype), name)


_NOTED = set()   # the (argument, from, to) precision losses already reported in this process


def _note_once(name, source, target):
    """Warn that ``name`` loses precision (``source`` -> ``target``), once per process and argument:
    a float32 network computes in float32 whatever it is given."""
    key = (name, np.dtype(source).name, np.dtype(target).name)
    if key in _NOTED:
        return
    _NOTED.add(key)
    warnings.warn(f"{name}: converted from {key[1]} to {key[2]} (a copy, rounded to the network's precision; "
                  "said once per process)", UserWarning, stacklevel=4)


def as_matrix(x, name, dtype=np.float64, columns=None, allow_vector=False, copy_note=False):
    """Convert to a finite C-contiguous 2-D array of `dtype`.

    A 1-D input becomes a column when `allow_vector`. When `copy_note` is set and the
    conversion rounds a float array to a lower precision, a UserWarning says so, once per
    process and argument name (a float32 array given to a float64 computation is exact).
    """
    arr = _numeric(x, name)
    if arr.ndim == 1 and allow_vector:
        arr = arr[:, None]
    if arr.ndim != 2:
        if allow_vector:
            raise ValueError(f"{name}: expected a 1-D or 2-D array, got shape {arr.shape}")
        hint = " (x.reshape(-1, 1) makes a vector one column)" if arr.ndim == 1 else ""
        raise ValueError(f"{name}: expected a 2-D array, got shape {arr.shape}{hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: must not be empty, got shape {arr.shape}")
    if columns is not None and arr.shape[1] != columns:
        raise ValueError(f"{name}: expected {columns} columns, got shape {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=dtype)
    if copy_note and np.issubdtype(arr.dtype, np.floating) and arr.dtype.itemsize > out.dtype.itemsize:
        _note_once(name, arr.dtype, out.dtype)
    return check_finite(out, name)
