"""The ``mfntk`` command line.

::

    mfntk demo   [--out DIR] [--threads T] [--quiet]    lazy (NTK) vs rich (mean-field) comparison
    mfntk run CONFIG.toml [--out DIR] ...               one run from a TOML file (HDF5 + figures)
    mfntk resume FILE [--t-max T] ...                   continue a run from its last checkpoint
    mfntk plot FILE [--out DIR]                         figures of a trajectory file
    mfntk study NAME CONFIG.toml [--workers W]          convergence studies (CSV, JSON, figures);
                                                        NAME in mfntk.studies.STUDIES (width, dt, alpha)

Every command and sub-command documents itself with ``--help``. Errors in the arguments
are reported in one line naming the offending argument, with exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys

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
    """Raw descriptions; defaults shown, except None (the help then says what None means)."""

    def _get_help_string(self, action):
        if action.default is None or action.nargs == 0 or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _threads(text):
    from ._validation import resolve_threads
    try:
        return resolve_threads(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc) if "threads" in str(exc) else
                                         f"expected a positive integer, got {text!r}") from None


def _common(out_default, out_help):
    """The options every command shares: --out (unless ``out_help`` is None), --threads, --quiet."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("common options")
    if out_help is not None:
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


def _output_keys():
    """The command line's own [output] keys (beside OutputOptions): declared like the options."""
    from ._options import Opt
    return {"file": (Opt("str", "The trajectory file's name inside --out (a plain name)."), "'run.h5'"),
            "figures": (Opt("bool", "Write the figures."), "true")}


def _options_section(cfg, name, options, exclude=(), required=None, extra=None):
    """The table [name] checked against an option set (each key by its declaration), plus the
    command line's own keys ``extra`` (legacy specs); ``required`` defaults to the set's."""
    raw = cfg.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a table [{name}], got {type(raw).__name__}")
    declared = {k: o for k, o in options.opts().items() if o.toml and k not in exclude}
    extra = extra or {}
    out = {}
    for key, value in raw.items():
        if key in declared:
            try:
                out[key] = declared[key].check(value, f"{name}.{key}")
            except (TypeError, ValueError) as exc:
                raise ConfigError(str(exc)) from None
        elif key in extra:
            try:
                out[key] = extra[key][0].check(value, f"{name}.{key}")
            except (TypeError, ValueError) as exc:
                raise ConfigError(str(exc)) from None
        else:
            raise ConfigError(f"{name}.{key}: unknown key; the keys of [{name}] are "
                              f"{', '.join(sorted(set(declared) | set(extra)))}")
    for key in (options.required() if required is None else required):
        if key not in exclude and key not in out:
            raise ConfigError(f"{name}.{key}: missing (required)")
    return out


def read_config(path, kind="run", study=None):
    """Read and validate a TOML configuration.

    Parameters
    ----------
    path : str or path
    kind : "run" or "study"
        A run file has the tables [data], [net], [run] and [output]; a study file [data],
        [net] (network options other than d, width, scaling and seed) and [study] (the
        options of the study named by ``study``, declared by its entry in
        :data:`mfntk.studies.STUDIES`, and ``workers``).

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
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from ._options import NetOptions, OutputOptions, RunOptions
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
        data = cfg.get("data", {})
        out = {"data": dict(data) if isinstance(data, dict) else data}  # checked by build_data below
        if kind == "run":
            out["net"] = _options_section(cfg, "net", NetOptions, exclude=("d",))
            out["run"] = _options_section(cfg, "run", RunOptions)
            try:  # the rules that involve several options
                RunOptions(**out["run"])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"run.{exc}") from None
            out["output"] = _options_section(cfg, "output", OutputOptions, extra=_output_keys())
        else:
            out["net"], out["study"] = _study_tables(cfg, study)
        build_data(out["data"])  # data keys that do not fit the kind are errors too
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return out


def _study_tables(cfg, name):
    """The [net] and [study] tables of a study file, checked against the declarations of the
    study's registry entry (its option set and ParallelOptions) and of NetOptions."""
    from ._options import NetOptions, OptionError
    from .studies import STUDIES, ParallelOptions, net_keys
    if name not in STUDIES:
        raise ConfigError(f"study: unknown study {name!r}; expected one of {', '.join(STUDIES)}")
    entry = STUDIES[name]
    tables = {}
    for table in ("net", "study"):
        raw = cfg.get(table, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{table}: expected a table [{table}], got {type(raw).__name__}")
        tables[table] = dict(raw)
    net, allowed, decl = tables["net"], net_keys(), NetOptions.opts()
    for key, value in net.items():
        if key not in allowed:
            raise ConfigError(f"net.{key}: unknown key; the keys of [net] in a study file are {', '.join(allowed)}")
        try:
            net[key] = decl[key].check(value, f"net.{key}")
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
    raw, parallel = tables["study"], ParallelOptions.toml_keys()
    known = entry.options.toml_keys() + parallel
    for key in raw:
        if key not in known:
            raise ConfigError(f"study.{key}: unknown key; the keys of [study] for '{name}' are {', '.join(known)}")
    try:
        options = entry.options.from_toml({k: v for k, v in raw.items() if k not in parallel}, where="study")
        execution = ParallelOptions.from_toml({k: v for k, v in raw.items() if k in parallel}, where="study")
    except OptionError as exc:
        raise ConfigError(str(exc)) from None
    return net, {k: getattr(execution if k in parallel else options, k) for k in raw}


def build_data(table):
    """The Dataset described by a [data] table: ``kind`` names an entry of
    :data:`mfntk.datasets.DATA_KINDS` (default "teacher": a ReLU single neuron in d = 20) and the
    other keys are that kind's options (:func:`mfntk.datasets.from_config`).

    Raises
    ------
    ConfigError
        For an unknown kind, a key the kind does not use, or a bad value (``data.KEY: ...``).
    """
    from . import datasets
    from ._options import OptionError
    try:
        return datasets.from_config(table, where="data")
    except OptionError as exc:
        raise ConfigError(str(exc)) from None


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

    from . import datasets
    run = sub.add_parser(
        "run", formatter_class=_Formatter, parents=[_common("mfntk-run", "folder for the trajectory file and figures")],
        help="run a simulation described by a TOML file",
        description="Run one simulation described by CONFIG.toml and write its trajectory (HDF5, with "
                    "checkpoints), a printed summary and figures into --out. The file has the tables [data] "
                    f"(kind = {' | '.join(datasets.DATA_KINDS)} and their keys, listed below), [net] (TwoLayer "
                    "options; width required), [run] (simulate options; t_max and dt "
                    "required) and [output] (file, checkpoint_every, snapshot_every, figures). Unknown keys "
                    "and bad values are errors that name the key. See examples/*.toml.")
    from ._options import NetOptions, OutputOptions, RunOptions
    run.epilog = ("[data] kinds and their keys (with their defaults):\n" + datasets.describe_data_kinds()
                  + "\nEvery key's meaning: mfntk.datasets.describe_data_kinds(full=True)."
                  + "\n\nkeys of [net] (mfntk.TwoLayer; d comes from the data):\n" + NetOptions.describe(exclude=("d",))
                  + "\n\nkeys of [run] (mfntk.simulate):\n" + RunOptions.describe()
                  + "\n\nkeys of [output]:\n"
                  + "".join(f"  {k} = {o.kind}; default {d}\n      {o.doc}\n" for k, (o, d) in _output_keys().items())
                  + OutputOptions.describe())
    run.add_argument("config", metavar="CONFIG.toml", help="the run's configuration")
    run.set_defaults(handler=_cmd_run)

    res = sub.add_parser(
        "resume", formatter_class=_Formatter, parents=[_common(None, None)],
        help="continue a run from the last checkpoint of its file",
        description="Continue the run stored in FILE from its last checkpoint, bit for bit as if it had never "
                    "stopped, and keep checkpointing into FILE. Online runs need their sampler: the built-in "
                    "ones are stored in the file as numbers; a run with another sampler is resumed from Python "
                    "with mfntk.resume(path, data=...).")
    res.add_argument("file", metavar="FILE", help="trajectory file (.h5) written by mfntk run or simulate(out=...)")
    res.add_argument("--t-max", type=float, default=None, help="extend the run to this final time")
    res.set_defaults(handler=_cmd_resume)

    plo = sub.add_parser(
        "plot", formatter_class=_Formatter, parents=[_common(None, "folder for the figures (default: FILE without "
                                                                     "its suffix, plus -figures)")],
        help="figures of a trajectory file",
        description="Write the figures of the trajectory in FILE into --out: risk.png (train/test risk, log-log), "
                    "lazy_rich.png (kernel distance, displacement, linearized distance; when recorded), "
                    "diagnostics.png (kernel-target alignment, change of the objective and of the tangent "
                    "features; when recorded), particles.png (paths of a_j vs |w_j| through the snapshots) and "
                    "kernel.png (tangent-kernel Gram matrices at the start and the end, sorted by label or by the "
                    "leading eigenvector, and the spectrum at every snapshot).")
    plo.add_argument("file", metavar="FILE", help="trajectory file (.h5)")
    plo.set_defaults(handler=_cmd_plot)

    from .studies import STUDIES
    stu = sub.add_parser(
        "study", formatter_class=_Formatter, parents=[_common("mfntk-study", "folder for the table (CSV, JSON) "
                                                                             "and the figures")],
        help="convergence studies: " + " | ".join(STUDIES), description=_study_description())
    stu.add_argument("name", choices=tuple(STUDIES), help="which study")
    stu.add_argument("config", metavar="CONFIG.toml", help="the study's configuration")
    stu.add_argument("--workers", type=_threads, default=None,
                     help="parallel processes (default: [study] workers, else one per core); threads are split "
                          "among them")
    stu.set_defaults(handler=_cmd_study)

    rep = sub.add_parser(
        "reproduce", formatter_class=_Formatter,
        parents=[_common("mfntk-reproduce", "folder for NAME.csv, NAME.json, NAME.png and NAME.md")],
        help="figures and tables of the source papers, with their theory",
        description="Reproduce a figure or table of a source paper: write NAME.csv and NAME.json (the measured "
                    "points, the checks against the theory), NAME.png (theory as lines, simulations as points) "
                    "and NAME.md (the paper's claim, the numbers obtained, agreement within the stated "
                    "tolerance) into --out. --quick (the default) runs in under a minute on 2 cores; --full uses "
                    "the paper's sizes where a machine allows. The exit status is 1 when a check disagrees. "
                    "--list shows the entries with their run times.")
    rep.add_argument("name", nargs="?", metavar="NAME", help="the entry (see --list)")
    rep.add_argument("--list", action="store_true", help="list the entries (paper, figure, run time) and exit")
    size = rep.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick", default="quick",
                      help="small sizes, seconds to a minute (the default)")
    size.add_argument("--full", dest="size", action="store_const", const="full", help="the paper's sizes")
    rep.add_argument("--workers", type=_threads, default=1, help="parallel processes for entries with several runs")
    rep.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    rep.set_defaults(handler=_cmd_reproduce)
    return parser


def _study_description():
    """The help of ``mfntk study``, read from the registry: every study and its [study] keys."""
    import textwrap

    from .studies import STUDIES, net_keys

    def para(text, indent="", hang=""):
        return textwrap.fill(text, width=88, initial_indent=indent, subsequent_indent=indent + hang,
                             break_on_hyphens=False)

    lines = [para("Run a convergence study described by CONFIG.toml and write NAME.csv, NAME.json (table, fits, "
                  "settings; mfntk.studies.StudyResult.load reads them back) and NAME.png (plus the study's "
                  "further figures) into --out. The file has the tables [data] (as for 'mfntk run'), [net] "
                  f"(network options: {', '.join(net_keys())}; d, width, scaling and seed are set by the study) "
                  "and [study] (the study's options, below). Unknown keys and bad values are errors that name "
                  "the key. See examples/*.toml."),
             "",
             para("Ctrl-C stops the study and its worker processes: a run that did not finish never enters a "
                  "table; the rows of the completed runs are written as NAME-partial.csv and NAME-partial.json "
                  "(nothing when no row is complete), and the exit status is 130."),
             ""]
    lines += [para(f"{name:6} {entry.summary}", "  ", " " * 7) for name, entry in STUDIES.items()]
    for entry in STUDIES.values():
        lines += ["", entry.describe()]
    return "\n".join(lines)


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
    name = out_cfg.get("file", "run.h5")
    if not name or os.path.isabs(name) or os.path.basename(name) != name or name in (".", "..") or \
            (os.altsep and os.altsep in name):
        raise ConfigError(f"{args.config}: output.file: must be a file name inside --out (no folder, no '..'), "
                          f"got {name!r}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name)
    traj = sim.run(progress=_progress(args), out=path, checkpoint_every=out_cfg.get("checkpoint_every"),
                   snapshot_every=out_cfg.get("snapshot_every"))
    if traj.interrupted:  # Ctrl-C: the file holds the run up to its last checkpoint; no figures
        _say(args, _traj_summary(traj))
        print(f"mfntk run: interrupted; the run so far is in {path} (continue it with: mfntk resume {path})",
              file=sys.stderr)
        return 130
    written = [path]
    if out_cfg.get("figures", True):
        from . import plot
        direction = getattr(data.teacher, "w", None)
        written += plot.trajectory_figures(traj, args.out, direction=direction, threads=sim.threads)
    _say(args, _traj_summary(traj))
    _say(args, "wrote " + ", ".join(written))
    return 0


def _cmd_resume(args):
    from ._simulate import resume
    traj = resume(args.file, progress=_progress(args), threads=args.threads, t_max=args.t_max)
    _say(args, _traj_summary(traj))
    if traj.interrupted:  # Ctrl-C: the file holds the run up to its last checkpoint
        print(f"mfntk resume: interrupted; continue with: mfntk resume {args.file}", file=sys.stderr)
        return 130
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
    entry = studies.STUDIES[args.name]
    cfg = read_config(args.config, "study", study=args.name)
    data = build_data(cfg["data"])
    options = dict(cfg["study"])
    workers = options.pop("workers", None)
    if args.workers is not None:
        workers = args.workers
    try:
        result = entry.run(data=data, net=cfg["net"], workers=workers, threads=args.threads,
                           progress=_progress(args), **options)
    except studies.StudyInterrupted as exc:
        partial = exc.result
        if partial is None:
            print(f"mfntk study: {exc}; no row complete, nothing written", file=sys.stderr)
            return 130
        paths = partial.save(args.out)
        _say(args, partial.summary())
        print(f"mfntk study: {exc}; wrote the rows of the completed runs only, marked partial: "
              + ", ".join(paths), file=sys.stderr)
        return 130
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{args.config}: {exc}") from None
    paths = result.save(args.out)
    _say(args, result.summary())
    _say(args, "wrote " + ", ".join(paths))
    return 0


def _cmd_reproduce(args):
    from . import reproduce
    if args.list:
        print(reproduce.describe())
        return 0
    if args.name is None:
        raise ValueError("NAME: give an entry (mfntk reproduce --list shows them)")
    if args.name not in reproduce.REPRODUCE:
        raise ValueError(f"NAME: unknown entry {args.name!r}; expected one of {', '.join(reproduce.REPRODUCE)}")
    result = reproduce.reproduce(args.name, size=args.size, out=args.out, workers=args.workers,
                                 threads=args.threads, seed=args.seed)
    _say(args, "\n".join(c.describe() for c in result.checks))
    _say(args, f"{'all checks agree' if result.agrees else 'some checks DISAGREE'}; wrote "
               f"{os.path.join(args.out, args.name)}.{{csv,json,png,md}} ({result.wall_time:.1f} s)")
    return 0 if result.agrees else 1


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
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        print(f"mfntk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mfntk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
