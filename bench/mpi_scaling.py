"""Sharded runs under MPI: time per Euler step, communication time per step, peak memory per rank.

For each rank count P of --ranks the script starts ``mpiexec -n P`` on itself; every rank
builds its shard of a TwoLayer(d, N) (relu, mean-field, float64 by default) with
``comm=MPI.COMM_WORLD``, sets up a full-batch simulation on n teacher points and times
--steps single Euler steps after one warm-up step (median). The communication time is the
time spent in the backend's collectives (the allgather of the chunks' sums and the agreement
on finiteness), summed over the steps and divided by them; its maximum over the ranks is
reported. Peak memory is each rank's maximum resident set (getrusage), the largest reported.
Each rank uses --threads-per-rank OpenMP threads (default: the cores / P).

    python bench/mpi_scaling.py --ranks 1,2 --n 4096 --N 1048576 --d 32 --steps 3
    python bench/mpi_scaling.py --ranks 2 --n 256 --N 16777216 --d 32 --steps 2
    python bench/mpi_scaling.py ... --json bench/results/NAME.json
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def worker(args):
    from mpi4py import MPI

    import mfntk as mf

    comm = MPI.COMM_WORLD
    backend = mf.MPIBackend(comm)
    spent = {"seconds": 0.0}
    wait = backend._wait

    def timed_wait(request, what):       # the time in collectives, for the report
        start = time.perf_counter()
        try:
            return wait(request, what)
        finally:
            spent["seconds"] += time.perf_counter() - start

    backend._wait = timed_wait
    start = time.perf_counter()
    net = mf.TwoLayer(args.d, args.N, activation="relu", dtype=args.dtype, seed=0, backend=backend, comm=comm)
    teacher = mf.datasets.TwoLayerTeacher(args.d, 4, "relu", seed=1)
    data = mf.datasets.teacher_dataset(teacher, args.d, args.n, 0, noise=0.0, seed=2)
    sim = mf.Simulation(net, data, t_max=1.0, dt=1e-3, method="euler", threads=args.threads_per_rank,
                        record_every=1.0, comm=comm)
    shard = net.shard
    del net   # the simulation holds its own copies
    setup = time.perf_counter() - start
    sim.advance(1)
    steps, comm_time = [], []
    for _ in range(args.steps):
        comm.Barrier()
        before = spent["seconds"]
        t0 = time.perf_counter()
        sim.advance(1)
        steps.append(time.perf_counter() - t0)
        comm_time.append(spent["seconds"] - before)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    mine = {"rank": comm.rank, "step_s": statistics.median(steps), "comm_s": statistics.median(comm_time),
            "peak_bytes": peak, "setup_s": setup, "local_particles": int(shard.local_width),
            "chunks": int(shard.count)}
    every = comm.gather(mine, root=0)
    if comm.rank == 0:
        print(json.dumps(every), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--N", type=int, default=2 ** 20)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads-per-rank", type=int, default=0)
    ap.add_argument("--json", help="append the rows to this JSON file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    cores = len(os.sched_getaffinity(0))
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        mpiexec = "mpiexec"
    with open("/proc/loadavg") as f:
        print(f"load average: {f.read().split()[:3]}; cores: {cores}")
    print(f"n = {args.n}, N = {args.N}, d = {args.d}, {args.dtype}, Euler, full batch; median of {args.steps} steps")
    rows = []
    for P in [int(p) for p in args.ranks.split(",")]:
        threads = args.threads_per_rank or max(1, cores // P)
        cmd = [mpiexec, "-n", str(P), sys.executable, os.path.abspath(__file__), "--worker", "--n", str(args.n),
               "--N", str(args.N), "--d", str(args.d), "--dtype", args.dtype, "--steps", str(args.steps),
               "--threads-per-rank", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
        if proc.returncode != 0:
            print(f"ranks = {P}: failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
            continue
        ranks = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append({"ranks": P, "threads_per_rank": threads, "n": args.n, "N": args.N, "d": args.d,
                     "dtype": args.dtype, "step_s": max(r["step_s"] for r in ranks),
                     "comm_s": max(r["comm_s"] for r in ranks),
                     "peak_gib_per_rank": max(r["peak_bytes"] for r in ranks) / 2 ** 30,
                     "setup_s": max(r["setup_s"] for r in ranks), "per_rank": ranks})
    one = next((r["step_s"] for r in rows if r["ranks"] == 1), None)
    print(f"{'ranks':>5} {'threads':>7} {'step s':>8} {'comm s':>8} {'comm %':>6} {'speed-up':>8} "
          f"{'peak GiB/rank':>13} {'setup s':>7}")
    for r in sorted(rows, key=lambda r: r["ranks"]):
        speedup = one / r["step_s"] if one else float("nan")
        print(f"{r['ranks']:>5} {r['threads_per_rank']:>7} {r['step_s']:>8.3f} {r['comm_s']:>8.4f} "
              f"{100 * r['comm_s'] / r['step_s']:>5.1f}% {speedup:>8.2f} {r['peak_gib_per_rank']:>13.2f} "
              f"{r['setup_s']:>7.1f}")
    if args.json:
        old = json.load(open(args.json)) if os.path.exists(args.json) else []
        with open(args.json, "w") as f:
            json.dump(old + rows, f, indent=1)


if __name__ == "__main__":
    main()
