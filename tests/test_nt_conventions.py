"""neural-tangents' and PyTorch's conventions against mfntk's (kernels.neural_tangents, nt_time, nt_ridge).

References used here, none of them mfntk:

- tests/data/neural_tangents_reference.json, written by make_neural_tangents_reference.py: the
  kernel recursion of neural-tangents' stax layers in plain numpy;
- finite-width networks of neural-tangents' two parameterizations written in numpy from the
  Dense layer's definition, whose gradient products approach that recursion as the width grows;
- the predictor of neural-tangents' gradient_descent_mse in numpy (scipy.linalg.expm);
- a gradient-descent step of the PyTorch-style model (Linear, ReLU, Linear) in numpy.
"""
import functools
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from scipy import special

import mfntk as mf
import mfntk.kernels  # noqa: F401  (mf.kernels)

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "neural_tangents_reference.json").read_text())

# ---- tolerances ----------------------------------------------------------------------------
STORED = 1e-12          # against the stored reference, relative to the largest entry
EXACT = 1e-13           # identities between mfntk's kernels that hold to rounding
FLOW = 1e-9             # time-t predictors: eigendecomposition against expm and solve
FINITE_WIDTH = 0.03     # finite-width gradient products at N = 2**15, relative Frobenius error
SLOPE_RANGE = (-0.7, -0.3)  # log error against log N (theory: -1/2)

SIGMA = {"relu": lambda u: np.maximum(u, 0.0), "erf": special.erf}
DSIGMA = {"relu": lambda u: (u > 0).astype(float),
          "erf": lambda u: 2.0 / math.sqrt(math.pi) * np.exp(-u * u)}


def _generator():
    spec = importlib.util.spec_from_file_location("make_nt_reference", DATA / "make_neural_tangents_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def points(n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, (n, 1))


def relative(A, B):
    return np.linalg.norm(A - B) / np.linalg.norm(B)


def case_id(case):
    return (f"{case['activation']}-W{case['W_std']}-b{case['b_std']}-d{case['d']}-{case['parameterization']}")


# ---------------------------------------------------------------------------------------------
# the stored reference
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", REFERENCE["cases"], ids=case_id)
def test_matches_the_stored_neural_tangents_values(case):
    inputs = REFERENCE["inputs"][str(case["d"])]
    X, X2 = np.array(inputs["X"]), np.array(inputs["X2"])
    kw = {k: case[k] for k in ("activation", "W_std", "b_std", "parameterization", "width")}
    for kind in ("nngp", "ntk"):
        for other, key in ((None, kind), (X2, kind + "_cross")):
            expected = np.array(case[key])
            got = mf.kernels.neural_tangents(X, other, kind=kind, **kw)
            assert got.shape == expected.shape and got.dtype == np.float64
            np.testing.assert_allclose(got, expected, rtol=STORED, atol=STORED * np.abs(expected).max(),
                                       err_msg=key)
        assert np.array_equal(mf.kernels.neural_tangents(X, kind=kind, **kw),
                              mf.kernels.neural_tangents(X, kind=kind, **kw).T)


def test_the_stored_reference_covers_the_configurations():
    seen = {(c["activation"], c["W_std"], c["b_std"], c["d"], c["parameterization"]) for c in REFERENCE["cases"]}
    assert {s[0] for s in seen} == {"relu", "erf"} and {s[1] for s in seen} == {1.0, 1.5}
    assert {s[2] for s in seen} == {None, 0.0, 0.1} and {s[3] for s in seen} == {3, 10}
    assert {s[4] for s in seen} == {"ntk", "standard"} and len(seen) == 48


# ---------------------------------------------------------------------------------------------
# the recursion against neural-tangents' finite-width network (its Dense layer's definition)
# ---------------------------------------------------------------------------------------------
def nt_network_features(X, activation, W_std, b_std, parameterization, N, rng):
    """Gradients of f(x) with respect to the parameters of the network of
    stax.serial(Dense(N, W_std, b_std), Act, Dense(1, W_std, b_std)) at a random initialisation
    (rows: points): the readout weights' block and the others' (first layer, output bias); and
    the output's covariance given the hidden layer."""
    n, d = X.shape
    bias = b_std is not None
    b = 0.0 if b_std is None else b_std
    W1, b1 = rng.standard_normal((d, N)), rng.standard_normal(N)
    W2 = rng.standard_normal(N)
    if parameterization == "ntk":         # z = W_std / sqrt(fan_in) W x + b_std b, W, b ~ N(0, 1)
        in_scale, in_bias, out_scale, out_bias = W_std / math.sqrt(d), b, W_std / math.sqrt(N), b
    else:                                 # W ~ N(0, W_std^2 / fan_in), b ~ N(0, b_std^2): z = W x + b
        W1, b1, W2 = W1 * W_std / math.sqrt(d), b1 * b, W2 * W_std / math.sqrt(N)
        in_scale, in_bias, out_scale, out_bias = 1.0, 1.0, 1.0, 1.0
    Z = in_scale * X @ W1 + (in_bias * b1 if bias else 0.0)
    H, dH = SIGMA[activation](Z), DSIGMA[activation](Z)
    readout = out_scale * H                                       # df / dW2_j
    back = out_scale * W2 * dH                                    # df / dz_j, (n, N)
    rest = [(back[:, None, :] * (in_scale * X)[:, :, None]).reshape(n, d * N)]   # df / dW1_kj
    if bias:
        rest += [in_bias * back, np.full((n, 1), out_bias)]       # df / db1_j, df / db2
    covariance = (W_std ** 2 / N) * H @ H.T + b ** 2              # Cov(f(x), f(x') | hidden layer)
    return readout, np.hstack(rest), covariance


@pytest.mark.parametrize("activation,W_std,b_std,parameterization", [
    ("relu", 1.5, 0.1, "ntk"), ("erf", 1.0, None, "ntk"),
    ("relu", 1.0, 0.0, "standard"), ("erf", 1.5, 0.1, "standard"), ("relu", 1.5, None, "standard")])
def test_the_reference_recursion_is_the_finite_width_network_limit(activation, W_std, b_std, parameterization):
    """The generator's recursion, at the network's width, against the gradient products and the
    output covariance of neural-tangents' network at N = 2**15 written from its Dense layer: the
    readout weights' part and the rest (first layer and biases) separately, since the readout's
    part of the "standard" NTK is N times larger than the rest."""
    kernels = _generator().kernels
    X = points(5, 3, seed=1)
    N = 2 ** 15
    readout, rest, covariance = nt_network_features(X, activation, W_std, b_std, parameterization, N,
                                                    np.random.default_rng(2))
    nngp, ntk = kernels(X, None, activation, W_std, b_std, parameterization, N)
    b2 = 0.0 if b_std is None else b_std ** 2
    readout_part = (nngp - b2) * (1.0 if parameterization == "ntk" else N / W_std ** 2)  # sum_j phi phi'
    assert relative(covariance, nngp) < FINITE_WIDTH
    assert relative(readout @ readout.T, readout_part) < FINITE_WIDTH
    assert relative(rest @ rest.T, ntk - readout_part) < FINITE_WIDTH
    # and the recursion is what neural_tangents computes, at this width too
    np.testing.assert_allclose(mf.kernels.neural_tangents(X, activation=activation, W_std=W_std, b_std=b_std,
                                                          parameterization=parameterization, width=N),
                               ntk, rtol=STORED, atol=STORED * np.abs(ntk).max())


# ---------------------------------------------------------------------------------------------
# mfntk networks mapped to neural-tangents' conventions
# ---------------------------------------------------------------------------------------------
def mapped_empirical_ntk(X, activation, W_std, b_std, parameterization, N, seed):
    """neural-tangents' empirical NTK from an mfntk network with the documented mapping."""
    n, d = X.shape
    b = 0.0 if b_std is None else b_std
    if parameterization == "ntk":
        Xhat = np.hstack([W_std * X / math.sqrt(d), np.full((n, 1), b)])
        net = mf.TwoLayer(d + 1, N, activation=activation, w_std=1.0, a_std=1.0, seed=seed)
        return W_std ** 2 * mf.kernels.empirical(net, Xhat) + b ** 2
    bias = b_std is not None
    net = mf.TwoLayer(d, N, activation=activation, w_std=W_std / math.sqrt(d), a_std=W_std / math.sqrt(N),
                      bias=bias, b_std=b, seed=seed)
    return N * mf.kernels.empirical(net, X) + float(bias)


@pytest.mark.parametrize("activation,W_std,b_std,parameterization", [
    ("relu", 1.5, 0.1, "ntk"), ("erf", 1.0, None, "ntk"), ("relu", 1.0, 0.1, "standard")])
def test_mapped_empirical_kernel_of_mfntk_networks_approaches_neural_tangents(activation, W_std, b_std,
                                                                              parameterization):
    X = points(6, 4, seed=3)
    widths = [256, 1024, 4096, 16384]
    errors = []
    for N in widths:
        target = mf.kernels.neural_tangents(X, activation=activation, W_std=W_std, b_std=b_std,
                                            parameterization=parameterization, width=N)
        errors.append(np.mean([relative(mapped_empirical_ntk(X, activation, W_std, b_std, parameterization, N, s),
                                        target) for s in range(4)]))
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert SLOPE_RANGE[0] < slope < SLOPE_RANGE[1], (slope, errors)
    assert errors[-1] < FINITE_WIDTH, errors


def test_mfntk_defaults_differ_from_neural_tangents_by_d_on_the_first_layer_part():
    """neural-tangents' W_std = 1 network without biases against mfntk's defaults (w_std = 1/sqrt(d)):
    the same NNGP (K_rf), the first-layer part divided by d."""
    d = 10
    X = points(7, d, seed=4)
    for activation in ("relu", "erf"):
        rf = mf.kernels.analytic(X, activation=activation, kind="rf")
        nt = mf.kernels.analytic(X, activation=activation, kind="nt")
        np.testing.assert_allclose(mf.kernels.neural_tangents(X, activation=activation, kind="nngp"), rf,
                                   rtol=EXACT, atol=EXACT * rf.max())
        np.testing.assert_allclose(mf.kernels.neural_tangents(X, activation=activation), rf + nt / d,
                                   rtol=EXACT, atol=EXACT * rf.max())


def test_properties_of_the_function():
    X = points(5, 3, seed=5)
    X2 = points(4, 3, seed=6)
    kw = dict(activation="relu", W_std=1.5, b_std=0.1)
    K = mf.kernels.neural_tangents(X, **kw)
    np.testing.assert_allclose(mf.kernels.neural_tangents(X, X, **kw), K, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(mf.kernels.neural_tangents(X2, X, **kw), mf.kernels.neural_tangents(X, X2, **kw).T,
                               rtol=1e-14, atol=1e-14)
    assert np.array_equal(mf.kernels.neural_tangents(X.tolist(), **kw), K)
    assert np.array_equal(mf.kernels.neural_tangents(X, threads=1, **kw), K)
    K32 = mf.kernels.neural_tangents(X.astype(np.float32), **kw)
    assert K32.dtype == np.float32
    np.testing.assert_allclose(K32, K, rtol=2e-5, atol=2e-5 * K.max())
    # the NNGP does not depend on the parameterization or the width; in the "ntk" parameterization
    # neither does the NTK; b_std None and 0 agree in the "ntk" parameterization only
    nngp = mf.kernels.neural_tangents(X, kind="nngp", **kw)
    assert np.array_equal(nngp, mf.kernels.neural_tangents(X, kind="nngp", parameterization="standard", **kw))
    assert np.array_equal(K, mf.kernels.neural_tangents(X, width=7, **kw))
    no_bias = mf.kernels.neural_tangents(X, activation="erf")
    assert np.array_equal(no_bias, mf.kernels.neural_tangents(X, activation="erf", b_std=0.0))
    standard = functools.partial(mf.kernels.neural_tangents, X, activation="erf", parameterization="standard",
                                 width=50)
    # a zero-initialised bias adds its gradients: 1 (output) + E[erf'(u) erf'(v)] (first layer)
    np.testing.assert_allclose(standard(b_std=0.0) - standard(), 1.0 + _first_layer_bias(X), rtol=1e-12, atol=1e-12)


def _first_layer_bias(X):
    """E[erf'(u) erf'(v)] for W_std = 1 and no bias: the gradient of a zero-initialised first-layer
    bias in the standard parameterization (u, v with covariance <x, x'> / d)."""
    d = X.shape[1]
    S = X @ X.T / d
    den = np.outer(1 + 2 * np.diag(S), 1 + 2 * np.diag(S))
    return 4 / math.pi / np.sqrt(den - 4 * S ** 2)


def test_bad_arguments_are_named():
    X = points(3, 2, seed=7)
    nt = mf.kernels.neural_tangents
    with pytest.raises(ValueError, match="kind"):
        nt(X, kind="rf")
    with pytest.raises(ValueError, match="activation"):
        nt(X, activation="tanh")
    with pytest.raises(ValueError, match="parameterization"):
        nt(X, parameterization="mf")
    with pytest.raises(ValueError, match="W_std"):
        nt(X, W_std=-1.0)
    with pytest.raises(ValueError, match="b_std"):
        nt(X, b_std=-0.1)
    with pytest.raises(TypeError, match="b_std"):
        nt(X, b_std="0.1")
    with pytest.raises(ValueError, match="width"):
        nt(X, parameterization="standard")
    with pytest.raises(ValueError, match="width"):
        nt(X, width=0)
    with pytest.raises(ValueError, match="X2"):
        nt(X, points(2, 3, seed=8))
    with pytest.raises(ValueError, match="X"):
        nt(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="t"):
        mf.kernels.nt_time(-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        mf.kernels.nt_time(1.0, learning_rate=0.0)
    with pytest.raises(ValueError, match="outputs"):
        mf.kernels.nt_time(1.0, outputs=0)
    with pytest.raises(ValueError, match="K_train"):
        mf.kernels.nt_ridge(np.ones((2, 3)), 0.1)
    with pytest.raises(ValueError, match="diag_reg"):
        mf.kernels.nt_ridge(np.eye(2), -0.1)
    with pytest.raises(TypeError, match="diag_reg_absolute_scale"):
        mf.kernels.nt_ridge(np.eye(2), 0.1, diag_reg_absolute_scale=1)


# ---------------------------------------------------------------------------------------------
# time and regularisation of neural-tangents' predictors
# ---------------------------------------------------------------------------------------------
def nt_gradient_descent_mse(K_dd, K_td, Y, learning_rate, t, diag_reg, absolute):
    """neural-tangents' predictor at time t (None: infinite) on the MSE loss normalised by Y.size:
    K_td Kr^{-1} (I - exp(-learning_rate t Kr / Y.size)) Y, Kr = K_dd + r I with r = diag_reg
    times the mean of diag K_dd (or diag_reg itself when absolute)."""
    n = K_dd.shape[0]
    r = diag_reg if absolute else diag_reg * np.trace(K_dd) / n
    Kr = K_dd + r * np.eye(n)
    if t is None:
        return K_td @ np.linalg.solve(Kr, Y)
    return K_td @ np.linalg.solve(Kr, (np.eye(n) - scipy.linalg.expm(-learning_rate * t * Kr / Y.size)) @ Y)


@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("diag_reg,absolute", [(0.0, False), (0.05, False), (0.3, True)])
@pytest.mark.parametrize("t", [0.0, 40.0, 2000.0, None])
def test_kernel_regressor_reproduces_neural_tangents_predictors(outputs, diag_reg, absolute, t):
    rng = np.random.default_rng(9)
    X, X_test = points(12, 3, seed=10), points(5, 3, seed=11)
    Y = rng.standard_normal((12, outputs))
    learning_rate = 0.7
    kern = functools.partial(mf.kernels.neural_tangents, activation="relu", W_std=1.5, b_std=0.1)
    K_dd, K_td = kern(X), kern(X_test, X)
    expected = nt_gradient_descent_mse(K_dd, K_td, Y, learning_rate, t, diag_reg, absolute)
    reg = mf.KernelRegressor(kernel=kern, t=mf.kernels.nt_time(t, learning_rate, outputs=outputs),
                             ridge=mf.kernels.nt_ridge(K_dd, diag_reg, diag_reg_absolute_scale=absolute))
    got = reg.fit(X, Y).predict(X_test)
    np.testing.assert_allclose(got, expected, rtol=FLOW, atol=FLOW * max(np.abs(expected).max(), 1.0))
    # the same with the precomputed kernel
    pre = mf.KernelRegressor(kernel="precomputed", t=reg.t, ridge=reg.ridge).fit(K_dd, Y).predict(K_td)
    np.testing.assert_allclose(pre, expected, rtol=FLOW, atol=FLOW * max(np.abs(expected).max(), 1.0))


def test_nt_time_and_ridge_values():
    assert mf.kernels.nt_time(None) is None
    assert mf.kernels.nt_time(np.inf, 0.5) == np.inf
    assert mf.kernels.nt_time(30.0, learning_rate=0.5, outputs=3) == pytest.approx(5.0, rel=1e-15)
    K = np.array([[2.0, 0.5], [0.5, 4.0]])
    assert mf.kernels.nt_ridge(K, 0.1) == pytest.approx(0.3, rel=1e-15)
    assert mf.kernels.nt_ridge(K, 0.1, diag_reg_absolute_scale=True) == 0.1


# ---------------------------------------------------------------------------------------------
# PyTorch conventions: Linear(d, N), ReLU, Linear(N, k) trained by SGD
# ---------------------------------------------------------------------------------------------
def torch_style_sgd_step(X, Y, W1, b1, W2, lr1, lr2, alpha_over_N=None, mse_loss=False):
    """One gradient-descent step of f(x) = W2 relu(W1 x + b1) (alpha_over_N: a fixed multiplier,
    f = alpha/N * W2 relu(W1 x + b1), the readout then holding a^T), on the loss
    (1/2n) sum_i |f(x_i) - y_i|^2 or, with mse_loss, torch.nn.MSELoss's (1/(n k)) sum_ij (f - y)^2;
    first-layer learning rate lr1, readout lr2. Gradients written out by hand."""
    n, k = Y.shape
    c = 1.0 if alpha_over_N is None else alpha_over_N
    Z = X @ W1.T + b1
    H = np.maximum(Z, 0.0)
    F = c * H @ W2.T
    G = (F - Y) / n if not mse_loss else 2.0 * (F - Y) / (n * k)    # dLoss / dF
    dW2 = c * G.T @ H
    back = c * (G @ W2) * (Z > 0)                                   # dLoss / dZ
    return W1 - lr1 * back.T @ X, b1 - lr1 * back.sum(0), W2 - lr2 * dW2


@pytest.mark.parametrize("scaling", ["mf", "ntk"])
def test_pytorch_learning_rate_mapping(scaling):
    """One Euler step of mf.simulate with dt = euler_dt(net, eta) is one SGD step with learning rate
    eta of the module alpha/N * Linear(N, k, bias=False)(relu(Linear(d, N)(x))) on the half mean
    squared error, eta k / 2 with MSELoss; with a plain Linear readout W2 = alpha/N a^T, the
    readout's learning rate is eta (alpha/N)^2."""
    d, N, k, n = 3, 64, 2, 10
    rng = np.random.default_rng(12)
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, k))
    net = mf.TwoLayer(d, N, activation="relu", scaling=scaling, bias=True, b_std=0.3, outputs=k, seed=13)
    eta = 0.05
    dt = mf.euler_dt(net, eta)
    assert dt == pytest.approx(eta * net.alpha ** 2 / N) and mf.learning_rate(net, dt) == pytest.approx(eta)
    stepped = mf.simulate(net, (X, Y), t_max=dt, dt=dt, method="euler", progress=False).net
    c = net.alpha / N
    # the multiplier module: the readout weight is a^T, one learning rate
    W1, b1, A = torch_style_sgd_step(X, Y, net.W, net.b, net.a.T, eta, eta, alpha_over_N=c)
    np.testing.assert_allclose(W1, stepped.W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b1, stepped.b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A.T, stepped.a, rtol=1e-12, atol=1e-12)
    W1, b1, A = torch_style_sgd_step(X, Y, net.W, net.b, net.a.T, eta * k / 2, eta * k / 2, alpha_over_N=c,
                                     mse_loss=True)
    np.testing.assert_allclose(A.T, stepped.a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(W1, stepped.W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b1, stepped.b, rtol=1e-12, atol=1e-12)
    # plain nn.Sequential: readout weight W2 = (alpha/N) a^T and learning rate eta (alpha/N)^2
    W1, b1, W2 = torch_style_sgd_step(X, Y, net.W, net.b, c * net.a.T, eta, eta * c ** 2)
    np.testing.assert_allclose(W2, c * stepped.a.T, rtol=1e-12, atol=1e-12 * c)
    np.testing.assert_allclose(W1, stepped.W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b1, stepped.b, rtol=1e-12, atol=1e-12)
    # and the two models compute the same function as the mfntk network
    np.testing.assert_allclose(c * np.maximum(X @ net.W.T + net.b, 0.0) @ net.a, net.predict(X), rtol=1e-12,
                               atol=1e-12)
