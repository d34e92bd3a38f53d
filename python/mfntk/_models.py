"""The models a run of :func:`mfntk.simulate` can train, by kind: the registry that trajectory
files name (their ``/net0`` group's ``model`` attribute) and that the reader checks a stored
kind against. A model class provides the protocol that :class:`~mfntk.Simulation` and its
:class:`~mfntk._recorder.Recorder` call (see docs/MATH.md, "Adding another homogeneous
particle model")."""
from __future__ import annotations

from ._diagonal import DiagonalLinear
from ._network import TwoLayer

#: kind -> model class; ``cls(**model.config())`` rebuilds a model at its initialisation.
MODELS = {cls.kind: cls for cls in (TwoLayer, DiagonalLinear)}
#: The kind of a file that names none (written before the diagonal linear network).
DEFAULT_KIND = TwoLayer.kind


def model_kind(model, name="net"):
    """The kind of ``model``; TypeError naming the argument for anything else."""
    if isinstance(model, tuple(MODELS.values())):
        return model.kind
    names = " or ".join(f"mfntk.{cls.__name__}" for cls in MODELS.values())
    raise TypeError(f"{name}: expected an {names}, got {type(model).__name__}")


def model_class(kind, name="model"):
    """The model class of ``kind``; ValueError naming the argument for a kind no model has."""
    if not isinstance(kind, str) or kind not in MODELS:
        raise ValueError(f"{name}: unknown model kind {kind!r}; expected one of {', '.join(map(repr, MODELS))}")
    return MODELS[kind]
