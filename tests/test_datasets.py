"""Tests of mfntk.datasets and mfntk._activations: shapes, seeding, laws, teachers
against direct NumPy formulas, IDX files, scikit-learn digits, and every error path."""

import gzip
import struct

import numpy as np
import pytest
from scipy import special

from mfntk import _activations, datasets

# Statistical tolerances (fixed seeds; each is >= 5 standard errors of the estimate).
MEAN_TOL = 0.05  # mean of N(0,1)-ish quantities from n = 20000 samples (se ~ 0.007)
COV_TOL = 0.05  # entries of an empirical covariance from n = 20000 samples (se ~ 0.01)
EXACT = 1e-12  # identities that hold to rounding
N_STAT = 20000


# ---------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------

U = np.linspace(-4.0, 4.0, 33)
REFERENCE = {
    "relu": lambda u: np.where(u > 0, u, 0.0),
    "tanh": lambda u: (np.exp(u) - np.exp(-u)) / (np.exp(u) + np.exp(-u)),
    "erf": lambda u: np.array([2.0 / np.sqrt(np.pi) * _trapz_erf(v) for v in u]),
    "sigmoid": lambda u: 1.0 / (1.0 + np.exp(-u)),
    "softplus": lambda u: np.log1p(np.exp(u)),
    "quadratic": lambda u: u * u + 0.0,
    "identity": lambda u: u,
}


def _trapz_erf(v, m=4001):
    """int_0^v exp(-t^2) dt by Simpson's rule (independent of scipy.special)."""
    t = np.linspace(0.0, v, m)
    f = np.exp(-t * t)
    h = (v - 0.0) / (m - 1)
    return h / 3.0 * (f[0] + f[-1] + 4.0 * f[1:-1:2].sum() + 2.0 * f[2:-1:2].sum())


def test_activation_names():
    assert _activations.NAMES == ("relu", "tanh", "erf", "sigmoid", "softplus", "quadratic", "identity")
    assert set(REFERENCE) == set(_activations.NAMES)


@pytest.mark.parametrize("name", _activations.NAMES)
def test_activation_against_formula(name):
    u = U.copy()
    out = _activations.get(name)(u)
    assert out.dtype == np.float64 and out.shape == u.shape
    np.testing.assert_allclose(out, REFERENCE[name](U), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(u, U)  # input left unmodified
    assert not np.shares_memory(out, u)


def test_quadratic_c0_and_module_functions():
    np.testing.assert_allclose(_activations.get("quadratic", c0=-1.5)(U), U**2 - 1.5)
    np.testing.assert_allclose(_activations.get("relu", c0=3.0)(U), np.maximum(U, 0))  # c0 unused
    np.testing.assert_allclose(_activations.erf(U), special.erf(U))


def test_activations_stable_for_large_arguments():
    big = np.array([-1000.0, 1000.0])
    np.testing.assert_allclose(_activations.softplus(big), [0.0, 1000.0])
    np.testing.assert_allclose(_activations.sigmoid(big), [0.0, 1.0])


def test_activation_errors():
    with pytest.raises(ValueError, match=r"activation: unknown value 'foo'; expected one of 'relu'"):
        _activations.get("foo")
    with pytest.raises(TypeError, match="activation"):
        _activations.get(3)
    with pytest.raises(ValueError, match="c0"):
        _activations.get("quadratic", c0=np.nan)
    with pytest.raises(TypeError, match="c0"):
        _activations.get("quadratic", c0="1")


# ---------------------------------------------------------------------------------------
# input laws
# ---------------------------------------------------------------------------------------

LAWS = {"gaussian": datasets.gaussian_inputs, "sphere": datasets.sphere_inputs}


@pytest.mark.parametrize("law", LAWS)
def test_inputs_shape_dtype_and_seeding(law):
    f = LAWS[law]
    X = f(np.random.default_rng(3), 7, 5)
    assert X.shape == (7, 5) and X.dtype == np.float64 and X.flags.c_contiguous
    np.testing.assert_array_equal(X, f(np.random.default_rng(3), 7, 5))
    np.testing.assert_array_equal(X, f(3, 7, 5))  # an int seed is accepted too
    assert not np.array_equal(X, f(np.random.default_rng(4), 7, 5))
    rng = np.random.default_rng(0)
    assert not np.array_equal(f(rng, 7, 5), f(rng, 7, 5))  # the generator advances


@pytest.mark.parametrize("d", [1, 2, 17, 300])
def test_sphere_norm_is_sqrt_d(d):
    X = datasets.sphere_inputs(np.random.default_rng(1), 50, d)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), np.sqrt(d), rtol=0, atol=EXACT)


@pytest.mark.parametrize("law", LAWS)
def test_inputs_isotropic_moments(law):
    d = 6
    X = LAWS[law](np.random.default_rng(2), N_STAT, d)
    assert np.max(np.abs(X.mean(axis=0))) < MEAN_TOL
    assert np.max(np.abs(X.T @ X / N_STAT - np.eye(d))) < COV_TOL


@pytest.mark.parametrize("law", LAWS)
def test_inputs_errors(law):
    f = LAWS[law]
    with pytest.raises(ValueError, match="n: must be >= 1, got 0"):
        f(0, 0, 3)
    with pytest.raises(ValueError, match="d: must be >= 1, got"):
        f(0, 3, -1)
    with pytest.raises(TypeError, match="n: expected an int, got float"):
        f(0, 2.0, 3)
    with pytest.raises(ValueError, match="rng: must be >= 0, got -1"):
        f(-1, 2, 3)
    with pytest.raises(TypeError, match="rng"):
        f("seed", 2, 3)


# ---------------------------------------------------------------------------------------
# as_dataset and the Dataset container
# ---------------------------------------------------------------------------------------


def test_as_dataset_converts_pairs():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    X_before = X.copy()
    ds = datasets.as_dataset((X, [1, 2, 3, 4]))
    assert isinstance(ds, datasets.Dataset)
    assert ds.X.dtype == np.float64 and ds.X.flags.c_contiguous and ds.y.shape == (4, 1)
    assert (ds.n, ds.d, ds.k, ds.n_test) == (4, 3, 1, 0)
    assert ds.task == "regression" and not ds.has_test and not ds.has_sampler
    np.testing.assert_array_equal(X, X_before)  # input left unmodified
    np.testing.assert_array_equal(ds.y[:, 0], [1, 2, 3, 4])

    F = np.asfortranarray(np.random.default_rng(0).standard_normal((5, 2)))
    ds = datasets.as_dataset([F, np.zeros((5, 3))])
    assert ds.X.flags.c_contiguous and ds.k == 3
    np.testing.assert_array_equal(ds.X, F)


def test_as_dataset_no_copy_and_identity():
    X = np.ones((3, 2))
    y = np.zeros((3, 1))
    ds = datasets.as_dataset((X, y))
    assert ds.X is X and ds.y is y  # already float64, C-contiguous: no copy
    assert datasets.as_dataset(ds) is ds


def _err(data, exc, pattern, **kw):
    with pytest.raises(exc, match=pattern):
        datasets.as_dataset(data, **kw)


def test_as_dataset_errors():
    X = np.zeros((100, 3))
    _err((X, np.zeros(99)), ValueError, r"^data: X has 100 rows but y has 99$")
    bad = X.copy()
    bad[3, 1] = np.nan
    bad[7, 0] = np.nan
    _err((bad, np.zeros(100)), ValueError, r"^data: X: contains NaN \(first non-finite value in row 3\)$")
    y = np.zeros(100)
    y[5] = -np.inf
    _err((X, y), ValueError, r"data: y: contains inf \(first non-finite value in row 5\)")
    _err((X, y), ValueError, r"^train: y", name="train")
    _err(X, TypeError, "data: expected a Dataset or a pair")
    _err((X, y, y), TypeError, "data: .* of length 3")
    _err(None, TypeError, "data")
    _err((np.array([["a", "b"]]), [1]), TypeError, "data: X: expected a numeric array")
    _err((X, np.array(["x"] * 100, dtype=object)), TypeError, "data: y: expected a numeric array")
    _err((X, np.zeros(100, dtype=complex)), TypeError, "data: y")
    _err((np.zeros(5), np.zeros(5)), ValueError, r"data: X: expected a 2-D array, got shape \(5,\) \(x.reshape")
    _err((np.zeros((2, 2, 2)), np.zeros(2)), ValueError, "data: X: expected a 2-D array")
    _err((X, np.zeros((100, 1, 1))), ValueError, "data: y: expected a 1-D or 2-D array")
    _err((np.zeros((0, 3)), np.zeros(0)), ValueError, r"data: X: must not be empty, got shape \(0, 3\)")
    _err((np.zeros((4, 0)), np.zeros(4)), ValueError, r"data: X: must not be empty, got shape \(4, 0\)")
    _err(([[1, 2], [3]], [1, 2]), TypeError, "data: X: cannot be converted")


def test_dataset_validation():
    X, y = np.zeros((4, 2)), np.ones((4, 1))
    with pytest.raises(ValueError, match="Dataset: give both X_test and y_test"):
        datasets.Dataset(X, y, X_test=X)
    with pytest.raises(ValueError, match=r"Dataset: X_test: expected 2 columns, got shape \(4, 3\)"):
        datasets.Dataset(X, y, X_test=np.zeros((4, 3)), y_test=y)
    with pytest.raises(ValueError, match="Dataset: y_test has 2 columns but y has 1"):
        datasets.Dataset(X, y, X_test=X, y_test=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="Dataset: X_test has 4 rows but y_test has 3"):
        datasets.Dataset(X, y, X_test=X, y_test=np.ones(3))
    with pytest.raises(ValueError, match="Dataset: task: unknown value 'clf'"):
        datasets.Dataset(X, y, task="clf")
    with pytest.raises(ValueError, match="Dataset: y must hold labels -1/\\+1"):
        datasets.Dataset(X, np.array([1.0, 0.0, 1.0, -1.0]), task="classification")
    with pytest.raises(ValueError, match="Dataset: y must be one-hot"):
        datasets.Dataset(X, np.array([[1.0, 1.0]] * 4), task="classification")
    with pytest.raises(ValueError, match="Dataset: y_test must be one-hot"):
        onehot = np.eye(2)[[0, 1, 0, 1]]
        datasets.Dataset(X, onehot, X_test=X, y_test=0.5 * onehot, task="classification")
    with pytest.raises(TypeError, match="Dataset: sampler must be callable"):
        datasets.Dataset(X, y, sampler=3)
    # accepted label conventions
    datasets.Dataset(X, np.array([1.0, -1.0, 1.0, -1.0]), task="classification")
    datasets.Dataset(X, np.eye(3)[[0, 1, 2, 0]], task="classification")
    datasets.Dataset(X, 2.0 * np.eye(3)[[0, 1, 2, 0]] - 1.0, task="classification")
    # a Dataset mutated after construction is checked again by as_dataset
    ds = datasets.Dataset(X.copy(), y)
    ds.X[2, 0] = np.inf
    with pytest.raises(ValueError, match=r"^data: X: contains inf \(first non-finite value in row 2\)"):
        datasets.as_dataset(ds)


def test_dataset_sample_errors():
    ds = datasets.Dataset(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="no sampler"):
        ds.sample(5)
    ds.sampler = lambda rng, m: (np.zeros((m, 3)), np.zeros(m))
    with pytest.raises(ValueError, match="sampler: X: expected 2 columns"):
        ds.sample(5)
    ds.sampler = lambda rng, m: (np.zeros((m + 1, 2)), np.zeros(m + 1))
    with pytest.raises(ValueError, match="sampler returned 6 rows; asked for 5"):
        ds.sample(5)
    ds.sampler = lambda rng, m: np.zeros((m, 2))
    with pytest.raises(TypeError, match="sampler must return a pair"):
        ds.sample(5)
    with pytest.raises(ValueError, match="m: must be >= 1, got 0"):
        ds.sample(0)


# ---------------------------------------------------------------------------------------
# teachers
# ---------------------------------------------------------------------------------------


def _X(n=40, d=7, seed=11):
    return np.random.default_rng(seed).standard_normal((n, d))


@pytest.mark.parametrize("activation", _activations.NAMES)
def test_single_neuron_formula(activation):
    t = datasets.SingleNeuron(7, activation, seed=5)
    assert abs(np.linalg.norm(t.w) - 1.0) < EXACT
    X = _X()
    y = t(X)
    assert y.shape == (40, 1) and y.dtype == np.float64
    np.testing.assert_allclose(y[:, 0], REFERENCE[activation](X @ t.w), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(t.w, datasets.SingleNeuron(7, activation, seed=5).w)
    assert not np.array_equal(t.w, datasets.SingleNeuron(7, activation, seed=6).w)
    assert "SingleNeuron(d=7" in repr(t) and activation in repr(t)


def test_single_neuron_given_w_and_callable_activation():
    w = np.array([3.0, 4.0, 0.0])
    t = datasets.SingleNeuron(3, "identity", w=w)
    np.testing.assert_allclose(t.w, [0.6, 0.8, 0.0])
    t2 = datasets.SingleNeuron(3, np.cos, w=w, normalize=False)
    X = _X(d=3)
    np.testing.assert_allclose(t2(X)[:, 0], np.cos(X @ w))
    t3 = datasets.SingleNeuron(3, "quadratic", w=w, c0=-1.0)
    np.testing.assert_allclose(t3(X)[:, 0], (X @ t.w) ** 2 - 1.0)
    with pytest.raises(ValueError, match=r"w: expected shape \(3,\)"):
        datasets.SingleNeuron(3, w=np.ones(4))
    with pytest.raises(ValueError, match="w: has a zero row"):
        datasets.SingleNeuron(3, w=np.zeros(3))
    with pytest.raises(ValueError, match=r"w: contains NaN \(first non-finite value at index 1\)"):
        datasets.SingleNeuron(3, w=[1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="activation: unknown value 'relu6'"):
        datasets.SingleNeuron(3, "relu6")
    with pytest.raises(TypeError, match="activation"):
        datasets.SingleNeuron(3, 5)
    with pytest.raises(ValueError, match="SingleNeuron: X: expected 3 columns"):
        t(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="d: must be >= 1, got"):
        datasets.SingleNeuron(0)


def test_two_layer_teacher_formula():
    t = datasets.TwoLayerTeacher(7, 5, "tanh", seed=2)
    assert t.W.shape == (5, 7) and t.a.shape == (5, 1) and t.k == 1
    np.testing.assert_allclose(np.linalg.norm(t.W, axis=1), 1.0, atol=EXACT)
    assert set(np.unique(t.a)) <= {-1.0, 1.0}
    X = _X()
    ref = np.zeros(40)
    for j in range(5):
        ref += t.a[j, 0] * np.tanh(X @ t.W[j])
    np.testing.assert_allclose(t(X)[:, 0], ref / 5, rtol=1e-12, atol=1e-14)
    # given a with k = 3 outputs
    a = np.random.default_rng(0).standard_normal((5, 3))
    t3 = datasets.TwoLayerTeacher(7, 5, "relu", a=a, W=t.W)
    assert t3.k == 3
    np.testing.assert_allclose(t3(X), np.maximum(X @ t.W.T, 0) @ a / 5, rtol=1e-12)
    with pytest.raises(ValueError, match=r"a: expected shape \(5,\) or \(5, k\)"):
        datasets.TwoLayerTeacher(7, 5, a=np.ones(4))
    with pytest.raises(ValueError, match=r"W: expected shape \(5, 7\)"):
        datasets.TwoLayerTeacher(7, 5, W=np.ones((5, 6)))
    with pytest.raises(ValueError, match="width: must be >= 1, got 0"):
        datasets.TwoLayerTeacher(7, 0)


def test_quadratic_formula_and_default_normalisation():
    d = 6
    t = datasets.Quadratic(d, seed=4)
    B = t.B
    np.testing.assert_allclose(B, B.T, atol=0)
    assert np.min(np.linalg.eigvalsh(B)) > -EXACT  # positive semi-definite
    assert abs(np.linalg.norm(B) - 1 / np.sqrt(2)) < EXACT
    assert abs(t.b0 + np.trace(B)) < EXACT
    X = _X(n=5, d=d)
    ref = [t.b0 + sum(X[n, i] * B[i, j] * X[n, j] for i in range(d) for j in range(d)) for n in range(5)]
    np.testing.assert_allclose(t(X)[:, 0], ref, rtol=1e-12, atol=1e-12)
    # a non-symmetric B gives the function of its symmetric part
    A = np.random.default_rng(0).standard_normal((d, d))
    tA = datasets.Quadratic(d, b0=0.5, B=A)
    np.testing.assert_allclose(tA(X)[:, 0], 0.5 + np.einsum("ni,ij,nj->n", X, A, X), rtol=1e-12)
    with pytest.raises(ValueError, match=r"B: expected shape \(6, 6\)"):
        datasets.Quadratic(d, B=np.eye(5))
    with pytest.raises(ValueError, match="b0: must be finite"):
        datasets.Quadratic(d, b0=np.inf)


@pytest.mark.parametrize("law", LAWS)
def test_quadratic_centred_with_unit_variance(law):
    d = 20
    t = datasets.Quadratic(d, seed=1)
    y = t(LAWS[law](np.random.default_rng(9), N_STAT, d))[:, 0]
    assert abs(y.mean()) < MEAN_TOL
    if law == "gaussian":  # Var <x, B x> = 2 |B|_F^2 = 1 for Gaussian inputs
        assert abs(y.var() - 1.0) < 0.1


def test_low_dim_teacher():
    d, r = 9, 3
    t = datasets.LowDim(d, r, seed=3)
    np.testing.assert_allclose(t.U.T @ t.U, np.eye(r), atol=1e-12)
    X = _X(d=d)
    np.testing.assert_allclose(t(X)[:, 0], np.tanh(X @ t.U).sum(axis=1) / np.sqrt(r), rtol=1e-12)
    # directions orthogonal to U are pure noise
    noise = _X(d=d, seed=12)
    noise -= noise @ t.U @ t.U.T
    np.testing.assert_allclose(t(X + noise), t(X), rtol=1e-10, atol=1e-12)
    # user phi with two outputs
    t2 = datasets.LowDim(d, r, phi=lambda Z: np.stack([Z[:, 0] * Z[:, 1], Z[:, 2]], axis=1), seed=3)
    y2 = t2(X)
    Z = X @ t.U
    np.testing.assert_allclose(y2, np.stack([Z[:, 0] * Z[:, 1], Z[:, 2]], axis=1), rtol=1e-12)
    assert t2.k == 2
    with pytest.raises(ValueError, match="r: must be <= d = 9"):
        datasets.LowDim(d, 10)
    with pytest.raises(TypeError, match="phi: expected a callable"):
        datasets.LowDim(d, 2, phi=3)
    with pytest.raises(ValueError, match="U: columns must be orthonormal"):
        datasets.LowDim(3, 2, U=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"LowDim: phi: output: expected shape \(40,\) or \(40, k\)"):
        datasets.LowDim(d, 2, phi=lambda Z: Z[:3, 0])(X)


def test_sparse_linear_teacher():
    t = datasets.SparseLinear(30, 4, seed=8)
    assert np.count_nonzero(t.beta) == 4 and len(t.support) == 4
    assert abs(np.linalg.norm(t.beta) - 1.0) < EXACT
    X = _X(d=30)
    np.testing.assert_allclose(t(X)[:, 0], X[:, t.support] @ t.beta[t.support], rtol=1e-12)
    assert not np.array_equal(t.beta, datasets.SparseLinear(30, 4, seed=9).beta)
    beta = np.zeros(5)
    beta[[1, 3]] = [2.0, -1.0]
    np.testing.assert_array_equal(datasets.SparseLinear(5, 2, beta=beta).support, [1, 3])
    with pytest.raises(ValueError, match="s: is 3 but beta has 2 non-zeros"):
        datasets.SparseLinear(5, 3, beta=beta)
    with pytest.raises(ValueError, match="s: must be <= d = 5"):
        datasets.SparseLinear(5, 6)
    with pytest.raises(TypeError, match="s: expected an int, got float"):
        datasets.SparseLinear(5, 2.0)


def test_callable_teacher_is_wrapped_and_checked():
    X = _X(d=4)
    t = datasets.as_teacher(lambda X: X[:, 0] ** 2, d=4)
    np.testing.assert_allclose(t(X)[:, 0], X[:, 0] ** 2)
    assert t(X).shape == (40, 1)
    with pytest.raises(ValueError, match=r"teacher: output: expected shape \(40,\) or \(40, k\), got \(5,\)"):
        datasets.as_teacher(lambda X: X[:5, 0])(X)
    with pytest.raises(ValueError, match=r"teacher: output: contains NaN \(first non-finite value at index 0\)"):
        datasets.as_teacher(lambda X: np.full(len(X), np.nan))(X)
    with pytest.raises(TypeError, match="teacher: output: expected a numeric array"):
        datasets.as_teacher(lambda X: np.array(["a"] * len(X)))(X)
    with pytest.raises(TypeError, match="teacher: expected a callable"):
        datasets.as_teacher(3)
    with pytest.raises(ValueError, match="d: is 5 but the teacher has d = 4"):
        datasets.as_teacher(datasets.SingleNeuron(4), d=5)


# ---------------------------------------------------------------------------------------
# teacher_dataset
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("law", LAWS)
def test_teacher_dataset_shapes_seeding_and_labels(law):
    t = datasets.TwoLayerTeacher(8, 3, seed=1)
    ds = datasets.teacher_dataset(t, 8, n_train=30, n_test=12, inputs=law, seed=2)
    assert (ds.n, ds.d, ds.k, ds.n_test) == (30, 8, 1, 12)
    for a in (ds.X, ds.y, ds.X_test, ds.y_test):
        assert a.dtype == np.float64 and a.flags.c_contiguous
    np.testing.assert_array_equal(ds.y, t(ds.X))  # noise = 0: exact labels
    np.testing.assert_array_equal(ds.y_test, t(ds.X_test))
    assert ds.teacher is t and ds.task == "regression"
    same = datasets.teacher_dataset(t, 8, n_train=30, n_test=12, inputs=law, seed=2)
    np.testing.assert_array_equal(ds.X, same.X)
    np.testing.assert_array_equal(ds.y_test, same.y_test)
    other = datasets.teacher_dataset(t, 8, n_train=30, n_test=12, inputs=law, seed=3)
    assert not np.array_equal(ds.X, other.X)
    if law == "sphere":
        np.testing.assert_allclose(np.linalg.norm(ds.X_test, axis=1), np.sqrt(8), atol=EXACT)
    assert datasets.teacher_dataset(t, 8, n_train=5).X_test is None


def test_teacher_dataset_noise_level():
    t = datasets.SingleNeuron(5, "erf", seed=0)
    ds = datasets.teacher_dataset(t, 5, n_train=N_STAT, noise=0.3, seed=1)
    eps = ds.y - t(ds.X)
    assert abs(eps.mean()) < MEAN_TOL * 0.3
    assert abs(eps.std() - 0.3) < 0.02 * 0.3


def test_teacher_dataset_sampler_draws_fresh_samples():
    t = datasets.Quadratic(6, seed=0)
    ds = datasets.teacher_dataset(t, 6, n_train=50, inputs="sphere", noise=0.1, seed=0)
    rng = np.random.default_rng(123)
    X1, y1 = ds.sample(50, rng)
    X2, y2 = ds.sample(50, rng)
    assert X1.shape == (50, 6) and y1.shape == (50, 1)
    assert not np.array_equal(X1, ds.X) and not np.array_equal(X1, X2)
    assert not np.any(np.all(np.isin(X1, ds.X), axis=1))  # no training row reused
    np.testing.assert_allclose(np.linalg.norm(X1, axis=1), np.sqrt(6), atol=EXACT)  # same law
    resid = y1 - t(X1)
    assert 0.0 < np.abs(resid).max() < 0.1 * 6  # noise included, of the right size
    X1b, _ = ds.sample(50, np.random.default_rng(123))
    np.testing.assert_array_equal(X1, X1b)  # reproducible given the generator
    # the sampler is the population law: fresh labels have the training mean and spread
    Xb, yb = ds.sample(N_STAT, 5)
    assert abs(yb.mean()) < MEAN_TOL


def test_teacher_dataset_callable_teacher():
    ds = datasets.teacher_dataset(lambda X: np.sin(X[:, :2]), 4, n_train=10, n_test=3, seed=0)
    assert ds.k == 2 and ds.y_test.shape == (3, 2)
    np.testing.assert_allclose(ds.y, np.sin(ds.X[:, :2]))


def test_teacher_dataset_errors():
    t = datasets.SingleNeuron(4)
    with pytest.raises(ValueError, match="n_train: must be >= 1, got 0"):
        datasets.teacher_dataset(t, 4, n_train=0)
    with pytest.raises(TypeError, match="n_train: expected an int"):
        datasets.teacher_dataset(t, 4, n_train=1.5)
    with pytest.raises(TypeError, match="n_train: expected an int"):
        datasets.teacher_dataset(t, 4, n_train=True)
    with pytest.raises(ValueError, match="n_test: must be >= 0, got -1"):
        datasets.teacher_dataset(t, 4, n_train=5, n_test=-1)
    with pytest.raises(ValueError, match="inputs: unknown value 'uniform'; expected one of 'gaussian', 'sphere'"):
        datasets.teacher_dataset(t, 4, n_train=5, inputs="uniform")
    with pytest.raises(ValueError, match="noise: must be >= 0.0"):
        datasets.teacher_dataset(t, 4, n_train=5, noise=-0.1)
    with pytest.raises(ValueError, match="noise: must be finite"):
        datasets.teacher_dataset(t, 4, n_train=5, noise=np.nan)
    with pytest.raises(ValueError, match="d: is 5 but the teacher has d = 4"):
        datasets.teacher_dataset(t, 5, n_train=5)
    with pytest.raises(ValueError, match="d: must be >= 1, got"):
        datasets.teacher_dataset(t, 0, n_train=5)
    with pytest.raises(TypeError, match="teacher: expected a callable"):
        datasets.teacher_dataset("relu", 4, n_train=5)
    with pytest.raises(ValueError, match="seed: must be >= 0, got -3"):
        datasets.teacher_dataset(t, 4, n_train=5, seed=-3)


# ---------------------------------------------------------------------------------------
# classification problems
# ---------------------------------------------------------------------------------------


def _class_var(ds, label):
    X = ds.X[ds.y[:, 0] == label]
    return (X**2).mean(axis=0)


def test_gaussian_mixture_law():
    ds = datasets.gaussian_mixture(4, n_train=N_STAT, n_test=10, delta=0.5, seed=0)
    assert ds.task == "classification" and ds.k == 1 and ds.n_test == 10
    assert set(np.unique(ds.y)) == {-1.0, 1.0}
    assert abs((ds.y == 1).mean() - 0.5) < MEAN_TOL
    np.testing.assert_allclose(ds.info["Delta"], [0.5, -0.5, 0.5, -0.5])
    np.testing.assert_allclose(_class_var(ds, 1.0), [1.5, 0.5, 1.5, 0.5], atol=2 * COV_TOL)
    np.testing.assert_allclose(_class_var(ds, -1.0), [0.5, 1.5, 0.5, 1.5], atol=2 * COV_TOL)
    assert np.max(np.abs(ds.X.mean(axis=0))) < MEAN_TOL  # centred classes
    # an explicit diagonal; the sampler follows the same law
    diag = np.array([0.9, 0.0, -0.2])
    ds2 = datasets.gaussian_mixture(3, n_train=10, delta=diag, seed=1)
    Xs, ys = ds2.sample(N_STAT, 0)
    Xp = Xs[ys[:, 0] > 0]
    np.testing.assert_allclose((Xp**2).mean(axis=0), 1 + diag, atol=2 * COV_TOL)
    same = datasets.gaussian_mixture(3, n_train=10, delta=diag, seed=1)
    np.testing.assert_array_equal(ds2.X, same.X)
    np.testing.assert_array_equal(ds2.y, same.y)


def test_gaussian_mixture_errors():
    with pytest.raises(ValueError, match=r"delta: must be < 1.0"):
        datasets.gaussian_mixture(4, 10, delta=1.0)
    with pytest.raises(ValueError, match=r"delta: must be >= 0.0"):
        datasets.gaussian_mixture(4, 10, delta=-0.1)
    with pytest.raises(ValueError, match=r"delta: expected a float or an array of shape \(4,\)"):
        datasets.gaussian_mixture(4, 10, delta=np.zeros(3))
    with pytest.raises(ValueError, match=r"delta: every diagonal entry must lie in \(-1, 1\)"):
        datasets.gaussian_mixture(2, 10, delta=[0.1, -1.0])
    with pytest.raises(ValueError, match="n_train: must be >= 1, got 0"):
        datasets.gaussian_mixture(4, 0)


def test_isotropic_gaussians_law():
    ds = datasets.isotropic_gaussians(5, n_train=N_STAT, n_test=7, delta=0.5, seed=0)
    assert ds.task == "classification" and ds.k == 1 and ds.n_test == 7
    assert set(np.unique(ds.y_test)) <= {-1.0, 1.0}
    assert abs((ds.y == 1).mean() - 0.5) < MEAN_TOL
    np.testing.assert_allclose(_class_var(ds, 1.0), 1.5**2, atol=3 * COV_TOL)
    np.testing.assert_allclose(_class_var(ds, -1.0), 0.5**2, atol=COV_TOL)
    other = datasets.isotropic_gaussians(5, n_train=20, seed=1)
    assert not np.array_equal(ds.X[:20], other.X)
    with pytest.raises(ValueError, match="delta: must be < 1.0"):
        datasets.isotropic_gaussians(5, 10, delta=1.5)
    with pytest.raises(TypeError, match="delta: expected a number, got str"):
        datasets.isotropic_gaussians(5, 10, delta="big")


# ---------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_ds():
    pytest.importorskip("sklearn")
    return datasets.digits(test_size=0.25, seed=0)


def test_digits_shapes_and_one_hot(digits_ds):
    ds = digits_ds
    assert ds.n + ds.n_test == 1797 and ds.d == 64 and ds.k == 10
    assert ds.task == "classification" and ds.sampler is None
    for Y in (ds.y, ds.y_test):
        assert set(np.unique(Y)) == {0.0, 1.0}
        np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.argmax(ds.y, axis=1), ds.info["labels"])
    np.testing.assert_allclose(np.linalg.norm(ds.X, axis=1), 8.0, atol=EXACT)
    np.testing.assert_allclose(np.linalg.norm(ds.X_test, axis=1), 8.0, atol=EXACT)
    # stratified: every class in the test split in proportion (about 45 each of 450)
    counts = np.bincount(ds.info["labels_test"], minlength=10)
    assert counts.min() >= 40 and counts.max() <= 50


def test_digits_seeding_and_regression_targets(digits_ds):
    same = datasets.digits(seed=0)
    np.testing.assert_array_equal(digits_ds.X, same.X)
    other = datasets.digits(seed=1)
    assert not np.array_equal(digits_ds.X, other.X)
    reg = datasets.digits(seed=0, one_hot=False)
    assert reg.k == 1 and reg.task == "regression"
    np.testing.assert_array_equal(reg.y[:, 0], digits_ds.info["labels"])


def test_digits_errors():
    with pytest.raises(ValueError, match="test_size: must be > 0.0"):
        datasets.digits(test_size=0.0)
    with pytest.raises(ValueError, match="test_size: must be < 1.0"):
        datasets.digits(test_size=1.0)
    with pytest.raises(TypeError, match="one_hot: expected True or False, got str"):
        datasets.digits(one_hot="yes")


# ---------------------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------------------

IDX_CODES = {
    np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E,
}


def _idx_bytes(arr, code):
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write(path, payload, gz):
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype", list(IDX_CODES), ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("shape", [(11,), (4, 3, 5)], ids=["labels1d", "images3d"])
def test_idx_round_trip(tmp_path, gz, dtype, shape):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        arr = rng.standard_normal(shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    path = _write(tmp_path / ("a.idx" + (".gz" if gz else "")), _idx_bytes(arr, IDX_CODES[dtype]), gz)
    out = datasets.load_idx(path)
    assert out.shape == shape and out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    np.testing.assert_array_equal(datasets.load_idx(str(path)), arr)


def test_idx_known_bytes(tmp_path):
    # hand-written file: uint8 labels [7, 2, 1]
    path = _write(tmp_path / "l.idx", b"\x00\x00\x08\x01\x00\x00\x00\x03\x07\x02\x01", False)
    np.testing.assert_array_equal(datasets.load_idx(path), [7, 2, 1])
    # float32 1.0 big-endian is 3f 80 00 00
    path = _write(tmp_path / "f.idx", b"\x00\x00\x0d\x01\x00\x00\x00\x01\x3f\x80\x00\x00", False)
    assert datasets.load_idx(path).tolist() == [1.0]


@pytest.mark.parametrize(
    "payload, pattern",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic number 0x01000801"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x05", "bad magic number 0x00000a01"),
        (b"\x00\x00\x08\x00", "bad magic number"),
        (b"\x00\x00\x08", "truncated file"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", r"truncated file \(header needs 16 bytes"),
        (
            b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02",
            r"truncated file \(shape \(5,\) needs 5 data bytes, got 2\)",
        ),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x3f\x80", "truncated file"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "size mismatch"),
    ],
)
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_corrupt(tmp_path, payload, pattern, gz):
    path = _write(tmp_path / "bad.idx", payload, gz)
    with pytest.raises(ValueError, match=pattern):
        datasets.load_idx(path)


def test_idx_corrupt_gzip_stream(tmp_path):
    good = gzip.compress(_idx_bytes(np.arange(100, dtype=np.uint8), 0x08))
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        datasets.load_idx(path)
    with pytest.raises(TypeError, match="path"):
        datasets.load_idx(3)


def _mnist_files(tmp_path, n, seed, gz=True):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 4, 5)).astype(np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    ip = _write(tmp_path / f"img{seed}.gz", _idx_bytes(images, 0x08), gz)
    lp = _write(tmp_path / f"lab{seed}.gz", _idx_bytes(labels, 0x08), gz)
    return ip, lp, images, labels


def test_mnist_from_idx(tmp_path):
    ip, lp, images, labels = _mnist_files(tmp_path, 30, 0)
    tip, tlp, _, tlabels = _mnist_files(tmp_path, 12, 1, gz=False)
    ds = datasets.mnist(ip, lp, tip, tlp)
    assert (ds.n, ds.d, ds.k, ds.n_test) == (30, 20, 10, 12)
    assert ds.task == "classification"
    np.testing.assert_array_equal(np.argmax(ds.y, axis=1), labels)
    np.testing.assert_array_equal(np.argmax(ds.y_test, axis=1), tlabels)
    np.testing.assert_allclose(np.linalg.norm(ds.X, axis=1), np.sqrt(20), atol=EXACT)
    # preprocessing: pixels / 255, minus the training mean, rows scaled to norm sqrt(d)
    Z = images.reshape(30, -1) / 255.0
    Z = Z - Z.mean(axis=0)
    np.testing.assert_allclose(ds.X, Z / np.linalg.norm(Z, axis=1, keepdims=True) * np.sqrt(20), rtol=1e-12)
    small = datasets.mnist(ip, lp, n_train=8, one_hot=False)
    assert small.n == 8 and small.k == 1 and small.X_test is None
    np.testing.assert_array_equal(small.y[:, 0], labels[:8])


def test_mnist_errors(tmp_path):
    ip, lp, _, _ = _mnist_files(tmp_path, 30, 0)
    ip2, lp2, _, _ = _mnist_files(tmp_path, 20, 2)
    with pytest.raises(ValueError, match="mnist: training set has 30 images but 20 labels"):
        datasets.mnist(ip, lp2)
    with pytest.raises(ValueError, match="mnist: give both test_images_path and test_labels_path"):
        datasets.mnist(ip, lp, ip2)
    with pytest.raises(ValueError, match="n_classes: is 5 but the training labels reach 9"):
        datasets.mnist(ip, lp, n_classes=5)
    with pytest.raises(ValueError, match="n_train: must be >= 1, got 0"):
        datasets.mnist(ip, lp, n_train=0)
    with pytest.raises(ValueError, match="mnist: training set labels must be 1-D"):
        datasets.mnist(ip, ip)


# ---------------------------------------------------------------------------------------
# the registry of [data] kinds
# ---------------------------------------------------------------------------------------

import inspect  # noqa: E402

from mfntk._options import OptionError, Options  # noqa: E402


def test_data_kinds_are_declared_once_with_their_builders():
    assert list(datasets.DATA_KINDS) == ["teacher", "gaussian_mixture", "isotropic_gaussians", "digits", "mnist",
                                         "npz"]
    for name, entry in datasets.DATA_KINDS.items():
        assert entry.name == name and entry.doc and issubclass(entry.options, Options)
        inspect.signature(entry.build).bind_partial(**{k: None for k in entry.keys()})  # every key is an argument
    # every built-in teacher says which [data] keys its constructor takes, and the teacher kind has them
    teacher_keys = datasets.DATA_KINDS["teacher"].keys()
    assert datasets.DATA_KINDS["teacher"].options.opts()["teacher"].allowed() == tuple(datasets.TEACHER_KINDS)
    for cls in datasets.TEACHER_KINDS.values():
        assert set(cls.config_keys.values()) <= set(teacher_keys)
        assert set(cls.config_keys) <= set(inspect.signature(cls).parameters)


TEACHER_TABLE = {"kind": "teacher", "d": 6, "n_train": 10, "n_test": 4, "seed": 3, "teacher_seed": 2,
                 "inputs": "sphere", "noise": 0.1, "activation": "tanh", "teacher_width": 3, "r": 2, "s": 4}
TEACHER_BY_NAME = {
    "single_neuron": lambda: datasets.SingleNeuron(6, "tanh", seed=2),
    "two_layer": lambda: datasets.TwoLayerTeacher(6, 3, "tanh", seed=2),
    "quadratic": lambda: datasets.Quadratic(6, seed=2),
    "low_dim": lambda: datasets.LowDim(6, 2, seed=2),
    "sparse_linear": lambda: datasets.SparseLinear(6, 4, seed=2),
}


def _same(a, b):
    assert (a.name, a.task, a.n, a.d, a.k, a.n_test) == (b.name, b.task, b.n, b.d, b.k, b.n_test)
    for field in ("X", "y", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.parametrize("teacher", list(TEACHER_BY_NAME))
def test_from_config_teacher_kind_is_the_direct_call(teacher):
    ds = datasets.from_config(dict(TEACHER_TABLE, teacher=teacher))
    _same(ds, datasets.teacher_dataset(TEACHER_BY_NAME[teacher](), 6, 10, 4, inputs="sphere", noise=0.1, seed=3))
    assert set(TEACHER_BY_NAME) == set(datasets.TEACHER_KINDS)


def test_from_config_defaults():
    # no kind: a ReLU single neuron in d = 20, 256 + 1000 samples, data seed 1, teacher seed 0
    _same(datasets.from_config({}), datasets.teacher_dataset(datasets.SingleNeuron(20, "relu", seed=0), 20, 256,
                                                             1000, seed=1))
    _same(datasets.from_config({"kind": "isotropic_gaussians"}), datasets.isotropic_gaussians(20, 256, 1000))


@pytest.mark.parametrize("kind", ["gaussian_mixture", "isotropic_gaussians"])
def test_from_config_mixtures(kind):
    ds = datasets.from_config({"kind": kind, "d": 5, "n_train": 12, "n_test": 0, "delta": 0.25, "seed": 4})
    _same(ds, getattr(datasets, kind)(5, 12, 0, delta=0.25, seed=4))


def test_from_config_digits():
    pytest.importorskip("sklearn")
    _same(datasets.from_config({"kind": "digits", "test_size": 0.5, "seed": 2, "one_hot": False}),
          datasets.digits(test_size=0.5, seed=2, one_hot=False))


def test_from_config_mnist(tmp_path):
    ip, lp, _, _ = _mnist_files(tmp_path, 30, 0)
    tip, tlp, _, _ = _mnist_files(tmp_path, 12, 1, gz=False)
    table = {"kind": "mnist", "images_path": str(ip), "labels_path": str(lp), "test_images_path": str(tip),
             "test_labels_path": str(tlp), "n_train": 20, "pixel_max": 128.0}
    _same(datasets.from_config(table), datasets.mnist(ip, lp, tip, tlp, n_train=20, pixel_max=128.0))


def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    X, y, Xt, yt = rng.standard_normal((6, 3)), rng.standard_normal(6), rng.standard_normal((2, 3)), np.ones(2)
    np.savez(tmp_path / "a.npz", X=X, y=y, X_test=Xt, y_test=yt)
    ds = datasets.from_config({"kind": "npz", "path": str(tmp_path / "a.npz")})
    assert (ds.name, ds.n, ds.d, ds.k, ds.n_test) == ("npz", 6, 3, 1, 2)
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y_test[:, 0], yt)
    _same(ds, datasets.npz(tmp_path / "a.npz"))


class _Payload:
    def __reduce__(self):  # would run print() if the archive were unpickled
        return (print, ("unpickled",))


def test_npz_errors(tmp_path, capsys):
    np.savez(tmp_path / "noy.npz", X=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"^path: .*noy.npz must hold arrays X and y .*; it holds X$"):
        datasets.npz(tmp_path / "noy.npz")
    np.savez(tmp_path / "obj.npz", X=np.array([_Payload()], dtype=object), y=np.ones(1))
    with pytest.raises(ValueError, match="^path: .*obj.npz: .*allow_pickle=False"):
        datasets.npz(tmp_path / "obj.npz")
    assert "unpickled" not in capsys.readouterr().out
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        datasets.npz(tmp_path / "one.npy")
    (tmp_path / "text.npz").write_text("X = 1")
    with pytest.raises(ValueError, match="not an .npz archive"):
        datasets.npz(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        datasets.npz(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="path: expected a file path"):
        datasets.npz(3)


@pytest.mark.parametrize("table, pattern", [
    ({"kind": "cifar"}, r"^data.kind: unknown value 'cifar'; expected one of 'teacher', "),
    ({"kind": 3}, r"^data.kind: unknown value 3"),
    ({"kind": "teacher", "delta": 0.3},
     r"^data.delta: not used by kind = 'teacher' \(a key of gaussian_mixture, isotropic_gaussians\); "
     r"the keys of kind = 'teacher' are kind, teacher, d, "),
    ({"kind": "digits", "colour": 1}, r"^data.colour: unknown key; the keys of kind = 'digits' are kind, test_size, "
                                      r"seed, one_hot$"),
    ({"d": 0}, r"^data.d: must be >= 1, got 0$"),
    ({"d": 2.5}, r"^data.d: expected an int, got float$"),
    ({"teacher": "cubic"}, r"^data.teacher: unknown value 'cubic'; expected one of 'single_neuron', "),
    ({"activation": "relu6"}, r"^data.activation: unknown value 'relu6'"),
    ({"noise": -1.0}, r"^data.noise: must be >= 0.0, got -1.0$"),
    ({"teacher": "low_dim", "d": 3, "r": 5}, r"^data.r: must be <= d = 3, got 5$"),
    ({"kind": "gaussian_mixture", "delta": 1.0}, r"^data.delta: must be < 1.0, got 1.0$"),
    ({"kind": "digits", "test_size": 1.5}, r"^data.test_size: must be < 1.0, got 1.5$"),
    ({"kind": "digits", "one_hot": 1}, r"^data.one_hot: expected True or False, got int$"),
    ({"kind": "npz"}, r"^data.path: required key missing$"),
    ({"kind": "npz", "path": 3}, r"^data.path: expected a file path, got int$"),
    ({"kind": "mnist", "images_path": "a.gz"}, r"^data.labels_path: required key missing$"),
    ({"kind": "mnist", "images_path": "a", "labels_path": "b", "n_classes": 1}, r"^data.n_classes: must be >= 2"),
])
def test_from_config_errors_name_the_key(table, pattern):
    with pytest.raises(OptionError, match=pattern):
        datasets.from_config(table)


def test_from_config_errors_of_files(tmp_path):
    with pytest.raises(OptionError, match=r"^data: .*No such file.*missing.npz"):
        datasets.from_config({"kind": "npz", "path": str(tmp_path / "missing.npz")})
    ip, lp, _, _ = _mnist_files(tmp_path, 30, 0)
    with pytest.raises(OptionError, match=r"^data: mnist: give both test_images_path and test_labels_path"):
        datasets.from_config({"kind": "mnist", "images_path": str(ip), "labels_path": str(lp),
                              "test_images_path": str(ip)})
    with pytest.raises(OptionError, match=r"^settings: expected a table, got list$"):
        datasets.from_config([], where="settings")


def test_a_new_data_kind_is_one_declaration(monkeypatch):
    import dataclasses

    from mfntk._options import option
    from mfntk.datasets import _registry
    monkeypatch.setattr(_registry, "DATA_KINDS", dict(_registry.DATA_KINDS))

    def ramp(n, slope):
        X = np.linspace(-1.0, 1.0, n)[:, None]
        return datasets.Dataset(X, slope * X, name="ramp")

    @datasets.data_kind("ramp", build=ramp)
    @dataclasses.dataclass(frozen=True)
    class RampData(Options):
        """y = slope x on a grid of [-1, 1]."""
        n: int = option(5, "int", "Points.", minimum=2)
        slope: float = option(1.0, "float", "The slope.")

    ds = datasets.from_config({"kind": "ramp", "slope": 2.0}, where="data")
    np.testing.assert_array_equal(ds.y[:, 0], [-2.0, -1.0, 0.0, 1.0, 2.0])
    with pytest.raises(OptionError, match="data.n: must be >= 2"):
        datasets.from_config({"kind": "ramp", "n": 1})
    assert 'kind = "ramp": y = slope x on a grid of [-1, 1].' in datasets.describe_data_kinds()
    with pytest.raises(ValueError, match="name: the data kind 'ramp' is already registered"):
        datasets.data_kind("ramp", build=ramp)(RampData)
