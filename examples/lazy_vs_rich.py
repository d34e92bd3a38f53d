"""The same student in the mean-field and in the NTK scaling: lazy versus rich dynamics.

Trains one two-layer ReLU network (same initial particles, symmetric so that f_0 = 0) on a
single-neuron teacher with alpha = 1 (mean field) and alpha = sqrt(N) (NTK), and follows the
relative kernel distance |K_t - K_0| / |K_0|, the relative displacement |theta_t - theta_0| /
|theta_0| and the Chizat-Oyallon-Bach linearization distance over time.

    python examples/lazy_vs_rich.py [--out lazy_vs_rich.png]
"""
import argparse

import numpy as np

import mfntk as mf


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="lazy_vs_rich.png", help="figure file (default: %(default)s)")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--t-max", type=float, default=8.0)
    args = parser.parse_args(argv)

    d = 16
    data = mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(d, seed=1), d=d, n_train=512, n_test=1024, seed=0)
    runs = {}
    for scaling in ("mf", "ntk"):
        net = mf.TwoLayer(d, args.width, activation="relu", scaling=scaling, symmetric=True, seed=0)
        runs[scaling] = mf.simulate(net, data, t_max=args.t_max, dt=0.05, method="rk4", record_every=args.t_max / 40,
                                    diagnostics=True, linearized=True, probe_size=128)

    print(f"{'t':>6} | {'kernel distance':^19} | {'displacement':^19} | {'linearized dist.':^19} | {'test risk':^19}")
    print(f"{'':>6} | {'MF':>9} {'NTK':>9} | {'MF':>9} {'NTK':>9} | {'MF':>9} {'NTK':>9} | {'MF':>9} {'NTK':>9}")
    mf_run, ntk_run = runs["mf"], runs["ntk"]
    for i in range(0, len(mf_run.t), 8):
        row = [mf_run.t[i]]
        for name in ("kernel_distance", "displacement", "linearized_distance", "test_risk"):
            row += [getattr(mf_run, name)[i], getattr(ntk_run, name)[i]]
        print(f"{row[0]:6.2f} | " + " | ".join(f"{row[j]:9.3g} {row[j + 1]:9.3g}" for j in range(1, 9, 2)))

    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.2), layout="constrained")
    axes = fig.subplots(1, 4)
    for scaling, traj in runs.items():
        label = f"{scaling.upper()} (alpha = {traj.net.alpha:.3g})"
        for ax, name in zip(axes, ("kernel_distance", "displacement", "linearized_distance", "test_risk")):
            ax.plot(traj.t[1:], getattr(traj, name)[1:], label=label)
    titles = ["|K_t - K_0| / |K_0|", "|theta_t - theta_0| / |theta_0|", "|f - fbar| / |f_0 - y|", "test risk"]
    for ax, title in zip(axes, titles):
        ax.set(title=title, xlabel="t (mean-field time)", yscale="log")
    axes[0].legend()
    fig.savefig(args.out, dpi=120)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
