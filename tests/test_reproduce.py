"""The framework of mfntk.reproduce: checks, files, report, registry and the command. The
entries themselves are tested in tests/test_reproduce_*.py (each at its quick size)."""
import json
import math

import numpy as np
import pytest

import mfntk as mf
from mfntk.cli import main
from mfntk.reproduce import _base
from mfntk.studies import Table


def test_a_check_agrees_within_its_tolerance_only():
    assert _base.Check("x", 1.04, 1.0, 0.05).agrees
    assert not _base.Check("x", 1.06, 1.0, 0.05).agrees
    assert _base.Check("x", 10.4, 10.0, 0.05, relative=True).agrees
    assert not _base.Check("x", 10.6, 10.0, 0.05, relative=True).agrees
    assert not _base.Check("x", math.nan, 1.0, 0.5).agrees
    assert _base.Check("order", 0.3, None, holds=True, condition="NN below NT").agrees
    assert not _base.Check("order", 0.3, None, holds=False, condition="NN below NT").agrees
    assert "DISAGREES" in _base.Check("x", 2.0, 1.0, 0.1).describe()


def _mean_of_uniforms(size, workers, threads, seed):
    """A toy entry: the mean of m uniforms against 1/2, within 4 standard errors."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in (100, 1000) if size == "quick" else (100, 1000, 10000):
        u = rng.random(m)
        rows.append({"m": m, "mean": float(u.mean()), "theory": 0.5})
    checks = [_base.Check(f"mean (m = {r['m']})", r["mean"], 0.5, 4 * math.sqrt(1 / 12 / r["m"])) for r in rows]

    def figure(result):
        import matplotlib.figure
        fig = matplotlib.figure.Figure()
        ax = fig.add_subplot()
        ax.plot(result.table["m"], result.table["mean"], "o")
        return fig

    return _base.Reproduction("toy-mean", size, Table(rows), checks, figure, notes=["a test entry"])


@pytest.fixture
def toy_entry(monkeypatch):
    entry = _base.Entry(name="toy-mean", paper="Nobody (2026)", what="Figure 0", claim="uniforms average to 1/2",
                        seconds={"quick": 0.1, "full": 0.2}, run=_mean_of_uniforms)
    monkeypatch.setitem(_base.REPRODUCE, "toy-mean", entry)
    return entry


def test_reproduce_writes_table_checks_figure_and_report(tmp_path, toy_entry):
    result = mf.reproduce.reproduce("toy-mean", out=tmp_path / "out")
    assert result.agrees and result.size == "quick" and result.wall_time > 0
    doc = json.loads((tmp_path / "out" / "toy-mean.json").read_text())
    assert doc["agrees"] and doc["paper"] == "Nobody (2026)" and len(doc["checks"]) == 2
    assert [row["m"] for row in doc["table"]] == [100, 1000]
    table = Table.from_csv(tmp_path / "out" / "toy-mean.csv")
    np.testing.assert_array_equal(table["mean"], result.table["mean"])
    report = (tmp_path / "out" / "toy-mean.md").read_text()
    assert "uniforms average to 1/2" in report and "all checks agree (2/2)" in report and "toy-mean.png" in report
    assert (tmp_path / "out" / "toy-mean.png").read_bytes()[:4] == b"\x89PNG"


def test_the_same_seed_gives_the_same_numbers_and_full_adds_points(toy_entry):
    a, b = mf.reproduce.reproduce("toy-mean", seed=3), mf.reproduce.reproduce("toy-mean", seed=3)
    np.testing.assert_array_equal(a.table["mean"], b.table["mean"])
    assert len(mf.reproduce.reproduce("toy-mean", size="full").table) == 3


def test_bad_arguments_name_themselves(toy_entry):
    for kwargs, word in (({"name": "nope"}, "name"), ({"name": "toy-mean", "size": "huge"}, "size"),
                         ({"name": "toy-mean", "workers": 0}, "workers"), ({"name": "toy-mean", "seed": -1}, "seed")):
        with pytest.raises(ValueError, match=word):
            mf.reproduce.reproduce(**kwargs)


def test_an_entry_states_its_run_times_and_registers_once(toy_entry):
    with pytest.raises(ValueError, match="twice"):
        _base.register(toy_entry)
    with pytest.raises(ValueError, match="run time"):
        _base.register(_base.Entry("other", "p", "w", "c", {"quick": 1.0}, _mean_of_uniforms))
    assert "toy-mean" in mf.reproduce.describe() and "quick ~0 s" in mf.reproduce.describe()


def test_every_registered_entry_is_complete():
    assert list(mf.reproduce.REPRODUCE) == ["gmmm-qf", "gmmm-mixture", "gmmm-relu", "lazy-vs-feature", "cob",
                                            "diag-linear", "mean-field-limit", "ntk-limit", "rf-nt-kernels"]
    for name, entry in mf.reproduce.REPRODUCE.items():
        assert entry.paper and entry.what and entry.claim and entry.seconds["quick"] <= 60, name
        assert callable(getattr(mf.reproduce, name.replace("-", "_"))), name


def test_command_lists_runs_and_reports_disagreement(tmp_path, toy_entry, capsys, monkeypatch):
    assert main(["reproduce", "--list"]) == 0
    assert "toy-mean" in capsys.readouterr().out
    assert main(["reproduce", "toy-mean", "--quick", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "toy-mean.md").exists()
    assert "all checks agree" in capsys.readouterr().out
    assert main(["reproduce", "--out", str(tmp_path)]) == 2
    assert "NAME" in capsys.readouterr().err
    monkeypatch.setattr(_base.Check, "agrees", property(lambda self: False))
    assert main(["reproduce", "toy-mean", "--out", str(tmp_path)]) == 1


def test_a_check_on_numpy_numbers_is_a_plain_bool_that_json_writes():
    check = _base.Check("x", np.float64(1.01), np.float64(1.0), 0.05)
    assert type(check.agrees) is bool
    assert json.loads(json.dumps(check.as_dict()))["agrees"] is True
