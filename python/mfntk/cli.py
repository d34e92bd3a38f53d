"""The ``mfntk`` command line.

::

    mfntk demo   [--out DIR] [--threads T] [--quiet]    lazy (NTK) vs rich (mean-field) comparison

Every command and sub-command documents itself with ``--help``. Errors in the arguments
are reported in one line naming the offending argument, with exit status 2.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]

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
    return parser


def _progress(args):
    return False if args.quiet else None


def _cmd_demo(args):
    from ._demo import run_demo
    run_demo(args.out, threads=args.threads, quiet=args.quiet, progress=_progress(args))
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
