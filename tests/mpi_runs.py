"""Runs of the MPI tests (test_mpi.py), the same in one process and under ``mpiexec -n P``.

    python mpi_runs.py OUT.json [mpi]          every case; with "mpi", sharded over COMM_WORLD
    python mpi_runs.py OUT.json mpi-bad-data   each rank passes other data (the check must refuse)
    python mpi_runs.py OUT.json mpi-stalled    rank 1 never joins (the others must time out)
    python mpi_runs.py DIR mpi-write           the runs of FILE_CASES written to DIR/NAME.h5 up to t = 0.3
    python mpi_runs.py DIR mpi-resume          ... resumed from there to t = 0.5

Rank 0 writes, for each case, sha256 digests of the recorded series and of the particles
gathered in the order of the whole network, and of the initial network's predictions, empirical
kernels (mean and matrix), their matvec and a CG kernel-ridge fit with them.
"""
import hashlib
import json
import sys
import time

import numpy as np

import mfntk as mf

D, N, CHUNK = 6, 1000, 128

CASES = {
    "euler_relu": (dict(activation="relu"), dict(method="euler")),
    "rk4_tanh_bias": (dict(activation="tanh", bias=True, b_std=0.5), dict(method="rk4")),
    "heun_k2_output_bias": (dict(activation="softplus", outputs=2, output_bias=True), dict(method="heun", k=2)),
    "langevin_relu_bias": (dict(activation="relu", bias=True, b_std=0.3), dict(method="euler", temperature=1e-3)),
    "rd_linearized_symmetric": (dict(activation="erf", symmetric=True, scaling="ntk", width=1024),
                                dict(method="heun", residual_dynamics=True, linearized=True)),
    "minibatch_decay": (dict(activation="sigmoid"), dict(method="euler", batch=8, online=False, weight_decay=0.01)),
    "online_centered": (dict(activation="relu"), dict(method="euler", batch=8, online=True, centered=True)),
    "float32_relu": (dict(activation="relu", dtype="float32"), dict(method="rk4")),
    "logistic_relu": (dict(activation="relu"), dict(method="euler", loss="logistic")),
    "diagnostics_k2_bias": (dict(activation="tanh", bias=True, b_std=0.5, outputs=2),
                            dict(method="heun", k=2, diagnostics=True, probe_size=16)),
    # one chunk: one rank holds it, the others none
    "one_chunk_rd_linearized": (dict(activation="tanh", bias=True, width=100, particle_chunk=None),
                                dict(method="rk4", residual_dynamics=True, linearized=True)),
}


#: The runs written to files (test_mpi.test_files_of_sharded_runs).
FILE_CASES = ("rd_linearized_symmetric", "langevin_relu_bias", "heun_k2_output_bias", "online_centered",
              "diagnostics_k2_bias", "one_chunk_rd_linearized")


def write_case(name, folder, comm):
    """Run ``name`` to t = 0.3 into folder/NAME.h5 (a checkpoint and a snapshot every 0.1)."""
    net, ds, sim_kw = setup(name, comm)
    traj = mf.simulate(net, ds, t_max=0.3, dt=0.05, progress=False, comm=comm, threads=1, record_every=0.05,
                       out=f"{folder}/{name}.h5", checkpoint_every=0.1, snapshot_every=0.1, **sim_kw)
    return digest(np.asarray(traj.train_risk))


def resume_case(name, folder, comm):
    """Resume folder/NAME.h5 to t = 0.5."""
    traj = mf.resume(f"{folder}/{name}.h5", t_max=0.5, progress=False, threads=1, comm=comm)
    return digest(np.asarray(traj.train_risk))


def setup(name, comm):
    net_kw, sim_kw = CASES[name]
    net_kw, sim_kw = dict(net_kw), dict(sim_kw)
    k = sim_kw.pop("k", 1)
    net = mf.TwoLayer(D, **{"width": N, "particle_chunk": CHUNK, "seed": 5, **net_kw}, comm=comm)
    ds = data(k)
    if sim_kw.get("loss") == "logistic":
        ds = (ds.X, np.where(ds.y >= 0, 1.0, -1.0))
    return net, ds, sim_kw


def data(k=1, seed=2):
    teacher = mf.datasets.TwoLayerTeacher(D, 3, "tanh", seed=1, a=np.arange(3 * k, dtype=float).reshape(3, k) - 1.0)
    return mf.datasets.teacher_dataset(teacher, D, 40, 20, noise=0.1, seed=seed)


def digest(x):
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def whole_blocks(net, comm):
    """(a, W, b) of the whole network on rank 0 (None elsewhere): the shards in rank order."""
    blocks = [net.a, net.W] + ([net.b] if net.b is not None else [])
    if comm is None:
        return blocks
    gathered = [comm.gather(b, root=0) for b in blocks]
    return [np.concatenate(g) for g in gathered] if comm.rank == 0 else None


def run_case(name, comm):
    net, ds, sim_kw = setup(name, comm)
    X = np.ascontiguousarray(data(net.outputs).X[:7], dtype=net.dtype)
    out = {"predict": net.predict(X, threads=1).tolist()}
    # the empirical kernels, their matvec and a CG solve with them
    for output in ("mean", "matrix"):
        kernel = mf.kernels.Empirical(net, threads=1, output=output)
        V = np.ones((kernel(X).shape[0], 2), dtype=net.dtype)
        out[f"gram_{output}"] = digest(kernel(X, X[:3]))
        out[f"matvec_{output}"] = digest(kernel.matvec(X, V))
        op = kernel.operator(X)   # its first product fills the sign cache (relu), the second reads it
        assert [digest(op(V)) for _ in range(2)] == [out[f"matvec_{output}"]] * 2
    if comm is not None:   # comm= on the kernel functions shards a whole network: the same numbers
        whole = mf.TwoLayer(D, **{"width": N, "particle_chunk": CHUNK, "seed": 5, **CASES[name][0]})
        assert digest(mf.kernels.empirical(whole, X, X[:3], comm=comm)) == out["gram_mean"]
        V = np.ones((7, 2), dtype=net.dtype)
        assert digest(mf.kernels.Empirical(whole, threads=1, comm=comm).matvec(X, V)) == out["matvec_mean"]
    fitted = mf.KernelRegressor(mf.kernels.Empirical(net, threads=1), ridge=0.1, solver="cg", tol=1e-10).fit(
        X, np.arange(7.0))
    out["cg"] = digest(fitted.predict(X))
    traj = mf.simulate(net, ds, t_max=0.5, dt=0.05, progress=False, comm=comm, threads=1, record_every=0.1,
                       **sim_kw)
    series = {key: np.asarray(value, np.float64) for key, value in traj.series().items()}
    out["series"] = {key: digest(value) for key, value in series.items()}
    out["train_risk"] = series["train_risk"].tolist()
    blocks = whole_blocks(traj.net, comm)
    if blocks is not None:
        out["particles"] = digest(np.concatenate([b.ravel() for b in blocks]))
    return out


def main():
    path, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    comm = None
    if mode.startswith("mpi"):
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    if mode in ("mpi-write", "mpi-resume"):
        step = write_case if mode == "mpi-write" else resume_case
        records = {name: step(name, path, comm) for name in FILE_CASES}
        assert all(other == records for other in comm.allgather(records))   # the same records on every rank
        return
    if mode == "mpi-bad-data":
        net = mf.TwoLayer(D, N, particle_chunk=CHUNK, comm=comm)
        try:
            mf.simulate(net, data(seed=10 + comm.rank), t_max=0.1, dt=0.05, progress=False, comm=comm)
        except ValueError as exc:
            result = {"error": str(exc)}
        else:
            result = {"error": None}
        try:   # the features of a fixed network need all its particles in one process
            mf.NeuralTangent(net=net).fit(data().X, data().y)
        except ValueError as exc:
            result["features"] = str(exc)
        try:   # a file another process writes (the test holds its lock): every rank stops
            mf.simulate(net, data(), t_max=0.1, dt=0.05, progress=False, comm=comm, out=f"{path}.locked.h5")
        except RuntimeError as exc:
            result["locked"] = f"{type(exc).__name__}: {exc}"
        try:   # centres drawn in each process
            mf.KernelRegressor(mf.kernels.Empirical(net), ridge=1.0, solver="cg", preconditioner="nystrom").fit(
                data().X, data().y)
        except ValueError as exc:
            result["nystrom"] = str(exc)
        every = comm.gather(result, root=0)
        if comm.rank == 0:
            with open(path, "w") as f:
                json.dump(every, f)
        return
    if mode == "mpi-stalled":
        backend = mf.MPIBackend(comm, timeout=2.0)
        if comm.rank == 1:
            time.sleep(60)   # never joins; rank 0 aborts the job first
            return
        start = time.monotonic()
        try:
            mf.TwoLayer(D, N, particle_chunk=CHUNK, backend=backend, comm=comm)
        except mf.MPITimeoutError as exc:
            with open(path, "w") as f:
                json.dump({"error": str(exc), "seconds": time.monotonic() - start}, f)
            comm.Abort(3)
        return
    results = {name: run_case(name, comm) for name in CASES}
    if comm is None or comm.rank == 0:
        with open(path, "w") as f:
            json.dump(results, f)
    if comm is not None:   # every rank records the same series
        mine = json.dumps({name: r["series"] for name, r in results.items()}, sort_keys=True)
        assert all(other == mine for other in comm.allgather(mine))


if __name__ == "__main__":
    main()
