"""
Residual dynamics and the NTK limit
===================================

On the :math:`n` training points the residual :math:`u = y - f` of the squared loss follows

.. math::

   \\frac{du}{dt} = -\\frac1n K_t\\, u ,

with :math:`K_t` the tangent kernel of the particles at time :math:`t`. When the kernel
stays frozen at :math:`K_0` this is solved in closed form, :math:`u_t = e^{-t K_0 / n} u_0`:
the NTK limit (:class:`mfntk.NTKLimit`). This example integrates the residual dynamics
alongside the particles, compares the network with the frozen-kernel dynamics in the NTK
and in the mean-field scaling, and checks that the linearized model follows the NTK limit.
"""

import matplotlib.pyplot as plt
import numpy as np

import mfntk as mf

threads = 1   # problems this small run fastest on one thread; None uses every core
d, width = 10, 1024
data = mf.datasets.teacher_dataset(mf.datasets.SingleNeuron(d, seed=1), d=d, n_train=128, n_test=512, seed=0)
X, y = data.X, data.y

# %%
# The residual dynamics, integrated with the particles
# ----------------------------------------------------
# ``residual_dynamics=True`` integrates :math:`du/dt = -\frac1n K_t u` jointly with the
# particles (with the kernel of the particles at each step), ``linearized=True`` the
# linearized model. For a smooth activation (here tanh; the teacher is a ReLU neuron) the
# residual of the residual dynamics agrees with :math:`y - f(X; \theta_t)` to the
# integrator's error: a check of the whole chain, kernel included.

runs = {}
for scaling in ("ntk", "mf"):
    net = mf.TwoLayer(d, width, activation="tanh", scaling=scaling, symmetric=True, seed=0)
    runs[scaling] = mf.simulate(net, data, t_max=5.0, dt=0.05, method="rk4", record_every=0.25,
                                residual_dynamics=True, linearized=True, threads=threads, progress=False)

for scaling, traj in runs.items():
    u_net = y - traj.net.predict(X)
    gap = np.max(np.abs(traj.rd_residual[-1] - u_net)) / np.max(np.abs(u_net))
    print(f"{scaling:>3}: residual dynamics vs y - f(X; theta_t) at t = 5: relative gap {gap:.1e}")

# %%
# The frozen-kernel (NTK) limit
# -----------------------------
# :class:`mfntk.NTKLimit` factors :math:`K_0` once and gives :math:`f_t` at any time. The
# network in the NTK scaling follows it closely: its kernel hardly moves. In the mean-field
# scaling the kernel changes at order one and the network leaves the frozen-kernel
# dynamics: its training risk follows another curve.

limit = mf.NTKLimit(runs["ntk"].net0, X, y, threads=threads)
t = runs["ntk"].t
limit_risk = [0.5 * np.mean(np.sum((y - limit.predict(X, t=s)) ** 2, axis=1)) for s in t]

with plt.rc_context(mf.plot.STYLE):
    fig, (ax_risk, ax_gap) = plt.subplots(1, 2, figsize=(8.4, 3.2), layout="constrained")
    ax_risk.plot(t, runs["mf"].train_risk, label="network, mean field")
    ax_risk.plot(t, runs["ntk"].train_risk, label="network, NTK")
    ax_risk.plot(t, limit_risk, "k--", label="frozen kernel $K_0$")
    ax_risk.set(yscale="log", xlabel="t (mean-field time)", ylabel="training risk", title="training risk")
    ax_risk.legend()
    for scaling in ("mf", "ntk"):
        traj = runs[scaling]
        ax_gap.plot(traj.t[1:], traj.linearized_distance[1:],
                    label=f"{'mean field' if scaling == 'mf' else 'NTK'} ($\\alpha$ = {traj.net.alpha:.3g})")
    ax_gap.set(yscale="log", xlabel="t (mean-field time)", ylabel=r"$|f - \bar f| \,/\, |f_0 - y|$",
               title="distance to the linearized model")
    ax_gap.legend()

# %%
# The linearized model is the NTK limit
# -------------------------------------
# The linearized model :math:`\bar f(x; \theta) = f(x; \theta_0) + \frac{\alpha}{N} \sum_j
# \langle \nabla\sigma_*(x; \theta_j^0), \theta_j - \theta_j^0\rangle`, trained by the same
# flow, follows the frozen-kernel dynamics exactly, at any width: its predictions at
# :math:`t = 5`, on the training set and on new points, match :class:`mfntk.NTKLimit` to the
# integrator's error.

traj = runs["ntk"]
for name, points in (("training set", X), ("test set", data.X_test)):
    f_bar = mf.linearized_predict(traj.net0, traj.linearized_net, points, threads=threads)
    f_lim = limit.predict(points, t=traj.t[-1])
    print(f"{name}: linearized model vs NTK limit at t = {traj.t[-1]:g}: max |difference| "
          f"{np.max(np.abs(f_bar - f_lim)):.1e} (outputs of size {np.max(np.abs(f_lim)):.2f})")
