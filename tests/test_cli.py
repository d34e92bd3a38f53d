"""Tests of the mfntk command line: help at every level, the demo, run/resume/plot/study."""

import json

import numpy as np

import pytest

from mfntk import cli, studies


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



# ---------------------------------------------------------------------------------------
# run / resume / plot / study
# ---------------------------------------------------------------------------------------

import pathlib  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

TINY_RUN = """
[data]
kind = "teacher"
teacher = "single_neuron"
activation = "tanh"
d = 4
n_train = 30
n_test = 20

[net]
width = 16
activation = "tanh"
seed = 1

[run]
t_max = 1.0
dt = 0.1
method = "heun"
record_every = 0.2
diagnostics = true

[output]
file = "tiny.h5"
checkpoint_every = 0.4
figures = false
"""


@pytest.mark.parametrize("command", ["demo", "run", "resume", "plot", "study"])
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: mfntk {command}" in out and "--threads" in out and "--quiet" in out


def test_run_an_example_config(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", str(EXAMPLES / "online_langevin.toml"), "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "train risk" in printed and "wrote" in printed
    for name in ("run.h5", "risk.png", "particles.png", "kernel.png"):
        assert (out / name).stat().st_size > 1000, name
    import mfntk._io as io
    traj = io.load(out / "run.h5")
    assert traj.complete and traj.config["online"] and traj.config["temperature"] == 1e-4
    assert traj.test_risk[-1] < traj.test_risk[0]
    np.testing.assert_allclose(traj.snapshots.t, [0.0, 5.0, 10.0, 15.0, 20.0])


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_config_is_valid(name):
    kind = "study" if name[:-5] in studies.STUDIES else "run"
    cfg = cli.read_config(EXAMPLES / name, kind, study=name[:-5] if kind == "study" else None)
    assert cfg["data"]


def test_run_resume_plot(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_RUN)
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--out", str(out), "--quiet", "--threads", "1"]) == 0
    assert capsys.readouterr().out == ""
    path = out / "tiny.h5"
    assert cli.main(["resume", str(path), "--t-max", "1.4", "--threads", "1"]) == 0
    assert "t = 1.4" in capsys.readouterr().out
    figs = tmp_path / "figs"
    assert cli.main(["plot", str(path), "--out", str(figs)]) == 0
    assert {p.name for p in figs.iterdir()} == {"risk.png", "lazy_rich.png", "diagnostics.png", "particles.png",
                                                "kernel.png"}
    assert cli.main(["plot", str(config)]) == 2          # not a trajectory: a clean error
    assert "not a readable HDF5 file" in capsys.readouterr().err


@pytest.mark.parametrize("edit, key", [
    (("dt = 0.1", "dtt = 0.1"), "run.dtt: unknown key"),
    (("dt = 0.1", "dt = -0.1"), "run.dt: must be > 0"),
    (("width = 16", 'width = "wide"'), "net.width: expected an int"),
    (('method = "heun"', 'method = "leapfrog"'), "run.method: unknown value 'leapfrog'"),
    (("[output]", "[outputs]"), "outputs: unknown table"),
    (("n_test = 20", "delta = 0.3"), "data.delta: not used by kind = 'teacher'"),
    (("d = 4", "d = 0"), "data.d: must be >= 1"),
    (("t_max = 1.0", ""), "run.t_max: missing"),
    (("[data]", "[data"), "not valid TOML"),
    (("diagnostics = true", "diagnostics = 1"), "run.diagnostics: expected True or False"),
    (("seed = 1", "scaling = -2"), "net.scaling"),
])
def test_bad_config_names_the_key(tmp_path, capsys, edit, key):
    config = tmp_path / "bad.toml"
    config.write_text(TINY_RUN.replace(*edit, 1))
    assert cli.main(["run", str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mfntk run: error: ") and str(config) in err and key in err, err


def test_bad_value_found_by_the_simulation_names_it(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(TINY_RUN.replace('method = "heun"', 'method = "heun"\ntemperature = 0.1'))
    assert cli.main(["run", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "method: temperature > 0" in capsys.readouterr().err


TINY_STUDY = """
[data]
kind = "teacher"
activation = "tanh"
d = 4
n_train = 30

[net]
activation = "tanh"

[study]
methods = ["euler", "heun"]
dts = [0.2, 0.1]
width = 8
t_max = 0.4
workers = 1
"""


def test_study_command(tmp_path, capsys):
    config = tmp_path / "dt.toml"
    config.write_text(TINY_STUDY)
    out = tmp_path / "study"
    assert cli.main(["study", "dt", str(config), "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "slope" in printed and "theory +2" in printed
    assert {p.name for p in out.iterdir()} == {"dt.csv", "dt.json", "dt.png"}
    config.write_text(TINY_STUDY.replace("width = 8", "widht = 8"))
    assert cli.main(["study", "dt", str(config), "--out", str(out)]) == 2
    assert "study.widht: unknown key" in capsys.readouterr().err
    config.write_text(TINY_STUDY.replace("dts = [0.2, 0.1]", "dts = [0.2, -0.1]"))
    assert cli.main(["study", "dt", str(config), "--out", str(out)]) == 2
    assert "study.dts[1]: must be > 0" in capsys.readouterr().err


def test_run_help_documents_every_data_kind(capsys):
    from mfntk import datasets
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert "kind = " + " | ".join(datasets.DATA_KINDS) in out
    for name, entry in datasets.DATA_KINDS.items():
        block = out.split(f'kind = "{name}": ', 1)[1]
        block = block.split("\n  kind = ", 1)[0]
        assert " ".join(entry.doc.split()) in " ".join(block.split()), name
        for key in entry.keys():
            assert f"{key} " in block, (name, key)


def test_mnist_and_npz_kinds_in_a_config(tmp_path):
    import gzip
    import struct
    images = np.random.default_rng(0).integers(0, 256, size=(12, 3, 3)).astype(np.uint8)
    labels = (np.arange(12) % 3).astype(np.uint8)
    for name, arr in (("img.gz", images), ("lab.gz", labels)):
        header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
        (tmp_path / name).write_bytes(gzip.compress(header + arr.tobytes()))
    np.savez(tmp_path / "a.npz", X=np.ones((4, 2)), y=np.zeros(4))
    config = tmp_path / "c.toml"

    def read(data):
        config.write_text(f"[data]\n{data}\n[net]\nwidth = 4\n\n[run]\nt_max = 1.0\ndt = 0.5\n")
        return cli.build_data(cli.read_config(config)["data"])

    data = read(f'kind = "mnist"\nimages_path = "{tmp_path / "img.gz"}"\nlabels_path = "{tmp_path / "lab.gz"}"\n'
                "n_classes = 3")
    assert (data.name, data.n, data.d, data.k) == ("mnist", 12, 9, 3)
    assert read(f'kind = "npz"\npath = "{tmp_path / "a.npz"}"').X.shape == (4, 2)
    with pytest.raises(cli.ConfigError, match=r"c.toml: data: .*No such file"):
        read(f'kind = "npz"\npath = "{tmp_path / "b.npz"}"')


def test_study_help_and_schema_are_read_from_the_registry(capsys, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["study", "--help"])
    out = capsys.readouterr().out
    for name, entry in studies.STUDIES.items():
        assert f"[study] keys of '{name}':" in out
        for key in entry.options.toml_keys():
            assert f"  {key} = " in out, (name, key)
    assert "{" + ",".join(studies.STUDIES) + "}" in out            # the choices
    config = tmp_path / "dt.toml"
    config.write_text(TINY_STUDY.replace('[net]\nactivation = "tanh"', '[net]\nwidth = 8'))
    assert cli.main(["study", "dt", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "net.width: unknown key" in capsys.readouterr().err
    config.write_text(TINY_STUDY.replace("t_max = 0.4", "t_max = 0.4\nn_ref = 64"))
    assert cli.main(["study", "dt", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "study.n_ref: unknown key; the keys of [study] for 'dt' are" in capsys.readouterr().err


def test_alpha_study_writes_the_phase_diagram(tmp_path, capsys):
    config = tmp_path / "alpha.toml"
    config.write_text(TINY_STUDY.split("[study]")[0] + "[study]\nalphas = [1.0, 16.0]\nwidths = [8, 16]\n"
                      "t_max = 0.2\nworkers = 1\n")
    out = tmp_path / "alpha"
    assert cli.main(["study", "alpha", str(config), "--out", str(out), "--threads", "1", "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} == {"alpha.csv", "alpha.json", "alpha.png", "alpha_phase.png"}
    assert (out / "alpha_phase.png").stat().st_size > 1000
    assert studies.StudyResult.load(out / "alpha.json").settings["widths"] == [8, 16]


@pytest.mark.parametrize("interrupted, rows", [(1, 0), (3, 1)])
def test_study_interrupted_exits_130_without_the_interrupted_run(tmp_path, capsys, monkeypatch, interrupted, rows):
    """Run number ``interrupted`` returns a trajectory marked interrupted (what Ctrl-C does):
    exit 130, no complete-study files, and only the rows of the runs before it."""
    from mfntk import _simulate
    original, calls = _simulate.Simulation.run, []

    def run(self, *args, **kwargs):
        traj = original(self, *args, **kwargs)
        calls.append(1)
        traj.interrupted = traj.interrupted or len(calls) == interrupted
        return traj

    monkeypatch.setattr(_simulate.Simulation, "run", run)
    config = tmp_path / "dt.toml"
    config.write_text(TINY_STUDY)
    out = tmp_path / "study"
    assert cli.main(["study", "dt", str(config), "--out", str(out), "--threads", "1", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert f"time-step study interrupted after {interrupted - 1} of 5 runs" in err
    assert len(calls) == interrupted
    if rows == 0:
        assert "nothing written" in err and not out.exists()
        return
    assert {p.name for p in out.iterdir()} == {"dt-partial.csv", "dt-partial.json"}
    part = studies.StudyResult.load(out / "dt-partial.json")
    assert part.partial and len(part.table) == rows and part.table.records()[0]["dt"] == 0.2
    assert studies.StudyResult.load(out / "dt-partial.csv").partial


LONG_WIDTH_STUDY = """
[data]
kind = "teacher"
activation = "tanh"
d = 4
n_train = 64

[net]
activation = "tanh"

[study]
widths = [8, 16]
n_ref = 65536
t_max = 10000.0
dt = 0.01
w2 = false
"""


def _spawned_workers(pid):
    """The pids of the multiprocessing "spawn" children of ``pid`` (Linux /proc)."""
    import pathlib
    found = []
    for task in pathlib.Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                cmdline = pathlib.Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return found


def _running(pid):
    import pathlib
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="finds the workers through /proc")
def test_ctrl_c_sent_to_the_parent_only_stops_a_parallel_study(tmp_path):
    """SIGINT to the parent alone (Jupyter's interrupt) stops the workers too, exits 130, writes no table."""
    import os
    import pathlib
    import signal
    import subprocess
    import sys
    import time

    import mfntk
    config = tmp_path / "width.toml"
    config.write_text(LONG_WIDTH_STUDY)                  # minutes of work per run
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(mfntk.__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "mfntk.cli", "study", "width", str(config), "--out", str(out),
                             "--workers", "2", "--threads", "2", "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a terminal's default disposition, even when this test runs where SIGINT is ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    workers = []
    try:
        deadline = time.monotonic() + 20
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            workers = _spawned_workers(proc.pid)
        assert len(workers) == 2, proc.poll()
        time.sleep(1.0)                                   # the workers are importing mfntk or running
        start = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        stopped_in = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "width study interrupted after 0 of 3 runs" in err and "nothing written" in err
    assert stopped_in < 10
    time.sleep(0.2)
    assert not [pid for pid in workers if _running(pid)]
    assert not out.exists()
