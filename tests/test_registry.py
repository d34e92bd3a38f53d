"""The core's registry (mfntk._registry, _core.registry()): it lists exactly what the core runs,
its metadata describe what the code does, every entry works end to end, the elementwise
activations match independent formulas, and unknown names fail loudly everywhere."""
import dataclasses

import numpy as np
import pytest

import mfntk as mf
import reference as ref
from conftest import close
from mfntk import _activations, _core, _losses, _registry
from mfntk._registry import ACTIVATIONS, INTEGRATORS, KERNEL_KINDS, KERNEL_OUTPUTS, LOSSES

DTYPES = [np.float64, np.float32]
C0 = 0.7  # passed to every activation; those without the parameter ignore it



def core_engine(activation="tanh", c0=0.0, **fields):
    """The core's float64 engine with the given option fields (the others at their defaults)."""
    options = _core.DynamicsOptions()
    for name, value in fields.items():
        setattr(options, name, value)
    return _core.Dynamics64(options, activation, c0)

def tiny_data(rng, n=12, d=3, k=1):
    X = rng.standard_normal((n, d))
    return X, np.sign(rng.standard_normal((n, k)))  # +-1 labels suit every loss


def tiny_net(activation="tanh", k=1, bias=True, **kw):
    c0 = C0 if _registry.activation_info(activation).has_c0 else 0.0
    return mf.TwoLayer(3, 8, activation=activation, outputs=k, bias=bias, b_std=0.3 if bias else 0.0, seed=1, c0=c0,
                       **kw)


def run(net, data, **kw):
    kw = {"t_max": 0.2, "dt": 0.1, "method": "euler", "progress": False, "threads": 1, **kw}
    return mf.simulate(net, data, **kw)


# ---------------------------------------------------------------------------------------------
# the registry itself
# ---------------------------------------------------------------------------------------------
def test_registry_shape_and_python_view():
    raw = _core.registry()
    assert set(raw) == {"activations", "losses", "integrators", "kernel_kinds", "kernel_outputs"}
    views = {"activations": (ACTIVATIONS, _registry.activation_info, _registry.ActivationInfo),
             "losses": (LOSSES, _registry.loss_info, _registry.LossInfo),
             "integrators": (INTEGRATORS, _registry.integrator_info, _registry.IntegratorInfo),
             "kernel_kinds": (KERNEL_KINDS, _registry.kernel_kind_info, _registry.KernelKindInfo),
             "kernel_outputs": (KERNEL_OUTPUTS, _registry.kernel_output_info, _registry.KernelOutputInfo)}
    for point, (names, info, cls) in views.items():
        entries = raw[point]
        assert names == tuple(e["name"] for e in entries), point
        assert len(set(names)) == len(names), f"{point}: a name is listed twice"
        for entry in entries:
            record = info(entry["name"])
            assert isinstance(record, cls) and dataclasses.asdict(record) == entry
            with pytest.raises(dataclasses.FrozenInstanceError):
                record.name = "other"


def test_registry_covers_the_spec():
    # SPEC 1-4: the activations, losses, integrators and kernel kinds the specification names.
    assert {"relu", "tanh", "erf", "sigmoid", "softplus", "quadratic", "identity"} <= set(ACTIVATIONS)
    assert {"squared", "logistic"} <= set(LOSSES)
    assert {"euler", "heun", "rk4"} <= set(INTEGRATORS)
    assert set(KERNEL_KINDS) == {"rf", "nt", "ntk"}
    assert set(KERNEL_OUTPUTS) == {"mean", "matrix"}


def test_public_name_lists_are_the_registry():
    assert mf.kernels.ACTIVATIONS == ACTIVATIONS and mf.kernels.KINDS == KERNEL_KINDS
    assert mf.kernels.OUTPUTS == KERNEL_OUTPUTS
    assert _activations.NAMES == ACTIVATIONS and _losses.LOSSES == LOSSES
    assert set(mf.studies.ORDERS) == set(INTEGRATORS)
    assert all(mf.studies.ORDERS[m] == _registry.integrator_info(m).order for m in INTEGRATORS)


@pytest.mark.parametrize("check,argument,choices", [
    (_registry.check_activation, "activation", ACTIVATIONS),
    (_registry.check_loss, "loss", LOSSES),
    (_registry.check_integrator, "method", INTEGRATORS),
    (_registry.check_kernel_kind, "kind", KERNEL_KINDS),
    (_registry.check_kernel_output, "output", KERNEL_OUTPUTS),
])
def test_checks_name_the_argument_and_list_the_choices(check, argument, choices):
    assert check(choices[0]) == choices[0]
    listed = ", ".join(repr(c) for c in choices)
    with pytest.raises(ValueError, match=f"^{argument}: unknown value 'nope'; expected one of {listed}$"):
        check("nope")
    with pytest.raises(ValueError, match="^config.x: unknown value 'nope'"):
        check("nope", "config.x")
    with pytest.raises(ValueError, match=f"^{argument}: unknown value 3"):
        check(3)


def test_info_lookups_raise_for_unknown_names():
    for info, argument in [(_registry.activation_info, "activation"), (_registry.loss_info, "loss"),
                           (_registry.integrator_info, "method"), (_registry.kernel_kind_info, "kind"),
                           (_registry.kernel_output_info, "output")]:
        with pytest.raises(ValueError, match=f"{argument}: unknown value 'nope'"):
            info("nope")


# ---------------------------------------------------------------------------------------------
# activations: elementwise values against independent formulas, metadata against behaviour
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_core_activation_matches_reference(name, order, dtype, rng):
    Z = (2.0 * rng.standard_normal((7, 5))).astype(dtype)
    Z0 = Z.copy()
    got = _core.activation(name, C0, Z, order)
    assert got.shape == Z.shape and got.dtype == Z.dtype
    np.testing.assert_array_equal(Z, Z0)  # input left unmodified
    c0 = C0 if _registry.activation_info(name).has_c0 else 0.0
    formula = (ref.sigma, ref.dsigma, ref.d2sigma)[order]
    close(got, formula(name, Z.astype(np.float64), c0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_core_activation_any_shape(dtype, rng):
    for shape in [(), (4,), (2, 3, 4)]:
        Z = np.asarray(rng.standard_normal(shape), dtype=dtype)
        got = _core.activation("tanh", 0.0, Z, 0)
        assert got.shape == Z.shape and got.dtype == np.dtype(dtype)
        close(got, np.tanh(Z.astype(np.float64)), dtype)


def test_core_activation_errors():
    Z = np.zeros((3, 4))
    with pytest.raises(ValueError, match="^activation: unknown value 'gelu'; expected one of 'relu'"):
        _core.activation("gelu", 0.0, Z, 0)
    with pytest.raises(ValueError, match="^order: must be 0, 1 or 2, got 3"):
        _core.activation("relu", 0.0, Z, 3)
    with pytest.raises(ValueError, match="^order: must be 0, 1 or 2, got -1"):
        _core.activation("relu", 0.0, Z, -1)
    with pytest.raises(ValueError, match="^Z: expected a float64 or float32 array, got dtype int64"):
        _core.activation("relu", 0.0, np.zeros(3, dtype=np.int64), 0)
    with pytest.raises(ValueError, match="^Z: must be C-contiguous"):
        _core.activation("relu", 0.0, Z[:, ::2], 0)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_metadata_describes_the_function(name, rng):
    info = _registry.activation_info(name)
    Z = 2.0 * rng.standard_normal(200)
    s, ds = _core.activation(name, C0, Z, 0), _core.activation(name, C0, Z, 1)
    # homogeneous: sigma(z) = z sigma'(z)
    assert np.allclose(s, Z * ds, rtol=1e-14, atol=1e-14) == info.homogeneous
    # has_c0: c0 changes sigma
    assert (not np.array_equal(s, _core.activation(name, 0.0, Z, 0))) == info.has_c0


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_metadata_describes_the_kernel(name, rng):
    info = _registry.activation_info(name)
    X = rng.standard_normal((6, 3)) / np.sqrt(3)
    kw = dict(activation=name, c0=C0 if info.has_c0 else 0.0, w_std=1.0)
    if info.closed_form_kernel:
        closed = mf.kernels.analytic(X, method="closed", **kw)
        if info.smooth:  # the quadrature reaches the closed form
            np.testing.assert_allclose(mf.kernels.analytic(X, method="quadrature", **kw), closed, rtol=1e-9,
                                       atol=1e-12)
    else:
        with pytest.raises(ValueError, match="method: 'closed' is not available"):
            mf.kernels.analytic(X, method="closed", **kw)
    # smooth: the Hermite series converges fast; a kink: algebraically (the core's own bound)
    _, report = _core.analytic_gram(name, kw["c0"], X, None, "ntk", 1.0, 1.0, 0.0, False, "quadrature", 512, 1e-12,
                                    1)
    bound = max(report["bound_f"], report["bound_d"])
    if info.smooth:
        assert bound < 1e-6
    else:
        assert bound > 1e-4
        with pytest.warns(mf.kernels.QuadratureWarning, match="not smooth"):
            mf.kernels.analytic(X, method="quadrature", quad_order=64, **kw)


def test_every_core_activation_has_a_numpy_version(rng):
    # the data teachers use mfntk._activations: it must know every name of the core, and no other
    assert set(_activations._TABLE) == set(ACTIVATIONS)
    Z = 2.0 * rng.standard_normal((5, 4))
    for name in ACTIVATIONS:
        close(_activations.get(name, c0=C0)(Z), _core.activation(name, C0, Z, 0), np.float64)


def test_activations_get_reports_a_missing_numpy_version(monkeypatch):
    monkeypatch.delitem(_activations._TABLE, ACTIVATIONS[-1])
    with pytest.raises(NotImplementedError, match=f"activation: '{ACTIVATIONS[-1]}' has no NumPy version"):
        _activations.get(ACTIVATIONS[-1])


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_runs_end_to_end(name, rng):
    X, Y = tiny_data(rng)
    net = tiny_net(name)
    close(net.predict(X), ref.forward(ref.as_tuple(net), X), np.float64)
    traj = run(net, (X, Y), diagnostics=True, probe_size=6)
    assert np.all(np.isfinite(traj.train_risk)) and np.all(np.isfinite(traj.tangent_change))
    close(mf.kernels.empirical(net, X), ref.ntk(ref.as_tuple(net), X), np.float64)
    K = mf.kernels.analytic(X, activation=name, c0=net.c0, w_std=net.w_std, b_std=net.b_std, bias=True)
    assert np.all(np.isfinite(K)) and np.allclose(K, K.T)
    rf = mf.RandomFeatures(width=8, activation=name, c0=net.c0, ridge=1e-3).fit(X, Y[:, 0])
    assert np.all(np.isfinite(rf.predict(X)))


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_runs_end_to_end(loss, rng):
    X, Y = tiny_data(rng)
    net = tiny_net("tanh", scaling=2.0)
    dA, dW, db = mf.dd_field(net, X, Y, loss=loss, weight_decay=0.1, threads=1)
    eA, eW, eb = ref.field(ref.as_tuple(net), X, Y, loss=loss, weight_decay=0.1)
    for got, want in [(dA, eA), (dW, eW), (db, eb)]:
        close(got, want, np.float64)
    traj = run(net, (X, Y), loss=loss)
    assert np.all(np.isfinite(traj.train_risk)) and traj.train_risk[-1] < traj.train_risk[0]
    F = net.predict(X)
    close(_losses.residual(loss, F, Y), ref.residual(loss, F, Y), np.float64)
    assert _losses.risk(loss, F, Y) == pytest.approx(ref.risk(loss, F, Y), rel=1e-13)


@pytest.mark.parametrize("loss", LOSSES)
def test_single_output_losses_refuse_several_outputs(loss, rng):
    X, Y = tiny_data(rng, k=2)
    net = tiny_net("tanh", k=2)
    if _registry.loss_info(loss).single_output:
        with pytest.raises(ValueError, match=f"loss: '{loss}' needs a network with outputs=1"):
            run(net, (X, Y), loss=loss)
        with pytest.raises(ValueError, match=f"loss: '{loss}' needs outputs = 1"):  # the core itself
            core_engine(N=8, d=3, k=2, loss=loss)
    else:
        assert np.all(np.isfinite(run(net, (X, Y), loss=loss).train_risk))


def test_losses_refuse_unknown_names():
    F, Y = np.zeros((3, 1)), np.ones((3, 1))
    for fn in (_losses.loss_values, _losses.residual, _losses.risk):
        with pytest.raises(ValueError, match="^loss: unknown value 'hinge'; expected one of 'squared'"):
            fn("hinge", F, Y)


def test_losses_report_a_missing_formula(monkeypatch):
    monkeypatch.delitem(_losses._FORMULAS, LOSSES[-1])
    with pytest.raises(NotImplementedError, match=f"loss: '{LOSSES[-1]}' has no NumPy formulas"):
        _losses.residual(LOSSES[-1], np.zeros((2, 1)), np.ones((2, 1)))


def test_every_core_loss_has_numpy_formulas():
    assert set(_losses._FORMULAS) == set(LOSSES)


# ---------------------------------------------------------------------------------------------
# integrators
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", INTEGRATORS)
def test_every_integrator_runs_end_to_end(method, rng):
    X, Y = tiny_data(rng)
    traj = run(tiny_net("tanh"), (X, Y), method=method, residual_dynamics=True, linearized=True)
    assert np.all(np.isfinite(traj.train_risk)) and traj.train_risk[-1] < traj.train_risk[0]


@pytest.mark.parametrize("method", INTEGRATORS)
def test_integrator_order_is_observed(method, rng):
    """Richardson: log2(|y(h) - y(h/2)| / |y(h/2) - y(h/4)|) = order (to 0.25) on a smooth problem."""
    X, Y = tiny_data(rng)
    net = tiny_net("tanh", scaling=1.0)

    def theta(dt):
        return run(net, (X, Y), t_max=0.8, dt=dt, method=method).net.get_flat()

    t1, t2, t4 = theta(0.1), theta(0.05), theta(0.025)
    observed = np.log2(np.linalg.norm(t1 - t2) / np.linalg.norm(t2 - t4))
    assert observed == pytest.approx(_registry.integrator_info(method).order, abs=0.25)


@pytest.mark.parametrize("method", INTEGRATORS)
def test_temperature_support(method, rng):
    X, Y = tiny_data(rng)
    net = tiny_net("tanh", bias=False)
    if _registry.integrator_info(method).supports_temperature:
        assert np.all(np.isfinite(run(net, (X, Y), method=method, temperature=1e-3).train_risk))
        return
    with pytest.raises(ValueError, match="method: temperature > 0 is integrated by Euler-Maruyama"):
        run(net, (X, Y), method=method, temperature=1e-3)
    # the core refuses it as well
    eng = core_engine(N=8, d=3, k=1, temperature=1e-3)
    eng.set_data(X, Y)
    with pytest.raises(ValueError, match=f"method: '{method}' cannot integrate temperature > 0"):
        eng.advance(net.get_flat(), 1, 0.1, method, 0)


# ---------------------------------------------------------------------------------------------
# kernel kinds
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KERNEL_KINDS)
def test_kernel_kind_metadata_describes_the_kernels(kind, rng):
    info = _registry.kernel_kind_info(kind)
    X = rng.standard_normal((6, 3))
    net = tiny_net("tanh", k=2)
    parts = ref.ntk(ref.as_tuple(net), X, kind="rf"), ref.ntk(ref.as_tuple(net), X, kind="nt")
    want = info.second_layer * parts[0] + info.first_layer * parts[1]
    close(mf.kernels.empirical(net, X, kind=kind), want, np.float64)
    V = rng.standard_normal((6, 2))
    close(mf.kernels.Empirical(net, kind=kind).matvec(X, V), want @ V, np.float64)
    close(mf.kernels.Empirical(net, kind=kind).cross_matvec(X[:4], X, V), want[:4] @ V, np.float64)
    # identity activation: K_rf = w^2 <x, x'> + b^2, K_nt = a^2 (<x, x'> + 1) in closed form
    G = X @ X.T
    w, a, b = 0.8, 1.3, 0.4
    want = info.second_layer * (w * w * G + b * b) + info.first_layer * a * a * (G + 1.0)
    got = mf.kernels.analytic(X, activation="identity", kind=kind, w_std=w, a_std=a, b_std=b, bias=True)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("output", KERNEL_OUTPUTS)
def test_kernel_output_metadata_describes_the_kernels(output, rng):
    info = _registry.kernel_output_info(output)
    X, k = rng.standard_normal((6, 3)), 2
    net = tiny_net("tanh", k=k)
    full = ref.matrix_ntk(ref.as_tuple(net), X)  # (6 k, 6 k), from explicit Jacobians
    want = full if info.matrix else np.einsum("ipjp->ij", full.reshape(6, k, 6, k)) / k
    close(mf.kernels.empirical(net, X, output=output), want, np.float64)
    V = rng.standard_normal((want.shape[0], 2))
    kern = mf.kernels.Empirical(net, output=output)
    close(kern.matvec(X, V), want @ V, np.float64)
    rows = 4 * k if info.matrix else 4
    close(kern.cross_matvec(X[:4], X, V), want[:rows] @ V, np.float64)


# ---------------------------------------------------------------------------------------------
# unknown names fail loudly, at every entry point
# ---------------------------------------------------------------------------------------------
def test_unknown_names_raise_everywhere(rng):
    X, Y = tiny_data(rng)
    net = tiny_net("tanh")
    cases = [
        (lambda: mf.TwoLayer(3, 4, activation="gelu"), "activation: unknown value 'gelu'"),
        (lambda: run(net, (X, Y), method="leapfrog"), "method: unknown value 'leapfrog'"),
        (lambda: run(net, (X, Y), loss="hinge"), "loss: unknown value 'hinge'"),
        (lambda: mf.dd_field(net, X, Y, loss="hinge"), "loss: unknown value 'hinge'"),
        (lambda: mf.kernels.analytic(X, kind="nngp"), "kind: unknown value 'nngp'"),
        (lambda: mf.kernels.analytic(X, activation="gelu"), "activation: unknown value 'gelu'"),
        (lambda: mf.kernels.Analytic(activation="gelu"), "activation: unknown value 'gelu'"),
        (lambda: mf.kernels.empirical(net, X, kind="nngp"), "kind: unknown value 'nngp'"),
        (lambda: mf.kernels.Empirical(net, kind="nngp"), "kind: unknown value 'nngp'"),
        (lambda: mf.kernels.empirical(net, X, output="trace"), "output: unknown value 'trace'"),
        (lambda: mf.kernels.Empirical(net, output="trace"), "output: unknown value 'trace'"),
        (lambda: mf.studies.time_step(None, methods=["leapfrog"]), r"methods\[0\]: unknown value 'leapfrog'"),
        (lambda: mf.RandomFeatures(width=4, activation="gelu").fit(X, Y), "activation: unknown value 'gelu'"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


def test_unknown_activation_of_a_network_raises_in_the_core(rng):
    X, Y = tiny_data(rng)
    net = tiny_net("tanh")
    net.activation = "gelu"  # past the constructor's check: the core refuses it itself
    for call in (lambda: mf.kernels.empirical(net, X), lambda: net.predict(X),
                 lambda: mf.dd_field(net, X, Y)):
        with pytest.raises(ValueError, match="^activation: unknown value 'gelu'; expected one of 'relu'"):
            call()


def test_core_entry_points_refuse_unknown_names(rng):
    X = rng.standard_normal((4, 3))
    a, W = np.ones((5, 1)), rng.standard_normal((5, 3))
    kw = dict(N=5, d=3, k=1)
    cases = [
        (lambda: _core.forward("gelu", 0.0, a, W, None, X, 1), "activation: unknown value 'gelu'"),
        (lambda: _core.empirical_gram("tanh", 0.0, a, W, None, X, None, "nngp", 1), "kind: unknown value 'nngp'"),
        (lambda: _core.empirical_gram("tanh", 0.0, a, W, None, X, None, "ntk", 1, "trace"),
         "output: unknown value 'trace'; expected one of 'mean', 'matrix'"),
        (lambda: _core.EmpiricalMatvec64("tanh", 0.0, a, W, None, X, np.ones((4, 1)), "ntk", "trace", 1),
         "output: unknown value 'trace'"),
        (lambda: _core.analytic_gram("gelu", 0.0, X, None, "ntk", 1.0, 1.0, 0.0, False, "auto", 0, 1e-12, 1),
         "activation: unknown value 'gelu'"),
        (lambda: _core.analytic_gram("tanh", 0.0, X, None, "nngp", 1.0, 1.0, 0.0, False, "auto", 0, 1e-12, 1),
         "kind: unknown value 'nngp'"),
        (lambda: _core.analytic_gram("tanh", 0.0, X, None, "ntk", 1.0, 1.0, 0.0, False, "exact", 0, 1e-12, 1),
         "method: unknown value 'exact'; expected one of 'auto', 'closed', 'quadrature'"),
        (lambda: core_engine(**dict(kw, loss="hinge")), "loss: unknown value 'hinge'"),
        (lambda: core_engine(**dict(kw, activation="gelu")), "activation: unknown value 'gelu'"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    eng = core_engine(**kw)
    eng.set_data(X, np.ones((4, 1)))
    with pytest.raises(ValueError, match="method: unknown value 'leapfrog'; expected one of 'euler'"):
        eng.advance(np.zeros(eng.layout()["size"]), 1, 0.1, "leapfrog", 0)


@pytest.mark.parametrize("name", [a["name"] for a in _core.registry()["activations"]])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activation_values_do_not_depend_on_memory_offset(name, dtype):
    """The feature map sigma(Z), sigma'(Z) is the same for Z anywhere in memory: a vectorised
    path that finished unaligned or ragged arrays with scalar code would differ in the last bit
    with the offset, and with it every diagnostic computed from the features."""
    z = np.random.default_rng(5).uniform(-6.0, 6.0, 1037).astype(dtype)
    base = np.empty(z.size + 16, dtype=dtype)
    for order in (0, 1):
        ref = None
        for offset in range(16):
            view = base[offset:offset + z.size]
            view[:] = z
            out = _core.activation(name, 0.5, view, order)
            if ref is None:
                ref = out
            np.testing.assert_array_equal(out, ref, err_msg=f"{name} order {order} offset {offset}")
