"""
Lazy versus rich training on a teacher
======================================

The same two-layer ReLU student, with the same initial particles, is trained on a
single-neuron teacher :math:`y = \\mathrm{relu}(\\langle w_*, x\\rangle)` in the mean-field
scaling (:math:`\\alpha = 1`) and in the NTK scaling (:math:`\\alpha = \\sqrt{N}`). Time is
mean-field time in both runs, so the risk curves can be compared at equal ``t``; what differs
is how far the particles, and with them the tangent kernel, move.
"""

import numpy as np

import mfntk as mf

d, width = 10, 256
threads = 1   # problems this small run fastest on one thread; None uses every core
teacher = mf.datasets.SingleNeuron(d, seed=1)
data = mf.datasets.teacher_dataset(teacher, d=d, n_train=256, n_test=1024, seed=0)

# %%
# Two runs from the same particles
# --------------------------------
# ``symmetric=True`` pairs the particles as :math:`(a, w)` and :math:`(-a, w)`, so that
# :math:`f(x; \theta_0) = 0` in both scalings. ``diagnostics=True`` records the relative
# displacement :math:`|\theta_t - \theta_0| / |\theta_0|` and the relative kernel distance
# :math:`|K_t - K_0|_F / |K_0|_F`; ``linearized=True`` trains the linearized model alongside
# and records its distance to the network.

runs = {}
for scaling in ("mf", "ntk"):
    net = mf.TwoLayer(d, width, activation="relu", scaling=scaling, symmetric=True, seed=0)
    runs[scaling] = mf.simulate(net, data, t_max=10.0, dt=0.1, method="rk4", record_every=0.25,
                                diagnostics=True, linearized=True, probe_size=64, threads=threads,
                                progress=False)

for scaling, traj in runs.items():
    print(f"{scaling:>3}: alpha = {traj.net.alpha:5.1f}  test risk {traj.test_risk[0]:.3f} -> "
          f"{traj.test_risk[-1]:.4f}  displacement {traj.displacement[-1]:.3f}  "
          f"kernel distance {traj.kernel_distance[-1]:.3f}")

# %%
# Risks
# -----
# Both runs fit the teacher; the figures of :mod:`mfntk.plot` share one style and say in
# which units time is measured.

fig_risk = mf.plot.risk(list(runs.values()), labels=["mean field", "NTK"])

# %%
# Lazy and rich
# -------------
# In the NTK scaling each particle moves at rate :math:`1/\alpha`: the displacement, the
# kernel distance and the distance to the linearized model are all about
# :math:`\sqrt{N}` times smaller than in the mean-field scaling, where the kernel changes at
# order one (feature learning).

fig_lazy_rich = mf.plot.lazy_rich(list(runs.values()), labels=["mean field", "NTK"])

ratio = runs["mf"].displacement[-1] / runs["ntk"].displacement[-1]
print(f"displacement ratio MF / NTK at t = 10: {ratio:.1f} (sqrt(N) = {np.sqrt(width):.0f})")

# %%
# The particles
# -------------
# Each particle :math:`j` drawn as its output weight :math:`a_j` against the projection of
# its first-layer weight on the teacher direction: the mean-field particles align with
# :math:`w_*`, the NTK particles stay where they started.

fig_particles = mf.plot.particles([("MF, t = 0", runs["mf"].net0), ("MF, t = 10", runs["mf"].net),
                                   ("NTK, t = 10", runs["ntk"].net)], direction=teacher.w)
