"""Convergence studies at tiny size: fitted slopes against theory, tidy tables and their
exports, parallel and pluggable executors, and argument errors."""

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mfntk import studies

SERIAL = dict(workers=1, threads=1)
# Tolerances on fitted slopes (one seed each; the spread over seeds is quoted beside each).
WIDTH_TOL = 0.15     # slopes of -0.5 over N = 8..128 with 4 repeats: seeds 0-2 gave -0.48 .. -0.60
ORDER_TOL = 0.1      # observed orders: within 0.03 of 1, 2, 4 at these steps
LAZY_TOL = 0.1       # lazy-regime slopes in alpha: within 0.02 of -1 and -2


@pytest.fixture(scope="module")
def data():
    return studies.default_data(d=5, n_train=100, n_test=200)


@pytest.fixture(scope="module")
def width_result(data):
    return studies.width(data, widths=[8, 16, 32, 64, 128], n_ref=2048, t_max=2.0, dt=0.1, repeats=4, **SERIAL)


def test_width_study_rate(width_result):
    res = width_result
    assert res.table.columns[:6] == ["width", "rms_distance", "function_gap", "risk_gap", "w2_coupled",
                                     "w2_sampling"]
    assert res.table["width"].tolist() == [8, 16, 32, 64, 128]
    for q in ("rms_distance", "function_gap"):
        fit = res.fit(q)
        assert fit.theory == -0.5
        assert abs(fit.slope + 0.5) < WIDTH_TOL, fit
        assert fit.x.tolist() == [8, 16, 32, 64, 128]       # the points used are reported
    assert any("n_ref = 2048" in n for n in res.notes)
    assert res.settings["n_ref"] == 2048


def test_width_study_wasserstein(width_result):
    pytest.importorskip("ot")
    t = width_result.table
    # the exact optimal coupling can only beat the synchronous one
    assert np.all(t["w2_coupled"] <= t["rms_distance"] * (1 + 1e-9))
    fit = width_result.fit("w2_sampling")
    assert fit.theory == pytest.approx(-1 / 6)               # D = k + d = 6
    assert -0.45 < fit.slope < 0.0                           # slow, dimension-dependent sampling rate
    assert any("N^-1/6" in n for n in width_result.notes)


def test_width_study_without_pot(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "ot", None)             # import ot -> ImportError
    res = studies.width(data, widths=[8, 16], n_ref=32, t_max=0.2, dt=0.1, **SERIAL)
    assert np.all(np.isnan(res.table["w2_sampling"].astype(float)))
    assert any("POT is not installed" in n for n in res.notes)
    assert [f.quantity for f in res.fits] == ["rms_distance", "function_gap", "risk_gap"]


def test_width_study_symmetric_coupling(data):
    res = studies.width(data, widths=[8, 16], n_ref=64, t_max=0.5, dt=0.1, net={"symmetric": True}, w2=False,
                        **SERIAL)
    assert np.all(res.table["rms_distance"] > 0)


def test_time_step_orders(data):
    res = studies.time_step(data, dts=[0.25, 0.125, 0.0625, 0.03125], width=32, **SERIAL)
    for method, order in studies.ORDERS.items():
        fit = res.fit("error", method)
        assert fit.theory == order
        assert abs(fit.slope - order) < ORDER_TOL, fit
    assert len(res.table) == 12
    assert all(res.table["used_in_fit"])


def test_time_step_floor(data):
    res = studies.time_step(data, methods=["rk4"], dts=[0.02, 0.01], width=8, t_max=0.04, floor=1.0, **SERIAL)
    assert not any(res.table["used_in_fit"])
    assert res.fits == []
    assert any("fewer than two errors above the floor" in n for n in res.notes)


def test_alpha_sweep_lazy_slopes(data):
    res = studies.alpha_sweep(data, alphas=[1, 4, 16, 32, 64, 128], widths=[64], t_max=10.0, dt=0.1, **SERIAL)
    t = res.table
    assert len(t) == 6 and t["alpha_over_sqrt_width"][2] == pytest.approx(2.0)
    assert res.fit("displacement").theory == -1.0
    assert abs(res.fit("displacement").slope + 1.0) < LAZY_TOL
    assert abs(res.fit("kernel_distance").slope + 2.0) < LAZY_TOL
    assert abs(res.fit("max_linearized_distance").slope + 2.0) < LAZY_TOL
    assert res.fit("displacement").x.tolist() == [16, 32, 64, 128]     # alpha >= 2 sqrt(64)
    # rich training moves the features and generalises better on a single-neuron teacher
    assert t["kernel_distance"][0] > 10 * t["kernel_distance"][-1]
    assert t["test_risk"][0] < t["test_risk"][-1]
    assert np.all(np.isfinite(t["time_to_kappa"].astype(float)))
    assert np.all(t["steps_to_kappa"] == np.round(t["time_to_kappa"].astype(float) / 0.1))


def test_tables_export(data, tmp_path):
    res = studies.time_step(data, methods=["euler"], dts=[0.2, 0.1], width=8, t_max=0.4, **SERIAL)
    csv_text = res.to_csv()
    lines = csv_text.strip().splitlines()
    assert lines[0] == ",".join(res.table.columns) and len(lines) == 3
    doc = json.loads(res.to_json())
    assert doc["study"] == "dt" and len(doc["rows"]) == 2 and doc["fits"][0]["group"] == "euler"
    assert sorted(doc["fits"][0]["x"]) == [0.1, 0.2]
    paths = res.save(tmp_path / "out")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["dt.csv", "dt.json", "dt.png"]
    assert "slope" in res.summary() and "theory +1" in res.summary()
    assert json.loads(res.table.to_json())[0]["method"] == "euler"


def test_fit_loglog():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    fit = studies.fit_loglog(x, 3.0 * x ** -0.5, "q", theory=-0.5)
    assert fit.slope == pytest.approx(-0.5) and np.exp(fit.intercept) == pytest.approx(3.0)
    assert fit.stderr == pytest.approx(0.0, abs=1e-12)
    fit = studies.fit_loglog([1, 2, 3, 4], [1.0, np.nan, 0.0, 0.25], "q")
    assert fit.x.tolist() == [1.0, 4.0]                       # non-finite and zero points left out
    with pytest.raises(ValueError, match="fewer than two"):
        studies.fit_loglog([1, 2], [1.0, -1.0], "q")


def _small_sweep(data, **kw):
    return studies.alpha_sweep(data, alphas=[1.0, 16.0], widths=[16], t_max=0.5, dt=0.1, **kw)


def test_pluggable_executor_gives_the_same_table(data):
    serial = _small_sweep(data, **SERIAL)
    with ThreadPoolExecutor(max_workers=2) as ex:
        threaded = _small_sweep(data, executor=ex, threads=2)
    for col in ("test_risk", "displacement", "kernel_distance"):
        np.testing.assert_array_equal(serial.table[col], threaded.table[col])


def test_process_pool(data):
    serial = _small_sweep(data, **SERIAL)
    parallel = _small_sweep(data, workers=2, threads=2)
    np.testing.assert_array_equal(serial.table["displacement"], parallel.table["displacement"])


def test_thread_split():
    assert studies._base._split(10, None, 4) == (4, 1)
    assert studies._base._split(2, None, 8) == (2, 4)
    assert studies._base._split(3, 1, 8) == (1, 8)


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="widths: must not be empty"):
        studies.width(data, widths=[], **SERIAL)
    with pytest.raises(ValueError, match="n_ref"):
        studies.width(data, widths=[8, 16], n_ref=20, **SERIAL)
    with pytest.raises(ValueError, match="scaling"):
        studies.width(data, widths=[8], scaling="ntk", **SERIAL)
    with pytest.raises(ValueError, match="net: unknown option 'width'"):
        studies.time_step(data, net={"width": 3}, **SERIAL)
    with pytest.raises(ValueError, match="methods"):
        studies.time_step(data, methods=["leapfrog"], **SERIAL)
    with pytest.raises(ValueError, match="dts"):
        studies.time_step(data, dts=[0.1, -0.1], **SERIAL)
    with pytest.raises(TypeError, match="executor"):
        _small_sweep(data, executor=object())
    with pytest.raises(ValueError, match="workers"):
        _small_sweep(data, workers=0)


@pytest.mark.slow
def test_width_study_rate_larger(data):
    res = studies.width(data, widths=[64, 128, 256, 512, 1024], n_ref=16384, t_max=5.0, dt=0.05, repeats=4)
    for q in ("rms_distance", "function_gap"):
        assert abs(res.fit(q).slope + 0.5) < 0.1, res.fit(q)


# ---------------------------------------------------------------------------------------
# saved results read back; the registry
# ---------------------------------------------------------------------------------------

def test_result_load_round_trip(data, tmp_path):
    from mfntk import plot
    res = studies.alpha_sweep(data, alphas=[1.0, 16.0, 32.0], widths=[8, 16], t_max=0.3, dt=0.1, lazy_from=10,
                              **SERIAL)
    paths = res.save(tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["alpha.csv", "alpha.json", "alpha.png", "alpha_phase.png"]
    back = studies.StudyResult.load(tmp_path / "alpha.json")
    assert back.to_json() == res.to_json()               # table, fits, settings, notes: every number
    assert back.fit("displacement", "N=16").slope == res.fit("displacement", "N=16").slope
    table_only = studies.StudyResult.load(tmp_path / "alpha.csv")
    assert table_only.name == "alpha" and table_only.fits == [] and not table_only.partial
    assert table_only.to_csv() == res.to_csv()           # types and floats read back exactly
    assert table_only.table["width"].dtype.kind == "i"
    for loaded in (back, table_only):                    # re-plotted without running the study again
        assert loaded.figure().axes
        assert plot.phase_diagram(loaded, "test_risk").axes
    with pytest.raises(ValueError, match="not a study result"):
        (tmp_path / "other.json").write_text("{}")
        studies.StudyResult.load(tmp_path / "other.json")
    with pytest.raises(ValueError, match=".json or .csv"):
        studies.StudyResult.load(tmp_path / "alpha.png")


def test_registry_entries():
    assert list(studies.STUDIES) == ["width", "dt", "alpha"]
    for name, entry in studies.STUDIES.items():
        assert entry.name == name and callable(entry.run) and callable(entry.figure)
        assert set(entry.net_defaults) <= set(studies.net_keys())
        # the run function's keyword options are the option set's, with its defaults
        import inspect
        sig = inspect.signature(entry.run).parameters
        for key, default in entry.options.defaults().items():
            assert sig[key].default == default, (name, key)
        assert "{options}" not in entry.run.__doc__ and "Parameters" in entry.run.__doc__
    assert studies.STUDIES["width"].run is studies.width
    with pytest.raises(TypeError, match="width: unknown option 'widhts'"):
        studies.width(widhts=[8])


# ---------------------------------------------------------------------------------------
# Ctrl-C: an interrupted run never enters a table
# ---------------------------------------------------------------------------------------

@pytest.fixture
def interrupt_run(monkeypatch):
    """arm(k): the k-th Simulation.run from now returns its trajectory marked interrupted,
    as it does on Ctrl-C; returns the list of calls made."""
    from mfntk import _simulate
    original = _simulate.Simulation.run

    def arm(k):
        calls = []

        def run(self, *args, **kwargs):
            traj = original(self, *args, **kwargs)
            calls.append(traj)
            if len(calls) == k:
                traj.interrupted = True
            return traj

        monkeypatch.setattr(_simulate.Simulation, "run", run)
        return calls

    return arm


DT_SMALL = dict(methods=["euler", "heun"], dts=[0.2, 0.1], width=8, t_max=0.4)


def test_interrupted_reference_gives_no_table(data, interrupt_run):
    calls = interrupt_run(1)                              # the rk4 reference of the time-step study
    with pytest.raises(KeyboardInterrupt) as info:
        studies.time_step(data, **DT_SMALL, **SERIAL)
    exc = info.value
    assert isinstance(exc, studies.StudyInterrupted)
    assert len(calls) == 1                                # the study stopped at once
    assert (exc.completed, exc.total) == (0, 5) and exc.result is None
    assert "interrupted after 0 of 5 runs" in str(exc)


def test_interrupted_study_keeps_the_completed_rows_only(data, interrupt_run):
    full = studies.time_step(data, **DT_SMALL, **SERIAL)
    calls = interrupt_run(3)                              # reference, (euler, 0.2), then (euler, 0.1) interrupted
    with pytest.raises(studies.StudyInterrupted) as info:
        studies.time_step(data, **DT_SMALL, **SERIAL)
    assert len(calls) == 3
    part = info.value.result
    assert part.partial and part.notes[0].startswith("PARTIAL: time-step study interrupted after 2 of 5 runs")
    assert len(part.table) == 1 and part.fits == []
    assert part.table.records()[0]["error"] == full.table.records()[0]["error"]
    assert "PARTIAL" in part.summary() and json.loads(part.to_json())["partial"] is True


def test_interrupted_width_study_drops_the_repetition_without_reference(data, interrupt_run):
    kw = dict(widths=[8, 16], n_ref=32, t_max=0.2, dt=0.1, repeats=2, w2=False, **SERIAL)
    full = studies.width(data, **kw)
    assert full.table["repeats"].tolist() == [2, 2]
    interrupt_run(4)                                      # the reference of the second repetition
    with pytest.raises(studies.StudyInterrupted) as info:
        studies.width(data, **kw)
    part = info.value.result
    assert part.table["repeats"].tolist() == [1, 1]       # the first repetition only
    one = studies.width(data, **dict(kw, repeats=1))
    np.testing.assert_array_equal(part.table["rms_distance"], one.table["rms_distance"])


def test_interrupted_pool_run_is_not_used(data):
    """A run interrupted inside an executor reaches the study as KeyboardInterrupt, not as a row."""
    def interrupted(spec):
        raise KeyboardInterrupt("run interrupted at t = 0.1")

    from mfntk.studies import _base
    with ThreadPoolExecutor(max_workers=2) as ex:
        with pytest.raises(studies.StudyInterrupted) as info:
            _base.run_tasks(interrupted, [{}, {}], executor=ex, threads=2, progress=False)
    assert info.value.results == [None, None]
    traj = type("T", (), {"interrupted": True, "t": np.array([0.0, 0.5])})()
    with pytest.raises(KeyboardInterrupt, match="t = 0.5"):
        _base.completed(traj)
