"""The names mfntk accepts, read once from the compiled core.

The core owns every extension point (activations, losses, integrators, kernel kinds and
kernel outputs) and
declares each entry once, beside its code; ``_core.registry()`` exports them. This module
turns that into tuples of names, small frozen records of metadata, and the checks every
entry point uses, so that Python lists no names of its own: an entry added to the core is
accepted everywhere, and an unknown name fails everywhere with the same message.

Names
-----
ACTIVATIONS, LOSSES, INTEGRATORS, KERNEL_KINDS, KERNEL_OUTPUTS : tuple of str
    In the order the core lists them.

Metadata
--------
activation_info(name) -> ActivationInfo, loss_info(name) -> LossInfo,
integrator_info(name) -> IntegratorInfo, kernel_kind_info(name) -> KernelKindInfo,
kernel_output_info(name) -> KernelOutputInfo.

Checks
------
check_activation(name, argument="activation"), check_loss, check_integrator,
check_kernel_kind, check_kernel_output: return the name, or raise ValueError naming the argument and listing
the choices (the wording of :func:`mfntk._validation.check_choice`).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import _core
from ._validation import check_choice

__all__ = [
    "ACTIVATIONS", "LOSSES", "INTEGRATORS", "KERNEL_KINDS", "KERNEL_OUTPUTS",
    "ActivationInfo", "LossInfo", "IntegratorInfo", "KernelKindInfo", "KernelOutputInfo",
    "activation_info", "loss_info", "integrator_info", "kernel_kind_info", "kernel_output_info",
    "check_activation", "check_loss", "check_integrator", "check_kernel_kind", "check_kernel_output",
]


@dataclass(frozen=True)
class ActivationInfo:
    """An activation sigma of the core.

    Attributes
    ----------
    name : str
    closed_form_kernel : bool
        Its infinite-width kernel has a closed form (otherwise Gauss-Hermite quadrature).
    has_c0 : bool
        It takes the parameter ``c0`` (quadratic: u^2 + c0).
    homogeneous : bool
        Positively homogeneous of degree 1: sigma(z) = z sigma'(z) (relu, identity).
    smooth : bool
        Infinitely differentiable; a non-smooth sigma's Hermite series converge slowly.
    step_derivative : bool
        sigma'(z) = 1[z > 0] (relu): the signs of the pre-activations give sigma' and, with
        ``homogeneous``, sigma; the dynamics of one output then keep only those signs between passes.
    """

    name: str
    closed_form_kernel: bool
    has_c0: bool
    homogeneous: bool
    smooth: bool
    step_derivative: bool


@dataclass(frozen=True)
class LossInfo:
    """A loss l(f, y) of the core.

    Attributes
    ----------
    name : str
    single_output : bool
        Defined for networks with one output only.
    pm1_labels : bool
        Expects labels y in {-1, +1}.
    """

    name: str
    single_output: bool
    pm1_labels: bool


@dataclass(frozen=True)
class IntegratorInfo:
    """A fixed-step integrator of the core.

    Attributes
    ----------
    name : str
    stages : int
        Evaluations of the vector field per step.
    order : int
        Order of the global error in dt.
    supports_temperature : bool
        Integrates temperature > 0 (Euler-Maruyama).
    """

    name: str
    stages: int
    order: int
    supports_temperature: bool


@dataclass(frozen=True)
class KernelKindInfo:
    """A kind of tangent kernel (SPEC 4).

    Attributes
    ----------
    name : str
    second_layer : bool
        Keeps the second-layer term s(x) s(x') (the random-features kernel).
    first_layer : bool
        Keeps the first-layer term a_p a_q s'(x) s'(x') (<x, x'> + [bias]).
    """

    name: str
    second_layer: bool
    first_layer: bool


@dataclass(frozen=True)
class KernelOutputInfo:
    """A form of an empirical kernel's result for a network with k outputs (SPEC 4).

    Attributes
    ----------
    name : str
    matrix : bool
        The matrix-valued kernel, (n1 k, n2 k); otherwise the (n1, n2) mean over outputs
        (1/k) sum_p K_pp. The two coincide for k = 1.
    """

    name: str
    matrix: bool


def _read(entries, cls):
    # cls(**entry): a field added to the core without one here fails at import, loudly.
    return {entry["name"]: cls(**entry) for entry in entries}


_REGISTRY = _core.registry()
_ACTIVATIONS = _read(_REGISTRY["activations"], ActivationInfo)
_LOSSES = _read(_REGISTRY["losses"], LossInfo)
_INTEGRATORS = _read(_REGISTRY["integrators"], IntegratorInfo)
_KERNEL_KINDS = _read(_REGISTRY["kernel_kinds"], KernelKindInfo)
_KERNEL_OUTPUTS = _read(_REGISTRY["kernel_outputs"], KernelOutputInfo)
del _REGISTRY

ACTIVATIONS = tuple(_ACTIVATIONS)
LOSSES = tuple(_LOSSES)
INTEGRATORS = tuple(_INTEGRATORS)
KERNEL_KINDS = tuple(_KERNEL_KINDS)
KERNEL_OUTPUTS = tuple(_KERNEL_OUTPUTS)


def check_activation(name, argument="activation"):
    """``name`` if the core has that activation; ValueError naming ``argument`` otherwise."""
    return check_choice(name, argument, ACTIVATIONS)


def check_loss(name, argument="loss"):
    """``name`` if the core has that loss; ValueError naming ``argument`` otherwise."""
    return check_choice(name, argument, LOSSES)


def check_integrator(name, argument="method"):
    """``name`` if the core has that integrator; ValueError naming ``argument`` otherwise."""
    return check_choice(name, argument, INTEGRATORS)


def check_kernel_kind(name, argument="kind"):
    """``name`` if the core has that kernel kind; ValueError naming ``argument`` otherwise."""
    return check_choice(name, argument, KERNEL_KINDS)


def check_kernel_output(name, argument="output"):
    """``name`` if the core has that kernel output; ValueError naming ``argument`` otherwise."""
    return check_choice(name, argument, KERNEL_OUTPUTS)


def activation_info(name, argument="activation"):
    """The :class:`ActivationInfo` of an activation (checked as :func:`check_activation`)."""
    return _ACTIVATIONS[check_activation(name, argument)]


def loss_info(name, argument="loss"):
    """The :class:`LossInfo` of a loss (checked as :func:`check_loss`)."""
    return _LOSSES[check_loss(name, argument)]


def integrator_info(name, argument="method"):
    """The :class:`IntegratorInfo` of an integrator (checked as :func:`check_integrator`)."""
    return _INTEGRATORS[check_integrator(name, argument)]


def kernel_kind_info(name, argument="kind"):
    """The :class:`KernelKindInfo` of a kernel kind (checked as :func:`check_kernel_kind`)."""
    return _KERNEL_KINDS[check_kernel_kind(name, argument)]


def kernel_output_info(name, argument="output"):
    """The :class:`KernelOutputInfo` of a kernel output (checked as :func:`check_kernel_output`)."""
    return _KERNEL_OUTPUTS[check_kernel_output(name, argument)]
