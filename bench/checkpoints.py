"""Cost of a checkpoint as a run grows.

Every record is a checkpoint with a particle snapshot. A checkpoint's duration is the time
from the end of its record to the atomic rename of the file that commits it; with
checkpoints that rewrite the snapshots it grows with the run, with snapshot parts it stays
flat. Uses only the public API and os.replace (it runs against any installed mfntk
version) and reports the median duration of the first and of the last five checkpoints,
their ratio, and the final file's size.

    python bench/checkpoints.py --width 32768 --checkpoints 40
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import mfntk as mf



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=32768, help="particles N (a snapshot is N (d + 1) values)")
    ap.add_argument("--d", type=int, default=32, help="input dimension")
    ap.add_argument("--n", type=int, default=64, help="training points (small: the step is cheap)")
    ap.add_argument("--checkpoints", type=int, default=40, help="checkpoints (one per record)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    data = mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(args.d, seed=1), args.d, args.n, seed=2)
    net = mf.TwoLayer(args.d, args.width, "relu", seed=3)
    recorded, committed = [], []
    record, replace = mf.Simulation._record, os.replace

    def timed_record(sim):
        record(sim)
        recorded.append(time.perf_counter())

    def timed_replace(src, dst):
        replace(src, dst)
        if os.path.basename(dst) == "run.h5":
            committed.append(time.perf_counter())

    mf.Simulation._record = timed_record
    os.replace = timed_replace
    dt = 0.01
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "run.h5")
        start = time.perf_counter()
        mf.simulate(net, data, t_max=args.checkpoints * dt, dt=dt, method="euler", record_every=dt,
                    checkpoint_every=dt, out=out, threads=args.threads, progress=False)
        total = time.perf_counter() - start
        size = os.path.getsize(out)
    # each record is followed by its checkpoint (the first file is written right after the first record)
    durations = np.array(committed[:len(recorded)]) - np.array(recorded[:len(committed)])
    first, last = statistics.median(durations[1:6]), statistics.median(durations[-6:-1])
    snapshot_mb = args.width * (args.d + 1) * 8 / 2 ** 20
    print(f"mfntk {mf.__version__}: N = {args.width}, d = {args.d}, snapshot {snapshot_mb:.1f} MiB, "
          f"{args.checkpoints} checkpoints, load {open('/proc/loadavg').read().split()[0]}")
    print(f"  median checkpoint, 2nd to 6th:      {first * 1e3:8.1f} ms")
    print(f"  median checkpoint, last 5 but one:  {last * 1e3:8.1f} ms")
    print(f"  ratio last / first:                 {last / first:8.2f}")
    print(f"  whole run {total:.1f} s, final file {size / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    main()
