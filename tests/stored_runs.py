"""Runs whose every recorded number is stored in ``data/stored-runs.json`` (written by the
0.1.0 release): later versions must reproduce them, bit for bit on a CPU with the same
vector instruction set, to 1e-12 elsewhere (another instruction set sums GEMM tiles in
another order).

Write the file again (only on purpose, when a release changes results):
    python tests/stored_runs.py --write
"""
import json
import os
import sys

import numpy as np

import mfntk as mf

PATH = os.path.join(os.path.dirname(__file__), "data", "stored-runs.json")
D = 5


def _teacher_data(k=1, seed=2):
    teacher = mf.datasets.TwoLayerTeacher(D, 3, "tanh", seed=1, a=np.arange(3 * k, dtype=float).reshape(3, k) - 1.0)
    return mf.datasets.teacher_dataset(teacher, D, 24, 16, noise=0.1, seed=seed)


def _mixture():
    return mf.datasets.gaussian_mixture(D, 24, 16, delta=0.5, seed=4)


# name -> (network arguments, data, simulate arguments)
CASES = {
    "rk4_relu_mf": (dict(width=16, activation="relu", seed=3), _teacher_data,
                    dict(t_max=1.0, dt=0.1, method="rk4", record_every=0.2)),
    "heun_tanh_bias_k2": (dict(width=16, activation="tanh", bias=True, b_std=0.5, outputs=2, seed=5),
                          lambda: _teacher_data(k=2), dict(t_max=1.0, dt=0.1, method="heun", record_every=0.2)),
    "euler_ntk_symmetric_diagnostics": (dict(width=16, activation="erf", scaling="ntk", symmetric=True, seed=6),
                                        _teacher_data, dict(t_max=1.0, dt=0.05, method="euler", record_every=0.25,
                                                            diagnostics=True, linearized=True,
                                                            residual_dynamics=True)),
    "minibatch_sigmoid_decay": (dict(width=16, activation="sigmoid", seed=7), _teacher_data,
                                dict(t_max=1.0, dt=0.1, method="euler", batch=8, online=False, weight_decay=0.01,
                                     record_every=0.2)),
    "online_langevin_softplus": (dict(width=16, activation="softplus", bias=True, seed=8), _teacher_data,
                                 dict(t_max=1.0, dt=0.1, method="euler", batch=8, temperature=1e-3,
                                      record_every=0.2)),
    "logistic_mixture_float32": (dict(width=16, activation="relu", dtype="float32", seed=9), _mixture,
                                 dict(t_max=1.0, dt=0.1, method="rk4", loss="logistic", record_every=0.2)),
    "quadratic_c0_no_cache": (dict(width=16, activation="quadratic", c0=-1.0, a_init="rademacher", seed=10),
                              _teacher_data, dict(t_max=0.5, dt=0.05, method="rk4", record_every=0.1, cache_mb=0)),
}


def run(name, threads=1):
    net_kw, data, sim_kw = CASES[name]
    net = mf.TwoLayer(D, **net_kw)
    return mf.simulate(net, data(), threads=threads, progress=False, **sim_kw)


def record(traj):
    """Every number of a run as JSON-able lists (floats round-trip exactly through repr)."""
    out = {key: np.asarray(value, np.float64).ravel().tolist() for key, value in traj.series().items()}
    out["particles"] = traj.net.get_flat().astype(np.float64).tolist()
    if traj.linearized_net is not None:
        out["linearized_particles"] = traj.linearized_net.get_flat().astype(np.float64).tolist()
    return out


def cpu_fingerprint():
    """The vector instruction sets that decide how the core's GEMM tiles sum."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return sorted(flags & {"avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl", "sse4_2"})


def write():
    stored = {"mfntk_version": mf.__version__, "cpu": cpu_fingerprint(),
              "runs": {name: record(run(name)) for name in CASES}}
    os.makedirs(os.path.dirname(PATH), exist_ok=True)
    with open(PATH, "w") as f:
        json.dump(stored, f, indent=0, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    write()
