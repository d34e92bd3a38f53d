"""Executors of a study's runs that :mod:`concurrent.futures` does not provide.

dask.distributed (``Client.get_executor()``) and mpi4py (``MPIPoolExecutor``) already have
the interface :func:`~mfntk.studies.run_tasks` uses; Ray does not, and gets an adapter here.
"""
from __future__ import annotations

import concurrent.futures as cf

__all__ = ["RayExecutor"]


def _apply(fn, args, kwargs):
    """The Ray task of every :meth:`RayExecutor.submit` (``ray.remote`` takes functions only)."""
    return fn(*args, **kwargs)


class RayExecutor:
    """Run a study's runs as Ray tasks: ``executor=RayExecutor()``.

    Each :meth:`submit` is one Ray task; the Ray cluster is the one ``ray.init`` connected
    this process to (Ray starts a local one on the first task otherwise). Cancelling a
    returned future that has not finished cancels its task (``ray.cancel``), which is how a
    study stops its pending runs after a failure or an interrupt.

    Parameters
    ----------
    **options
        Options of every task, as for ``ray.remote``: ``num_cpus`` (default 1; match it to
        the OpenMP threads of a run, ``threads // workers`` of the study), ``resources``,
        ``max_retries``, ...

    Raises
    ------
    ImportError
        When Ray is not installed (``pip install "mfntk[ray]"``).

    Examples
    --------
    >>> import ray                                                  # doctest: +SKIP
    >>> ray.init(address="auto")                                    # doctest: +SKIP
    >>> result = mf.studies.width(executor=RayExecutor(num_cpus=4), workers=1, threads=4)  # doctest: +SKIP
    """

    def __init__(self, **options):
        try:
            import ray
        except ImportError as exc:
            raise ImportError('RayExecutor needs Ray: pip install "mfntk[ray]"') from exc
        self._ray = ray
        self._options = dict(options)
        self._apply = ray.remote(**self._options)(_apply) if self._options else ray.remote(_apply)

    def submit(self, fn, /, *args, **kwargs):
        """Start ``fn(*args, **kwargs)`` as a Ray task; a :class:`concurrent.futures.Future` of its result."""
        ref = self._apply.remote(fn, args, kwargs)
        future = cf.Future()
        ray = self._ray

        def cancel_task(fut):
            if fut.cancelled():
                ray.cancel(ref)

        def transfer(done):
            try:
                exc = done.exception()
                if exc is None:
                    future.set_result(done.result())
                else:
                    future.set_exception(exc)
            except cf.InvalidStateError:         # cancelled meanwhile
                pass

        # `future` stays pending until the task ends, so that cancel() succeeds on a running task too
        future.add_done_callback(cancel_task)
        ref.future().add_done_callback(transfer)
        return future

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Nothing to release: the Ray cluster belongs to the caller (``ray.shutdown()``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        return f"RayExecutor({opts})"
