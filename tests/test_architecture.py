"""The shape of the package: one door to the compiled core, no import circles, every option
of a run in its config, its TOML schema and its resume, a backend selected by one argument."""
import ast
import json
import pathlib

import numpy as np
import pytest

import mfntk as mf
from mfntk import cli
from mfntk._backend import CPUBackend
from mfntk._options import NetOptions, OutputOptions, RunOptions
from conftest import interrupt_after

PACKAGE = pathlib.Path(mf.__file__).parent
DOORS = {"_backend.py", "_registry.py"}   # the modules that may import the compiled core


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        name = ".".join(("mfntk",) + rel.with_suffix("").parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        yield name, path


def _imports(name, path):
    """Every module of the package that ``name`` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("mfntk"):
                continue
            if node.module:
                out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("mfntk"))
    return out


def test_only_the_backend_reaches_the_compiled_core():
    offenders = [path.name for name, path in _modules()
                 if path.name not in DOORS and any(t.endswith("._core") or t == "mfntk._core"
                                                   for t in _imports(name, path))]
    assert offenders == []


def test_no_import_circles():
    modules = dict(_modules())
    graph = {}
    for name, path in modules.items():
        graph[name] = {t if t in modules else t.rsplit(".", 1)[0] for t in _imports(name, path)}
        graph[name] = {t for t in graph[name] if t in modules and t != name and t != "mfntk"}
    # a package's __init__ re-exporting its submodules is not a circle; look for cycles among the rest
    state, cycle = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycle == []


# ---- options ---------------------------------------------------------------------------------

D = 3
# one value other than the default for every run option (t_max and dt have no default)
NON_DEFAULT = {
    "t_max": 0.4, "dt": 0.05, "method": "heun", "loss": "logistic", "batch": 6, "online": False,
    "weight_decay": 0.01, "temperature": 1e-4, "record_every": 0.1, "threads": 1, "residual_dynamics": True,
    "linearized": True, "diagnostics": True, "probe_size": 5, "test_size": 7, "seed": 3,
    "divergence_factor": 1e5, "cache_mb": 0.0, "centered": True,
}
COMPANIONS = {"temperature": {"method": "euler"}}   # options that need another one set to be valid


def test_the_table_of_non_default_values_covers_every_option():
    assert set(NON_DEFAULT) == set(RunOptions.opts())
    for name, value in NON_DEFAULT.items():
        assert value != RunOptions.defaults().get(name, object()), name


def _data():
    X = np.random.default_rng(0).standard_normal((12, D))
    return mf.datasets.Dataset(X, np.sign(X[:, :1] + 0.1), name="signs", task="classification")


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_every_option_reaches_config_and_survives_resume(tmp_path, monkeypatch, name):
    options = {"t_max": 0.4, "dt": 0.05, "record_every": 0.1, "threads": 1, name: NON_DEFAULT[name],
               **COMPANIONS.get(name, {})}
    t_max, dt = options.pop("t_max"), options.pop("dt")
    net = mf.TwoLayer(D, 6, "tanh", seed=1)
    path = tmp_path / "run.h5"
    interrupt_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        mf.simulate(net, _data(), t_max, dt, progress=False, out=path, checkpoint_every=0.1, **options)
    monkeypatch.undo()
    stored = mf.load(path).config
    want = NON_DEFAULT[name]
    assert stored[name] == want
    resumed = mf.resume(path, threads=None if name != "threads" else 1)
    assert resumed.complete
    assert resumed.config[name] == want          # written by the resumed run's own config()
    if name == "cache_mb":
        assert mf.load(path).config["cache_mb"] == 0.0


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_every_run_option_is_accepted_in_a_config_file(tmp_path, name):
    run = {"t_max": 1.0, "dt": 0.1, name: NON_DEFAULT[name], **COMPANIONS.get(name, {})}
    text = "[data]\nkind = \"teacher\"\nd = 3\nn_train = 10\n[net]\nwidth = 4\n[run]\n"
    text += "".join(f"{k} = {_toml_value(v)}\n" for k, v in run.items())
    path = tmp_path / "c.toml"
    path.write_text(text)
    cfg = cli.read_config(path, "run")
    assert cfg["run"][name] == NON_DEFAULT[name]


def test_the_command_line_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    for options, exclude in ((RunOptions, ()), (NetOptions, ("d",)), (OutputOptions, ("out",))):
        for name in options.opts():
            if name not in exclude:
                assert f" {name} = " in text, name


def test_simulate_signature_and_doc_list_every_option():
    import inspect
    params = inspect.signature(mf.simulate).parameters
    for name in list(RunOptions.opts()) + list(OutputOptions.opts()):
        assert name in params, name
        assert f"\n    {name} : " in mf.simulate.__doc__, name
    with pytest.raises(TypeError, match="simulate: unknown option 'dtt'"):
        mf.simulate(mf.TwoLayer(D, 4), _data(), 1.0, 0.1, dtt=0.1)


# ---- the backend seam --------------------------------------------------------------------------

class CountingBackend(CPUBackend):
    """The CPU backend, counting what reaches it."""

    name = "counting"

    def __init__(self):
        self.calls = {}

    def __getattribute__(self, attr):
        value = object.__getattribute__(self, attr)
        if callable(value) and not attr.startswith("_"):
            calls = object.__getattribute__(self, "calls")
            calls[attr] = calls.get(attr, 0) + 1
        return value


def test_a_backend_selected_by_one_argument_carries_every_call():
    backend = CountingBackend()
    X, y = _data().X, _data().y
    run = dict(t_max=0.3, dt=0.05, method="rk4", diagnostics=True, linearized=True, residual_dynamics=True,
               threads=1, progress=False)
    ref_net, net = mf.TwoLayer(D, 8, "tanh", seed=2), mf.TwoLayer(D, 8, "tanh", seed=2, backend=backend)
    ref, got = mf.simulate(ref_net, (X, y), **run), mf.simulate(net, (X, y), **run)
    for key, value in ref.series().items():
        np.testing.assert_array_equal(value, got.series()[key], err_msg=key)
    assert got.net.backend is backend and got.linearized_predict(X).shape == (12, 1)
    kernel = mf.kernels.Empirical(net)
    kernel.matvec(X, np.ones((12, 1)))
    mf.NTKLimit(net, X, y).predict(X, t=1.0)
    assert {"forward", "jvp", "gram", "matvec", "dynamics"} <= set(backend.calls), backend.calls
    with pytest.raises(ValueError, match="backend: unknown value 'gpu'"):
        mf.TwoLayer(D, 4, backend="gpu")


def test_build_requirements_file_repeats_the_build_system_requirements():
    """build-requirements.txt (README's commands install it for builds without isolation) lists
    every requirement of pyproject.toml's [build-system], the same, plus CMake and Ninja."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    root = pathlib.Path(__file__).resolve().parents[1]
    with open(root / "pyproject.toml", "rb") as f:
        required = set(tomllib.load(f)["build-system"]["requires"])
    lines = (root / "build-requirements.txt").read_text().splitlines()
    listed = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert required <= listed, sorted(required - listed)
    assert {name.split(">")[0] for name in listed - required} == {"cmake", "ninja"}
