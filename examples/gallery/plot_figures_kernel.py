"""
Tangent-kernel heatmaps, sorted
===============================

The empirical tangent kernel of a mean-field student before and after training, drawn by
:func:`mfntk.plot.kernel` with the eigenvalue spectrum of K / n at every snapshot of the
run. The inputs are isotropic, so sorting them by a coordinate would show nothing: on
classification data (the two isotropic Gaussians of Mei, Montanari and Nguyen, which
differ only in their scale) the heatmaps are sorted by label, with a line at the class
boundary; on regression data (a single-neuron teacher) by the leading eigenvector of the
trained kernel, which gathers the inputs the kernel treats alike. Training reshapes the
kernel along the classes, and its spectrum moves over time.
"""
import os
import tempfile

import matplotlib.pyplot as plt

import mfntk as mf

d = 10
classes = mf.datasets.isotropic_gaussians(d, n_train=160, n_test=100, delta=0.4, seed=1)
teacher = mf.datasets.SingleNeuron(d, "relu", seed=0)
regression = mf.datasets.teacher_dataset(teacher, d, n_train=160, n_test=100, seed=1)
with tempfile.TemporaryDirectory() as folder:
    runs = {}
    for name, data, loss in (("classes", classes, "logistic"), ("regression", regression, "squared")):
        path = os.path.join(folder, f"{name}.h5")
        net = mf.TwoLayer(d, 128, "relu", scaling="mf", symmetric=True, seed=2)
        mf.simulate(net, data, t_max=30.0, dt=0.1, loss=loss, method="euler", record_every=1.0, progress=False,
                    out=path, snapshot_every=5.0)
        runs[name] = mf.load(path)

    # %%
    # The training inputs, their labels and the snapshots are read from the files.
    fig_classes = mf.plot.kernel(runs["classes"], title="two isotropic Gaussians: inputs sorted by label")
    fig_regression = mf.plot.kernel(runs["regression"], title="single-neuron teacher: inputs sorted by the "
                                                              "leading eigenvector")
for fig in (fig_classes, fig_regression):
    plt.figure(fig)
plt.show()
