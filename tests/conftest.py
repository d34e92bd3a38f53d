import os
import signal
import threading
import time

import numpy as np
import pytest

# Relative tolerances of the core against the float64 numpy reference, per dtype.
RTOL = {np.float64: 1e-11, np.float32: 3e-5}


def close(actual, expected, dtype, scale=None):
    """max |actual - expected| <= RTOL[dtype] * scale (default: max |expected|, at least 1)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = max(np.abs(expected).max(), 1.0) if scale is None else scale
    err = np.abs(actual - expected).max()
    assert err <= RTOL[np.dtype(dtype).type] * scale, f"max error {err:.3g} > {RTOL[np.dtype(dtype).type]:.1g} * {scale:.3g}"


@pytest.fixture(params=["portable", "avx2", "avx512"])
def simd(request):
    """Each instruction set of the core's SIMD kernels in turn (the process-wide choice restored
    after); skipped where this CPU or build does not run it."""
    import mfntk as mf
    from mfntk import _core
    if not _core.simd_supported(request.param):
        pytest.skip(f"this CPU or build runs no {request.param} kernels")
    previous = mf.set_simd(request.param)
    yield request.param
    mf.set_simd(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def interrupt_after(monkeypatch, step):
    """Make a simulation raise KeyboardInterrupt (as Ctrl-C would) right after its record at ``step``."""
    import mfntk as mf
    record = mf.Simulation._record

    def record_then_stop(sim):
        record(sim)
        if sim.step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(mf.Simulation, "_record", record_then_stop)


# ---- computations driven in units of work (mfntk._backend._drive) ----------------------------
CTRL_C_LATENCY = 3.0  # s from the signal to KeyboardInterrupt (calls of about _backend.CHUNK_SECONDS = 1 s)


class CountingPlan:
    """A core computation whose advance calls are counted."""

    def __init__(self, plan):
        self.plan, self.calls = plan, 0

    units = property(lambda self: self.plan.units)
    done = property(lambda self: self.plan.done)

    def advance(self, count):
        self.calls += 1
        self.plan.advance(count)

    def result(self):
        return self.plan.result()


def interrupted_after(call, delay):
    """Run call() with a SIGINT sent from another thread after `delay` s; the seconds from the
    signal to the KeyboardInterrupt (which must come)."""
    state = {"armed": True}

    def handler(signum, frame):
        state["received"] = time.perf_counter()
        if state["armed"]:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, handler)
    timer = threading.Timer(delay, lambda: (state.__setitem__("sent", time.perf_counter()),
                                            os.kill(os.getpid(), signal.SIGINT)))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            call()
        raised = time.perf_counter()
    finally:
        state["armed"] = False  # a late signal is swallowed, never raised into pytest
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, old)
    return raised - state["sent"]
