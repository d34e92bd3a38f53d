"""Tests of the mfntk command line: help at every level, the demo, run/resume/plot/study."""

import json

import pytest

from mfntk import cli


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "mean-field" in out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "usage: mfntk" in capsys.readouterr().out


def test_demo_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--out", "--threads", "--quiet"):
        assert opt in out


def test_bad_threads_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--threads", "0"])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_demo_writes_summary_and_figures(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "scaling" in printed and "ntk" in printed
    for name in ("summary.json", "risk.png", "lazy_rich.png", "particles.png"):
        path = out / name
        assert path.is_file() and path.stat().st_size > 1000, name
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= {"problem", "runs", "files"}
    runs = {r["scaling"]: r for r in summary["runs"]}
    assert set(runs) == {"mf", "ntk"}
    from mfntk._demo import SUMMARY_KEYS
    for r in runs.values():
        assert set(r) >= set(SUMMARY_KEYS)
        # both runs fit the training set well below the initial risk
        assert r["train_risk"] < 0.05 * r["train_risk_0"]
    mf_run, ntk_run = runs["mf"], runs["ntk"]
    assert ntk_run["alpha"] == pytest.approx(mf_run["width"] ** 0.5)
    # rich vs lazy: the mean-field particles travel O(1), the NTK ones O(1/alpha)
    assert mf_run["displacement"] > 5 * ntk_run["displacement"]
    assert mf_run["kernel_distance"] > 0.5 > 0.2 > ntk_run["kernel_distance"]
    assert ntk_run["linearized_distance"] < mf_run["linearized_distance"]
    # feature learning generalises better on a single-neuron teacher
    assert mf_run["test_risk"] < 0.5 * ntk_run["test_risk"]

