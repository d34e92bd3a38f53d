"""The two-layer network f(x) = (alpha / N) sum_j a_j sigma(<w_j, x> + b_j) (SPEC 1)."""
from __future__ import annotations

import copy as _copy
import math
import numbers

import numpy as np

from . import _diagnostics
from ._backend import backend_for
from ._options import NetOptions, default_particle_chunk
from ._validation import (as_matrix, check_choice, check_finite, check_float, check_network_memory,
                          resolve_dtype, resolve_threads)

SCALINGS = ("mf", "ntk")


def resolve_alpha(scaling, width):
    """alpha for a scaling name ("mf": 1, "ntk": sqrt(N)) or a positive number."""
    if isinstance(scaling, str):
        check_choice(scaling, "scaling", SCALINGS)
        return 1.0 if scaling == "mf" else math.sqrt(width)
    if isinstance(scaling, numbers.Real) and not isinstance(scaling, bool):
        return check_float(scaling, "scaling", minimum=0.0, strict=True)
    raise TypeError(f"scaling: expected 'mf', 'ntk' or a positive number, got {type(scaling).__name__}")


class ParticleLayout:
    """The parameters as one flat vector [a.ravel() | W.ravel() | b | c]: the particles
    theta_j = (a_j, w_j, b_j), then the output bias c (k values) when the network has one.
    The layout of ``TwoLayer.get_flat``, of the parameter block of a simulation's state, of
    checkpoints and snapshots. The only place that decodes it."""

    def __init__(self, width, outputs, d, bias, output_bias=False):
        self.width, self.outputs, self.d, self.bias = width, outputs, d, bool(bias)
        self.output_bias = bool(output_bias)
        self.particles_size = width * (outputs + d + (1 if bias else 0))
        self.size = self.particles_size + (outputs if self.output_bias else 0)

    def shapes(self):
        """The shape of each particle block, by name (None for ``b`` without bias)."""
        N = self.width
        return {"a": (N, self.outputs), "W": (N, self.d), "b": (N,) if self.bias else None}

    def split(self, flat):
        """(a (N, k), W (N, d), b (N,) or None): views of the particles in ``flat``."""
        N, k, d = self.width, self.outputs, self.d
        a = flat[: N * k].reshape(N, k)
        W = flat[N * k: N * (k + d)].reshape(N, d)
        b = flat[N * (k + d): self.particles_size] if self.bias else None
        return a, W, b

    def output_bias_of(self, flat):
        """c (k,): a view of the output bias in ``flat``, or None without one."""
        return flat[self.particles_size:self.size] if self.output_bias else None

    def shard_segments(self, whole, begin):
        """Where this layout's values (the particles [begin, begin + width) of a network whose
        layout is ``whole``, and its output bias) lie in ``whole``'s flat vector: a list of
        (offset in whole, offset here, length), one per block."""
        N, n, k, d = whole.width, self.width, self.outputs, self.d
        segments = [(begin * k, 0, n * k), (N * k + begin * d, n * k, n * d)]
        if self.bias:
            segments.append((N * (k + d) + begin, n * (k + d), n))
        if self.output_bias:
            segments.append((whole.particles_size, self.particles_size, k))
        return segments

    def join(self, a, W, b, c=None, out=None):
        """The flat vector of (a, W, b, c) (a new array, or written into ``out``)."""
        return np.concatenate([a.ravel(), W.ravel()] + ([b] if self.bias else []) + ([c] if self.output_bias else []),
                              out=out)


class TwoLayer:
    """Two-layer network of width N seen as N particles theta_j = (a_j, w_j, b_j).

    f(x; theta) = (alpha / N) sum_j a_j sigma(<w_j, x> + b_j), with alpha = 1 in the
    mean-field scaling ("mf") and alpha = sqrt(N) in the NTK scaling ("ntk").

    Parameters
    ----------
    d : int
        Input dimension.
    width : int
        Number of neurons (particles) N.
    activation : str
        A name of the core's registry, ``mfntk._registry.ACTIVATIONS``: relu, tanh, erf, sigmoid,
        softplus, quadratic (u^2 + c0), identity.
    scaling : "mf", "ntk" or float
        The factor alpha (float: alpha itself, > 0).
    bias : bool
        Whether each neuron has a bias b_j.
    outputs : int
        Output dimension k; a_j lies in R^k.
    w_std : float or None
        Standard deviation of the entries of w_j; None means 1/sqrt(d).
    a_std : float
        Scale of a_j: N(0, a_std^2) entries, or +-a_std with ``a_init="rademacher"``.
    b_std : float
        Standard deviation of b_j (with ``bias=True``).
    symmetric : bool
        Draw N/2 particles and complete them with (-a_j, w_j, b_j), so that f(x; theta_0) = 0
        exactly (N must be even).
    seed : int
        Seed of the initialisation (numpy Generator): a network of one chunk (see
        ``particle_chunk``) is drawn from ``default_rng(seed)``, W then a then b; chunk c of a
        larger one from the c-th child of ``SeedSequence(seed)`` (chunk 0 from the seed itself),
        so that any process can draw its own chunks alone.
    dtype : "float64" or "float32"
        Precision of the particles and of every computation on them.
    a_init : "gaussian" or "rademacher"
        Law of the second-layer weights.
    c0 : float
        Constant of the quadratic activation u^2 + c0.
    output_bias : bool
        A trained output bias c in R^k, initialised at 0: f(x) = (alpha / N) sum_j a_j
        sigma(<w_j, x> + b_j) + c. In a simulation it follows dc/dt = (1/n) sum_i r_i, the
        gradient flow of the risk in c, so that the tangent kernel gains a constant 1
        (docs/MATH.md); it is not a particle (no weight decay, no Langevin noise).
    particle_chunk : int or None
        Particles per chunk (a multiple of 128; None: 65536 up to N = 2^24, then N / 256 rounded
        up). Every sum over particles is taken per chunk and the chunks' sums are added in one
        fixed order, so that the numbers do not depend on how many processes hold the chunks.
    backend : str or Backend, optional
        Where the passes run (:mod:`mfntk._backend`); default the OpenMP core of this process.
    comm : mpi4py communicator, optional
        Shard the particles over the processes of ``comm`` (the MPI backend,
        :class:`mfntk.MPIBackend`): each process draws and holds only its chunks (``a``, ``W``,
        ``b`` are its shard; ``width`` stays N); predictions and simulations give the same
        numbers, bit for bit, for any number of processes and as without ``comm``.

    Attributes
    ----------
    a : ndarray (N, k)
    W : ndarray (N, d)
    b : ndarray (N,) or None
        With ``comm``: the rows of this process's shard, particles
        [shard.particle_begin, shard.particle_end).
    shard : mfntk._core.Shard
        The chunks of the particles and the range of them held here.
    c : ndarray (k,) or None
        The output bias (with ``output_bias=True``).
    alpha : float

    Examples
    --------
    >>> import mfntk as mf, numpy as np
    >>> net = mf.TwoLayer(d=3, width=8, symmetric=True, seed=1)
    >>> float(np.abs(net.predict(np.ones((2, 3)))).max())
    0.0
    """

    #: The model's kind in the registry of :mod:`mfntk._models` (and in trajectory files).
    kind = "two_layer"
    #: The blocks recorded as ``displacement_a``, ``displacement_W``, ``displacement_b``.
    displacement_layers = ("a", "W", "b")

    def __init__(self, d, width, activation="relu", scaling="mf", bias=False, outputs=1, w_std=None, a_std=1.0,
                 b_std=0.0, symmetric=False, seed=0, dtype="float64", a_init="gaussian", c0=0.0, output_bias=False, *,
                 particle_chunk=None, backend=None, comm=None):
        opts = NetOptions(d=d, width=width, activation=activation, scaling=scaling, bias=bias, outputs=outputs,
                          w_std=w_std, a_std=a_std, b_std=b_std, symmetric=symmetric, seed=seed,
                          dtype=resolve_dtype(dtype).name, a_init=a_init, c0=c0, output_bias=output_bias,
                          particle_chunk=particle_chunk)
        if opts.w_std is None:
            opts = opts.replace(w_std=1.0 / math.sqrt(opts.d))
        if opts.particle_chunk is None:
            opts = opts.replace(particle_chunk=default_particle_chunk(opts.width))
        self.options = opts
        for name, value in opts.to_dict().items():
            setattr(self, name, value)
        self.dtype = np.dtype(opts.dtype)
        self.alpha = resolve_alpha(opts.scaling, opts.width)
        self.backend = backend_for(backend, comm)
        self.shard = self.backend.shard(opts.width, opts.particle_chunk)
        check_network_memory(self.shard.local_width, opts.d, opts.outputs, opts.bias, opts.dtype)
        self.layout = ParticleLayout(self.shard.local_width, opts.outputs, opts.d, opts.bias, opts.output_bias)
        self.backend.check_same("net", self.config())
        self.a, self.W, self.b = self._initial_particles()
        self.c = np.zeros(opts.outputs, dtype=self.dtype) if opts.output_bias else None

    def _draw(self, rng, m):
        """(a, W, b) of m particles drawn from ``rng``: W, then a, then b."""
        W = self.w_std * rng.standard_normal((m, self.d))
        if self.a_init == "gaussian":
            a = self.a_std * rng.standard_normal((m, self.outputs))
        else:
            a = self.a_std * rng.choice([-1.0, 1.0], size=(m, self.outputs))
        b = self.b_std * rng.standard_normal(m) if self.bias else None
        return a, W, b

    def _initial_particles(self):
        """The shard's particles: each chunk drawn from its own generator (see ``seed``), the
        second half of a symmetric network the first with a negated."""
        shard, N = self.shard, self.width
        parts = []
        if shard.whole:
            if shard.local_chunks:
                m = N // 2 if self.symmetric else N
                a, W, b = self._draw(np.random.default_rng(self.seed), m)
                if self.symmetric:
                    a, W, b = np.concatenate([a, -a]), np.concatenate([W, W]), None if b is None else np.concatenate([b, b])
                parts.append((a, W, b))
        else:
            half = shard.first_of_second_half if self.symmetric else shard.count
            for c in range(shard.begin, shard.end):
                drawn = c - half if c >= half else c
                rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(drawn,) if drawn else ()))
                a, W, b = self._draw(rng, shard.chunks[c][1])
                parts.append((-a, W, b) if c >= half else (a, W, b))
        cast = lambda x: np.ascontiguousarray(x, dtype=self.dtype)  # noqa: E731
        if not parts:
            empty = lambda cols: np.zeros((0, cols), dtype=self.dtype)  # noqa: E731
            return empty(self.outputs), empty(self.d), (np.zeros(0, self.dtype) if self.bias else None)
        a = cast(np.concatenate([p[0] for p in parts]))
        W = cast(np.concatenate([p[1] for p in parts]))
        b = cast(np.concatenate([p[2] for p in parts])) if self.bias else None
        return a, W, b

    def shard_over(self, comm):
        """This network with its particles sharded over the ranks of ``comm`` (each rank keeps its
        chunks' rows; the same network on every rank is checked); itself when it already is."""
        if getattr(self.backend, "comm", None) == comm:
            return self
        backend = backend_for(None, comm)
        if self.sharded:
            raise ValueError("comm: the network is sharded over another communicator")
        backend.check_same("net", {"config": self.config(), "a": self.a, "W": self.W, "b": self.b, "c": self.c})
        new = _copy.copy(self)   # the shard's rows only are copied
        new.backend = backend
        new.shard = backend.shard(self.width, self.particle_chunk)
        new.layout = ParticleLayout(new.shard.local_width, self.outputs, self.d, self.bias, self.output_bias)
        rows = slice(new.shard.particle_begin, new.shard.particle_end)
        new.a, new.W = self.a[rows].copy(), self.W[rows].copy()
        new.b = None if self.b is None else self.b[rows].copy()
        new.c = None if self.c is None else self.c.copy()
        return new

    @property
    def whole_layout(self):
        """The layout of the whole network (of ``layout`` itself when this process holds every particle)."""
        return ParticleLayout(self.width, self.outputs, self.d, self.bias, self.output_bias)

    def flat_segments(self, shard=None):
        """(offset in the whole network's flat vector, offset in the shard's, length) of the blocks
        of ``shard`` (default: this process's), as :meth:`ParticleLayout.shard_segments`."""
        shard = self.shard if shard is None else shard
        local = ParticleLayout(shard.local_width, self.outputs, self.d, self.bias, self.output_bias)
        return local.shard_segments(self.whole_layout, shard.particle_begin)

    @property
    def sharded(self):
        """Whether the particles are shared out between several processes (a network built with
        ``comm`` of more than one rank; the same answer on every rank, whichever holds what)."""
        return getattr(self.backend, "size", 1) > 1

    def particle_sums(self, sums):
        """``sums(j0, j1)`` (a float64 vector of sums over the particles [j0, j1) here) over all the
        particles, chunk by chunk in the fixed order of the backend's ``particle_sums``: the same
        numbers on any number of ranks."""
        return self.backend.particle_sums(self, sums)

    def require_whole(self, what):
        """ValueError for an operation ``what`` that needs every particle in this process."""
        if self.sharded:
            raise ValueError(f"{what}: not available for a network sharded over MPI ranks (built with comm=); "
                             "it needs every particle in one process")

    # ---- parameters as one flat vector [a | W | b | c] -------------------------------------
    @property
    def n_params(self):
        return self.layout.size

    def get_flat(self, out=None):
        """The parameters as one flat vector [a.ravel(), W.ravel(), b, c] (a copy, or written into ``out``)."""
        return self.layout.join(self.a, self.W, self.b, self.c, out=out)

    def set_flat(self, theta, copy=True):
        """Set the parameters from a flat vector laid out as get_flat() (copied; with
        ``copy=False`` views of it, for a caller that owns the vector)."""
        theta = np.asarray(theta, dtype=self.dtype)
        if theta.shape != (self.n_params,):
            raise ValueError(f"theta: expected shape ({self.n_params},), got {theta.shape}")
        a, W, b = self.layout.split(theta)
        c = self.layout.output_bias_of(theta)
        for arr, part in ((a, "a"), (W, "W"), (b, "b"), (c, "c")):
            if arr is not None:
                check_finite(arr, f"theta (its {part} block)")
        keep = (lambda x: x) if not copy else (lambda x: np.array(x, order="C"))  # noqa: E731
        self.a, self.W = keep(a), keep(W)
        self.b = None if b is None else keep(b)
        self.c = None if c is None else keep(c)

    def copy(self):
        """A copy with its own parameter arrays (options and backend shared)."""
        new = _copy.copy(self)
        new.a, new.W = self.a.copy(), self.W.copy()
        new.b = None if self.b is None else self.b.copy()
        new.c = None if self.c is None else self.c.copy()
        return new

    def check_particles(self, name="net"):
        """ValueError naming the array when a, W, b or c holds NaN or inf.

        A non-finite particle can hide: relu(NaN) is 0 in the core, so the outputs may look
        finite. :meth:`predict` and :func:`mfntk.simulate` call this first.
        """
        for part in ("a", "W", "b", "c"):
            arr = getattr(self, part)
            if arr is not None and not np.isfinite(arr).all():
                check_finite(np.asarray(arr), f"{name}.{part}")

    # ---- evaluation ---------------------------------------------------------------------------
    def check_inputs(self, X, name="X", note_copy=True):
        """X as a C-contiguous (n, d) array of the network's dtype, validated.

        With ``note_copy``, a float array of the other precision is converted with a
        UserWarning (the conversion copies it on every call).
        """
        return as_matrix(X, name, dtype=self.dtype, columns=self.d, copy_note=note_copy)

    def predict(self, X, threads=None):
        """f(X; theta), shape (n, k).

        Raises ValueError when the particles (a, W, b) or X hold NaN or inf.
        """
        self.check_particles()
        X = self.check_inputs(X)
        F = self.backend.forward(self, X, resolve_threads(threads))
        F *= self.dtype.type(self.alpha / self.width)
        if self.c is not None:
            F += self.c
        return F

    def config(self):
        """The constructor arguments, as a JSON-able dict (``TwoLayer(**config)`` rebuilds the network)."""
        return self.options.to_dict()

    @staticmethod
    def layout_of(config):
        """(layout, dtype) of the network ``TwoLayer(**config)`` would build, without building it
        (the options are checked, nothing is allocated): how a file reader sizes what it reads."""
        o = NetOptions.from_dict(config)
        return ParticleLayout(o.width, o.outputs, o.d, o.bias, o.output_bias), np.dtype(o.dtype)

    @property
    def description(self):
        """The model in a few words, for messages."""
        return f"a network of width {self.width}"

    # ---- what a simulation calls (the model protocol of mfntk._models) --------------------
    def dynamics(self, *, loss, weight_decay, temperature, seed, residual_dynamics, linearized, threads,
                 cache_bytes):
        """The core's integrator of the distributional dynamics for this network (the backend's
        ``dynamics``)."""
        return self.backend.dynamics(self, loss=loss, weight_decay=weight_decay, temperature=temperature, seed=seed,
                                     residual_dynamics=residual_dynamics, linearized=linearized, threads=threads,
                                     cache_bytes=cache_bytes)

    @staticmethod
    def set_reference(engine, theta0, f0):
        """Give ``engine`` the linearized model's reference: theta_0 and f(X; theta_0) on the data."""
        engine.set_reference(theta0, f0)

    def learning_rate(self, dt):
        """The gradient-descent learning rate eta = dt N / alpha^2 of an Euler step dt (SPEC 3)."""
        return dt * self.width / self.alpha ** 2

    def euler_dt(self, eta):
        """The mean-field time step dt = eta alpha^2 / N of gradient descent with learning rate eta."""
        return eta * self.alpha ** 2 / self.width

    def step_flops(self, n, options):
        """Floating-point operations of one evaluation of the field on n points: 2 n N (d + k)
        per pass, two passes (forward, gradient), three more with the residual dynamics and
        two with the linearized model."""
        passes = 2 + (3 if options.residual_dynamics else 0) + (2 if options.linearized else 0)
        return passes * 2.0 * n * self.width * (self.d + self.outputs)

    def engine_memory(self, n, batch, options):
        """(values, cache bytes) of the engine beyond its state and stage buffers for n training
        points and ``batch`` points per step: F and R of a step's points, the scratch vector of
        the optional blocks, the linearized model's reference theta_0 and f_0; and the
        pre-activation cache (``batch`` N values, or their signs for relu with one output) when it
        fits in ``options.cache_mb``."""
        P, k = self.layout.particles_size, self.outputs
        values = 2 * batch * k
        if options.residual_dynamics or options.linearized:
            values += P
        if options.linearized:
            values += P + n * k
        cache = self.backend.preactivation_cache_bytes(self, batch)
        return values, (cache if cache <= options.cache_mb * 2 ** 20 else 0.0)

    def linearized_predict(self, bar, X, threads=None):
        """fbar(X) = f(X; theta0) + (alpha/N) J(theta0) (thetabar - theta0) (+ cbar - c0 with an
        output bias): the tangent model at this network's parameters theta0 (SPEC 4), evaluated
        with the parameters of ``bar`` (a TwoLayer of the same shape), shape (n, k)."""
        X = self.check_inputs(X)
        th = resolve_threads(threads)
        delta = bar.get_flat() - self.get_flat()
        ta, tW, tb = self.layout.split(delta)
        Jt = self.backend.jvp(self, X, np.ascontiguousarray(ta), np.ascontiguousarray(tW),
                              None if tb is None else np.ascontiguousarray(tb), th)
        F = self.predict(X, threads=th) + self.dtype.type(self.alpha / self.width) * Jt
        dc = self.layout.output_bias_of(delta)
        if dc is not None:
            F += dc
        return F

    def probe_kernel(self, X, threads=None):
        """The tangent kernel of one output on X, (1/k) sum_p K_pp (``kernels.empirical(...,
        output="mean")``, SPEC 4): for k > 1 it, not the (n k)^2 matrix kernel, is what the
        alignment with Y Y^T compares, and its infinite-width limit is the analytic kernel."""
        from . import kernels
        return kernels.empirical(self, X, threads=threads, output="mean")

    def parameter_blocks(self):
        """The particles by block name, copies: ``a``, ``W``, ``b`` (None without bias); the
        output bias, not a particle, is left out."""
        return {"a": self.a.copy(), "W": self.W.copy(), "b": None if self.b is None else self.b.copy()}

    def tangent_change(self, previous, X):
        """|D f(theta) - D f(theta_prev)|_F / |D f(theta_prev)|_F on X from the blocks ``previous``
        (see :func:`mfntk._diagnostics.tangent_change`)."""
        return _diagnostics.tangent_change(self, (previous["a"], previous["W"], previous["b"]),
                                           (self.a, self.W, self.b), X)

    def __repr__(self):
        extra = ", bias=True" if self.bias else ""
        extra += f", outputs={self.outputs}" if self.outputs != 1 else ""
        extra += ", symmetric=True" if self.symmetric else ""
        extra += ", output_bias=True" if self.output_bias else ""
        return (f"TwoLayer(d={self.d}, width={self.width}, activation={self.activation!r}, "
                f"scaling={self.scaling!r} (alpha={self.alpha:.4g}){extra}, dtype={self.dtype.name!r})")
