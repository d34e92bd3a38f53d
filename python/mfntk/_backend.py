"""The one door to the compiled core.

Every forward, vjp, jvp, Gram, matvec, feature map and dynamics call of the package goes
through a :class:`Backend` object; nothing else imports ``mfntk._core``. A network carries
its backend (``TwoLayer(..., backend=...)``) and everything computed from the network uses
it; functions without a network (the analytic kernels, the feature models) take the default
one. Another backend (MPI, GPU) is a new subclass registered in :data:`BACKENDS`, selected
by one argument.

Arguments are the core's: ``p`` is any object with the particle arrays ``a`` (N, k), ``W``
(N, d), ``b`` (N,) or None, the activation's ``activation`` (name) and ``c0``, all
C-contiguous of one float dtype, and optionally ``shard`` (a ``_core.Shard``: the fixed chunks
of the particles and those held here; then a, W, b are the shard's rows); inputs are
validated before they get here.

Sums over particles (forward, jvp) are taken per chunk and the chunks' sums combined in one
fixed order (``cpp/include/mfntk/shard.hpp``); a network of one chunk takes the whole
network's passes. A backend whose processes hold different chunks gathers the chunks' sums
(:meth:`Backend.gather`); everything else is the same code.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
import types
import warnings

import numpy as np

from . import _core

__all__ = ["Backend", "CPUBackend", "MPIBackend", "MPITimeoutError", "BACKENDS", "CHUNK_SECONDS", "DEFAULT_TIMEOUT",
           "get_backend", "backend_for", "SIMD", "get_simd", "set_simd"]


# The instruction sets of the hand-written kernels of the relu passes (one output; forward, vjp,
# jvp: every step, RD and kernel matvec of a relu network) and of the empirical Gram's products.
# The core picks the best the CPU runs; "avx512" and "avx2" give the same numbers, "portable"
# (Eigen's GEMM) differs in the last bits.
SIMD = ("auto", "avx512", "avx2", "portable")


def get_simd():
    """The instruction set the SIMD kernels run on now: ``"avx512"``, ``"avx2"`` or ``"portable"``."""
    return _core.simd()


def set_simd(name):
    """Select the SIMD kernels (the relu passes, the empirical Gram's products) for the whole
    process and return the previous choice.

    ``"auto"`` (the default at import, or the environment variable ``MFNTK_SIMD``): the best
    this CPU runs. ``"portable"``: Eigen's GEMM, the reference the kernels are tested against.
    ValueError when the name is unknown or this CPU or build cannot run it.
    """
    if name not in SIMD:
        raise ValueError(f"simd: expected one of {', '.join(map(repr, SIMD))}, got {name!r}")
    if name != "auto" and not _core.simd_supported(name):
        runs = [s for s in SIMD[1:] if _core.simd_supported(s)]
        raise ValueError(f"simd: this CPU or build cannot run {name!r} kernels (it runs {', '.join(runs)})")
    previous = _core.simd()
    _core.set_simd(name)
    return previous


def _simd_from_environment():
    name = os.environ.get("MFNTK_SIMD", "").strip()
    if name:
        try:
            set_simd(name)
        except ValueError as error:
            warnings.warn(f"MFNTK_SIMD ignored: {error}", RuntimeWarning, stacklevel=3)


_simd_from_environment()


class Backend:
    """What a backend provides (the methods of :class:`CPUBackend`).

    Results must be bit-identical for any number of threads (and, for a distributed
    backend, of processes), so that a run does not depend on where it ran.
    """

    name = "abstract"

    def __repr__(self):
        return f"{type(self).__name__}()"


class CPUBackend(Backend):
    """The OpenMP C++ core on this machine (tiled passes, fixed reduction order)."""

    name = "cpu"
    #: The processes that share a network's particles.
    size = 1

    # ---- the processes of a run: one here ---------------------------------------------------
    def shard(self, N, chunk):
        """The chunks of N particles (``chunk`` per chunk) and those this process holds: all."""
        return _core.Shard(N, chunk)

    def chunk_sum(self, shard, leaf):
        """The fixed-order sum over every chunk of ``leaf(j0, j1)`` (an array computed from the
        chunk's particles, rows [j0, j1) of the arrays here), in the order of ``Shard.combine``:
        here with the leaves computed as the tree needs them, at most one per level in memory."""
        starts = [start - shard.particle_begin for start, _ in shard.chunks]

        def tree(lo, hi):
            if hi - lo == 1:
                return leaf(starts[lo], starts[lo] + shard.chunks[lo][1])
            mid = lo + (hi - lo) // 2
            return tree(lo, mid) + tree(mid, hi)

        half, count = shard.first_of_second_half, shard.count
        return tree(0, half) + tree(half, count) if half < count else tree(0, half)

    def particle_sums(self, p, sums):
        """``sums(j0, j1)`` (a float64 vector of sums over the particles [j0, j1) here) over all the
        network's particles: per chunk, combined as :meth:`chunk_sum` (one chunk in one process:
        one call over all the rows)."""
        shard = self._chunks_of(p, "a sum over particles")
        return sums(0, p.a.shape[0]) if shard is None else self.chunk_sum(shard, sums)

    def _chunks_of(self, p, what):
        """p's shard when a sum over its particles goes chunk by chunk (None: one pass over all, in
        one process). The same answer on every process of the backend."""
        shard = getattr(p, "shard", None)
        if shard is None:
            if self.size > 1:   # arrays of a shard without its chunks
                raise ValueError(f"net: {what} of a network sharded over MPI ranks needs the network itself")
            return None
        return shard if shard.count > 1 or self.size > 1 else None

    def check_same(self, name, value):
        """ValueError when ``value`` (JSON-able, or arrays in it) differs between the processes; one
        process: nothing to check."""

    def exchange(self, shard):
        """The object the core's engine calls to gather ``shard``'s chunk sums (None: one process)."""
        return None

    # ---- the network's passes (unscaled: the factor alpha / N is the caller's) ------------
    def forward(self, p, X, threads):
        """sum_j a_j sigma(<w_j, x_i> + b_j), shape (n, k)."""
        shard = self._chunks_of(p, "the forward pass")
        return _core.forward(p.activation, p.c0, p.a, p.W, p.b, X, threads, shard, self._exchange_of(shard))

    def vjp(self, p, X, R, threads, a=None):
        """J^T R: the gradients (gA, gW, gb) of sum_i <R_i, sum_j a_j sigma(...)> (a replaces p.a)."""
        return _core.vjp(p.activation, p.c0, p.a if a is None else a, p.W, p.b, X, R, threads,
                         self._chunks_of(p, "the vjp"))

    def jvp(self, p, X, ta, tW, tb, threads, a=None):
        """J t: the directional derivative along (ta, tW, tb) (None: zero), shape (n, k)."""
        shard = self._chunks_of(p, "the jvp")
        return _core.jvp(p.activation, p.c0, p.a if a is None else a, p.W, p.b, X, ta, tW, tb, threads, shard,
                         self._exchange_of(shard))

    def _exchange_of(self, shard):
        return None if shard is None else self.exchange(shard)

    def activation(self, name, c0, Z, order):
        """sigma (order 0), sigma' (1) or sigma'' (2) of the activation ``name`` on Z, elementwise."""
        return _core.activation(name, c0, Z, order)

    # ---- tangent kernels ------------------------------------------------------------------
    def gram(self, p, X, X2, kind, threads, output="mean", chunk_seconds=None):
        """The empirical kernel K(X, X2) (X2 None: K(X, X), symmetric), SPEC 4: (n1, n2) for
        ``output="mean"``, (n1 k, n2 k) for ``"matrix"``.

        The core computes it in units of work, here in calls of about ``chunk_seconds`` each
        (None: :data:`CHUNK_SECONDS`; 0: one unit per call; inf: one call), so that a Ctrl-C is
        answered between calls; the result does not depend on the grouping, bit for bit.
        """
        shard = self._chunks_of(p, "the empirical kernel")
        if shard is not None:   # the chunks' kernels (each with its own 1 / N_c) weighted by N_c / N
            return self.chunk_sum(shard, lambda j0, j1: self._gram(
                _rows(p, j0, j1), X, X2, kind, threads, output, chunk_seconds) * p.a.dtype.type((j1 - j0) / shard.N))
        return self._gram(p, X, X2, kind, threads, output, chunk_seconds)

    def _gram(self, p, X, X2, kind, threads, output, chunk_seconds):
        cls = _core.EmpiricalGram64 if p.a.dtype == np.float64 else _core.EmpiricalGram32
        plan = cls(p.activation, p.c0, p.a, p.W, p.b, X, X2, kind, output, threads)
        return _drive(plan, chunk_seconds)

    def matvec(self, p, X, V, kind, threads, output="mean", X_rows=None, chunk_seconds=None, signs=None):
        """K(X_rows, X) V without forming K (X_rows None: X); V has one row per point of X (mean)
        or per point and output (matrix, row i k + p). Driven in calls as :meth:`gram`.

        ``signs``: a :class:`SignCache` of X (:meth:`matvec_sign_cache`), read when it is ready,
        else filled by this product (and ready once it returns)."""
        shard = self._chunks_of(p, "the empirical kernel's matvec")
        if shard is not None:
            out = self.chunk_sum(shard, lambda j0, j1: self._matvec(
                _rows(p, j0, j1), X, V, kind, threads, output, X_rows, chunk_seconds, signs, j0)
                * p.a.dtype.type((j1 - j0) / shard.N))
        else:
            out = self._matvec(p, X, V, kind, threads, output, X_rows, chunk_seconds, signs, 0)
        if signs is not None:
            signs.ready = True
        return out

    def _matvec(self, p, X, V, kind, threads, output, X_rows, chunk_seconds, signs=None, j0=0):
        words = None if signs is None else signs.words[j0]
        plan = _matvec_class(p)(p.activation, p.c0, p.a, p.W, p.b, X, V, kind, output, threads, X_rows, words,
                                signs is not None and signs.ready)
        return _drive(plan, chunk_seconds)

    def matvec_sign_cache(self, p, n, output, max_bytes):
        """A :class:`SignCache` for :meth:`matvec`'s products K(X, X) V on n points, or None where
        none applies (another activation than relu, the matrix kernel of k > 1 outputs) or its
        n N bits exceed ``max_bytes``."""
        shard = self._chunks_of(p, "the empirical kernel's matvec")
        if shard is None:
            chunks = [(0, p.a.shape[0])]
        else:
            starts = [start - shard.particle_begin for start, _ in shard.chunks]
            chunks = [(starts[c], starts[c] + shard.chunks[c][1]) for c in range(shard.begin, shard.end)]
        count = {j0: int(_matvec_class(p).sign_cache_words(p.activation, j1 - j0, p.k, output, n))
                 for j0, j1 in chunks}
        total = 8 * sum(count.values())
        if any(w == 0 for w in count.values()) or not 0 < total <= max_bytes:
            return None
        return SignCache({j0: np.empty(w, dtype=np.uint64) for j0, w in count.items()})

    def low_rank_update(self, U, scale, V, threads):
        """V + U diag(scale) U^T V (U (n, r), V (n, m), float64): the low-rank preconditioner's
        product, in the core's threads (no BLAS thread pool between the kernel products of a
        solver, whose idle workers would slow them down)."""
        return _core.low_rank_update(U, scale, V, threads)

    def analytic_gram(self, activation, c0, X, X2, kind, w_std, a_std, b_std, bias, method, order, tol, threads):
        """The infinite-width kernel (SPEC 5) and its quadrature report."""
        return _core.analytic_gram(activation, c0, X, X2, kind, w_std, a_std, b_std, bias, method, order, tol,
                                   threads)

    def analytic_diag(self, activation, c0, X, kind, w_std, a_std, b_std, bias, method, order, tol, threads):
        """diag K(X, X) of the infinite-width kernel in O(n d), and its quadrature report."""
        return _core.analytic_diag(activation, c0, X, kind, w_std, a_std, b_std, bias, method, order, tol, threads)

    def analytic_matvec(self, activation, c0, X, V, kind, w_std, a_std, b_std, bias, method, order, tol, threads,
                        X_rows=None, chunk_seconds=None):
        """K(X_rows, X) V of the infinite-width kernel without forming K (X_rows None: X), and its
        quadrature report; driven in calls as :meth:`gram`."""
        cls = _core.AnalyticMatvec64 if X.dtype == np.float64 else _core.AnalyticMatvec32
        plan = cls(activation, c0, X, V, kind, w_std, a_std, b_std, bias, method, order, tol, threads, X_rows)
        return _drive(plan, chunk_seconds)

    # ---- dynamics -------------------------------------------------------------------------
    def dynamics(self, net, *, loss, weight_decay, temperature, seed, residual_dynamics, linearized, threads,
                 cache_bytes):
        """The integrator of the distributional dynamics (SPEC 3-4) for ``net``'s shapes.

        The returned engine owns the data (``set_data``), the offsets o_i subtracted from the
        model on the full-batch points (``set_offset``, the centred model), the reference of
        the linearized model (``set_reference``), the state layout (``layout()``), the field
        (``field(state)``) and ``advance(state, steps, dt, method, step0, X_batches,
        Y_batches, offset_batches) -> (done, finite)``.
        """
        shard = net.shard
        options = _core_options(_core.DynamicsOptions, dict(
            N=net.width, d=net.d, k=net.outputs, bias=net.bias, output_bias=net.output_bias, alpha=net.alpha,
            loss=loss, weight_decay=weight_decay, temperature=temperature, seed=seed,
            residual_dynamics=residual_dynamics, linearized=linearized, threads=threads, cache_bytes=cache_bytes,
            particle_chunk=shard.chunk, chunk_begin=shard.begin, chunk_end=shard.end))
        cls = _core.Dynamics64 if net.dtype == np.float64 else _core.Dynamics32
        engine = cls(options, net.activation, net.c0)
        engine.set_exchange(self.exchange(shard))
        return engine

    def preactivation_cache_bytes(self, net, n):
        """Bytes of :meth:`dynamics`'s pre-activation cache on n points (kept when within its
        ``cache_bytes``): the n N values of X W^T or, for relu with one output, their signs
        (one bit each)."""
        return _core.preactivation_cache_bytes(net.activation, n, net.shard, net.outputs, net.dtype.itemsize)

    def diagonal_dynamics(self, model, *, loss, weight_decay, temperature, seed, residual_dynamics, linearized,
                          threads):
        """The integrator of the gradient flow of a diagonal linear network (``model``: ``d``,
        ``depth``, ``dtype``), f(x) = <w_+^D - w_-^D, x>, in gradient-flow time of the empirical risk.

        The returned engine has the methods of :meth:`dynamics`'s (``set_data``, ``set_offset``,
        ``layout()``, ``field(state)``, ``advance(state, steps, dt, method, step0, X_batches,
        Y_batches, offset_batches)``) on the state [w_+ | w_- (| g) (| wbar_+ | wbar_-)], except
        that ``set_reference(w0)`` takes the reference parameters only (the linearized model is
        linear in x, so it also runs on minibatches).
        """
        options = _core_options(_core.DiagonalOptions, dict(
            d=model.d, depth=model.depth, loss=loss, weight_decay=weight_decay, temperature=temperature, seed=seed,
            residual_dynamics=residual_dynamics, linearized=linearized, threads=threads))
        cls = _core.DiagonalDynamics64 if model.dtype == np.float64 else _core.DiagonalDynamics32
        return cls(options)


class SignCache:
    """The signs of X W^T (+ b) of a kernel's points (n N bits; per chunk of this process's
    particles, ``words`` by first row), which :meth:`CPUBackend.matvec` fills in its first
    product and reads in the later ones (relu: each pass is then one GEMM instead of two)."""

    def __init__(self, words):
        self.words = words
        self.ready = False

    @property
    def nbytes(self):
        return sum(w.nbytes for w in self.words.values())


def _matvec_class(p):
    return _core.EmpiricalMatvec64 if p.a.dtype == np.float64 else _core.EmpiricalMatvec32


def _rows(p, j0, j1):
    """The particles [j0, j1) of p, as the core takes them (views, no copy)."""
    return types.SimpleNamespace(activation=p.activation, c0=p.c0, a=p.a[j0:j1], W=p.W[j0:j1],
                                 b=None if p.b is None else p.b[j0:j1])


def _core_options(cls, values):
    """An options struct of the core, filled field by field from ``values`` by the names it declares."""
    options = cls()
    values = dict(values)
    for field in cls.fields:
        setattr(options, field, values.pop(field))
    assert not values, f"options the core does not declare: {sorted(values)}"
    return options


#: Seconds of work per call into the core for the kernels' long passes: a Ctrl-C waits at most
#: about this long (the unit of work bounds it from below; see ``_drive``).
CHUNK_SECONDS = 1.0


def _drive(plan, seconds=None):
    """Advance a core computation (``units``, ``done``, ``advance(count)``, ``result()``) to its
    end in calls of about ``seconds`` each, and return its result.

    The first call does one unit; later ones as many as the measured time per unit allows,
    growing at most fourfold per call. Between calls Python runs its signal handlers, so a
    Ctrl-C raises KeyboardInterrupt within about one call.
    """
    seconds = CHUNK_SECONDS if seconds is None else float(seconds)
    total = plan.units
    if math.isinf(seconds):
        plan.advance(total)
        return plan.result()
    count = 1
    while plan.done < total:
        count = min(count, total - plan.done)
        start = time.perf_counter()
        plan.advance(count)
        per_unit = (time.perf_counter() - start) / count
        count = max(1, min(4 * count, int(seconds / per_unit) if per_unit > 0 else 4 * count))
    return plan.result()


# ---- the MPI backend -----------------------------------------------------------------------
# The particles sharded over the ranks of an mpi4py communicator.
#
# Each rank holds a contiguous range of the network's fixed chunks (``_core.Shard``) and draws
# only those (each chunk has its own seed). The dynamics couple the particles only through the
# network's outputs: every sum over particles is taken per chunk, the chunks' sums are gathered
# on every rank (one allgather of n k values per chunk) and added in one fixed order, so that
# every rank holds the same outputs, residuals and recorded series, and the particles are the
# same, bit for bit, for any number of ranks and threads and as in one process. Gradients,
# weight decay and Langevin noise (keyed by the particle's index in the whole network) are local.
#
# Every collective waits at most ``timeout`` seconds: a rank that died or stopped makes the
# others raise :class:`MPITimeoutError` instead of hanging. Launch scripts with
# ``mpiexec -n P python -m mpi4py script.py`` so that an exception on one rank aborts them all.

#: Seconds a rank waits in a collective before it gives up (MPIBackend(timeout=...)).
DEFAULT_TIMEOUT = 600.0
#: The MPI tag of the parts of vectors sent to rank 0 for a file.
_FILE_TAG = 77


class MPITimeoutError(RuntimeError):
    """A collective of the MPI backend did not complete within its timeout: another rank died,
    stopped, or is not running the same program."""


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError("comm: the MPI backend needs mpi4py and an MPI library: pip install mpi4py mpich "
                          "(or mpi4py with the cluster's MPI: see the README, Running on a cluster)") from exc
    return MPI


def _checked_comm(MPI, comm):
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"comm: expected an mpi4py intracommunicator (e.g. MPI.COMM_WORLD), got {type(comm).__name__}")
    return comm


def _digest(value):
    """sha256 of a JSON-able value whose leaves may be numpy arrays (their dtype, shape and bytes)."""
    h = hashlib.sha256()

    def feed(v):
        if isinstance(v, np.ndarray):
            h.update(f"array{v.dtype.str}{v.shape}".encode())
            h.update(memoryview(np.ascontiguousarray(v)).cast("B"))
        elif isinstance(v, dict):
            h.update(b"{")
            for key in sorted(v):
                h.update(json.dumps(str(key)).encode())
                feed(v[key])
            h.update(b"}")
        elif isinstance(v, (list, tuple)):
            h.update(b"[")
            for item in v:
                feed(item)
            h.update(b"]")
        else:
            h.update(json.dumps(v, sort_keys=True, default=repr).encode())

    feed(value)
    return h.digest()


class _EngineExchange:
    """What the core's engine calls between its passes: the gather of one shard's chunk sums."""

    def __init__(self, backend, shard):
        self.backend, self.shard = backend, shard

    def gather(self, partials):
        return self.backend.gather(self.shard, partials)

    def all(self, ok):
        return self.backend.all(ok)


class MPIBackend(CPUBackend):
    """The OpenMP core on each rank of an mpi4py communicator, the particles sharded by chunks.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm, optional
        The processes that share the particles (default ``MPI.COMM_WORLD``). Every rank must make
        the same calls in the same order (the SPMD style of ``mpiexec -n P python script.py``).
    timeout : float
        Seconds a collective waits before raising :class:`MPITimeoutError` (default 600).

    Examples
    --------
    Run with ``mpiexec -n 2 python -m mpi4py script.py``::

        from mpi4py import MPI
        import mfntk as mf
        net = mf.TwoLayer(32, 2 ** 20, comm=MPI.COMM_WORLD)   # each rank draws half the particles
        traj = mf.simulate(net, mf.datasets.teacher_dataset(...), t_max=1.0, dt=0.01, comm=MPI.COMM_WORLD)
        print(traj.train_risk[-1])                           # the same on every rank
    """

    name = "mpi"
    _on = {}

    def __init__(self, comm=None, timeout=DEFAULT_TIMEOUT):
        MPI = _mpi()
        comm = _checked_comm(MPI, MPI.COMM_WORLD if comm is None else comm)
        timeout = float(timeout)
        if not timeout > 0:
            raise ValueError(f"timeout: must be positive, got {timeout}")
        self.comm, self.timeout = comm, timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._MPI = MPI

    @classmethod
    def on(cls, comm):
        """The backend of ``comm`` (one per communicator, with the default timeout)."""
        MPI = _mpi()
        key = MPI._handleof(_checked_comm(MPI, comm))
        if key not in cls._on or cls._on[key].comm is not comm:   # a freed communicator's handle is reused
            cls._on[key] = cls(comm)
        return cls._on[key]

    def __repr__(self):
        return f"MPIBackend(rank {self.rank} of {self.size}, timeout={self.timeout:g})"

    # ---- the processes of a run -------------------------------------------------------------
    def shard(self, N, chunk):
        """The chunks of N particles; this rank holds chunks [C r / P, C (r + 1) / P)."""
        return self.shard_of_rank(N, chunk, self.rank)

    def shard_of_rank(self, N, chunk, rank):
        """The shard rank ``rank`` holds."""
        count = _core.Shard(N, chunk).count
        return _core.Shard(N, chunk, count * rank // self.size, count * (rank + 1) // self.size)

    def send_to_root(self, values):
        """Send a flat array to rank 0 (which receives it with :meth:`receive`). Rank 0 writes the
        ranks' parts one after the other: the wait is bounded by the timeout for each rank."""
        values = np.ascontiguousarray(values)
        self._wait(self.comm.Isend(values, dest=0, tag=_FILE_TAG), "sending to rank 0", self.timeout * self.size)

    def receive(self, rank, size, dtype):
        """The flat array of ``size`` values rank ``rank`` sends with :meth:`send_to_root`."""
        values = np.empty(size, dtype=dtype)
        self._wait(self.comm.Irecv(values, source=rank, tag=_FILE_TAG), f"receiving from rank {rank}")
        return values

    def _wait(self, request, what, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        pause = 0.0
        while not request.Test():
            if time.monotonic() > deadline:
                raise MPITimeoutError(
                    f"{what}: rank {self.rank} of {self.size} waited {timeout:g} s for the other ranks; one of "
                    "them died, stopped or runs another program (launch with `python -m mpi4py` so that an error "
                    "on one rank stops all)")
            time.sleep(pause)
            pause = min(1e-3, pause * 2 + 1e-6)

    def gather(self, shard, partials):
        """Every chunk's block (count, m) on every rank, from this rank's (local chunks, m)."""
        partials = np.ascontiguousarray(partials)
        m = partials.shape[1] if partials.ndim == 2 else 0
        every = np.empty((shard.count, m), dtype=partials.dtype)
        shards = [self.shard_of_rank(shard.N, shard.chunk, r) for r in range(self.size)]
        sizes = [s.local_chunks * m for s in shards]
        starts = [s.begin * m for s in shards]
        request = self.comm.Iallgatherv(partials, [every, (sizes, starts)])
        self._wait(request, "gather of the chunks' sums")
        return every

    def all(self, ok):
        """Whether ``ok`` holds on every rank."""
        mine = np.array([1 if ok else 0], dtype=np.int32)
        out = np.zeros(1, dtype=np.int32)
        self._wait(self.comm.Iallreduce(mine, out, op=self._MPI.MIN), "agreement on finiteness")
        return bool(out[0])

    def check_same(self, name, value):
        """ValueError naming ``name`` when it differs between the ranks (compared by sha256)."""
        mine = np.frombuffer(_digest(value), dtype=np.uint8).copy()
        every = np.empty((self.size, mine.size), dtype=np.uint8)
        self._wait(self.comm.Iallgather(mine, every), f"check of {name}")
        differ = [r for r in range(self.size) if not np.array_equal(every[r], every[0])]
        if differ:
            raise ValueError(f"{name}: differs between the MPI ranks (rank{'s' if len(differ) > 1 else ''} "
                             f"{', '.join(map(str, differ))} against rank 0); every rank must pass the same {name}")

    def exchange(self, shard):
        return _EngineExchange(self, shard)

    def chunk_sum(self, shard, leaf):
        """As :meth:`CPUBackend.chunk_sum`: this rank's chunks' leaves, gathered on every rank (every
        chunk's leaf in memory at once: checked first) and combined by ``Shard.combine``."""
        from ._validation import check_memory
        starts = [start - shard.particle_begin for start, _ in shard.chunks]
        leaves = [leaf(starts[c], starts[c] + shard.chunks[c][1]) for c in range(shard.begin, shard.end)]
        # the leaves' shape and dtype, from a rank that has some (a rank may hold no chunk)
        mine = np.zeros(5, dtype=np.int64)
        if leaves:
            mine[0], mine[1] = 1, np.dtype(leaves[0].dtype).num
            mine[2:2 + leaves[0].ndim] = leaves[0].shape
            mine[4] = leaves[0].ndim
        every = np.empty((self.size, 5), dtype=np.int64)
        self._wait(self.comm.Iallgather(mine, every), "gather of the partial sums' shape")
        found = every[every[:, 0] == 1][0]
        shape = tuple(int(x) for x in found[2:2 + found[4]])
        dtype = next(t for t in (np.float64, np.float32) if np.dtype(t).num == found[1])
        size = math.prod(shape)
        check_memory(2.0 * shard.count * size * np.dtype(dtype).itemsize, "net",
                     f"the {shard.count} chunks' partial sums of shape {shape} gathered on every rank")
        local = np.stack(leaves).reshape(len(leaves), size) if leaves else np.zeros((0, size), dtype)
        return shard.combine(self.gather(shard, local).reshape((shard.count,) + tuple(shape)))


#: The backends by name (the ``backend=`` argument; "mpi" on MPI.COMM_WORLD).
BACKENDS = {"cpu": CPUBackend, "mpi": MPIBackend}
_DEFAULT = {}


def get_backend(backend=None):
    """The backend for ``backend``: None (the default CPU backend), a name of
    :data:`BACKENDS`, or a :class:`Backend` instance (returned as is)."""
    if backend is None:
        backend = "cpu"
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: unknown value {backend!r}; expected one of {', '.join(map(repr, BACKENDS))} "
                         "or a mfntk Backend instance")
    if backend not in _DEFAULT:
        _DEFAULT[backend] = BACKENDS[backend]()
    return _DEFAULT[backend]


def backend_for(backend=None, comm=None):
    """The backend of ``backend=`` and ``comm=`` arguments: with a communicator, the MPI backend on
    it (``backend`` then None, "mpi", or an MPIBackend on the same communicator)."""
    if comm is None:
        return get_backend(backend)
    if isinstance(backend, MPIBackend):
        if backend.comm is not comm:
            raise ValueError("comm: differs from the communicator of the MPIBackend passed as backend")
        return backend
    if backend not in (None, "mpi"):
        raise ValueError(f"backend: {backend!r} cannot shard over comm; leave it None (the MPI backend)")
    return MPIBackend.on(comm)
