"""
Risk curves with reference levels
=================================

Training (solid) and test (dashed) risk of the same ReLU student trained in the
mean-field and in the NTK scaling on a noisy single-neuron teacher, with three reference
levels passed to :func:`mfntk.plot.risk` through ``reference=``: the Bayes risk (the
noise, a horizontal line), the test risk of the frozen-kernel dynamics of the NTK run's
initial network over time (:class:`mfntk.NTKLimit`, a curve), and the test risk of
ridgeless regression with the infinite-width tangent kernel (a horizontal line). Every
reference is in the risk's own convention, the mean of (y - f)^2 / 2. The NTK run stays
near its frozen-kernel curve (at this width it drifts below it late in training); the
mean-field run leaves it early, and ends with a lower test risk.
"""
import matplotlib.pyplot as plt
import numpy as np

import mfntk as mf

d, noise = 10, 0.2
teacher = mf.datasets.SingleNeuron(d, "relu", seed=0)
data = mf.datasets.teacher_dataset(teacher, d, n_train=200, n_test=500, noise=noise, seed=1)
runs = {}
for scaling in ("mf", "ntk"):
    net = mf.TwoLayer(d, 256, "relu", scaling=scaling, symmetric=True, seed=2)
    runs[scaling] = mf.simulate(net, data, t_max=20.0, dt=0.1, method="euler", record_every=0.5, progress=False)


def test_risk(f):
    """The mean over the test split of |y - f|^2 / 2 (the convention of traj.test_risk)."""
    return 0.5 * np.mean(np.sum((data.y_test - f) ** 2, axis=1))


# %%
# The references: a number is drawn as a horizontal line, a pair (t, values) as a curve.
ntk = runs["ntk"]
limit = mf.NTKLimit(ntk.net0, data.X, data.y)
ntk_limit = np.array([test_risk(limit.predict(data.X_test, t)) for t in ntk.t])
kernel = mf.kernels.Analytic.from_network(ntk.net0)
ridgeless = mf.KernelRegressor(kernel=kernel).fit(data.X, data.y)
reference = {
    "Bayes risk, noise$^2$/2": noise ** 2 / 2,
    "frozen NTK of the NTK run": (ntk.t, ntk_limit),
    "ridgeless regression, infinite-width NTK": test_risk(ridgeless.predict(data.X_test)),
}
fig = mf.plot.risk(list(runs.values()), labels=["mean field", "NTK"], reference=reference,
                   title=f"ReLU student, N = 256, on a single-neuron teacher (d = {d}, n = {data.n})")
plt.figure(fig)      # hand the figure to pyplot, which shows it
plt.show()
