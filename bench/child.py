"""Child process: run a list of tasks of ONE framework and write their results.

    python -m bench.child TASKS.json RESULTS.json

Each task: seeded inputs (numpy, float64 then cast), warm-up call(s), then up to
``repeats`` timed calls (at least ``min_repeats``; stop early once the timed
calls exceed ``budget_s``), then the checksum of the last outputs. Results are
rewritten after every task so that a crash (e.g. killed for memory) leaves the
finished ones behind. Peak RSS is this process's ru_maxrss.
"""
from __future__ import annotations

import gc
import json
import resource
import sys
import time
import traceback

import numpy as np


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _short(e, limit=300):
    msg = f"{type(e).__name__}: {e}".strip().splitlines()
    return (msg[0] if msg else type(e).__name__)[:limit]


def run_task(task):
    from . import mfntk_runner, peers
    from .cases import CASES

    case = CASES[task["case"]]
    cfg, fw, threads = task["cfg"], task["framework"], task["threads"]
    res = {"rss_start_mib": _rss_mib()}

    if fw == "mfntk":
        try:
            mfntk_runner.load()
        except ImportError as e:
            return dict(res, status="unavailable", reason=str(e))
        prep = mfntk_runner.PREPARERS.get(case.name)
    else:
        prep = peers.PREPARERS.get((case.name, fw))
    if prep is None:
        return dict(res, status="failed", reason=f"no {fw} implementation of {case.name}")

    limiter = None if fw == "mfntk" else peers.set_threads(fw, threads)
    try:
        inp = case.inputs(cfg)
        try:
            fn = prep(inp, cfg, threads) if fw == "mfntk" else prep(inp, cfg)
        except (ImportError, AttributeError) as e:  # the package or one of its names missing
            return dict(res, status="unavailable", reason=_short(e))
        res["rss_setup_mib"] = _rss_mib()

        warm = []
        out = None
        try:
            for _ in range(case.warmup):
                out = None
                t0 = time.perf_counter()
                out = fn()
                warm.append(time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - e.g. torch.compile failing on this machine
            traceback.print_exc()
            return dict(res, status="failed", reason=_short(e))

        times = []
        reps = task["repeats"]
        if case.max_repeats is not None:
            reps = min(reps, case.max_repeats)
        min_reps = min(task["min_repeats"], reps)
        for r in range(reps):
            out = None
            gc.collect()
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
            if r + 1 >= min_reps and sum(times) > task["budget_s"]:
                break
        res["rss_peak_mib"] = _rss_mib()

        if hasattr(fn, "outputs"):
            chk_out = fn.outputs(out)
        else:
            chk_out = out
        if case.check_needs_inputs:
            chk = case.check(chk_out, cfg, inp)
        else:
            chk = case.check(chk_out, cfg)
        out_dtype = None
        first = out[-1] if isinstance(out, tuple) else out
        if hasattr(first, "dtype"):
            out_dtype = str(first.dtype).replace("torch.", "")
    finally:
        if limiter is not None:
            limiter.restore_original_limits()

    return dict(res, status="ok", warmup_s=warm, times_s=times,
                median_s=float(np.median(times)), min_s=float(np.min(times)),
                repeats=len(times), out_dtype=out_dtype,
                checksum={k: np.asarray(v, dtype=np.float64).tolist() for k, v in chk.items()})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    tasks_path, out_path = argv
    with open(tasks_path) as fh:
        tasks = json.load(fh)
    results = []
    for task in tasks:
        t0 = time.perf_counter()
        try:
            r = run_task(task)
        except MemoryError as e:
            r = {"status": "failed", "reason": f"MemoryError: {e}"}
        except Exception as e:  # noqa: BLE001 - report and carry on with the next task
            traceback.print_exc()
            r = {"status": "failed", "reason": _short(e)}
        r["task_id"] = task["id"]
        r["wall_s"] = time.perf_counter() - t0
        results.append(r)
        with open(out_path, "w") as fh:
            json.dump(results, fh)
        gc.collect()
        print(f"[bench.child] {task['case']} {task['framework']} {r['status']} "
              f"{r.get('median_s', '')}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
