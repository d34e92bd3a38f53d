"""mfntk: two-layer neural networks as interacting particle systems.

Mean-field (feature-learning) and NTK (lazy) dynamics of the particles, the residual
dynamics with the tangent kernel K_mu, and kernel regression. See SPEC-style conventions
in the README.
"""
from . import datasets
from ._network import TwoLayer
from ._simulate import DivergenceError, Simulation, Trajectory, dd_field, euler_dt, learning_rate, simulate

__version__ = "0.1.0"

__all__ = [
    "TwoLayer", "simulate", "Simulation", "Trajectory", "DivergenceError", "dd_field", "euler_dt",
    "learning_rate", "datasets", "__version__",
]
