"""Write neural_tangents_reference.json: neural-tangents' infinite-width kernels of a two-layer net.

The network is ``stax.serial(Dense(width, W_std, b_std), Act(), Dense(1, W_std, b_std))`` with
Act = Relu or Erf, in neural-tangents' two parameterizations. The values come from the kernel
recursion of neural-tangents, written out here layer by layer in plain numpy (no mfntk), so
that the tests compare mfntk's conventions mapping against an independent computation:

- inputs: NNGP <x, x'> / d (neural-tangents divides the input Gram matrix by the number of
  channels), NTK 0;
- Dense, fan-in m, "ntk" parameterization (z = W_std / sqrt(m) W x + b_std b, W, b ~ N(0, 1)):
  NNGP -> W_std^2 NNGP + b_std^2, NTK -> NNGP_new + W_std^2 NTK;
- Dense, "standard" parameterization (W ~ N(0, W_std^2 / m), b ~ N(0, b_std^2), z = W x + b):
  NTK -> m NNGP + W_std^2 NTK + [bias], NNGP -> W_std^2 NNGP + b_std^2; the m of the output
  layer is the hidden width, so this NTK grows with it;
- activation on the centred Gaussian pair (u, v) of covariance [[c1, s], [s, c2]]:
  NNGP -> E[phi(u) phi(v)], NTK -> NTK E[phi'(u) phi'(v)], with
  relu (arc-cosine kernels of orders 1 and 0, theta = arccos(s / sqrt(c1 c2))):
  sqrt(c1 c2) (sin theta + (pi - theta) cos theta) / (2 pi) and (pi - theta) / (2 pi);
  erf (Williams' arcsin kernel): (2/pi) arcsin(2 s / sqrt((1 + 2 c1)(1 + 2 c2))) and
  (4/pi) / sqrt((1 + 2 c1)(1 + 2 c2) - 4 s^2).

``b_std = None`` is neural-tangents' "no bias"; in the "standard" parameterization it differs
from b_std = 0 (a bias initialised at zero still has a gradient).

Run from the repository root:  python tests/data/make_neural_tangents_reference.py
"""
import itertools
import json
import math
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("neural_tangents_reference.json")
WIDTH = 128          # out_dim of the hidden Dense layer (matters for "standard" only)
N_POINTS, N_POINTS2 = 4, 3


def relu_moments(c1, c2, s, same_point):
    norm = np.sqrt(np.outer(c1, c2))
    rho = np.clip(s / norm, -1.0, 1.0)
    rho[same_point] = 1.0            # identical inputs: correlation exactly 1
    theta = np.arccos(rho)
    value = norm * (np.sin(theta) + (math.pi - theta) * np.cos(theta)) / (2 * math.pi)
    slope = (math.pi - theta) / (2 * math.pi)
    return value, slope, c1 / 2, c2 / 2


def erf_moments(c1, c2, s, same_point):
    den = np.outer(1 + 2 * c1, 1 + 2 * c2)
    value = 2 / math.pi * np.arcsin(2 * s / np.sqrt(den))
    slope = 4 / math.pi / np.sqrt(den - 4 * s ** 2)
    variance = lambda c: 2 / math.pi * np.arcsin(2 * c / (1 + 2 * c))
    return value, slope, variance(c1), variance(c2)


MOMENTS = {"relu": relu_moments, "erf": erf_moments}


def dense(layer, fan_in, W_std, b_std, parameterization):
    nngp, ntk, c1, c2 = layer
    b2 = 0.0 if b_std is None else b_std ** 2
    affine = lambda k: W_std ** 2 * k + b2
    if parameterization == "ntk":
        new_nngp = affine(nngp)
        new_ntk = new_nngp + W_std ** 2 * ntk
    else:
        new_ntk = fan_in * nngp + W_std ** 2 * ntk + (0.0 if b_std is None else 1.0)
        new_nngp = affine(nngp)
    return new_nngp, new_ntk, affine(c1), affine(c2)


def activation(layer, name, same_point):
    nngp, ntk, c1, c2 = layer
    value, slope, c1, c2 = MOMENTS[name](c1, c2, nngp, same_point)
    return value, ntk * slope, c1, c2


def kernels(X, X2, name, W_std, b_std, parameterization, width):
    """(NNGP, NTK) of the output for the pairs (X, X2); X2 None means X."""
    d = X.shape[1]
    same = X2 is None
    X2 = X if same else X2
    same_point = np.eye(len(X), dtype=bool) if same else np.zeros((len(X), len(X2)), dtype=bool)
    layer = (X @ X2.T / d, np.zeros((len(X), len(X2))), np.sum(X * X, 1) / d, np.sum(X2 * X2, 1) / d)
    if same:  # the diagonal of the Gram matrix is the variance, the very same numbers
        layer = (layer[0], layer[1], np.diag(layer[0]).copy(), np.diag(layer[0]).copy())
    layer = dense(layer, d, W_std, b_std, parameterization)
    layer = activation(layer, name, same_point)
    layer = dense(layer, width, W_std, b_std, parameterization)
    return layer[0], layer[1]


def main():
    rng = np.random.default_rng(20240611)
    inputs = {}
    for d in (3, 10):
        # points of different norms, so that the variances differ from point to point
        X = rng.standard_normal((N_POINTS, d)) * rng.uniform(0.5, 2.0, (N_POINTS, 1))
        X2 = rng.standard_normal((N_POINTS2, d)) * rng.uniform(0.5, 2.0, (N_POINTS2, 1))
        inputs[str(d)] = {"X": X.tolist(), "X2": X2.tolist()}
    cases = []
    for name, W_std, b_std, d, parameterization in itertools.product(
            ("relu", "erf"), (1.0, 1.5), (None, 0.0, 0.1), (3, 10), ("ntk", "standard")):
        X, X2 = (np.array(inputs[str(d)][k]) for k in ("X", "X2"))
        nngp, ntk = kernels(X, None, name, W_std, b_std, parameterization, WIDTH)
        nngp2, ntk2 = kernels(X, X2, name, W_std, b_std, parameterization, WIDTH)
        cases.append({"activation": name, "W_std": W_std, "b_std": b_std, "d": d,
                      "parameterization": parameterization, "width": WIDTH,
                      "nngp": nngp.tolist(), "ntk": ntk.tolist(),
                      "nngp_cross": nngp2.tolist(), "ntk_cross": ntk2.tolist()})
    doc = {"description": "Infinite-width NNGP and NTK of neural-tangents' stax.serial(Dense(width, W_std, "
                          "b_std), Relu() or Erf(), Dense(1, W_std, b_std)) on (X, X) and (X, X2); b_std null "
                          "means no bias. Written by make_neural_tangents_reference.py (plain numpy).",
           "inputs": inputs, "cases": cases}
    # one line per case: short diffs when a case changes
    lines = [f'{{"description": {json.dumps(doc["description"])},', f' "inputs": {json.dumps(inputs)},', ' "cases": [']
    lines += [f"  {json.dumps(case)}," for case in cases]
    lines[-1] = lines[-1].rstrip(",")
    OUT.write_text("\n".join(lines) + "\n ]\n}\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
