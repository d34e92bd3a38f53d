"""Argument checks shared by every public entry point.

Every check raises TypeError or ValueError with a message that starts with the argument's
name, so a user sees at once which argument is wrong and why. Sizes are checked the same
way before anything large is allocated: :func:`check_memory` raises MemoryError with the
estimate and the memory available (:func:`available_memory`).
"""
from __future__ import annotations

import math
import numbers
import os
import warnings

import numpy as np

DTYPES = {"float64": np.float64, "float32": np.float32}
#: Largest thread count accepted: beyond a few thousand, creating the threads fails inside
#: OpenMP itself (tens of thousands abort the process), and no node has that many cores.
MAX_THREADS = 1024
#: Largest seed accepted: seeds are stored as int64 and the core's counters take uint64.
MAX_SEED = 2 ** 63 - 1


def resolve_dtype(dtype, name="dtype"):
    """Map "float64"/"float32" (or the numpy types) to a numpy dtype."""
    try:
        key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    except TypeError:  # not a dtype at all (numpy's message would not name the argument)
        raise TypeError(f"{name}: expected 'float64' or 'float32', got {type(dtype).__name__} {dtype!r}") from None
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


# ---------------------------------------------------------------------------------------------
# memory: sizes checked before allocating
# ---------------------------------------------------------------------------------------------
def available_memory():
    """Bytes of memory this process can still use (MemAvailable, or the cgroup's limit), or None."""
    free = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except OSError:
        return None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as fh:
                limit = fh.read().strip()
            with open(usage_file) as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit():
            free = min(free, int(limit) - usage) if free is not None else int(limit) - usage
        break
    return free


def _address_space_left():
    """Bytes of address space left under RLIMIT_AS (``ulimit -v``), or None without such a limit."""
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return soft - int(line.split()[1]) * 1024
    except (ImportError, OSError, ValueError):
        return None
    return None


def memory_left():
    """Bytes this process can still allocate: the smaller of :func:`available_memory` and the
    address space left under RLIMIT_AS, or None when neither is known."""
    limits = [v for v in (available_memory(), _address_space_left()) if v is not None]
    return min(limits) if limits else None


def format_bytes(nbytes):
    """A byte count for a message: '512 MiB', '3.2 GiB', '2.1e+06 GiB'."""
    nbytes = float(nbytes)
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} bytes"


def check_memory(nbytes, name, what):
    """MemoryError, before allocating, when about ``nbytes`` bytes do not fit in the available memory:
    ``"{name}: {what} would need about 12.3 GiB of memory; only 7.9 GiB are available"``.

    ``name`` is the argument whose size drives the allocation (the message starts with it) and
    ``what`` says what would be allocated; the message gives the estimate and the memory
    available. Sizes are computed in Python integers or floats, so no product overflows.
    A limit on the address space (``ulimit -v``, RLIMIT_AS) counts too. Nothing is checked where
    the available memory is unknown (no /proc/meminfo).

    Returns
    -------
    float
        The estimate, in bytes.
    """
    try:
        need = float(nbytes)
    except OverflowError:  # an integer beyond any float: a size no machine has
        need = math.inf
    free = memory_left()
    if free is not None and need > free:
        raise MemoryError(f"{name}: {what} would need about {format_bytes(need)} of memory; only "
                          f"{format_bytes(max(free, 0))} are available")
    return need


def _nbytes(shape, itemsize):
    return float(math.prod(int(s) for s in shape)) * int(itemsize)


def check_network_memory(width, d, outputs, bias, dtype):
    """A network's particles N (k + d [+ 1]): drawn in float64, kept in ``dtype`` (the name is width)."""
    params = int(width) * (int(outputs) + int(d) + (1 if bias else 0))
    return check_memory(params * (8 + np.dtype(dtype).itemsize), "width",
                        f"a network of width {width} with d = {d}, {outputs} output(s) ({params} parameters)")


def check_gram_memory(X, X2=None, matrices=1, per_row=0, name="X"):
    """Kernel matrices K(X, X2): ``matrices`` of shape (n1, n2) in X's dtype, and ``per_row`` bytes
    per row of X and X2 (tiles, series coefficients)."""
    n1 = X.shape[0]
    n2 = n1 if X2 is None else X2.shape[0]
    nbytes = matrices * _nbytes((n1, n2), X.dtype.itemsize) + float(n1 + (0 if X2 is None else n2)) * per_row
    return check_memory(nbytes, name, f"the kernel matrix K(X{'' if X2 is None else ', X2'}) of shape ({n1}, {n2}) "
                                      f"in {X.dtype.name}")


def check_eigh_memory(n, name, what, matrices=5):
    """A dense n x n float64 matrix and its eigendecomposition (a copy, the eigenvectors and
    LAPACK's syevd workspace of about 2 n^2): ``matrices`` n x n matrices in all."""
    return check_memory(matrices * _nbytes((n, n), 8), name, f"{what} ({n} x {n} in float64, with its "
                                                             "eigendecomposition)")


def check_simulation_memory(net, data, options, stages):
    """A run of the dynamics: the model's copies, the state vector and the integrator's ``stages``
    stage buffers (plus one for multi-stage methods), the engine's own buffers and cache (the
    model's ``engine_memory``: for a TwoLayer the pre-activation cache when the n N
    pre-activations fit in ``options.cache_mb``), the data in the model's dtype and the
    recorder's probe kernels (the name is net)."""
    s = np.dtype(net.dtype).itemsize
    P, d, k = int(net.n_params), int(net.d), int(net.outputs)
    n = int(data.n)
    nb = n if options.batch is None else int(options.batch)
    size = P + (n * k if options.residual_dynamics else 0) + (P if options.linearized else 0)
    values = P + size                                            # net0, the state (the current net views it)
    if options.diagnostics:
        values += 2 * P                                          # the recorder's theta_0 and previous record
    values += (stages + (1 if stages > 1 else 0)) * size         # stage buffers and the combination buffer
    engine, cache = net.engine_memory(n, nb, options)
    values += engine + n * k                                     # the engine's buffers; f0
    if np.dtype(data.X.dtype) != np.dtype(net.dtype):
        values += (n + int(data.n_test or 0)) * (d + k)          # the data converted to the model's dtype
    nbytes = float(values) * s
    if not data.has_test and data.has_sampler:
        nbytes += float(options.test_size) * (d + k) * (8 + s)   # the test sample drawn from the sampler
    if options.diagnostics:
        m = min(int(options.probe_size), n)
        nbytes += 2.0 * m * m * 8                                # the probe kernels K and K0
    what = f"a run of {net.description} on {n} points"
    if cache > (nbytes + cache) / 4:
        what += f" (of which {format_bytes(cache)} for the pre-activation cache; a smaller cache_mb drops it)"
    return check_memory(nbytes + cache, "net", what)
