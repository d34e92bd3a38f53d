"""The ``mfntk`` command line.

::

    mfntk demo   [--out DIR] [--threads T] [--quiet]    lazy (NTK) vs rich (mean-field) comparison
    mfntk run CONFIG.toml [--out DIR] ...               one run from a TOML file (HDF5 + figures)
    mfntk resume FILE [--t-max T] ...                   continue a run from its last checkpoint
    mfntk plot FILE [--out DIR]                         figures of a trajectory file
    mfntk study width|dt|alpha CONFIG.toml [--workers W] convergence studies (CSV, JSON, figure)

Every command and sub-command documents itself with ``--help``. Errors in the arguments
are reported in one line naming the offending argument, with exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys

from ._registry import ACTIVATIONS, INTEGRATORS, LOSSES, integrator_info

__all__ = ["main", "build_parser", "read_config", "build_data", "ConfigError"]

_DESCRIPTION = """\
mfntk: two-layer neural networks as interacting particle systems.

Simulates f(x) = (alpha/N) sum_j a_j sigma(<w_j, x> + b_j) trained by the mean-field
distributional dynamics, in the mean-field (alpha = 1, feature learning) and NTK
(alpha = sqrt(N), lazy) scalings. Time is measured in mean-field units: a gradient-descent
step with learning rate eta is dt = eta alpha^2 / N.
"""

_EPILOG = "Run 'mfntk COMMAND --help' for the options of a command."


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _threads(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _common(out_default, out_help):
    """The options every command shares: --out, --threads, --quiet."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("common options")
    group.add_argument("--out", metavar="DIR", default=out_default, help=out_help)
    group.add_argument("--threads", metavar="T", type=_threads, default=None,
                       help="OpenMP threads per run (default: all cores this process may use)")
    group.add_argument("--quiet", action="store_true", help="print nothing but errors; no progress bars")
    return parent


# ---------------------------------------------------------------------------------------
# configuration files (TOML)
# ---------------------------------------------------------------------------------------

class ConfigError(ValueError):
    """A configuration file with an unknown key or a bad value (the message names the key)."""


# a type spec is one of: "int", "float", "bool", "str", "scaling", "list[int]", "list[float]",
# "list[str]", or a tuple of allowed strings; a pair (spec, minimum) adds a lower bound
# (exclusive for floats named in _STRICT).
_DATA = {
    "kind": ("teacher", "gaussian_mixture", "isotropic_gaussians", "digits", "npz"),
    "teacher": ("single_neuron", "two_layer", "quadratic", "low_dim", "sparse_linear"),
    "d": ("int", 1), "n_train": ("int", 1), "n_test": ("int", 0), "inputs": ("gaussian", "sphere"),
    "noise": ("float", 0.0), "seed": ("int", 0), "activation": ACTIVATIONS, "teacher_seed": ("int", 0),
    "teacher_width": ("int", 1), "r": ("int", 1), "s": ("int", 1), "delta": ("float", 0.0),
    "test_size": "float", "one_hot": "bool", "path": "str",
}
_NET = {
    "width": ("int", 1), "activation": ACTIVATIONS, "scaling": "scaling", "bias": "bool", "outputs": ("int", 1),
    "w_std": ("float", 0.0), "a_std": ("float", 0.0), "b_std": ("float", 0.0), "symmetric": "bool",
    "seed": ("int", 0), "dtype": ("float64", "float32"), "a_init": ("gaussian", "rademacher"), "c0": "float",
}
_RUN = {
    "t_max": ("float", 0.0), "dt": ("float", 0.0), "method": INTEGRATORS,
    "loss": LOSSES, "batch": ("int", 1), "online": "bool", "weight_decay": ("float", 0.0),
    "temperature": ("float", 0.0), "record_every": ("float", 0.0), "residual_dynamics": "bool",
    "linearized": "bool", "diagnostics": "bool", "probe_size": ("int", 1), "test_size": ("int", 1),
    "seed": ("int", 0), "divergence_factor": ("float", 1.0), "threads": ("int", 1),
}
_OUTPUT = {"file": "str", "checkpoint_every": ("float", 0.0), "snapshot_every": ("float", 0.0), "figures": "bool"}
_STUDY = {
    "width": {"widths": "list[int]", "n_ref": ("int", 2), "scaling": "scaling", "t_max": ("float", 0.0),
              "dt": ("float", 0.0), "method": INTEGRATORS, "record_every": ("float", 0.0),
              "repeats": ("int", 1), "seed": ("int", 0), "w2": "bool", "w2_max_width": ("int", 1),
              "probe_size": ("int", 1), "workers": ("int", 1)},
    "dt": {"methods": "list[str]", "dts": "list[float]", "width": ("int", 1), "scaling": "scaling",
           "t_max": ("float", 0.0), "dt_ref": ("float", 0.0), "seed": ("int", 0), "probe_size": ("int", 1),
           "floor": ("float", 0.0), "workers": ("int", 1)},
    "alpha": {"alphas": "list[float]", "widths": "list[int]", "t_max": ("float", 0.0), "dt": ("float", 0.0),
              "method": INTEGRATORS, "kappa": ("float", 0.0), "record_every": ("float", 0.0),
              "seed": ("int", 0), "probe_size": ("int", 1), "lazy_from": ("float", 0.0), "workers": ("int", 1)},
}
_STRICT = {"t_max", "dt", "record_every", "checkpoint_every", "snapshot_every", "dt_ref", "floor", "kappa",
           "lazy_from"}
_STUDY_NET = ("activation", "bias", "outputs", "w_std", "a_std", "b_std", "symmetric", "dtype", "a_init", "c0")


def _check_value(value, spec, key):
    import numbers
    minimum = None
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] in ("int", "float"):
        spec, minimum = spec
    if isinstance(spec, tuple):
        if not isinstance(value, str) or value not in spec:
            raise ConfigError(f"{key}: unknown value {value!r}; expected one of {', '.join(map(repr, spec))}")
        return value
    if spec == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if spec == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if spec == "scaling":
        if isinstance(value, str):
            if value not in ("mf", "ntk"):
                raise ConfigError(f"{key}: expected \"mf\", \"ntk\" or a positive number, got {value!r}")
            return value
        return _check_value(value, ("float", 0.0), key) if _positive_number(value, key) else value
    if spec.startswith("list["):
        inner = spec[5:-1]
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{key}: expected a non-empty list of {inner} values, got {value!r}")
        return [_check_value(v, (inner, 0.0 if inner == "float" else 1) if inner != "str" else "str", f"{key}[{i}]")
                for i, v in enumerate(value)]
    if spec == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{key}: must be >= {minimum}, got {value}")
        return value
    if spec == "float":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{key}: must be finite, got {value}")
        strict = key.rsplit(".", 1)[-1].split("[")[0] in _STRICT or key.endswith("]")
        if minimum is not None and (value < minimum or (strict and value == minimum)):
            raise ConfigError(f"{key}: must be {'>' if strict else '>='} {minimum:g}, got {value:g}")
        return value
    raise AssertionError(spec)  # pragma: no cover


def _positive_number(value, key):
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ConfigError(f"{key}: expected \"mf\", \"ntk\" or a positive number, got {value!r}")
    return True


def _section(cfg, name, schema, required=()):
    raw = cfg.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a table [{name}], got {type(raw).__name__}")
    out = {}
    for key, value in raw.items():
        if key not in schema:
            raise ConfigError(f"{name}.{key}: unknown key; the keys of [{name}] are {', '.join(sorted(schema))}")
        out[key] = _check_value(value, schema[key], f"{name}.{key}")
    for key in required:
        if key not in out:
            raise ConfigError(f"{name}.{key}: missing (required)")
    return out


def read_config(path, kind="run", study=None):
    """Read and validate a TOML configuration.

    Parameters
    ----------
    path : str or path
    kind : "run" or "study"
        A run file has the tables [data], [net], [run] and [output]; a study file [data],
        [net] (network options other than width, scaling and seed) and [study] (the options
        of the study named by ``study``).

    Returns
    -------
    dict
        One dict per table, validated.

    Raises
    ------
    ConfigError (a ValueError)
        For a file that is not TOML, an unknown table or key, or a bad value; the message
        names the file and the key (e.g. ``run.dt``).
    """
    import tomllib
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            cfg = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    tables = {"data", "net", "run", "output"} if kind == "run" else {"data", "net", "study"}
    try:
        for key in cfg:
            if key not in tables:
                raise ConfigError(f"{key}: unknown table; a {kind} file has the tables "
                                  f"{', '.join(f'[{t}]' for t in sorted(tables))}")
        out = {"data": _section(cfg, "data", _DATA)}
        if kind == "run":
            out["net"] = _section(cfg, "net", _NET, required=("width",))
            out["run"] = _section(cfg, "run", _RUN, required=("t_max", "dt"))
            out["output"] = _section(cfg, "output", _OUTPUT)
        else:
            out["net"] = _section(cfg, "net", {k: _NET[k] for k in _STUDY_NET})
            out["study"] = _section(cfg, "study", _STUDY[study])
        build_data(out["data"])  # data keys that do not fit the kind are errors too
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return out


_DATA_KEYS = {
    "teacher": {"kind", "teacher", "d", "n_train", "n_test", "inputs", "noise", "seed", "activation",
                "teacher_seed", "teacher_width", "r", "s"},
    "gaussian_mixture": {"kind", "d", "n_train", "n_test", "delta", "seed"},
    "isotropic_gaussians": {"kind", "d", "n_train", "n_test", "delta", "seed"},
    "digits": {"kind", "test_size", "seed", "one_hot"},
    "npz": {"kind", "path"},
}


def build_data(cfg):
    """The Dataset described by a validated [data] table (default: a ReLU single-neuron teacher, d = 20)."""
    from . import datasets
    kind = cfg.get("kind", "teacher")
    for key in cfg:
        if key not in _DATA_KEYS[kind]:
            raise ConfigError(f"data.{key}: not used by kind = {kind!r} (its keys: {', '.join(sorted(_DATA_KEYS[kind]))})")
    try:
        if kind == "teacher":
            d = cfg.get("d", 20)
            name = cfg.get("teacher", "single_neuron")
            act = cfg.get("activation", "relu")
            tseed = cfg.get("teacher_seed", 0)
            if name == "single_neuron":
                teacher = datasets.SingleNeuron(d, act, seed=tseed)
            elif name == "two_layer":
                teacher = datasets.TwoLayerTeacher(d, cfg.get("teacher_width", 4), act, seed=tseed)
            elif name == "quadratic":
                teacher = datasets.Quadratic(d, seed=tseed)
            elif name == "low_dim":
                teacher = datasets.LowDim(d, cfg.get("r", 2), seed=tseed)
            else:
                teacher = datasets.SparseLinear(d, cfg.get("s", 3), seed=tseed)
            return datasets.teacher_dataset(teacher, d, cfg.get("n_train", 256), cfg.get("n_test", 1000),
                                            inputs=cfg.get("inputs", "gaussian"), noise=cfg.get("noise", 0.0),
                                            seed=cfg.get("seed", 1))
        if kind in ("gaussian_mixture", "isotropic_gaussians"):
            fn = getattr(datasets, kind)
            return fn(cfg.get("d", 20), cfg.get("n_train", 256), cfg.get("n_test", 1000), delta=cfg.get("delta", 0.5),
                      seed=cfg.get("seed", 0))
        if kind == "digits":
            return datasets.digits(test_size=cfg.get("test_size", 0.25), seed=cfg.get("seed", 0),
                                   one_hot=cfg.get("one_hot", True))
        if "path" not in cfg:
            raise ConfigError("data.path: missing (required with kind = 'npz')")
        import numpy as np
        with np.load(cfg["path"]) as z:
            arrays = {k: z[k] for k in ("X", "y", "X_test", "y_test") if k in z}
        if "X" not in arrays or "y" not in arrays:
            raise ConfigError(f"data.path: {cfg['path']} must hold arrays X and y (and optionally X_test, y_test)")
        return datasets.Dataset(arrays["X"], arrays["y"], arrays.get("X_test"), arrays.get("y_test"), name="npz",
                                description=f"arrays from {cfg['path']}")
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"data: {exc}") from None


# ---------------------------------------------------------------------------------------
# the parser
# ---------------------------------------------------------------------------------------

def build_parser():
    """The argparse parser of the ``mfntk`` command (sub-commands included)."""
    parser = argparse.ArgumentParser(prog="mfntk", description=_DESCRIPTION, epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    parser.add_argument("--version", action="version", version=f"mfntk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    demo = sub.add_parser(
        "demo", formatter_class=_Formatter,
        parents=[_common("mfntk-demo", "folder for summary.json and the figures")],
        help="lazy (NTK) vs rich (mean-field) training of the same student, in seconds",
        description="Train the same two-layer ReLU student (N = 256, symmetric initialisation, d = 20) on a "
                    "single-neuron teacher in the mean-field (alpha = 1) and in the NTK (alpha = sqrt(N)) "
                    "scaling, for the same mean-field time. Prints a table (final train/test risk, relative "
                    "parameter displacement, relative kernel distance, distance to the linearized model, "
                    "wall time) and writes summary.json, risk.png (risk curves), lazy_rich.png (kernel "
                    "distance, displacement and linearized distance over time) and particles.png (a_j "
                    "against the projection <w_j, w*> on the teacher direction at t = 0 and at the end) "
                    "into --out.")
    demo.set_defaults(handler=_cmd_demo)

    run = sub.add_parser(
        "run", formatter_class=_Formatter, parents=[_common("mfntk-run", "folder for the trajectory file and figures")],
        help="run a simulation described by a TOML file",
        description="Run one simulation described by CONFIG.toml and write its trajectory (HDF5, with "
                    "checkpoints), a printed summary and figures into --out. The file has the tables [data] "
                    "(kind = teacher | gaussian_mixture | isotropic_gaussians | digits | npz and their "
                    "options), [net] (TwoLayer options; width required), [run] (simulate options; t_max and dt "
                    "required) and [output] (file, checkpoint_every, snapshot_every, figures). Unknown keys "
                    "and bad values are errors that name the key. See examples/*.toml.")
    run.add_argument("config", metavar="CONFIG.toml", help="the run's configuration")
    run.set_defaults(handler=_cmd_run)

    res = sub.add_parser(
        "resume", formatter_class=_Formatter, parents=[_common(None, "unused (the file is updated in place)")],
        help="continue a run from the last checkpoint of its file",
        description="Continue the run stored in FILE from its last checkpoint, bit for bit as if it had never "
                    "stopped, and keep checkpointing into FILE. Online runs need their sampler, which is "
                    "stored in the file when it can be pickled (resume only files you trust).")
    res.add_argument("file", metavar="FILE", help="trajectory file (.h5) written by mfntk run or simulate(out=...)")
    res.add_argument("--t-max", type=float, default=None, help="extend the run to this final time")
    res.set_defaults(handler=_cmd_resume)

    plo = sub.add_parser(
        "plot", formatter_class=_Formatter, parents=[_common(None, "folder for the figures (default: FILE without "
                                                                     "its suffix, plus -figures)")],
        help="figures of a trajectory file",
        description="Write the figures of the trajectory in FILE into --out: risk.png (train/test risk, log-log), "
                    "lazy_rich.png (kernel distance, displacement, linearized distance; when recorded), "
                    "particles.png (a_j vs |w_j| at the snapshots) and kernel.png (tangent-kernel Gram matrices "
                    "and spectra at t = 0 and at the end).")
    plo.add_argument("file", metavar="FILE", help="trajectory file (.h5)")
    plo.set_defaults(handler=_cmd_plot)

    stu = sub.add_parser(
        "study", formatter_class=_Formatter, parents=[_common("mfntk-study", "folder for the table (CSV, JSON) "
                                                                             "and the figure")],
        help="convergence studies: width | dt | alpha",
        description="Run a convergence study described by CONFIG.toml ([data], [net] without width/scaling/seed, "
                    "[study] with the study's options) and write NAME.csv, NAME.json (table, fits, settings) "
                    "and NAME.png into --out.\n\n"
                    "  width  propagation of chaos: distance of N-particle runs to a coupled reference of "
                    "n_ref >> N particles, slope about -1/2 in N (plus Wasserstein-2 with POT)\n"
                    f"  dt     observed order of the integrators {', '.join(INTEGRATORS)} "
                    f"({', '.join(str(integrator_info(m).order) for m in INTEGRATORS)})\n"
                    "  alpha  lazy-to-rich sweep: test risk, kernel distance, displacement, linearized distance "
                    "and time to reach a training risk kappa vs alpha (and N)")
    stu.add_argument("name", choices=("width", "dt", "alpha"), help="which study")
    stu.add_argument("config", metavar="CONFIG.toml", help="the study's configuration")
    stu.add_argument("--workers", type=_threads, default=None,
                     help="parallel processes (default: [study] workers, else one per core); threads are split "
                          "among them")
    stu.set_defaults(handler=_cmd_study)
    return parser


def _progress(args):
    return False if args.quiet else None


def _say(args, text):
    if not args.quiet:
        print(text, file=sys.stdout)


def _cmd_demo(args):
    from ._demo import run_demo
    run_demo(args.out, threads=args.threads, quiet=args.quiet, progress=_progress(args))
    return 0


def _traj_summary(traj):
    lines = [f"{len(traj)} records, t = {traj.t[-1]:.6g}" + (" (interrupted)" if traj.interrupted else "")
             + ("" if getattr(traj, "complete", True) else " (not complete)"),
             f"train risk {traj.train_risk[0]:.4g} -> {traj.train_risk[-1]:.4g}"]
    if traj.test_risk is not None:
        lines.append(f"test risk  {traj.test_risk[0]:.4g} -> {traj.test_risk[-1]:.4g}")
    for key in ("displacement", "kernel_distance", "linearized_distance"):
        v = getattr(traj, key, None)
        if v is not None:
            lines.append(f"{key.replace('_', ' ')} {v[-1]:.4g}")
    lines.append(f"wall time {traj.wall_time:.2f} s (risk = mean of the loss; time in mean-field units)")
    return "\n".join(lines)


def _cmd_run(args):
    from . import _io
    from ._network import TwoLayer
    from ._simulate import Simulation
    cfg = read_config(args.config, "run")
    data = build_data(cfg["data"])
    net_cfg = dict(cfg["net"])
    net_cfg.setdefault("outputs", data.k)
    run_cfg = dict(cfg["run"])
    if args.threads is not None:
        run_cfg["threads"] = args.threads
    out_cfg = cfg["output"]
    try:
        net = TwoLayer(data.d, net_cfg.pop("width"), **net_cfg)
        sim = Simulation(net, data, **run_cfg)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{args.config}: {exc}") from None
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, out_cfg.get("file", "run.h5"))
    traj = _io.run_with_output(sim, path, checkpoint_every=out_cfg.get("checkpoint_every"),
                               snapshot_every=out_cfg.get("snapshot_every"), progress=_progress(args))
    written = [path]
    if out_cfg.get("figures", True):
        from . import plot
        direction = getattr(data.teacher, "w", None)
        written += plot.trajectory_figures(traj, args.out, direction=direction, threads=sim.threads)
    _say(args, _traj_summary(traj))
    _say(args, "wrote " + ", ".join(written))
    return 0


def _cmd_resume(args):
    from . import _io
    traj = _io.resume(args.file, progress=_progress(args), threads=args.threads, t_max=args.t_max)
    _say(args, _traj_summary(traj))
    return 0


def _cmd_plot(args):
    from . import _io, plot
    traj = _io.load(args.file)
    out = args.out or os.path.splitext(args.file)[0] + "-figures"
    written = plot.trajectory_figures(traj, out, threads=args.threads)
    _say(args, "wrote " + ", ".join(written))
    return 0


def _cmd_study(args):
    from . import studies
    cfg = read_config(args.config, "study", study=args.name)
    data = build_data(cfg["data"])
    options = dict(cfg["study"])
    workers = args.workers if args.workers is not None else options.pop("workers", None)
    options.pop("workers", None)
    try:
        result = studies.STUDIES[args.name](data=data, net=cfg["net"], workers=workers, threads=args.threads,
                                            progress=_progress(args), **options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{args.config}: {exc}") from None
    paths = result.save(args.out)
    _say(args, result.summary())
    _say(args, "wrote " + ", ".join(paths))
    return 0


def main(argv=None):
    """Entry point of the ``mfntk`` command; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"mfntk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mfntk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
