"""Scripted convergence studies: width (propagation of chaos), time step, alpha sweep.

Each study runs a sweep of simulations, possibly in parallel processes, and returns a
:class:`StudyResult`: a tidy :class:`Table` (one row per run or per swept value, exportable
to CSV and JSON), least-squares fits in log-log coordinates (:class:`Fit`, with the points
used and the slope theory predicts), the settings, notes on how to read the numbers, and
figures (:meth:`StudyResult.figure`). :meth:`StudyResult.load` reads a saved result back,
to re-plot it without running the study again.

The registry
------------
:data:`STUDIES` maps each study's name to its :class:`Study` entry: ``run`` (the study
function), ``options`` (its option set, a frozen dataclass: defaults, bounds, docs),
``figure`` (and ``more_figures``), ``summary`` and ``net_defaults``. The command line
(``mfntk study NAME``: its choices, its [study] TOML schema and its help), ``plot.study``
and :meth:`StudyResult.save` read it, so a new study is one module (options, run
function, figure, ``STUDY = Study(...)``) and one line below.

Parallel runs and Ctrl-C are described in :mod:`mfntk.studies._base`: an interrupted run
never enters a table; an interrupted study raises :class:`StudyInterrupted` (a
KeyboardInterrupt) whose ``result`` holds the rows of the completed runs, marked partial.
``executor`` takes a cluster executor (dask.distributed, ``mpi4py.futures.MPIPoolExecutor``,
:class:`RayExecutor`) with the same results; :doc:`/cluster` shows how.

References
----------
.. [MMN18] S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape of
   two-layer neural networks", PNAS 115(33), 2018 (propagation of chaos, Theorem 3).
.. [COB19] L. Chizat, E. Oyallon, F. Bach, "On lazy training in differentiable
   programming", NeurIPS 2019 (distance to the linearized model = O(1/alpha)).
.. [FG15] N. Fournier, A. Guillin, "On the rate of convergence in Wasserstein distance of
   the empirical measure", Probab. Theory Relat. Fields 162, 2015.
"""
from . import _alpha, _time_step, _width
from ._alpha import AlphaOptions, alpha_sweep
from ._base import (
    STUDIES,
    Fit,
    ParallelOptions,
    Study,
    StudyInterrupted,
    StudyResult,
    Table,
    default_data,
    fit_loglog,
    net_keys,
    run_tasks,
)
from ._executors import RayExecutor
from ._time_step import ORDERS, TimeStepOptions, time_step
from ._width import WidthOptions, width

__all__ = ["Table", "Fit", "StudyResult", "fit_loglog", "width", "time_step", "alpha_sweep", "default_data",
           "run_tasks", "STUDIES", "Study", "StudyInterrupted", "ParallelOptions", "WidthOptions",
           "TimeStepOptions", "AlphaOptions", "ORDERS", "net_keys", "RayExecutor"]

#: The studies by name (``mfntk study NAME``): name -> :class:`Study`.
STUDIES.update((entry.name, entry) for entry in (_width.STUDY, _time_step.STUDY, _alpha.STUDY))
