"""Integration of the distributional dynamics from Python: setup, chunking, records.

The C++ engine advances the particles many steps per call with the GIL released; this
module validates the arguments, draws minibatches or fresh samples, records risks and
diagnostics between chunks, shows progress, stops cleanly on Ctrl-C and on divergence.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
import warnings

import numpy as np

from . import _core, _diagnostics, kernels
from ._losses import residual, risk
from ._network import TwoLayer
from ._registry import INTEGRATORS, check_integrator, check_loss, integrator_info, loss_info
from ._validation import check_float, check_int, resolve_threads
from .datasets import as_dataset

_CHUNK_FLOPS = 2e9       # work per engine call: a Ctrl-C is answered within about one chunk
_CHUNK_BATCH_VALUES = 4e6  # at most this many input values of pre-drawn batches per chunk


class DivergenceError(FloatingPointError):
    """A run produced non-finite particles or an exploding risk."""


class Trajectory:
    """The record of a run of :func:`simulate`.

    Attributes
    ----------
    t, step : ndarray (records,)
        Times (mean-field units, SPEC 3) and step indices of the records.
    train_risk, test_risk : ndarray (records,)
        Mean loss on the training set and on the test split (or a held-out sample from the
        data's sampler); ``test_risk`` is None when the data has neither.
    net, net0 : TwoLayer
        The network at the last record and at t = 0 (copies; the input is left unchanged).
    rd_residual : ndarray (records, n, k) or None
        With ``residual_dynamics=True``: the residual of the residual dynamics, y - g for the
        squared loss (r(g) = -dl/df for the logistic loss).
    linearized_distance : ndarray or None
        With ``linearized=True``: |f(theta_t) - fbar_t| / |f(theta_0) - y| on the training set.
    linearized_net : TwoLayer or None
        The parameters of the linearized model at the last record.
    displacement, displacement_a, displacement_W, displacement_b, kernel_distance,
    alignment, objective_change, tangent_change : ndarray or None
        With ``diagnostics=True`` (see :func:`simulate`).
    config : dict
        The options of the run. ``wall_time`` (s), ``interrupted`` (bool).

    A trajectory read from disk (:func:`mfntk.load`, :func:`mfntk.resume`) also has ``path``,
    ``snapshots`` (particle snapshots, :class:`mfntk._io.Snapshots`), ``complete`` (the run
    reached t_max) and ``meta`` (package version, machine, seeds).
    """

    _SERIES = ("t", "step", "train_risk", "test_risk", "rd_residual", "linearized_distance", "displacement",
               "displacement_a", "displacement_W", "displacement_b", "kernel_distance", "alignment",
               "objective_change", "tangent_change")

    def __init__(self, series, net, net0, config, wall_time=0.0, interrupted=False, linearized_net=None):
        for name in self._SERIES:
            values = series.get(name)
            setattr(self, name, None if values is None else np.asarray(values))
        self.net, self.net0, self.config = net, net0, config
        self.wall_time, self.interrupted, self.linearized_net = wall_time, interrupted, linearized_net

    def linearized_predict(self, X, threads=None):
        """The linearized model fbar(x) = f(x; theta_0) + (alpha/N) sum_j <grad sigma_*(x; theta_j^0), thetabar_j - theta_j^0>
        at the last record (needs ``linearized=True``)."""
        if self.linearized_net is None:
            raise ValueError("linearized_predict: the run was not made with linearized=True")
        return linearized_predict(self.net0, self.linearized_net, X, threads)

    def series(self):
        """The recorded time series as a dict of arrays (absent ones left out)."""
        return {k: getattr(self, k) for k in self._SERIES if getattr(self, k) is not None}

    def __len__(self):
        return len(self.t)

    def __repr__(self):
        last = f"t={self.t[-1]:.4g}, train_risk={self.train_risk[-1]:.4g}" if len(self.t) else "empty"
        flag = ", interrupted" if self.interrupted else ""
        return f"Trajectory({len(self.t)} records, {last}{flag})"


def linearized_predict(net0, net_bar, X, threads=None):
    """fbar(X) = f(X; theta0) + (alpha/N) J(theta0) (thetabar - theta0): the tangent model at theta0
    (SPEC 4) evaluated with the parameters of ``net_bar``."""
    X = net0.check_inputs(X)
    th = resolve_threads(threads)
    tangent = net0.copy()
    tangent.set_flat(net_bar.get_flat() - net0.get_flat())
    Jt = _core.jvp(net0.activation, net0.c0, net0.a, net0.W, net0.b, X, tangent.a, tangent.W, tangent.b, th)
    return net0.predict(X, threads=th) + net0.dtype.type(net0.alpha / net0.width) * Jt


def euler_dt(net, eta):
    """The mean-field time step dt = eta alpha^2 / N of gradient descent with learning rate eta (SPEC 3)."""
    return check_float(eta, "eta", minimum=0.0, strict=True) * net.alpha ** 2 / net.width


def learning_rate(net, dt):
    """The gradient-descent learning rate eta = dt N / alpha^2 equivalent to an Euler step dt."""
    return check_float(dt, "dt", minimum=0.0, strict=True) * net.width / net.alpha ** 2


def _engine(net, *, loss="squared", weight_decay=0.0, temperature=0.0, seed=0, residual_dynamics=False,
            linearized=False, threads=1, cache_bytes=1 << 30):
    cls = _core.Dynamics64 if net.dtype == np.float64 else _core.Dynamics32
    return cls(activation=net.activation, c0=net.c0, N=net.width, d=net.d, k=net.outputs, bias=net.bias,
               alpha=net.alpha, loss=loss, weight_decay=weight_decay, temperature=temperature, seed=seed,
               residual_dynamics=residual_dynamics, linearized=linearized, threads=threads, cache_bytes=cache_bytes)


def _targets(net, y, name):
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != net.outputs:
        raise ValueError(f"{name}: expected {net.outputs} output column(s) to match the network, got shape {y.shape}")
    return np.ascontiguousarray(y, dtype=net.dtype)


def dd_field(net, X, Y, loss="squared", weight_decay=0.0, threads=None):
    """The distributional-dynamics field at the network's particles on data (X, Y) (SPEC 3).

    d theta_j / dt = (1/alpha) (1/n) sum_i r_i grad_theta sigma_*(x_i; theta_j) - lambda theta_j.

    Returns
    -------
    dA : ndarray (N, k), dW : ndarray (N, d), db : ndarray (N,) or None
    """
    X = net.check_inputs(X, note_copy=False)
    Y = _targets(net, _validated_y(Y, X.shape[0]), "Y")
    check_loss(loss)
    # one evaluation: no pre-activation cache (allocating it would cost more than it saves);
    # for repeated evaluations use Simulation.field, whose buffers persist
    eng = _engine(net, loss=loss, weight_decay=check_float(weight_decay, "weight_decay", minimum=0.0),
                  threads=resolve_threads(threads), cache_bytes=0)
    eng.set_data(X, Y)
    return _particle_views(net, eng.field(net.get_flat()))


def _particle_views(net, flat):
    """(a, W, b) views of the particle part [a | W | b] of a flat vector."""
    N, k, d = net.width, net.outputs, net.d
    a = flat[: N * k].reshape(N, k)
    W = flat[N * k: N * (k + d)].reshape(N, d)
    b = flat[N * (k + d): N * (k + d + 1)] if net.bias else None
    return a, W, b


def _validated_y(Y, n):
    from ._validation import as_matrix
    Y = as_matrix(Y, "Y", allow_vector=True)
    if Y.shape[0] != n:
        raise ValueError(f"Y: has {Y.shape[0]} rows but X has {n}")
    return Y


class _InterruptFlag:
    """Turns the first Ctrl-C into a flag read between chunks (a second one interrupts at once)."""

    def __init__(self):
        self.raised = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Simulation:
    """A run of the distributional dynamics, set up once and advanced with :meth:`run`.

    :func:`simulate` is the one-call form; its docstring describes every argument.
    """

    def __init__(self, net, data, t_max, dt, method="rk4", loss="squared", batch=None, online=None,
                 weight_decay=0.0, temperature=0.0, record_every=None, threads=None, residual_dynamics=False,
                 linearized=False, diagnostics=False, probe_size=256, test_size=2048, seed=0,
                 divergence_factor=1e6, cache_mb=1024):
        if not isinstance(net, TwoLayer):
            raise TypeError(f"net: expected an mfntk.TwoLayer, got {type(net).__name__}")
        self.data = as_dataset(data)
        if self.data.d != net.d:
            raise ValueError(f"data: inputs have d = {self.data.d} but the network has d = {net.d}")
        self.t_max = check_float(t_max, "t_max", minimum=0.0)
        self.dt = check_float(dt, "dt", minimum=0.0, strict=True)
        self.method = check_integrator(method)
        self.loss = check_loss(loss)
        if loss_info(self.loss).single_output and net.outputs != 1:
            raise ValueError(f"loss: {self.loss!r} needs a network with outputs=1, got outputs={net.outputs}")
        self.weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
        self.temperature = check_float(temperature, "temperature", minimum=0.0)
        if self.temperature > 0 and not integrator_info(self.method).supports_temperature:
            stochastic = ", ".join(repr(m) for m in INTEGRATORS if integrator_info(m).supports_temperature)
            raise ValueError(f"method: temperature > 0 is integrated by Euler-Maruyama; use method={stochastic}, "
                             f"not {self.method!r}")
        self.batch = None if batch is None else check_int(batch, "batch")
        has_sampler = self.data.has_sampler
        self.online = (self.batch is not None and has_sampler) if online is None else bool(online)
        if self.online and self.batch is None:
            raise ValueError("batch: online=True needs a batch size (fresh samples per step)")
        if self.online and not has_sampler:
            raise ValueError("online: the data has no sampler to draw fresh samples from")
        if self.batch is not None and not self.online and self.batch > self.data.n:
            raise ValueError(f"batch: {self.batch} is larger than the training set ({self.data.n} points)")
        self.residual_dynamics = bool(residual_dynamics)
        self.linearized = bool(linearized)
        for flag in ("residual_dynamics", "linearized"):
            if getattr(self, flag) and (self.batch is not None or self.temperature > 0):
                raise ValueError(f"{flag}: needs full-batch (batch=None), noiseless (temperature=0) dynamics")
        self.diagnostics = bool(diagnostics)
        self.probe_size = check_int(probe_size, "probe_size")
        self.test_size = check_int(test_size, "test_size")
        self.seed = check_int(seed, "seed", minimum=0)
        self.divergence_factor = check_float(divergence_factor, "divergence_factor", minimum=1.0)
        self.threads = resolve_threads(threads)
        self.cache_mb = check_float(cache_mb, "cache_mb", minimum=0.0)

        self.steps_total = int(math.ceil(self.t_max / self.dt - 1e-9)) if self.t_max > 0 else 0
        if record_every is None:
            self.record_steps = max(1, self.steps_total // 100)
        else:
            self.record_steps = max(1, int(round(check_float(record_every, "record_every", minimum=0.0, strict=True)
                                                  / self.dt)))

        self.net0 = net.copy()
        self.net = net.copy()
        self.X = net.check_inputs(self.data.X, "data.X", note_copy=False)  # once per run: no note
        self.Y = _targets(net, self.data.y, "data.y")
        self.batch_rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1]))
        self.X_test, self.Y_test = self._test_set(net)
        m = min(self.probe_size, self.data.n)
        self.X_probe, self.Y_probe = self.X[:m], self.Y[:m]

        self.engine = _engine(net, loss=self.loss, weight_decay=self.weight_decay, temperature=self.temperature,
                              seed=self.seed, residual_dynamics=self.residual_dynamics, linearized=self.linearized,
                              threads=self.threads, cache_bytes=int(self.cache_mb * 2 ** 20))
        self.engine.set_data(self.X, self.Y)
        self.layout = self.engine.layout()
        f0 = self.net0.predict(self.X, threads=self.threads)
        self.f0 = f0
        if self.linearized:
            self.engine.set_reference(self.net0.get_flat(), f0)
        self.state = np.zeros(self.layout["size"], dtype=net.dtype)
        P = self.layout["particles"]
        self.state[:P] = net.get_flat()
        if self.residual_dynamics:
            self.state[self.layout["residual"]:self.layout["residual"] + f0.size] = f0.ravel()
        if self.linearized:
            self.state[self.layout["linearized"]:] = self.net0.get_flat()
        self.step = 0
        self.series = {name: [] for name in Trajectory._SERIES}
        self._K0 = None
        self._prev = None  # (theta, train risk) at the previous record, for the per-interval changes
        self.wall_time = 0.0

    def _test_set(self, net):
        if self.data.has_test:
            return net.check_inputs(self.data.X_test, "data.X_test", note_copy=False), _targets(net, self.data.y_test, "data.y_test")
        if self.data.has_sampler:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 2]))
            Xt, yt = self.data.sample(self.test_size, rng)
            return net.check_inputs(Xt, "sampler X", note_copy=False), _targets(net, yt, "sampler y")
        return None, None

    # ---- configuration -------------------------------------------------------------------
    def config(self):
        return {
            "net": self.net0.config(), "t_max": self.t_max, "dt": self.dt, "method": self.method,
            "loss": self.loss, "batch": self.batch, "online": self.online, "weight_decay": self.weight_decay,
            "temperature": self.temperature, "record_every": self.record_steps * self.dt,
            "threads": self.threads, "residual_dynamics": self.residual_dynamics, "linearized": self.linearized,
            "diagnostics": self.diagnostics, "probe_size": self.probe_size, "test_size": self.test_size,
            "seed": self.seed, "divergence_factor": self.divergence_factor, "cache_mb": self.cache_mb,
            "steps": self.steps_total,
            "learning_rate": learning_rate(self.net0, self.dt), "data": self.data.name,
        }

    # ---- records ---------------------------------------------------------------------------
    def _current_net(self):
        self.net.set_flat(self.state[:self.layout["particles"]])
        return self.net

    def _record(self):
        net = self._current_net()
        t = self.step * self.dt
        F = net.predict(self.X, threads=self.threads)
        train = risk(self.loss, F, self.Y)
        s = self.series
        s["t"].append(t)
        s["step"].append(self.step)
        s["train_risk"].append(train)
        if self.X_test is not None:
            s["test_risk"].append(risk(self.loss, net.predict(self.X_test, threads=self.threads), self.Y_test))
        if self.residual_dynamics:
            off = self.layout["residual"]
            g = self.state[off:off + F.size].reshape(F.shape).astype(np.float64)
            s["rd_residual"].append(residual(self.loss, g, self.Y.astype(np.float64)))
        if self.linearized:
            fbar = self._linearized_outputs()
            scale = np.linalg.norm(self.f0.astype(np.float64) - self.Y)
            s["linearized_distance"].append(float(np.linalg.norm(F.astype(np.float64) - fbar) / scale))
        if self.diagnostics:
            self._record_diagnostics(net, train)
        first = s["train_risk"][0]
        if not math.isfinite(train) or train > self.divergence_factor * max(first, 1.0):
            raise DivergenceError(
                f"simulate: the training risk exploded to {train:.4g} (from {first:.4g}) at step {self.step} "
                f"(t = {t:.6g}); the dynamics diverged: reduce dt (now {self.dt:g})")

    def _linearized_outputs(self):
        off, P = self.layout["linearized"], self.layout["particles"]
        bar = self.net0.copy()
        bar.set_flat(self.state[off:off + P])
        return linearized_predict(self.net0, bar, self.X, self.threads).astype(np.float64)

    def _record_diagnostics(self, net, train):
        s, net0 = self.series, self.net0
        theta = (net.a.copy(), net.W.copy(), None if net.b is None else net.b.copy())
        theta0 = (net0.a, net0.W, net0.b)
        disp = _diagnostics.displacement(theta0, theta)
        s["displacement"].append(disp["all"])
        s["displacement_a"].append(disp["a"])
        s["displacement_W"].append(disp["W"])
        s["displacement_b"].append(disp.get("b", float("nan")))
        K = kernels.empirical(net, self.X_probe, threads=self.threads).astype(np.float64)
        if self._K0 is None:
            self._K0 = K
        s["kernel_distance"].append(_diagnostics.kernel_distance(K, self._K0))
        s["alignment"].append(_diagnostics.alignment(K, self.Y_probe))
        if self._prev is None:
            s["objective_change"].append(0.0)
            s["tangent_change"].append(0.0)
        else:
            prev_theta, prev_risk = self._prev
            s["objective_change"].append((prev_risk - train) / prev_risk if prev_risk > 0 else 0.0)
            s["tangent_change"].append(_diagnostics.tangent_change(net, prev_theta, theta, self.X_probe))
        self._prev = (theta, train)

    # ---- stepping --------------------------------------------------------------------------
    def _chunk_steps(self):
        n = self.batch if self.batch is not None else self.data.n
        passes = 2 + (3 if self.residual_dynamics else 0) + (2 if self.linearized else 0)
        stages = integrator_info(self.method).stages
        flops = stages * passes * 2.0 * n * self.net0.width * (self.net0.d + self.net0.outputs)
        steps = max(1, int(_CHUNK_FLOPS / flops))
        if self.batch is not None:
            steps = max(1, min(steps, int(_CHUNK_BATCH_VALUES / (self.batch * (self.net0.d + 1)))))
        return steps

    def _batches(self, steps):
        if self.batch is None:
            return None, None
        if self.online:
            Xs, Ys = [], []
            for _ in range(steps):
                Xb, yb = self.data.sample(self.batch, self.batch_rng)
                Xs.append(Xb)
                Ys.append(np.asarray(yb).reshape(self.batch, -1))
            Xb = np.ascontiguousarray(np.stack(Xs), dtype=self.net0.dtype)
            Yb = np.ascontiguousarray(np.stack(Ys), dtype=self.net0.dtype)
            if not (np.isfinite(Xb).all() and np.isfinite(Yb).all()):
                raise ValueError("data: the sampler returned non-finite values")
            return Xb, Yb
        idx = np.stack([self.batch_rng.choice(self.data.n, self.batch, replace=False) for _ in range(steps)])
        return np.ascontiguousarray(self.X[idx]), np.ascontiguousarray(self.Y[idx])

    def field(self):
        """The field (dA, dW, db) of the particles at the current state on the full training set.

        The same as :func:`dd_field`, with the simulation's persistent buffers (and its
        pre-activation cache): the way to evaluate the field repeatedly.
        """
        return _particle_views(self.net0, self.engine.field(self.state))

    def advance(self, steps=1):
        """Advance ``steps`` integrator steps without recording (a later :meth:`run` records on schedule).

        Raises DivergenceError when the state becomes non-finite.
        """
        steps = check_int(steps, "steps")
        Xb, Yb = self._batches(steps)
        done, finite = self.engine.advance(self.state, steps, self.dt, self.method, self.step, Xb, Yb)
        self.step += done
        if not finite:
            raise DivergenceError(
                f"simulate: the particles became non-finite (NaN or inf) at step {self.step} "
                f"(t = {self.step * self.dt:.6g}); the dynamics diverged: reduce dt (now {self.dt:g})")
        return done

    def run(self, progress=None, callback=None):
        """Integrate up to t_max and return the :class:`Trajectory`.

        ``progress``: True, False, or None (a bar only on a terminal). ``callback(sim)`` is
        called after every record (checkpointing uses it). Ctrl-C stops at the last completed
        step and returns the trajectory so far, marked ``interrupted``.
        """
        from tqdm.auto import tqdm

        start = time.perf_counter()
        interrupted = False
        if not self.series["t"]:
            self._record()
            if callback:
                callback(self)
        chunk = self._chunk_steps()
        bar = tqdm(total=self.steps_total, initial=self.step, disable=(None if progress is None else not progress),
                   unit="step", desc="simulate", leave=False, file=sys.stderr)
        try:
            with _InterruptFlag() as flag:
                while self.step < self.steps_total:
                    to_record = self.record_steps - self.step % self.record_steps
                    steps = min(chunk, to_record, self.steps_total - self.step)
                    bar.update(self.advance(steps))
                    if self.step % self.record_steps == 0 or self.step == self.steps_total:
                        self._record()
                        if callback:
                            callback(self)
                    if flag.raised:
                        interrupted = True
                        break
        finally:
            bar.close()
            self.wall_time += time.perf_counter() - start
        if interrupted:
            if self.series["step"][-1] != self.step:
                self._record()
                if callback:
                    callback(self)
            print(f"simulate: interrupted at step {self.step} (t = {self.step * self.dt:.6g}); "
                  "returning the trajectory so far", file=sys.stderr)
        return self.trajectory(interrupted)

    # ---- checkpoint / resume hooks (used by mfntk._io) -------------------------------------
    def state_dict(self):
        """The part of the run that changes while it runs, for a checkpoint.

        :meth:`load_state_dict` on a Simulation built with the same arguments (same initial
        network and data) continues the run bit for bit: it restores the state vector
        (particles, residual-dynamics block, linearized parameters), the step, the records
        so far, the generator of the minibatch / online draws, and the diagnostics' memory
        (K_0 and the previous record). The Langevin noise is keyed by (seed, step, index)
        and needs nothing more.

        Returns
        -------
        dict
            ``state`` (ndarray), ``step``, ``record_steps`` (ints), ``series`` (dict of
            lists), ``rng`` (the JSON-able ``bit_generator.state``), ``K0`` (ndarray or None),
            ``prev`` (None or a dict with ``a``, ``W``, ``b``, ``risk``), ``wall_time``.
        """
        prev = None
        if self._prev is not None:
            (a, W, b), prev_risk = self._prev
            prev = {"a": a.copy(), "W": W.copy(), "b": None if b is None else b.copy(), "risk": float(prev_risk)}
        return {
            "state": self.state.copy(), "step": int(self.step), "record_steps": int(self.record_steps),
            "series": {k: [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in v]
                       for k, v in self.series.items() if v},
            "rng": self.batch_rng.bit_generator.state, "K0": None if self._K0 is None else self._K0.copy(),
            "prev": prev, "wall_time": float(self.wall_time),
        }

    def load_state_dict(self, sd):
        """Restore what :meth:`state_dict` returned (see there); ``t_max`` is left as set."""
        state = np.asarray(sd["state"])
        if state.shape != self.state.shape:
            raise ValueError(f"state: expected shape {self.state.shape}, got {state.shape} "
                             "(the checkpoint belongs to a different run)")
        self.state[...] = state
        self.step = int(sd["step"])
        self.record_steps = int(sd["record_steps"])
        self.series = {name: list(sd["series"].get(name, [])) for name in Trajectory._SERIES}
        self.batch_rng.bit_generator.state = sd["rng"]
        self._K0 = None if sd.get("K0") is None else np.asarray(sd["K0"], np.float64)
        prev = sd.get("prev")
        self._prev = None if prev is None else ((prev["a"], prev["W"], prev["b"]), float(prev["risk"]))
        self.wall_time = float(sd.get("wall_time", 0.0))
        self._current_net()

    def trajectory(self, interrupted=False):
        net = self._current_net().copy()
        lin = None
        if self.linearized:
            lin = self.net0.copy()
            off = self.layout["linearized"]
            lin.set_flat(self.state[off:off + self.layout["particles"]])
        series = {k: v for k, v in self.series.items() if v}
        return Trajectory(series, net, self.net0.copy(), self.config(), self.wall_time, interrupted, lin)


def simulate(net, data, t_max, dt, method="rk4", loss="squared", batch=None, weight_decay=0.0, temperature=0.0,
             record_every=None, threads=None, progress=None, residual_dynamics=False, linearized=False,
             diagnostics=False, *, online=None, probe_size=256, test_size=2048, seed=0, divergence_factor=1e6,
             cache_mb=1024, out=None, checkpoint_every=None):
    """Train a two-layer network by the distributional dynamics (SPEC 3) and record the run.

    d theta_j / dt = (1/alpha) E_x[r(x) grad_theta sigma_*(x; theta_j)] - lambda theta_j
                     (+ sqrt(2 tau) dB_j when tau > 0).

    Time is mean-field time: gradient descent with learning rate eta is the Euler scheme
    with dt = eta alpha^2 / N (see :func:`euler_dt` and :func:`learning_rate`).

    Parameters
    ----------
    net : TwoLayer
        The initial network; it is left unchanged (the trained one is ``traj.net``).
    data : Dataset or (X, y)
        Training data (optional test split and sampler, see :mod:`mfntk.datasets`).
    t_max, dt : float
        Final time and step; the run takes ceil(t_max / dt) steps.
    method : "euler", "heun" or "rk4"
        Fixed-step integrator (orders 1, 2, 4). With ``temperature > 0`` only "euler"
        (Euler-Maruyama).
    loss : "squared" or "logistic"
        l = 1/2 |y - f|^2, or log(1 + exp(-y f)) for labels +-1 (outputs = 1).
    batch : int or None
        None: full batch. An int B: B points per step, fresh samples from the data's sampler
        when it has one (online SGD on the population risk), otherwise a random subset of the
        training set drawn without replacement at each step.
    weight_decay : float
        lambda >= 0.
    temperature : float
        tau >= 0 (Langevin dynamics / noisy SGD); the noise is keyed by (seed, step,
        parameter index), so it does not depend on threads or chunking.
    record_every : float or None
        Time between records (rounded to a whole number of steps); None: about 100 records.
    threads : int or None
        OpenMP threads (None: all available). Results are bit-identical for any count.
    progress : bool or None
        Progress bar on stderr (None: only on a terminal).
    residual_dynamics : bool
        Integrate the residual dynamics du/dt = -(1/n) K_t u (SPEC 4) on the training set
        jointly with the particles; recorded as ``traj.rd_residual``.
    linearized : bool
        Train the linearized (tangent) model alongside and record the Chizat-Oyallon-Bach
        distance |f(theta_t) - fbar_t| / |f(theta_0) - y| as ``traj.linearized_distance``.
    diagnostics : bool
        Record the relative displacement (all parameters and per layer), the relative kernel
        distance |K_t - K_0|_F / |K_0|_F and the kernel-target alignment on a probe set of
        ``probe_size`` training points, and per record interval the relative change of the
        objective Delta(F) and of the tangent features Delta(D phi) (lecture notes 001).
    online : bool or None
        Force fresh samples (True) or minibatches of the training set (False); None: fresh
        samples when ``batch`` is set and the data has a sampler.
    test_size : int
        Size of the held-out sample drawn from the sampler when the data has no test split.
    seed : int
        Seed of minibatch / online sampling and of the Langevin noise.
    divergence_factor : float
        A training risk above this factor times max(initial risk, 1) stops the run.
    cache_mb : float
        Memory budget (MiB) for keeping the pre-activations X W^T of a step's points between
        the forward and the gradient pass (n N values): within it a step costs 4 n N d flops,
        beyond it they are recomputed tile by tile (6 n N d) and memory stays O((n + N) d).
        Results are bit-identical either way.
    out : str or path, optional
        Write the trajectory (HDF5) there, with checkpoints every ``checkpoint_every``
        time units; :func:`mfntk.resume` continues such a run.

    Returns
    -------
    Trajectory

    Raises
    ------
    ValueError, TypeError
        For invalid arguments (the message names the argument).
    DivergenceError
        When the particles become non-finite or the risk explodes (says at which step and time).

    References
    ----------
    Mei, Montanari, Nguyen (2018), A mean field view of the landscape of two-layer neural
    networks, PNAS, Eq. (DD). Chizat, Oyallon, Bach (2019), On lazy training in
    differentiable programming, NeurIPS.
    """
    sim = Simulation(net, data, t_max, dt, method=method, loss=loss, batch=batch, online=online,
                     weight_decay=weight_decay, temperature=temperature, record_every=record_every, threads=threads,
                     residual_dynamics=residual_dynamics, linearized=linearized, diagnostics=diagnostics,
                     probe_size=probe_size, test_size=test_size, seed=seed, divergence_factor=divergence_factor,
                     cache_mb=cache_mb)
    if out is None:
        if checkpoint_every is not None:
            raise ValueError("checkpoint_every: needs an output file (out=...)")
        return sim.run(progress=progress)
    from . import _io
    return _io.run_with_output(sim, out, checkpoint_every=checkpoint_every, progress=progress)
