"""What every entry of :mod:`mfntk.reproduce` shares: the registry, the checks against theory,
the result (table, checks, figure, report) and its files.

An entry reproduces one figure or table of a source paper. Its ``run(size, workers, threads, seed)``
computes a tidy :class:`~mfntk.studies.Table` (one row per measured point, columns with
units in their names where they have one), a list of :class:`Check` (a measured number, the
paper's or the theory's value, the tolerance and whether they agree), and a figure function;
:func:`reproduce` writes them as ``NAME.csv``, ``NAME.json``, ``NAME.png`` and ``NAME.md``
(the paper's claim, the numbers obtained, agreement). Sizes: ``"quick"`` runs in well under a
minute on 2 cores (what the tests run), ``"full"`` uses the paper's sizes where a machine
allows (minutes to hours; each entry states its estimate).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable

from .._validation import check_choice, check_int, resolve_threads
from ..studies._base import Table

__all__ = ["Check", "Entry", "Reproduction", "REPRODUCE", "SIZES", "reproduce", "describe"]

#: The sizes an entry runs at.
SIZES = ("quick", "full")

#: name -> :class:`Entry`, in the order of the papers' list (filled by the package's modules).
REPRODUCE = {}


@dataclasses.dataclass(frozen=True)
class Check:
    """One comparison of a measured number with the value the paper or the theory gives.

    ``agrees`` when |measured - expected| <= tolerance (``relative``: tolerance * |expected|),
    or, with ``expected`` None, when the ``condition`` text holds as computed by the entry
    (``holds``) -- for claims that are orderings or bounds rather than values.
    """

    quantity: str
    measured: float
    expected: float | None
    tolerance: float | None = None
    relative: bool = False
    holds: bool | None = None
    condition: str = ""

    @property
    def agrees(self):
        if self.expected is None:
            return bool(self.holds)
        if not (math.isfinite(self.measured) and math.isfinite(self.expected)):
            return False
        bound = self.tolerance * (abs(self.expected) if self.relative else 1.0)
        return bool(abs(self.measured - self.expected) <= bound)

    def as_dict(self):
        return {**dataclasses.asdict(self), "agrees": self.agrees}

    def describe(self):
        if self.expected is None:
            return f"{self.quantity}: {self.measured:.4g}; {self.condition}: {'yes' if self.agrees else 'NO'}"
        tol = f"{self.tolerance:g}" + (" (relative)" if self.relative else "")
        return (f"{self.quantity}: measured {self.measured:.4g}, expected {self.expected:.4g}, tolerance {tol}: "
                f"{'agrees' if self.agrees else 'DISAGREES'}")


@dataclasses.dataclass
class Reproduction:
    """What an entry's run returns (and :func:`reproduce` writes).

    Attributes
    ----------
    name, size : str
    table : Table
        The measured points.
    checks : list of Check
    figure : callable
        ``figure(self) -> matplotlib Figure``.
    notes : list of str
        Settings and remarks that the report states (sizes used, what differs from the paper).
    wall_time : float
        Seconds.
    """

    name: str
    size: str
    table: Table
    checks: list
    figure: Callable
    notes: list = dataclasses.field(default_factory=list)
    wall_time: float = 0.0

    @property
    def entry(self):
        return REPRODUCE[self.name]

    @property
    def agrees(self):
        """Every check agrees."""
        return all(c.agrees for c in self.checks)

    def report(self):
        """The Markdown report: the paper's claim, the settings, the checks, the table."""
        e = self.entry
        lines = [f"# {e.name}: {e.paper}, {e.what}", "", f"**Claim.** {e.claim}", "",
                 f"**Run.** size `{self.size}`, {self.wall_time:.1f} s.", ""]
        lines += [f"- {n}" for n in self.notes]
        lines += ["", "**Checks** (measured against the paper or the theory):", ""]
        lines += [f"- {c.describe()}" for c in self.checks]
        verdict = "all checks agree" if self.agrees else "some checks DISAGREE"
        lines += ["", f"**Agreement:** {verdict} ({sum(c.agrees for c in self.checks)}/{len(self.checks)}).", "",
                  f"![{e.name}]({self.name}.png)", "", "**Table.**", "", "```", str(self.table), "```", ""]
        return "\n".join(lines)

    def save(self, out):
        """Write NAME.csv, NAME.json (table, checks, notes), NAME.png and NAME.md into the folder
        ``out`` (created); return the paths."""
        from .. import plot
        os.makedirs(out, exist_ok=True)
        stem = os.path.join(os.fspath(out), self.name)
        doc = {"name": self.name, "size": self.size, "paper": self.entry.paper, "what": self.entry.what,
               "claim": self.entry.claim, "wall_time": self.wall_time, "agrees": self.agrees,
               "checks": [c.as_dict() for c in self.checks], "notes": list(self.notes), "table": self.table.records()}
        paths = [self.table.to_csv(stem + ".csv")]
        with open(stem + ".json", "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, allow_nan=True)
        paths.append(stem + ".json")
        paths.append(plot.save(self.figure(self), stem + ".png"))
        with open(stem + ".md", "w", encoding="utf-8") as fh:
            fh.write(self.report())
        paths.append(stem + ".md")
        return paths


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registry entry: ``name`` (the command's argument), ``paper`` (authors, year),
    ``what`` (figure / table), ``claim`` (what the paper shows, in one or two sentences),
    ``seconds`` (estimated run time on 2 cores per size), and ``run(size, workers, threads,
    seed, **options) -> Reproduction`` (options: the entry's own, if it has any)."""

    name: str
    paper: str
    what: str
    claim: str
    seconds: dict
    run: Callable

    def describe(self):
        times = ", ".join(f"{s} ~{_duration(self.seconds[s])}" for s in SIZES if s in self.seconds)
        return f"{self.name:18s} {self.paper}, {self.what} ({times})"


def register(entry):
    """Add ``entry`` to :data:`REPRODUCE` (names are unique)."""
    if entry.name in REPRODUCE:
        raise ValueError(f"reproduce: entry {entry.name!r} is registered twice")
    if set(entry.seconds) != set(SIZES):
        raise ValueError(f"reproduce: entry {entry.name!r} must state its run time for {SIZES}")
    REPRODUCE[entry.name] = entry
    return entry


def _duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe():
    """One line per entry: name, paper, figure or table, run time at each size."""
    return "\n".join(e.describe() for e in REPRODUCE.values())


def reproduce(name, size="quick", out=None, workers=1, threads=None, seed=0, **options):
    """Run the entry ``name`` of :data:`REPRODUCE` and, with ``out``, write its files.

    Parameters
    ----------
    name : str
        An entry (``mfntk reproduce --list``).
    size : {"quick", "full"}
        "quick": small sizes, well under a minute on 2 cores; "full": the paper's sizes where a
        machine allows (see the entry's estimate).
    out : str or path, optional
        Folder for NAME.csv, NAME.json, NAME.png and NAME.md.
    workers : int
        Processes for the entry's independent runs (entries that have several).
    threads : int or None
        OpenMP threads (None: all this process may use; split among the workers).
    seed : int
        Seed of every random draw of the entry.
    **options
        Options of the entry itself, passed to its run (e.g. ``mnist=`` of lazy-vs-feature).

    Returns
    -------
    Reproduction
    """
    check_choice(name, "name", tuple(REPRODUCE))
    check_choice(size, "size", SIZES)
    workers = check_int(workers, "workers", minimum=1)
    threads = resolve_threads(threads)
    seed = check_int(seed, "seed", minimum=0)
    start = time.perf_counter()
    result = REPRODUCE[name].run(size=size, workers=workers, threads=threads, seed=seed, **options)
    result.wall_time = time.perf_counter() - start
    if out is not None:
        result.save(out)
    return result
