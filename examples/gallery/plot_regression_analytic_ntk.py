"""
Kernel regression with the analytic NTK
=======================================

The infinite-width tangent kernel of a two-layer ReLU network has a closed form (the
arc-cosine kernels of orders 1 and 0). This example checks that the empirical kernel of a
finite network tends to it at rate :math:`N^{-1/2}`, then uses it, and its random-features
part, in kernel ridge regression on a teacher.
"""

import numpy as np

import mfntk as mf

threads = 1   # problems this small run fastest on one thread; None uses every core
d = 10
rng = np.random.default_rng(0)
X = rng.standard_normal((100, d))

# %%
# The empirical kernel tends to the analytic one
# ----------------------------------------------
# :math:`K_\mu(x, x') = \frac1N \sum_j \langle \nabla\sigma_*(x; \theta_j),
# \nabla\sigma_*(x'; \theta_j)\rangle` averages over the particles, so at initialisation it
# is a Monte Carlo estimate of the analytic kernel, with an error of order
# :math:`N^{-1/2}`. :meth:`mfntk.kernels.Analytic.from_network` gives the analytic kernel of
# the network's initialisation law (activation, ``w_std``, ``a_std``, ``b_std``).

widths = np.array([64, 256, 1024, 4096])
errors = {"ntk": [], "rf": []}
for kind in errors:
    for width in widths:
        # the mean relative error over a few independent initialisations
        err = []
        for seed in range(3):
            net = mf.TwoLayer(d, int(width), activation="relu", seed=seed)
            K_emp = mf.kernels.empirical(net, X, kind=kind, threads=threads)
            K_inf = mf.kernels.Analytic.from_network(net, kind=kind, threads=threads)(X)
            err.append(np.linalg.norm(K_emp - K_inf) / np.linalg.norm(K_inf))
        errors[kind].append(np.mean(err))

fits = {kind: mf.studies.fit_loglog(widths, errors[kind], quantity=kind, theory=-0.5) for kind in errors}
for kind, fit in fits.items():
    print(f"{kind}: |K_N - K| / |K| ~ N^{fit.slope:.2f}  (theory: -0.5)")
fig_rate = mf.plot.convergence(widths, errors, fits=fits, xlabel="width N",
                               ylabel=r"$\|K_N - K\|_F \,/\, \|K\|_F$", title="empirical vs analytic kernel")

# %%
# Kernel ridge regression on a teacher
# ------------------------------------
# A single-neuron teacher :math:`y = \mathrm{relu}(\langle w_*, x\rangle)`, learned by the
# NTK ("ntk") and by its second-layer part alone ("rf": the kernel of random features with
# a trained last layer); on this teacher their learning curves are close.
# :class:`mfntk.KernelRegressor` follows scikit-learn: 1-D targets in, 1-D predictions out,
# ``score`` is :math:`R^2`.

teacher = mf.datasets.SingleNeuron(d, seed=1)
data = mf.datasets.teacher_dataset(teacher, d=d, n_train=1024, n_test=1000, seed=2)
sizes = np.array([32, 64, 128, 256, 512, 1024])
test_risk = {"ntk": [], "rf": []}
for kind in test_risk:
    kernel = mf.kernels.Analytic(activation="relu", kind=kind, threads=threads)
    for n in sizes:
        model = mf.KernelRegressor(kernel=kernel, ridge=1e-3).fit(data.X[:n], data.y[:n, 0])
        residual = data.y_test[:, 0] - model.predict(data.X_test)
        test_risk[kind].append(0.5 * np.mean(residual ** 2))   # the squared loss 1/2 |y - f|^2

for kind, risks in test_risk.items():
    print(f"{kind}: test risk " + "  ".join(f"n={n}: {r:.2e}" for n, r in zip(sizes, risks)))
fig_curve = mf.plot.convergence(sizes, test_risk, xlabel="training samples n", ylabel="test risk",
                                title="kernel ridge regression (ridge 1e-3)")
