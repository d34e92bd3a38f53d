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
