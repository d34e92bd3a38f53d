"""The GMMM entries of mfntk.reproduce (Figures 1-3 of Ghorbani, Mei, Misiakiewicz, Montanari 2019) at their
quick size: every check agrees, the four files are written, and the tables hold what independent numpy
computations give (the theorems' values, the exact minimum over the network class, a least-squares fit)."""
import numpy as np
import pytest

import mfntk as mf
from mfntk.reproduce import _gmmm
from mfntk.studies._base import seed_for

# The quick runs are tiny (N d <= 1600): one thread each, so that they stay fast beside other work.
THREADS = 1


def run_quick(fn, tmp_path):
    result = fn(size="quick", out=tmp_path, threads=THREADS)
    failed = [c.describe() for c in result.checks if not c.agrees]
    assert not failed and result.agrees, "\n".join(failed)
    for ext in ("csv", "json", "png", "md"):
        assert (tmp_path / f"{result.name}.{ext}").stat().st_size > 0
    assert mf.studies.Table.from_csv(tmp_path / f"{result.name}.csv").columns == result.table.columns
    return result


def rows(table, **match):
    return [r for r in table.rows if all(r[k] == v for k, v in match.items())]


def test_entries_are_registered_in_the_papers_order():
    names = list(mf.reproduce.REPRODUCE)
    assert [n for n in names if n.startswith("gmmm-")] == ["gmmm-qf", "gmmm-mixture", "gmmm-relu"]
    for name in ("gmmm_qf", "gmmm_mixture", "gmmm_relu"):
        assert name in mf.reproduce.__all__ and callable(getattr(mf.reproduce, name))


def test_gmmm_qf(tmp_path):
    result = run_quick(mf.reproduce.gmmm_qf, tmp_path)
    table = result.table
    cfg = _gmmm.QF_SIZES["quick"]
    d = cfg["d"]
    targets = _gmmm._qf_targets(d, 0)
    for target, B in targets.items():
        lam = np.linalg.eigvalsh(B)
        T = np.trace(B) ** 2 / (d * np.sum(B * B))
        assert (T < 1e-25) == (target == "traceless") and np.sum(B * B) == pytest.approx(0.5)
        for r in rows(table, setting=target, method="exact_given_W"):
            rho = r["N"] / d
            if r["model"] == "RF":  # Theorem 1 with Gamma = I / d: 1 - rho / (1 + rho) Tr(B)^2 / (d |B|_F^2)
                assert r["theory"] == pytest.approx(1.0 - rho / (1.0 + rho) * T, abs=1e-12)
            else:  # Theorem 2 with the constant, the product form; the exact risk vanishes once W spans R^d
                assert r["theory"] == pytest.approx(max(1 - rho, 0) ** 2 + rho * max(1 - rho, 0) * T, abs=1e-12)
                if r["N"] >= d:
                    assert r["risk"] < 1e-20
        by_magnitude = np.sort(lam ** 2)[::-1]
        for r in rows(table, setting=target, model="NN"):  # Theorem 3: Eckart-Young, recomputed with numpy
            assert r["theory"] == pytest.approx(by_magnitude[r["N"]:].sum() / by_magnitude.sum(), abs=1e-12)
            assert r["risk"] >= r["eckart_young_signed"] - 1e-9
            if target == "psd":  # every neuron took a positive second-layer weight
                assert r["positive_a"] == r["N"] and r["eckart_young_signed"] == pytest.approx(r["theory"])
    assert {r["rho"] for r in rows(table, model="NN")} == {0.25, 0.5, 0.75, 1.25}


def test_signed_eckart_young_against_enumeration():
    """The best S with at most p positive and q negative eigenvalues, by enumerating the eigenvectors kept."""
    lam = np.array([3.0, -2.0, 1.0, -0.5, 0.25])
    B = np.diag(lam)
    for p in range(4):
        for q in range(4):
            best = min(np.sum(lam ** 2) - np.sum(lam[list(keep)] ** 2)
                       for keep in _subsets(len(lam))
                       if sum(lam[i] > 0 for i in keep) <= p and sum(lam[i] < 0 for i in keep) <= q)
            assert _gmmm._signed_eckart_young(B, p, q) == pytest.approx(best / np.sum(lam ** 2), abs=1e-12)
    assert _gmmm._signed_eckart_young(B, 3, 2) == pytest.approx(mf.theory.qf_nn_risk(B, 5), abs=1e-12)


def _subsets(n):
    return [[i for i in range(n) if mask >> i & 1] for mask in range(2 ** n)]


def test_mixture_network_error_against_monte_carlo():
    """The exact prediction error of c + <x, S x> on the mixture, against 4 10^5 samples of the data set."""
    d = 6
    rng = np.random.default_rng(3)
    A = 0.3 * rng.standard_normal((d, d))
    S, m = (A + A.T) / 2.0, 0.4
    delta = np.array([0.5, 0.3, 0.0, 0.0, -0.2, 0.1])
    X, y = mf.datasets.gaussian_mixture(d, n_train=400_000, delta=delta, seed=4).sample(400_000, rng=5)
    err = (y[:, 0] - m - np.einsum("ij,jk,ik->i", X, S, X)) ** 2
    se = err.std(ddof=1) / np.sqrt(err.size)
    assert abs(_gmmm._mixture_network_error(np.diag(delta), S, m) - err.mean()) < 4.0 * se


def test_gmmm_mixture(tmp_path):
    result = run_quick(mf.reproduce.gmmm_mixture, tmp_path)
    table = result.table
    d = _gmmm.MIX_SIZES["quick"]["d"]
    k = int(round(_gmmm.MIX_SPIKES * d))
    spike2 = _gmmm.MIX_FROBENIUS2 / k  # lambda^2 of each of the k spikes
    for r in rows(table, model="NT", method="exact_given_W"):  # 1 / (1 + kappa |Delta|_F^2 / 2), T = k / d
        rho = r["N"] / d
        kappa = 1.0 - max(1 - rho, 0) ** 2 - rho * max(1 - rho, 0) * k / d
        assert r["theory"] == pytest.approx(1.0 / (1.0 + kappa * _gmmm.MIX_FROBENIUS2 / 2.0), abs=1e-12)
    for r in rows(table, model="NN"):
        captured = min(r["N"], k)
        assert r["theory"] == pytest.approx(1.0 / (1.0 + captured * spike2 / 2.0), abs=1e-12)
        assert r["class_minimum"] == pytest.approx(1.0 / (1.0 + captured * spike2 / (2.0 * (1.0 + spike2))),
                                                   abs=1e-12)
    # Figure 2's ordering on the table itself: at every SGD width, the trained network below the NT model
    nt = {r["N"]: r["risk"] for r in rows(table, model="NT", method="exact_given_W")}
    assert all(r["risk"] < nt[r["N"]] for r in rows(table, model="NN"))


def test_gmmm_relu(tmp_path):
    result = run_quick(mf.reproduce.gmmm_relu, tmp_path)
    table = result.table
    cfg = _gmmm.RELU_SIZES["quick"]
    d = cfg["d"]
    for r in table.rows:
        assert r["N"] == round(r["rho"] * d) and r.get("features") == {"RF": r["N"], "NT": r["N"] * d}.get(r["model"])
    # one NT fit again, independently: least squares with numpy on the features 1{<w_j, x> > 0} x and a constant
    r = min(rows(table, model="NT"), key=lambda r: (r["N"], r["seed"]))
    B = _gmmm._qf_targets(d, 0)["psd"]
    data = mf.datasets.teacher_dataset(mf.datasets.Quadratic(d, B=B), d, n_train=cfg["batch"], seed=r["seed"])
    X, y = data.sample(cfg["n_fit"], rng=seed_for(r["seed"], 4))
    X_test, y_test = data.sample(cfg["n_test"], rng=seed_for(r["seed"], 3))
    W = mf.TwoLayer(d, r["N"], activation="relu", seed=r["seed"]).W

    def features(Z):
        return np.c_[((Z @ W.T > 0)[:, :, None] * Z[:, None, :]).reshape(len(Z), -1), np.ones(len(Z))]

    coef = np.linalg.lstsq(features(X), y[:, 0], rcond=None)[0]
    risk = np.mean((y_test[:, 0] - features(X_test) @ coef) ** 2) / (2.0 * np.sum(B * B))
    assert r["risk"] == pytest.approx(risk, rel=1e-6)
