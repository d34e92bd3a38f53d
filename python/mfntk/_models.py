"""The models a run of :func:`mfntk.simulate` can train, by kind: the registry that trajectory
files name (their ``/net0`` group's ``model`` attribute) and that the reader checks a stored
kind against.

The model protocol: what :class:`~mfntk.Simulation`, its :class:`~mfntk._recorder.Recorder`,
:func:`~mfntk._validation.check_simulation_memory` and the file reader call, beside the model's
parameters (``d``, ``outputs``, ``dtype``, ``layout``, ``n_params``, ``get_flat``/``set_flat``,
``copy``, ``config``, ``check_inputs``, ``check_particles``, ``predict``):

``kind``
    Its name here and in files.
``layout_of(config)`` (class method)
    (layout, dtype) of ``cls(**config)`` without building it; the layout has ``size``, ``d``,
    ``outputs`` and ``shapes()`` (the parameter blocks' shapes by name).
``dynamics(loss=, weight_decay=, temperature=, seed=, residual_dynamics=, linearized=, threads=, cache_bytes=)``
    The core's engine (``set_data``, ``set_offset``, ``layout``, ``field``, ``advance``).
``set_reference(engine, theta0, f0)``
    The linearized model's reference.
``learning_rate(dt)``, ``euler_dt(eta)``
    Between the run's time step and the learning rate of gradient descent.
``step_flops(n, options)``, ``engine_memory(n, batch, options)``, ``description``
    Chunk sizes, the memory estimate and its message.
``linearized_predict(bar, X, threads)``, ``probe_kernel(X, threads)``
    The linearized model's outputs and the diagnostics' kernel.
``parameter_blocks()``, ``tangent_change(previous_blocks, X)``, ``displacement_layers``
    The displacements (overall and of the named layers) and the change of the Jacobian.
"""
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
