"""
Particle paths
==============

The particles theta_j = (a_j, w_j) of a mean-field ReLU student trained on a
single-neuron teacher y = relu(<w*, x>), drawn by :func:`mfntk.plot.particles` as paths
through the snapshots of the run's file: each path is coloured by time and fades from
its oldest to its newest part, the start is a grey ring and the end a dot. Left, a_j
against :math:`|w_j|`; right, a_j against the projection <w_j, w*> on the teacher direction,
where the particles that carry the fit gather. The same snapshots make an animation with
``mf.plot.animate(path, "flow.gif")`` (or ``.mp4`` where ffmpeg is installed).
"""
import os
import tempfile

import matplotlib.pyplot as plt

import mfntk as mf

d = 10
teacher = mf.datasets.SingleNeuron(d, "relu", seed=0)
data = mf.datasets.teacher_dataset(teacher, d, n_train=200, n_test=200, seed=1)
net = mf.TwoLayer(d, 64, "relu", scaling="mf", symmetric=True, seed=2)
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "run.h5")
    mf.simulate(net, data, t_max=30.0, dt=0.1, method="euler", record_every=1.0, progress=False, out=path,
                snapshot_every=2.0)
    traj = mf.load(path)          # the snapshots are read from the file

# %%
# :math:`|w_j|` on the left, the projection on the teacher direction w* on the right.
fig_norm = mf.plot.particles(traj, title=r"mean-field ReLU student: $a_j$ against $|w_j|$")
fig_teacher = mf.plot.particles(traj, direction=teacher.w,
                                title=r"the same particles against $\langle w_j, w^*\rangle$")
for fig in (fig_norm, fig_teacher):
    plt.figure(fig)
plt.show()
