"""Every figure and table of the source papers in one call, with its theory.

``mfntk reproduce NAME [--quick | --full] [--out DIR]`` or ``mfntk.reproduce.reproduce(NAME,
size=..., out=...)`` (each entry also has its own function, e.g. ``mfntk.reproduce.gmmm_qf()``)
runs an entry of :data:`REPRODUCE` and writes a tidy table (CSV and JSON), a figure with the
theory as lines and the simulations as points, and a Markdown report: the paper's claim, the
numbers obtained and whether they agree within the stated tolerance (:class:`Check`).
``mfntk reproduce --list`` (:func:`describe`) lists the entries with their run times.
"""
from ._base import REPRODUCE, SIZES, Check, Entry, Reproduction, describe, reproduce
from ._gmmm import *  # noqa: F401,F403  (each module registers its entries, in the papers' order)
from ._lazy_feature import *  # noqa: F401,F403
from ._regimes import *  # noqa: F401,F403
from ._limits import *  # noqa: F401,F403
from . import _gmmm, _lazy_feature, _limits, _regimes

__all__ = ["REPRODUCE", "SIZES", "Check", "Entry", "Reproduction", "describe", "reproduce",
           *_gmmm.__all__, *_lazy_feature.__all__, *_regimes.__all__, *_limits.__all__]
