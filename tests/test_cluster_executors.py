"""Studies on cluster executors: a dask.distributed LocalCluster, mpi4py's MPIPoolExecutor
under mpiexec and Ray give the same tables, bit for bit, as the runs in this process; a run
that fails or is interrupted on a cluster worker reaches the caller as it does from a
process pool, and leaves the cluster's workers alive."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest

import mfntk
from mfntk import studies
from mfntk.studies import _base

DATA = dict(d=5, n_train=100, n_test=200)
# the cheapest sweep of test_studies.py, with a third run so that a worker takes two
SWEEP = dict(alphas=[1.0, 4.0, 16.0], widths=[16], t_max=0.5, dt=0.1)
MPI_RANKS = 3            # the script's rank and two workers
MPI_TIMEOUT = 120        # s; the run takes about 3 s
RAY_TASK_DELAY = 0.5     # s before the task of the cancel test has an effect


@pytest.fixture(scope="module")
def data():
    return studies.default_data(**DATA)


@pytest.fixture(scope="module")
def serial(data):
    return studies.alpha_sweep(data, workers=1, threads=1, **SWEEP)


def assert_same_table(table, reference):
    """Every column but the wall time equal, bit for bit (nan == nan)."""
    assert table.columns == reference.columns
    assert len(table) == len(reference) == len(SWEEP["alphas"]) * len(SWEEP["widths"])
    for column in reference.columns:
        if column != "wall_time":
            np.testing.assert_array_equal(table[column], reference[column], err_msg=column)


def value_or_fail(task):
    """A run that returns its "value", or fails as a bad run does (ValueError)."""
    if task.get("fail"):
        raise ValueError(f"run {task['value']} failed")
    return task["value"]


def value_or_interrupt(task):
    """A run that returns its "value", or was interrupted (Ctrl-C inside Simulation.run)."""
    if task.get("interrupted"):
        _base.completed(types.SimpleNamespace(interrupted=True, t=np.array([0.0, 0.25])))
    return task["value"]


def three_runs(flag):
    return [{"value": 1}, {"value": 2, flag: True}, {"value": 3}]


# ---------------------------------------------------------------------------------------
# dask.distributed
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    import cloudpickle
    import psutil
    from multiprocessing import resource_tracker

    # started once per process and kept to its end: never a process the cluster leaves behind
    resource_tracker.ensure_running()

    # the workers cannot import this file: its functions travel by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    _, alive = psutil.wait_procs(left, timeout=10)
    assert not alive, f"processes left by the dask cluster: {[p.cmdline() for p in alive]}"


def dask_workers(client):
    return sorted(client.scheduler_info()["workers"])


def test_dask_executor_gives_the_same_table(dask_client, data, serial):
    result = studies.alpha_sweep(data, executor=dask_client.get_executor(), progress=False, **SWEEP)
    assert_same_table(result.table, serial.table)


def test_dask_failing_run_raises_its_error(dask_client):
    workers = dask_workers(dask_client)
    with pytest.raises(ValueError, match="run 2 failed"):
        _base.run_tasks(value_or_fail, three_runs("fail"), executor=dask_client.get_executor(), progress=False)
    assert dask_workers(dask_client) == workers
    # the executor still serves runs
    assert _base.run_tasks(value_or_fail, three_runs("ok"), executor=dask_client.get_executor(),
                           progress=False) == [1, 2, 3]


def test_dask_interrupted_run_stops_the_study(dask_client):
    """An interrupted run reaches the caller as StudyInterrupted, not as a dead worker that
    dask retries elsewhere (a KeyboardInterrupt raised by a task kills a dask worker)."""
    workers = dask_workers(dask_client)
    with pytest.raises(studies.StudyInterrupted, match="interrupted after") as info:
        _base.run_tasks(value_or_interrupt, three_runs("interrupted"), executor=dask_client.get_executor(),
                        progress=False)
    results = info.value.results
    assert results[1] is None and info.value.total == 3
    assert all(r in (None, v) for r, v in zip(results, [1, 2, 3]))
    assert dask_workers(dask_client) == workers


# ---------------------------------------------------------------------------------------
# mpi4py.futures under mpiexec
# ---------------------------------------------------------------------------------------

MPI_SCRIPT = textwrap.dedent("""
    import json
    import sys

    from mpi4py.futures import MPIPoolExecutor

    from mfntk import studies

    if __name__ == "__main__":
        data_options, sweep, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
        with MPIPoolExecutor() as executor:
            result = studies.alpha_sweep(studies.default_data(**data_options), executor=executor,
                                         progress=False, **sweep)
        result.table.to_csv(out)
""")


def find_mpiexec():
    """The mpiexec of this Python's environment (the mpich wheel's), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def test_mpi_pool_executor_gives_the_same_table(tmp_path, serial):
    pytest.importorskip("mpi4py.futures", reason="mpi4py is not installed")
    mpiexec = find_mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec (pip install mpich, or an MPI library on PATH)")
    script, out = tmp_path / "sweep.py", tmp_path / "alpha.csv"
    script.write_text(MPI_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(mfntk.__file__).parents[1])] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    cmd = [mpiexec, "-n", str(MPI_RANKS), sys.executable, "-m", "mpi4py.futures", str(script),
           json.dumps(DATA), json.dumps(SWEEP), str(out)]
    # a session of its own, so that a hung run is stopped with all its ranks
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=MPI_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"mpiexec did not finish in {MPI_TIMEOUT} s:\n{output}")
    assert proc.returncode == 0, output
    table = studies.Table.from_csv(out)
    assert_same_table(table, studies.Table.from_csv(serial.table.to_csv()))


# ---------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install \"mfntk[ray]\")")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_ray_executor_gives_the_same_table(ray_cluster, data, serial):
    result = studies.alpha_sweep(data, executor=studies.RayExecutor(), progress=False, **SWEEP)
    assert_same_table(result.table, serial.table)


def test_ray_failing_and_interrupted_runs(ray_cluster):
    executor = studies.RayExecutor(num_cpus=1)
    with pytest.raises(ValueError, match="run 2 failed"):
        _base.run_tasks(value_or_fail, three_runs("fail"), executor=executor, progress=False)
    with pytest.raises(studies.StudyInterrupted) as info:
        _base.run_tasks(value_or_interrupt, three_runs("interrupted"), executor=executor, progress=False)
    assert info.value.results[1] is None


def touch_after(path, delay):
    time.sleep(delay)
    Path(path).touch()


def test_ray_executor_cancel_stops_the_task(ray_cluster, tmp_path):
    """Cancelling the future of a running task cancels the Ray task (a plain ObjectRef.future() does not)."""
    executor = studies.RayExecutor()
    executor.submit(touch_after, tmp_path / "warm-up", 0.0).result(timeout=60)   # a worker is up
    marker = tmp_path / "ran"
    future = executor.submit(touch_after, marker, RAY_TASK_DELAY)
    assert future.cancel() and future.cancelled()
    time.sleep(4 * RAY_TASK_DELAY)
    assert not marker.exists()
