"""
Lazy and rich training diagnostics
==================================

The same ReLU student (symmetric initialisation, so f(x; theta_0) = 0) trained in the
mean-field scaling (alpha = 1) and in the NTK scaling (alpha = sqrt(N)) with
``diagnostics=True`` and ``linearized=True``. :func:`mfntk.plot.lazy_rich` draws the
relative kernel distance, parameter displacement and distance to the linearized model;
:func:`mfntk.plot.diagnostics` draws the kernel-target alignment of the tangent kernel and,
per record interval, the relative decrease of the objective against the relative change
of the tangent features. Lazy training changes its features less than its objective, by
a factor that shrinks like 1/alpha (Chizat, Oyallon and Bach); rich training changes both
at the same rate, and the alignment of its kernel with the target grows.
"""
import matplotlib.pyplot as plt

import mfntk as mf

d = 10
teacher = mf.datasets.SingleNeuron(d, "relu", seed=0)
data = mf.datasets.teacher_dataset(teacher, d, n_train=200, n_test=200, seed=1)
runs = []
for scaling in ("mf", "ntk"):
    net = mf.TwoLayer(d, 128, "relu", scaling=scaling, symmetric=True, seed=2)
    runs.append(mf.simulate(net, data, t_max=20.0, dt=0.1, method="euler", record_every=0.5, diagnostics=True,
                            linearized=True, probe_size=64, progress=False))

# %%
labels = ["mean field", "NTK"]
fig_lazy = mf.plot.lazy_rich(runs, labels=labels, title="lazy (NTK) against rich (mean-field) training")
fig_diag = mf.plot.diagnostics(runs, labels=labels, title="alignment, and how fast objective and features change")
for fig in (fig_lazy, fig_diag):
    plt.figure(fig)
plt.show()
