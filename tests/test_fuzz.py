"""Fuzzing the public entry points with Hypothesis.

Every input either works -- finite outputs of the right shape -- or raises one of the
documented exceptions (TypeError, ValueError, MemoryError, TrajectoryFileError,
FileNotFoundError; DivergenceError for a run that diverges), with a message; never a crash,
a hang or another exception type. Warnings of the package's kinds (UserWarning subclasses:
conversions, quadrature, solver fallbacks) are allowed; any other warning (numpy's
RuntimeWarning on an overflow, say) fails.

Bounded and reproducible: ``derandomize=True`` (the same examples on every run, no example
database), a few dozen examples per entry point and small sizes, so the module runs in well
under a minute. ``MFNTK_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py`` fuzzes longer, with
new random examples on each run.
"""
import os
import tempfile
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mfntk as mf
from mfntk import datasets, kernels
from mfntk._registry import ACTIVATIONS, INTEGRATORS, KERNEL_KINDS, LOSSES

DOCUMENTED = (TypeError, ValueError, MemoryError, mf.TrajectoryFileError, FileNotFoundError)

# MFNTK_FUZZ_EXAMPLES=2000 fuzzes longer, with fresh random examples at each run (not derandomized).
_LONG = int(os.environ.get("MFNTK_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_LONG or 40, deadline=10_000, derandomize=not _LONG, database=None,
                print_blob=bool(_LONG),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
FEW = settings(FUZZ, max_examples=max(_LONG // 4, 15))


@contextmanager
def documented(*more):
    """The body either completes or raises a documented exception with a message; the package's
    warnings (UserWarning subclasses) are allowed, others fail."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", UserWarning)
        try:
            yield
        except DOCUMENTED + more as exc:
            assert str(exc), f"{type(exc).__name__} without a message"
            event(f"{type(exc).__name__}: {str(exc).split(':')[0][:30]}")
        else:
            event("works")


def run(fn, *more):
    """fn() or None when it raised a documented exception (see :func:`documented`)."""
    out = None
    with documented(*more):
        out = fn()
    return out


def assert_finite(arr, shape):
    arr = np.asarray(arr)
    assert arr.shape == shape, (arr.shape, shape)
    assert np.all(np.isfinite(arr)), arr


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------
JUNK = st.sampled_from([None, "x", "", [1, 2], {}, 1.5, -1, True, 2 ** 70, np.float32(1.0), complex(1, 1),
                        float("nan"), object()])
SPECIAL = st.sampled_from([float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e-300, 1e300])
small_floats = st.floats(-10, 10, allow_nan=False)


def maybe(valid, *more):
    """A valid value nine times in ten, else junk (or one of ``more``): most examples get past
    the first check and reach the others."""
    bad = st.one_of(JUNK, *more)
    return st.integers(0, 9).flatmap(lambda i: bad if i == 0 else valid)


def around(size, low=1):
    """``size`` nine times in ten, else another size from ``low`` to 5 (a mismatched shape)."""
    return st.integers(0, 9).flatmap(lambda i: st.integers(low, 5) if i == 0 else st.just(size))


def names(valid):
    return maybe(st.sampled_from(valid), st.text(max_size=8), st.sampled_from([v.upper() for v in valid]))


ints = st.integers(-2, 6)
stds = maybe(st.floats(0, 3), SPECIAL)

ELEMENT_DTYPES = [np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_, np.complex128]


@st.composite
def arrays(draw, rows, cols=st.integers(1, 3), max_dims=3):
    """Mostly float64 arrays of shape (rows, cols) with moderate values; else other dtypes,
    shapes, NaN or inf, nested lists, non-contiguous views, strings, ragged lists and junk."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(JUNK)
    if kind == 1:
        return draw(st.sampled_from([[[1.0, 2.0], [3.0]], [["a", "b"]], np.array(["1", "2"]),
                                     np.array([1.0, None], dtype=object), np.empty((0, 2)),
                                     np.array([[1.0, 2.0]], dtype=object)]))
    dtype = draw(st.sampled_from(ELEMENT_DTYPES)) if kind in (2, 3) else np.float64
    if kind == 4:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=5))
    else:
        n, c = draw(rows), draw(cols)
        shape = (n,) if max_dims == 2 and draw(st.booleans()) else (n, c)
    if np.issubdtype(dtype, np.floating):
        values = st.floats(-1e3, 1e3, width=np.dtype(dtype).itemsize * 8)
        if kind == 5:
            values = st.one_of(values, st.sampled_from([np.nan, np.inf, -np.inf]))
    elif dtype is np.complex128:
        values = st.complex_numbers(max_magnitude=10)
    elif dtype is np.bool_:
        values = st.booleans()
    else:
        info = np.iinfo(dtype)
        values = st.integers(max(info.min, -100), min(info.max, 100))
    arr = draw(hnp.arrays(dtype, shape, elements=values))
    if kind == 6:
        return arr.tolist()
    if kind == 7 and arr.ndim == 2:
        return np.asfortranarray(arr)[:, ::-1]       # not C-contiguous
    return arr


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------
@FUZZ
@given(d=maybe(ints, st.just(10 ** 7)), width=maybe(st.integers(-1, 12), st.just(10 ** 12)),
       activation=names(ACTIVATIONS), scaling=maybe(st.sampled_from(["mf", "ntk"]) | st.floats(0, 10), SPECIAL),
       bias=maybe(st.booleans()), outputs=maybe(st.integers(0, 3)), w_std=st.one_of(st.none(), stds), a_std=stds,
       b_std=stds, symmetric=maybe(st.booleans()), seed=maybe(st.integers(-1, 2 ** 64), st.none()),
       dtype=names(["float64", "float32"]), a_init=names(["gaussian", "rademacher"]), c0=maybe(small_floats, SPECIAL),
       X=arrays(rows=st.integers(0, 4), cols=st.integers(1, 4)))
def test_two_layer(d, width, activation, scaling, bias, outputs, w_std, a_std, b_std, symmetric, seed, dtype,
                   a_init, c0, X):
    net = run(lambda: mf.TwoLayer(d, width, activation=activation, scaling=scaling, bias=bias, outputs=outputs,
                                  w_std=w_std, a_std=a_std, b_std=b_std, symmetric=symmetric, seed=seed, dtype=dtype,
                                  a_init=a_init, c0=c0))
    if net is None:
        return
    assert net.a.shape == (width, outputs) and np.all(np.isfinite(net.get_flat()))
    F = run(lambda: net.predict(X, threads=1))
    if F is not None:
        assert F.shape == (np.asarray(X).shape[0], outputs) and F.dtype == net.dtype
        if max(abs(float(c0)), float(a_std), float(w_std or 1), float(b_std)) < 1e3:
            assert np.all(np.isfinite(F))


# ---------------------------------------------------------------------------------------------
# simulate
# ---------------------------------------------------------------------------------------------
@st.composite
def run_options(draw):
    options = {}
    choices = {
        "method": names(INTEGRATORS), "loss": names(LOSSES), "batch": maybe(st.none() | st.integers(0, 12)),
        "online": maybe(st.none() | st.booleans()), "weight_decay": maybe(st.floats(0, 1), SPECIAL),
        "temperature": maybe(st.sampled_from([0.0, 0.0, 1e-3]), SPECIAL),
        "record_every": maybe(st.none() | st.floats(1e-3, 1), SPECIAL), "threads": maybe(st.none() | st.just(1)),
        "residual_dynamics": maybe(st.booleans()), "linearized": maybe(st.booleans()),
        "diagnostics": maybe(st.booleans()), "probe_size": maybe(st.integers(0, 20)),
        "test_size": maybe(st.integers(0, 20)), "seed": maybe(st.integers(-1, 5)),
        "divergence_factor": maybe(st.floats(0.5, 1e6), SPECIAL), "cache_mb": maybe(st.floats(0, 2), SPECIAL),
    }
    for name in draw(st.lists(st.sampled_from(sorted(choices)), max_size=6, unique=True)):
        options[name] = draw(choices[name])
    if draw(st.integers(0, 19)) == 0:
        options[draw(st.sampled_from(["nonsense", "dtt", "out_file"]))] = 1
    return options


@FUZZ
@given(t_max=maybe(st.floats(0, 0.3), SPECIAL), dt=maybe(st.floats(0.01, 0.2), SPECIAL), options=run_options(),
       n=st.integers(1, 10), k=st.integers(1, 2), sampler=st.booleans(), labels=st.booleans(),
       dtype=st.sampled_from(["float64", "float32"]))
def test_simulate(t_max, dt, options, n, k, sampler, labels, dtype):
    try:  # a valid run of 1e300 steps is accepted (and would run for ever): keep the runs short
        assume(not float(t_max) / float(dt) > 100)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        pass
    net = mf.TwoLayer(2, 8, outputs=k, seed=1, dtype=dtype)
    if sampler:
        data = datasets.teacher_dataset(datasets.SingleNeuron(2), 2, n_train=n, seed=0)
        net = mf.TwoLayer(2, 8, seed=1, dtype=dtype)
    else:
        X = np.random.default_rng(n).standard_normal((n, 2))
        y = np.sign(X[:, :k]) if labels else X[:, :k] ** 2
        data = (X, y)
    traj = run(lambda: mf.simulate(net, data, t_max, dt, progress=False, **options), mf.DivergenceError)
    if traj is None:
        return
    assert np.all(np.isfinite(traj.train_risk)) and traj.t[-1] == pytest.approx(float(t_max), abs=2 * float(dt))
    assert np.all(np.isfinite(traj.net.get_flat()))


# ---------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------
def shape_of(X):
    try:
        return np.shape(X)
    except ValueError:  # ragged
        return None


@FUZZ
@given(data=st.data(), activation=names(ACTIVATIONS), kind=names(KERNEL_KINDS), w_std=st.one_of(st.none(), stds),
       a_std=stds, b_std=stds, c0=maybe(small_floats, SPECIAL), bias=maybe(st.none() | st.booleans()),
       method=names(["auto", "closed", "quadrature"]), quad_order=maybe(st.none() | st.integers(1, 64),
                                                                         st.just(4096)),
       quad_tol=maybe(st.floats(1e-15, 0.5), SPECIAL))
def test_analytic_kernel(data, activation, kind, w_std, a_std, b_std, c0, bias, method, quad_order, quad_tol):
    d = data.draw(st.integers(1, 3))
    X = data.draw(arrays(rows=st.integers(0, 5), cols=around(d)))
    X2 = data.draw(st.one_of(st.none(), arrays(rows=st.integers(0, 4), cols=around(d))))
    K = run(lambda: kernels.analytic(X, X2, activation=activation, kind=kind, w_std=w_std, a_std=a_std, b_std=b_std,
                                     c0=c0, bias=bias, method=method, quad_order=quad_order, quad_tol=quad_tol,
                                     threads=1))
    if K is not None:
        n1 = shape_of(X)[0]
        shape = (n1, n1 if X2 is None else shape_of(X2)[0])
        if max(float(w_std or 0), float(a_std), float(b_std), abs(float(c0))) < 1e100:
            assert_finite(K, shape)
        else:  # a variance beyond the largest double: NaN or inf entries (see the module's notes)
            assert K.shape == shape


@FUZZ
@given(data=st.data(), kind=names(KERNEL_KINDS), activation=st.sampled_from(ACTIVATIONS), bias=st.booleans(),
       dtype=st.sampled_from(["float64", "float32"]), obj=st.booleans())
def test_empirical_kernel(data, kind, activation, bias, dtype, obj):
    d = data.draw(st.integers(1, 3))
    X = data.draw(arrays(rows=st.integers(0, 5), cols=around(d)))
    X2 = data.draw(st.one_of(st.none(), arrays(rows=st.integers(0, 4), cols=around(d))))
    net = mf.TwoLayer(d, 6, activation=activation, bias=bias, b_std=0.3, dtype=dtype, seed=2)
    if obj:
        k = run(lambda: kernels.Empirical(net, kind=kind))
        if k is None:
            return
        K = run(lambda: k(X, X2))
        n = shape_of(X)[0] if shape_of(X) else 1
        V = data.draw(arrays(rows=around(n, 0), cols=st.integers(1, 2), max_dims=2))
        KV = run(lambda: k.matvec(X, V))
        if KV is not None:
            assert_finite(KV, shape_of(V))
    else:
        K = run(lambda: kernels.empirical(net, X, X2, kind=kind, threads=1))
    if K is not None:
        n1 = shape_of(X)[0]
        assert_finite(K, (n1, n1 if X2 is None else shape_of(X2)[0]))
        assert K.dtype == net.dtype


# ---------------------------------------------------------------------------------------------
# kernel regression and the feature models
# ---------------------------------------------------------------------------------------------
@st.composite
def training_set(draw, max_n=8):
    """(X, Y, X2): mostly n x d inputs, n targets (1-D or k columns) and m x d test inputs."""
    n, d = draw(st.integers(0, max_n)), draw(st.integers(1, 3))
    X = draw(arrays(rows=st.just(n), cols=around(d)))
    Y = draw(arrays(rows=around(n, 0), cols=st.integers(1, 2), max_dims=2))
    X2 = draw(arrays(rows=st.integers(0, 4), cols=around(d)))
    return X, Y, X2


def predictions_shape(X2, Y):
    m = shape_of(X2)[0]
    return (m,) if np.ndim(Y) == 1 else (m, np.shape(Y)[1])


@FUZZ
@given(sets=training_set(), kernel=st.sampled_from(["analytic", "empirical", "precomputed", "gram", "callable",
                                                      "junk"]),
       ridge=maybe(st.sampled_from([0.0, 1e-6, 1.0]), SPECIAL), t=st.one_of(st.none(), maybe(st.floats(0, 100),
                                                                                               SPECIAL)),
       solver=names(["auto", "cholesky", "eigh", "cg"]), tol=maybe(st.none() | st.floats(1e-10, 1e-2)),
       max_iter=maybe(st.none() | st.integers(1, 50)), rcond=maybe(st.none() | st.floats(0, 1)),
       max_dense=maybe(st.integers(1, 10)), classify=st.booleans())
def test_kernel_regressor(sets, kernel, ridge, t, solver, tol, max_iter, rcond, max_dense, classify):
    """Kernel objects, a callable, a precomputed matrix (any array, or the Gram matrix of X)."""
    X, Y, X2 = sets
    k = {"analytic": kernels.Analytic(activation="relu"),
         "empirical": kernels.Empirical(mf.TwoLayer(max(1, (shape_of(X) or (0, 1))[-1]), 6, seed=3)),
         "precomputed": "precomputed", "gram": "precomputed",
         "callable": lambda A, B=None: np.ones((len(A), len(A if B is None else B))), "junk": 3}[kernel]
    if kernel == "gram" and isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" and \
            isinstance(X2, np.ndarray) and X2.ndim == 2 and X2.shape[1] == X.shape[1] and np.isfinite(X).all():
        X2, X = X2 @ X.T, X @ X.T
    kw = dict(kernel=k, ridge=ridge, t=t, solver=solver, tol=tol, max_iter=max_iter, rcond=rcond, max_dense=max_dense)
    if classify:
        numeric = isinstance(Y, np.ndarray) and Y.dtype.kind in "fiub" and shape_of(X)
        y = Y.reshape(-1)[:shape_of(X)[0]] > 0 if numeric else Y
        clf = mf.KernelClassifier(**kw)
        if run(lambda: clf.fit(X, y)) is not None:
            labels = run(lambda: clf.predict(X2))
            if labels is not None:
                assert labels.shape == (shape_of(X2)[0],) and set(labels.tolist()) <= set(clf.classes_.tolist())
        return
    reg = mf.KernelRegressor(**kw)
    if run(lambda: reg.fit(X, Y)) is None:
        return
    P = run(lambda: reg.predict(X2))
    if P is not None:
        assert_finite(P, predictions_shape(X2, Y))


@FUZZ
@given(model=st.sampled_from([mf.RandomFeatures, mf.NeuralTangent]), width=maybe(st.integers(1, 12)),
       activation=names(ACTIVATIONS), ridge=maybe(st.sampled_from([0.0, 1e-3]), SPECIAL),
       formulation=names(["auto", "kernel", "primal"]), bias=maybe(st.booleans()), sets=training_set(max_n=12))
def test_feature_models(model, width, activation, ridge, formulation, bias, sets):
    X, Y, X2 = sets
    est = model(width=width, activation=activation, ridge=ridge, formulation=formulation, bias=bias, b_std=0.5)
    if run(lambda: est.fit(X, Y)) is None:
        return
    P = run(lambda: est.predict(X2))
    if P is not None:
        assert_finite(P, predictions_shape(X2, Y))


# ---------------------------------------------------------------------------------------------
# data sets
# ---------------------------------------------------------------------------------------------
def _check_dataset(ds):
    assert isinstance(ds, datasets.Dataset)
    assert ds.X.shape == (ds.n, ds.d) and ds.y.shape == (ds.n, ds.k)
    assert np.all(np.isfinite(ds.X)) and np.all(np.isfinite(ds.y))
    if ds.X_test is not None:
        assert ds.X_test.shape[1] == ds.d and np.all(np.isfinite(ds.X_test))


@FUZZ
@given(which=st.sampled_from(["teacher", "gaussian_mixture", "isotropic_gaussians", "as_dataset", "from_config"]),
       d=maybe(ints), n_train=maybe(st.integers(-1, 12)), n_test=maybe(st.integers(-1, 5)),
       delta=maybe(st.floats(-1, 3), SPECIAL), seed=maybe(st.integers(-1, 3)),
       teacher=names(sorted(datasets.TEACHER_KINDS)), inputs=names(["gaussian", "sphere"]),
       noise=maybe(st.floats(0, 1), SPECIAL), X=arrays(rows=st.integers(0, 5), cols=st.integers(1, 3)),
       y=arrays(rows=st.integers(0, 5), cols=st.integers(1, 2), max_dims=2),
       table=st.dictionaries(st.sampled_from(["kind", "d", "n_train", "n_test", "teacher", "delta", "seed", "path",
                                              "noise", "bogus"]),
                             st.one_of(st.sampled_from(["teacher", "gaussian_mixture", "npz", "digits", "mnist"]),
                                       st.integers(-1, 6), st.floats(-1, 2), st.none(), st.text(max_size=4)),
                             max_size=6))
def test_datasets(which, d, n_train, n_test, delta, seed, teacher, inputs, noise, X, y, table):
    def build():
        if which == "teacher":
            t = datasets.teacher_from_spec({"kind": teacher, "d": d}) if isinstance(teacher, str) else teacher
            return datasets.teacher_dataset(t, d, n_train, n_test, inputs=inputs, noise=noise, seed=seed)
        if which == "gaussian_mixture":
            return datasets.gaussian_mixture(d, n_train, n_test, delta=delta, seed=seed)
        if which == "isotropic_gaussians":
            return datasets.isotropic_gaussians(d, n_train, n_test, delta=delta, seed=seed)
        if which == "as_dataset":
            return datasets.as_dataset((X, y))
        return datasets.from_config(table)
    ds = run(build)
    if ds is not None:
        _check_dataset(ds)


@FEW
@given(test_size=maybe(st.floats(0, 1), SPECIAL), seed=maybe(st.integers(-1, 3)), one_hot=maybe(st.booleans()))
def test_digits(test_size, seed, one_hot):
    ds = run(lambda: datasets.digits(test_size=test_size, seed=seed, one_hot=one_hot))
    if ds is not None:
        _check_dataset(ds)


# ---------------------------------------------------------------------------------------------
# files: random bytes and damaged files
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_files():
    folder = tempfile.mkdtemp(prefix="mfntk-fuzz-")
    X = np.random.default_rng(0).standard_normal((12, 2))
    traj = os.path.join(folder, "run.h5")
    mf.simulate(mf.TwoLayer(2, 8, seed=0), (X, X[:, 0]), 0.2, 0.1, progress=False, out=traj, threads=1)
    import gzip
    import struct
    idx = os.path.join(folder, "a.idx.gz")
    with open(idx, "wb") as fh:
        fh.write(gzip.compress(struct.pack(">BBBBIII", 0, 0, 0x08, 3, 5, 3, 4) + bytes(range(60))))
    npz = os.path.join(folder, "a.npz")
    np.savez_compressed(npz, X=X, y=X[:, 0])
    out = {}
    for name, path in (("load", traj), ("load_idx", idx), ("npz", npz)):
        with open(path, "rb") as fh:
            out[name] = fh.read()
    yield folder, out


READERS = {"load": mf.load, "load_idx": datasets.load_idx, "npz": datasets.npz}


@st.composite
def damaged(draw, good):
    """Random bytes, or the good file truncated and with some bytes changed."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=256))
    raw = bytearray(good[:draw(st.integers(0, len(good)))] if draw(st.booleans()) else good)
    for _ in range(draw(st.integers(0, 6))):
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


@FUZZ
@given(data=st.data(), reader=st.sampled_from(sorted(READERS)))
def test_readers_on_damaged_files(good_files, data, reader):
    folder, good = good_files
    raw = data.draw(damaged(good[reader]))
    path = os.path.join(folder, "fuzz-" + reader)
    with open(path, "wb") as fh:
        fh.write(raw)
    out = run(lambda: READERS[reader](path))
    if out is None:
        return
    if reader == "load_idx":
        assert isinstance(out, np.ndarray) and out.dtype.isnative
    elif reader == "npz":
        _check_dataset(out)
    else:
        assert np.all(np.isfinite(out.train_risk)) and np.all(np.isfinite(out.net.get_flat()))


@FEW
@given(path=st.one_of(st.text(max_size=12), st.binary(max_size=12), JUNK),
       reader=st.sampled_from(sorted(READERS)))
def test_readers_on_odd_paths(path, reader):
    if isinstance(path, (str, bytes)) and os.path.exists(path):
        return                                           # a real file or folder of the working directory
    run(lambda: READERS[reader](path))


# ---------------------------------------------------------------------------------------------
# what the fuzzer found, pinned
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [object(), float("nan"), complex(1, 1), 2 ** 70])
def test_found_dtype_that_is_no_dtype_names_the_argument(dtype):
    with pytest.raises(TypeError, match=r"^dtype: expected 'float64' or 'float32', got "):
        mf.TwoLayer(2, 4, dtype=dtype)


@pytest.mark.parametrize("test_size", [1e-300, 0.001, 0.995, 0.999999])
def test_found_digits_split_too_small_for_the_classes(test_size):
    with pytest.raises(ValueError, match=r"^test_size: .* a split stratified by class needs at least 10 in each$"):
        datasets.digits(test_size=test_size)


def test_found_npz_with_a_damaged_zip_directory_closes_its_file(tmp_path):
    import gc
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(range(60)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with pytest.raises(ValueError, match=r"^path: .*bad.npz is not an .npz archive"):
            datasets.npz(path)
        gc.collect()
