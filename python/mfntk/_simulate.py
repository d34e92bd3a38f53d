"""Integration of the distributional dynamics from Python: setup, chunking, recording, resume.

The engine (from the network's backend) advances the particles many steps per call with the
GIL released; a :class:`Simulation` validates the run's options (:class:`RunOptions`, each
declared once), draws minibatches or fresh samples, hands each record to its
:class:`~mfntk._recorder.Recorder`, shows progress, stops cleanly on Ctrl-C and on divergence,
and writes its file through :mod:`mfntk._io` (which only reads and writes).
"""
from __future__ import annotations

import copy as _copy
import inspect
import math
import signal
import sys
import threading
import time

import numpy as np

from . import _io
from ._models import model_kind
from ._options import OutputOptions, RunOptions
from ._recorder import DivergenceError, Recorder
from ._registry import check_loss, integrator_info, loss_info
from ._trajectory import Trajectory, linearized_predict
from ._validation import as_matrix, check_float, check_int, check_simulation_memory, resolve_threads
from .datasets import as_dataset

__all__ = ["Simulation", "simulate", "resume", "dd_field", "euler_dt", "learning_rate", "DivergenceError",
           "Trajectory", "linearized_predict"]

_CHUNK_FLOPS = 2e9       # work per engine call: a Ctrl-C is answered within about one chunk
_CHUNK_BATCH_VALUES = 4e6  # at most this many input values of pre-drawn batches per chunk
_LOG_SECONDS = 30.0        # interval of the progress lines written off a terminal


def euler_dt(net, eta):
    """The time step dt of :func:`simulate` whose Euler scheme is gradient descent with learning
    rate eta: the mean-field step dt = eta alpha^2 / N for a TwoLayer (SPEC 3), eta itself for a
    DiagonalLinear (gradient-flow time)."""
    model_kind(net)
    return net.euler_dt(check_float(eta, "eta", minimum=0.0, strict=True))


def learning_rate(net, dt):
    """The gradient-descent learning rate eta equivalent to an Euler step dt: dt N / alpha^2 for
    a TwoLayer, dt for a DiagonalLinear."""
    model_kind(net)
    return net.learning_rate(check_float(dt, "dt", minimum=0.0, strict=True))


def _targets(net, y, name):
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != net.outputs:
        raise ValueError(f"{name}: expected {net.outputs} output column(s) to match the network, got shape {y.shape}")
    return np.ascontiguousarray(y, dtype=net.dtype)


def _check_labels(Y, loss, name):
    """For a loss whose labels are +-1 (``loss_info(loss).pm1_labels``): ValueError naming the
    first target that is not -1 or +1 (the logistic loss log(1 + exp(-y f)) is a classification
    loss only for such labels)."""
    if not loss_info(loss).pm1_labels:
        return
    bad = (Y != 1) & (Y != -1)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{name}: the {loss} loss needs labels y in {{-1, +1}}; got {float(Y[bad].ravel()[0]):g} "
                         f"in row {i} ({int(bad.sum())} of {Y.size} targets are not +-1). Map {{0, 1}} labels "
                         f"with 2 y - 1.")


#: Largest number of steps of a run: beyond 2**53, step * dt and the step counter are no longer
#: exact in double precision (and no run would finish).
MAX_STEPS = 2 ** 53


def dd_field(net, X, Y, loss="squared", weight_decay=0.0, threads=None):
    """The field of the dynamics at the model's parameters on data (X, Y), computed by the core.

    For a TwoLayer the distributional-dynamics field (SPEC 3),
    d theta_j / dt = (1/alpha) (1/n) sum_i r_i grad_theta sigma_*(x_i; theta_j) - lambda theta_j;
    for a DiagonalLinear the gradient flow of the empirical risk,
    d w_+- / dt = +-D w_+-^{D-1} X^T r / n - lambda w_+- (r = -dl/df at f = X beta).

    Parameters
    ----------
    net : TwoLayer or DiagonalLinear
    X : array (n, d)
    Y : array (n, k) or (n,)
        Targets; labels in {-1, +1} for the logistic loss.
    loss : str
        A loss of the core (``mfntk._registry.LOSSES``).
    weight_decay : float
        lambda >= 0.
    threads : int or None

    Returns
    -------
    tuple of ndarray
        The field split by the model's layout: (dA (N, k), dW (N, d), db (N,) or None) for a
        TwoLayer, (dw_plus (d,), dw_minus (d,)) for a DiagonalLinear.

    Raises
    ------
    ValueError, TypeError
        For invalid arguments (the message names the argument).
    """
    model_kind(net)
    X = net.check_inputs(X, note_copy=False)
    Y = as_matrix(Y, "Y", allow_vector=True)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"Y: has {Y.shape[0]} rows but X has {X.shape[0]}")
    Y = _targets(net, Y, "Y")
    check_loss(loss)
    _check_labels(Y, loss, "Y")
    # one evaluation: no pre-activation cache (allocating it would cost more than it saves);
    # for repeated evaluations use Simulation.field, whose buffers persist
    eng = net.dynamics(loss=loss, weight_decay=check_float(weight_decay, "weight_decay", minimum=0.0),
                       temperature=0.0, seed=0, residual_dynamics=False, linearized=False,
                       threads=resolve_threads(threads), cache_bytes=0)
    eng.set_data(X, Y)
    return net.layout.split(eng.field(net.get_flat()))


class _ProgressLog:
    """Progress of a run off a terminal (a script's log, a batch job): a line at the start,
    then at most one every ``every`` seconds, and one at the end."""

    def __init__(self, sim, every, stream=None):
        self.sim, self.every, self.stream = sim, every, stream or sys.stderr
        self.start = self.last = time.perf_counter()
        self.step0 = sim.step
        self._line("started")

    def _line(self, what):
        sim = self.sim
        risk = sim.series["train_risk"][-1] if sim.series["train_risk"] else float("nan")
        total = max(sim.steps_total, 1)
        elapsed = time.perf_counter() - self.start
        done = sim.step - self.step0
        left = ""
        if done and sim.step < sim.steps_total:
            left = f", about {elapsed / done * (sim.steps_total - sim.step):.0f} s left"
        print(f"simulate: {what}: step {sim.step}/{sim.steps_total} ({100.0 * sim.step / total:.0f}%), "
              f"t = {sim.step * sim.dt:.6g}, train_risk = {risk:.4g}, {elapsed:.1f} s{left}",
              file=self.stream, flush=True)

    def update(self, _steps):
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self._line("running")

    def close(self):
        self._line("finished" if self.sim.step >= self.sim.steps_total else "stopped")


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


class _Batches:
    """The points of each step: None (full batch), minibatches of the training set drawn
    without replacement, or fresh samples from the data's sampler (online), from one
    generator seeded by (seed, 1) whose state is part of a checkpoint. For a centred model
    also the offsets f(x; theta_0) of the points (``offset``: those of the training set;
    ``net0``: the network that computes them for fresh samples)."""

    def __init__(self, data, X, Y, batch, online, seed, dtype, loss, offset=None, net0=None, threads=1):
        self.data, self.X, self.Y, self.batch, self.online, self.dtype = data, X, Y, batch, online, dtype
        self.loss, self.offset, self.net0, self.threads = loss, offset, net0, threads
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))

    def draw(self, steps):
        """(X_batches, Y_batches, offset_batches) of shape (steps, batch, .) for the next ``steps``
        steps (offsets None for an uncentred model), or (None, None, None) for full batch."""
        if self.batch is None:
            return None, None, None
        if self.online:
            Xs, Ys = [], []
            for _ in range(steps):
                Xb, yb = self.data.sample(self.batch, self.rng)
                Xs.append(Xb)
                Ys.append(np.asarray(yb).reshape(self.batch, -1))
            Xb = np.ascontiguousarray(np.stack(Xs), dtype=self.dtype)
            Yb = np.ascontiguousarray(np.stack(Ys), dtype=self.dtype)
            if not (np.isfinite(Xb).all() and np.isfinite(Yb).all()):
                raise ValueError("data: the sampler returned non-finite values")
            _check_labels(Yb, self.loss, "sampler y")
            Ob = None
            if self.offset is not None:
                flat = self.net0.predict(Xb.reshape(-1, Xb.shape[-1]), threads=self.threads)
                Ob = np.ascontiguousarray(flat.reshape(steps, self.batch, -1))
            return Xb, Yb, Ob
        idx = np.stack([self.rng.choice(self.data.n, self.batch, replace=False) for _ in range(steps)])
        Ob = None if self.offset is None else np.ascontiguousarray(self.offset[idx])
        return np.ascontiguousarray(self.X[idx]), np.ascontiguousarray(self.Y[idx]), Ob


class Simulation:
    """A run of the distributional dynamics, set up once and advanced with :meth:`run`.

    ``Simulation(net, data, t_max, dt, **options)`` takes the options of :func:`simulate`
    (:class:`~mfntk._options.RunOptions`); :func:`simulate` is the one-call form. ``net`` is
    any model of :data:`mfntk._models.MODELS` (a TwoLayer or a DiagonalLinear): the
    simulation reaches it only through the model protocol (``dynamics``, ``set_reference``,
    ``learning_rate``, ``step_flops``, ``engine_memory`` and the methods the recorder calls).
    """

    def __init__(self, net, data, t_max, dt, *, comm=None, **options):
        model_kind(net)
        opts = RunOptions.build("Simulation", t_max=t_max, dt=dt, **options)
        if comm is not None:
            if not hasattr(net, "shard_over"):
                raise ValueError(f"comm: {net.description} cannot be sharded over MPI ranks")
            net = net.shard_over(comm)
        self.data = as_dataset(data)
        if self.data.d != net.d:
            raise ValueError(f"data: inputs have d = {self.data.d} but the network has d = {net.d}")
        if loss_info(opts.loss).single_output and net.outputs != 1:
            raise ValueError(f"loss: {opts.loss!r} needs a network with outputs=1, got outputs={net.outputs}")
        has_sampler = self.data.has_sampler
        online = (opts.batch is not None and has_sampler) if opts.online is None else opts.online
        if online and not has_sampler:
            raise ValueError("online: the data has no sampler to draw fresh samples from")
        if opts.batch is not None and not online and opts.batch > self.data.n:
            raise ValueError(f"batch: {opts.batch} is larger than the training set ({self.data.n} points)")
        net.check_particles("net")
        self.threads = resolve_threads(opts.threads)
        ratio = opts.t_max / opts.dt
        if not ratio <= MAX_STEPS:
            raise ValueError(f"t_max, dt: t_max / dt = {ratio:.3g} steps (t_max={opts.t_max:g}, dt={opts.dt:g}) is too "
                             f"many; at most 2**53 = {MAX_STEPS:.3g} steps (beyond, step counts and times are not "
                             f"exact in double precision): raise dt or lower t_max")
        self.steps_total = int(math.ceil(ratio - 1e-9)) if opts.t_max > 0 else 0
        if opts.record_every is None:
            self.record_steps = max(1, self.steps_total // 100)
        else:
            self.record_steps = max(1, int(round(opts.record_every / opts.dt)))
        self.options = opts.replace(online=online)
        check_simulation_memory(net, self.data, self.options, integrator_info(self.options.method).stages)
        for name, value in self.options.to_dict().items():
            if name != "threads":
                setattr(self, name, value)

        self.net0 = net.copy()
        self.net = _copy.copy(self.net0)   # its parameters become views of the state (_current_net)
        self.X = net.check_inputs(self.data.X, "data.X", note_copy=False)  # once per run: no note
        self.Y = _targets(net, self.data.y, "data.y")
        backend = getattr(net, "backend", None)
        if backend is not None:
            options = {k: v for k, v in self.options.to_dict().items() if k != "threads"}   # threads change nothing
            backend.check_same("data", {"X": self.X, "Y": self.Y, "options": options})
        _check_labels(self.Y, opts.loss, "data.y")
        self.X_test, self.Y_test = self._test_set(net)
        m = min(self.probe_size, self.data.n)
        f0 = self.net0.predict(self.X, threads=self.threads)
        # the centred model F = f(theta) - f(theta_0): its offsets on the training and test points
        offset = f0 if self.centered else None
        offset_test = None
        if self.centered and self.X_test is not None:
            offset_test = self.net0.predict(self.X_test, threads=self.threads)
        self.batches = _Batches(self.data, self.X, self.Y, self.batch, self.online, self.seed, net.dtype, self.loss,
                                offset=offset, net0=self.net0, threads=self.threads)

        self.engine = net.dynamics(
            loss=self.loss, weight_decay=self.weight_decay, temperature=self.temperature, seed=self.seed,
            residual_dynamics=self.residual_dynamics, linearized=self.linearized, threads=self.threads,
            cache_bytes=int(self.cache_mb * 2 ** 20))
        self.engine.set_data(self.X, self.Y)
        if offset is not None:
            self.engine.set_offset(offset)
            f0 = np.zeros_like(f0)   # the model at theta_0
        self.layout = self.engine.layout()
        if self.linearized:
            self.net0.set_reference(self.engine, self.net0.get_flat(), f0)
        self.state = np.zeros(self.layout["size"], dtype=net.dtype)
        P = self.layout["particles"]
        net.get_flat(out=self.state[:P])
        if self.residual_dynamics:
            self.state[self.layout["residual"]:self.layout["residual"] + f0.size] = f0.ravel()
        if self.linearized:
            self.net0.get_flat(out=self.state[self.layout["linearized"]:])
        self.step = 0
        self.recorder = Recorder(self.options, self.net0, dict(
            X=self.X, Y=self.Y, X_test=self.X_test, Y_test=self.Y_test, X_probe=self.X[:m], Y_probe=self.Y[:m],
            f0=f0, offset=offset, offset_test=offset_test, classification=self.data.task == "classification"),
            self.threads)
        self.wall_time = 0.0

    def _test_set(self, net):
        if self.data.has_test:
            Xt = net.check_inputs(self.data.X_test, "data.X_test", note_copy=False)
            Yt = _targets(net, self.data.y_test, "data.y_test")
            _check_labels(Yt, self.loss, "data.y_test")
            return Xt, Yt
        if self.data.has_sampler:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 2]))
            Xt, yt = self.data.sample(self.test_size, rng)
            Xt = net.check_inputs(Xt, "sampler X", note_copy=False)
            Yt = _targets(net, yt, "sampler y")
            _check_labels(Yt, self.loss, "sampler y")
            return Xt, Yt
        return None, None

    # ---- configuration -------------------------------------------------------------------
    def config(self):
        """Every option of the run (as run: ``online`` and ``threads`` resolved, ``record_every``
        rounded to whole steps), the model's options under ``net`` and its kind under ``model``,
        and derived values."""
        return {
            "net": self.net0.config(), "model": self.net0.kind,
            **self.options.replace(record_every=self.record_steps * self.dt, threads=self.threads).to_dict(),
            "steps": self.steps_total, "learning_rate": self.net0.learning_rate(self.dt), "data": self.data.name,
        }

    @property
    def series(self):
        return self.recorder.series

    # ---- the state -------------------------------------------------------------------------
    def particles(self):
        """The parameters at the current step split by the model's layout: (a, W, b) for a
        TwoLayer, (w_plus, w_minus) for a DiagonalLinear; views of the state (read them, copy to
        keep them). A TwoLayer's output bias, when it has one, is
        ``self.net0.layout.output_bias_of(self.state)``."""
        return self.net0.layout.split(self.state)

    def state_segments(self, shard=None):
        """The layout of the whole run's state, as one process holds it (the layout files store),
        and where the state of ``shard`` (default: this process's; only a sharded network has
        others) lies in it: ``(layout, [(offset in the whole state, offset here, length), ...])``."""
        net = self.net0
        if shard is None and not getattr(net, "sharded", False):
            return dict(self.layout), [(0, 0, self.layout["size"])]
        params = net.flat_segments(shard)
        whole, here = net.whole_layout.size, sum(length for _, _, length in params)
        residual = self.data.n * net.outputs if self.residual_dynamics else 0
        layout = {"particles": whole, "residual": whole if residual else 0,
                  "linearized": whole + residual if self.linearized else 0,
                  "size": whole + residual + (whole if self.linearized else 0)}
        segments = list(params)
        if residual:
            segments.append((whole, here, residual))
        if self.linearized:
            segments += [(at + whole + residual, local + here + residual, length) for at, local, length in params]
        return layout, segments

    def _current_net(self):
        self.net.set_flat(self.state[:self.layout["particles"]], copy=False)
        return self.net

    def _record(self):
        self.recorder.record(self.step, self._current_net(), self.state, self.layout)

    # ---- stepping --------------------------------------------------------------------------
    def _chunk_steps(self):
        n = self.batch if self.batch is not None else self.data.n
        flops = integrator_info(self.method).stages * self.net0.step_flops(n, self.options)
        steps = max(1, int(_CHUNK_FLOPS / flops))
        if self.batch is not None:
            steps = max(1, min(steps, int(_CHUNK_BATCH_VALUES / (self.batch * (self.net0.d + 1)))))
        return steps

    def field(self):
        """The field of the parameters at the current state on the full training set, split as
        :meth:`particles`.

        The same as :func:`dd_field`, with the simulation's persistent buffers (and its
        pre-activation cache): the way to evaluate the field repeatedly.
        """
        return self.net0.layout.split(self.engine.field(self.state))

    def advance(self, steps=1):
        """Advance ``steps`` integrator steps without recording (a later :meth:`run` records on schedule).

        Raises DivergenceError when the state becomes non-finite.
        """
        steps = check_int(steps, "steps")
        Xb, Yb, Ob = self.batches.draw(steps)
        done, finite = self.engine.advance(self.state, steps, self.dt, self.method, self.step, Xb, Yb, Ob)
        self.step += done
        if not finite:
            raise DivergenceError(
                f"simulate: the particles became non-finite (NaN or inf) at step {self.step} "
                f"(t = {self.step * self.dt:.6g}); the dynamics diverged: reduce dt (now {self.dt:g})")
        return done

    def run(self, progress=None, callback=None, **output):
        """Integrate up to t_max and return the :class:`Trajectory`.

        ``progress``: True, False, or None (a bar only on a terminal). ``callback(sim)`` is
        called after every record. The output options of :func:`simulate` (``out``,
        ``checkpoint_every``, ``snapshot_every``) write the run to a file; the
        trajectory is then the one read back from it. Ctrl-C stops at the last completed
        step and returns the trajectory so far, marked ``interrupted`` (with a file: after
        a last checkpoint).
        """
        out = OutputOptions.build("Simulation.run", **output)
        if out.out is None:
            return self._run(progress, callback)
        if self.step != 0 or self.series["t"]:
            raise ValueError("out: a file starts with a new run; continue a started run with mfntk.resume")
        writer = _io.TrajectoryWriter.create(self, out)
        return self._run_writing(writer, progress, callback)

    def _run_writing(self, writer, progress, callback=None):
        def both(sim):
            writer(sim)
            if callback:
                callback(sim)
        try:
            traj = self._run(progress, both)
        except BaseException:
            writer.close()   # the file keeps its last checkpoint
            raise
        writer.finish(traj.interrupted)
        if getattr(self.net0, "sharded", False):   # each rank keeps its shard; the file holds them all
            return traj
        return _io.load(writer.path)

    def _run(self, progress, callback):
        from tqdm.auto import tqdm

        start = time.perf_counter()
        interrupted = False
        if not self.series["t"]:
            self._record()
            if callback:
                callback(self)
        chunk = self._chunk_steps()
        if progress is None and not _is_terminal(sys.stderr):
            bar = _ProgressLog(self, _LOG_SECONDS)
        else:
            bar = tqdm(total=self.steps_total, initial=self.step, disable=not progress and progress is not None,
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

    # ---- checkpoint / resume hooks ---------------------------------------------------------
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
            ``prev`` (None or a dict of the model's parameter blocks, ``a``, ``W``, ``b`` or
            ``w_plus``, ``w_minus``, and ``risk``), ``wall_time``.
        """
        return {"state": self.state.copy(), "step": int(self.step), "record_steps": int(self.record_steps),
                "rng": self.batches.rng.bit_generator.state, "wall_time": float(self.wall_time),
                **self.recorder.state_dict()}

    def load_state_dict(self, sd):
        """Restore what :meth:`state_dict` returned (see there); ``t_max`` is left as set."""
        state = np.asarray(sd["state"])
        if state.shape != self.state.shape:
            raise ValueError(f"state: expected shape {self.state.shape}, got {state.shape} "
                             "(the checkpoint belongs to a different run)")
        self.state[...] = state
        self.step = int(sd["step"])
        self.record_steps = int(sd["record_steps"])
        self.batches.rng.bit_generator.state = sd["rng"]
        self.recorder.load_state_dict(sd)
        self.wall_time = float(sd.get("wall_time", 0.0))
        self._current_net()

    def trajectory(self, interrupted=False):
        return Trajectory.from_state(self.series, self.state, self.layout, self.net0, self.config(),
                                     self.wall_time, interrupted)


def simulate(net, data, t_max, dt, *, progress=None, **options):
    comm = options.pop("comm", None)
    sim_options = {k: v for k, v in options.items() if k not in OutputOptions.opts()}
    output = {k: v for k, v in options.items() if k in OutputOptions.opts()}
    RunOptions.build("simulate", t_max=t_max, dt=dt, **sim_options)  # messages name simulate
    OutputOptions.build("simulate", **output)  # checked before the (possibly long) setup
    sim = Simulation(net, data, t_max, dt, comm=comm, **sim_options)
    return sim.run(progress=progress, **output)


simulate.__doc__ = """Train a two-layer network by the distributional dynamics (SPEC 3), or a diagonal linear
    network by its gradient flow (docs/MATH.md section 9), and record the run.

    ::

        d theta_j / dt = (1/alpha) E_x[r(x) grad_theta sigma_*(x; theta_j)] - lambda theta_j
                         (+ sqrt(2 tau) dB_j when tau > 0).

    Time is mean-field time: gradient descent with learning rate eta is the Euler scheme
    with dt = eta alpha^2 / N (see :func:`euler_dt` and :func:`learning_rate`). For a
    DiagonalLinear time is gradient-flow time of the empirical risk: dt = eta. Its runs have
    the same options and records (risks, errors, residual dynamics, linearized model, the
    diagnostics with its tangent kernel and the displacement of (w_+, w_-) as a whole: the
    per-layer ``displacement_a``, ``_W``, ``_b`` are not recorded), files and resume.

    Parameters
    ----------
    net : TwoLayer or DiagonalLinear
        The initial model; it is left unchanged (the trained one is ``traj.net``).
    data : Dataset or (X, y)
        Training data (optional test split and sampler, see :mod:`mfntk.datasets`).
    progress : bool or None
        Progress on stderr. None: a bar on a terminal, otherwise (a script's log, a batch
        job) a line at the start, every 30 s and at the end; True: a bar; False: nothing.
    comm : mpi4py communicator, optional
        Shard the particles over the ranks of ``comm`` (:class:`mfntk.MPIBackend`); every rank
        calls ``simulate`` with the same arguments (checked) and gets the same records. The
        particles (``traj.net``) are each rank's shard. The numbers are those of the run
        without ``comm``, bit for bit, for any number of ranks. With ``out``, rank 0 writes
        the file (the whole network's, as without ``comm``); ``resume(path, comm=)`` continues it
        on any number of ranks.
{run}
{output}

    Returns
    -------
    Trajectory
        With ``out``: as :func:`mfntk.load` reads it back from the file.

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
    """.format(run=__import__("textwrap").indent(RunOptions.numpydoc(), "    "),
               output=__import__("textwrap").indent(OutputOptions.numpydoc(), "    "))


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _signature(*leading, extra=()):
    P = inspect.Parameter
    params = [P(name, P.POSITIONAL_OR_KEYWORD) for name in leading]
    params += [p for p in RunOptions.parameters() if p.name not in leading]
    params += list(extra)
    return inspect.Signature(params)


simulate.__signature__ = _signature("net", "data", "t_max", "dt", extra=[
    inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=None),
    inspect.Parameter("comm", inspect.Parameter.KEYWORD_ONLY, default=None), *OutputOptions.parameters()])
Simulation.__init__.__signature__ = _signature("self", "net", "data", "t_max", "dt", extra=[
    inspect.Parameter("comm", inspect.Parameter.KEYWORD_ONLY, default=None)])


def resume(path, data=None, progress=None, threads=None, t_max=None, comm=None):
    """Continue a run written by ``simulate(..., out=path, checkpoint_every=...)`` from its last checkpoint.

    The continued run gives the same numbers, bit for bit, as an uninterrupted run (full
    batch, minibatch, online sampling and Langevin noise included): it restores the
    particles (and the residual-dynamics and linearized blocks), the step, the records, the
    generator of minibatch / online draws and the diagnostics' memory, every option of the
    run, and keeps writing checkpoints to the same file at the same interval.

    Parameters
    ----------
    path : str or path
        The trajectory file; it is updated in place (atomically, at each checkpoint).
    data : Dataset or (X, y), optional
        The training data. Default: the data stored in the file, with its built-in sampler
        rebuilt from the stored numbers. An online run whose sampler was not stored needs
        ``data`` again; it must hold the same training set.
    progress : bool or None
        As for :func:`simulate`.
    threads : int or None
        OpenMP threads (results do not depend on it). None: all available.
    t_max : float, optional
        Extend the run to a later final time (default: the stored one).
    comm : mpi4py communicator, optional
        Continue sharded over the ranks of ``comm`` (as ``simulate(..., comm=)``), each rank
        reading only its particles; any number of ranks, whatever the run was written with,
        gives the same numbers. Every rank returns the records and its shard of the particles.
    Returns
    -------
    Trajectory
        The whole run, as :func:`mfntk.load` reads it.

    Raises
    ------
    FileNotFoundError, TrajectoryFileError
        See :func:`mfntk.load`.
    ValueError
        When ``data`` is needed but missing, or does not match the stored training set, or
        when an online run's sampler is not stored as numbers in the file.
    """
    stored = _io.read_run(path, data=data, comm=comm)
    config, sd, net0 = stored.config, stored.state, stored.net0
    options = RunOptions.from_dict(config, ignore_unknown=True)
    if t_max is not None:
        t_max = check_float(t_max, "t_max", minimum=0.0)
        if t_max < sd["step"] * options.dt - 1e-12:
            raise ValueError(f"t_max: {t_max} is before the last checkpoint (t = {sd['step'] * options.dt:.6g})")
        options = options.replace(t_max=t_max)
    options = options.replace(threads=resolve_threads(threads), record_every=sd["record_steps"] * options.dt)
    run = options.to_dict()
    try:
        sim = Simulation(net0, stored.data, run.pop("t_max"), run.pop("dt"), comm=comm, **run)
        if sd["state"] is None:   # sharded: this rank's part of the stored state
            sd = {**sd, "state": _io.read_state(stored.path, sim.state_segments()[1], sim.state.size)}
        sim.load_state_dict(sd)
    except (TypeError, ValueError, KeyError) as exc:  # the stored pieces do not fit together
        raise _io.TrajectoryFileError(f"{stored.path}: the stored run cannot be restored (corrupt file?): "
                                      f"{type(exc).__name__}: {exc}") from None
    if sim.step >= sim.steps_total and options.t_max == config["t_max"]:
        return sim.trajectory() if getattr(sim.net0, "sharded", False) else _io.load(path)
    writer = _io.TrajectoryWriter.reopen(sim, stored)
    return sim._run_writing(writer, progress)
