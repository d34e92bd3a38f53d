"""mfntk: two-layer neural networks as interacting particle systems.

Mean-field (feature-learning) and NTK (lazy) dynamics of the particles, the residual
dynamics with the tangent kernel K_mu, infinite-width kernels and kernel regression.

    import mfntk as mf
    net = mf.TwoLayer(d=10, width=1024, scaling="mf")
    traj = mf.simulate(net, data, t_max=10.0, dt=0.05)

``mfntk.plot`` (matplotlib) and ``mfntk.reproduce`` (the source papers' figures) are imported
on first use only.
"""
import importlib

from . import datasets, kernels, studies, theory
from ._backend import BACKENDS, SIMD, Backend, CPUBackend, get_backend, get_simd, set_simd
from ._backend import MPIBackend, MPITimeoutError
from ._diagonal import DiagonalLinear
from ._io import TrajectoryFileError, load
from ._network import TwoLayer
from ._ntk_limit import NTKLimit
from ._simulate import (
    DivergenceError,
    Simulation,
    Trajectory,
    dd_field,
    euler_dt,
    learning_rate,
    linearized_predict,
    resume,
    simulate,
)
from ._solvers import ConvergenceWarning, IndefiniteKernelWarning, NumericalRidgeWarning, SolverFallbackWarning
from .regression import (KernelClassifier, KernelRegressor, NeuralTangent, NystromClassifier, NystromRegressor,
                         RandomFeatures)

__version__ = "0.2.0.dev0"

__all__ = [
    "TwoLayer", "DiagonalLinear", "simulate", "Simulation", "Trajectory", "DivergenceError", "dd_field", "euler_dt",
    "learning_rate", "linearized_predict", "NTKLimit", "kernels", "KernelRegressor", "KernelClassifier",
    "NystromRegressor", "NystromClassifier",
    "RandomFeatures", "NeuralTangent", "ConvergenceWarning", "IndefiniteKernelWarning", "NumericalRidgeWarning",
    "SolverFallbackWarning",
    "load", "resume", "TrajectoryFileError", "datasets", "studies", "theory", "plot", "reproduce", "Backend",
    "CPUBackend", "MPIBackend", "MPITimeoutError", "BACKENDS",
    "get_backend", "SIMD", "get_simd", "set_simd", "__version__",
]


def __getattr__(name):
    if name in ("plot", "reproduce"):  # matplotlib stays out of the import of the package
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'mfntk' has no attribute {name!r}")
