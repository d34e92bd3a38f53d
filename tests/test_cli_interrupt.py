"""``mfntk run`` stopped by Ctrl-C: the file keeps the run up to a last checkpoint, no figures
are made, the exit status is 130, and ``mfntk resume`` finishes the run."""
import os
import signal
import subprocess
import sys
import time

import pytest

import mfntk as mf
from mfntk import _simulate, cli

RUN = """
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
t_max = {t_max}
dt = 0.1
method = "heun"
record_every = 0.2

[output]
file = "tiny.h5"
checkpoint_every = 0.4
figures = true
"""


def test_interrupted_run_exits_130_after_its_last_checkpoint(tmp_path, capsys, monkeypatch):
    """Ctrl-C as the run sees it: the flag its SIGINT handler sets, raised before the first chunk ends."""
    class Flag(_simulate._InterruptFlag):
        def __enter__(self):
            super().__enter__()
            self.raised = True
            return self

    monkeypatch.setattr(_simulate, "_InterruptFlag", Flag)
    config = tmp_path / "tiny.toml"
    config.write_text(RUN.format(t_max=1.0))
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--out", str(out), "--threads", "1"]) == 130
    captured = capsys.readouterr()
    assert "(interrupted)" in captured.out
    assert "mfntk run: interrupted" in captured.err and "mfntk resume" in captured.err
    # no figures; the snapshots of the unfinished run wait in its parts folder
    assert sorted(p.name for p in out.iterdir()) == ["tiny.h5", "tiny.h5.parts"]
    traj = mf.load(out / "tiny.h5")
    assert traj.interrupted and not traj.complete and traj.t[-1] < 1.0
    assert cli.main(["resume", str(out / "tiny.h5"), "--threads", "1", "--quiet"]) == 130   # stopped again
    assert "mfntk resume: interrupted" in capsys.readouterr().err
    monkeypatch.undo()
    assert cli.main(["resume", str(out / "tiny.h5"), "--threads", "1", "--quiet"]) == 0
    done = mf.load(out / "tiny.h5")
    assert done.complete and done.t[-1] == pytest.approx(1.0)


def test_a_complete_run_still_exits_0(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(RUN.format(t_max=0.4).replace("figures = true", "figures = false"))
    assert cli.main(["run", str(config), "--out", str(tmp_path / "out"), "--threads", "1", "--quiet"]) == 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_sigint_to_mfntk_run_exits_130(tmp_path):
    """A real Ctrl-C (SIGINT) to a running ``mfntk run``: status 130 and a readable, resumable file."""
    config = tmp_path / "long.toml"
    config.write_text(RUN.format(t_max=1e5).replace("width = 16", "width = 256")
                      .replace("record_every = 0.2", "record_every = 10.0")
                      .replace("checkpoint_every = 0.4", "checkpoint_every = 10.0"))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(mf.__file__))] + os.environ.get("PYTHONPATH", "").split(os.pathsep))}
    proc = subprocess.Popen([sys.executable, "-c", "import sys, mfntk.cli; sys.exit(mfntk.cli.main())", "run",
                             str(config), "--out", str(out), "--threads", "1", "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = out / "tiny.h5"
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:   # the run has started writing
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "mfntk run: interrupted" in err
    traj = mf.load(path)
    assert traj.interrupted and not traj.complete
