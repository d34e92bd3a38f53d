"""Command line and orchestration of the benchmark suite.

    python -m bench [--cases dd_step,ntk_gram] [--quick] [--repeats 5] [--out bench/results]

Plans tasks (case x configuration x framework), skips those whose estimated
memory exceeds the budget, runs each task in its own child process (with
--quick, all configurations of one case and framework share a process to keep
the start-up cost down), then compares checksums across frameworks, computes
rates and speed-ups, and writes <out>/<hostname>-<date>[-tag].{json,md,png}.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import machine, report
from .cases import CASES, GiB, ORDER, TOL, label

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(argv):
    ncpu = machine._cores()["usable"]
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=",".join(ORDER),
                   help="comma-separated case names (default: all): " + ", ".join(ORDER)
                        + "; the gemm case always runs unless --no-gemm")
    p.add_argument("--frameworks", default=None,
                   help="comma-separated subset, e.g. numpy,torch,jax (default: all)")
    p.add_argument("--match", default=None,
                   help="only configurations whose label contains every comma-separated "
                        "substring, e.g. 'n=4096 N=16384,float64 relu'")
    p.add_argument("--quick", action="store_true",
                   help="shrink every size (n/8, N/32) to check the harness in about a minute")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per task, at most (default 5; 3 with --quick)")
    p.add_argument("--min-repeats", type=int, default=None,
                   help="timed calls per task, at least (default 3; 2 with --quick)")
    p.add_argument("--budget", type=float, default=60.0,
                   help="stop repeating once the timed calls of a task exceed this many seconds "
                        "(default 60)")
    p.add_argument("--threads", type=int, default=ncpu,
                   help=f"threads for every framework (default: the {ncpu} usable cores)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                   help="output folder (default: bench/results)")
    p.add_argument("--tag", default=None, help="suffix of the result file names")
    p.add_argument("--mem-budget-gib", type=float, default=None,
                   help="memory a task may need (default: min(60%% of RAM, 85%% of available))")
    p.add_argument("--no-gemm", action="store_true", help="do not measure the GEMM rate")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--child-timeout", type=float, default=3600.0,
                   help="seconds before a child process is killed (default 3600)")
    p.add_argument("--list", action="store_true", help="list the cases and configurations and exit")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.min_repeats is None:
        args.min_repeats = min(args.repeats, 2 if args.quick else 3)
    return args


# ----------------------------------------------------------------------------- planning


def plan(args, budget_bytes, mfntk_info):
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in names if c not in CASES]
    if bad:
        raise SystemExit(f"unknown case(s) {bad}; known: {', '.join(ORDER)}, gemm")
    if not args.no_gemm and "gemm" not in names:
        names = ["gemm"] + names
    fw_filter = None if args.frameworks is None else set(args.frameworks.split(","))
    rows, tasks = [], []
    for name in names:
        case = CASES[name]
        cfgs = case.configs(args.quick, args.threads)
        if name == "gemm" and "threads" in names and args.threads != 1:
            cfgs = cfgs + [dict(cfgs[0], threads=1)]  # 1-thread rate for the threads case
        seen = {}
        if args.match and name != "gemm":
            subs = [m for m in args.match.split(",") if m]
            cfgs = [c for c in cfgs if all(m in label(c) for m in subs)]
        for cfg0 in cfgs:
            cfg = cfg0
            fws = list(case.frameworks)
            forced = set()  # fallbacks of selected frameworks
            i = 0
            while i < len(fws):
                fw = fws[i]
                i += 1
                cfg = cfg0
                if (fw_filter is not None and fw not in fw_filter and fw not in forced
                        and name != "gemm"):
                    continue
                threads = cfg.get("threads", args.threads)
                if fw in forced:  # a blocked fallback: blocks sized to the budget
                    cfg = dict(cfg, block_bytes=int(min(256 << 20, budget_bytes / 4)))
                need, what = case.mem(fw, cfg)
                row = {"id": len(rows), "case": name, "config": cfg, "label": label(cfg),
                       "framework": fw, "threads": threads,
                       "mem_estimate_gib": round(need / GiB, 3)}
                rows.append(row)
                seen[fw] = seen.get(fw, 0) + 1
                if args.quick and seen[fw] > case.quick_limit.get(fw, len(cfgs)):
                    row["status"] = "skipped"
                    row["reason"] = f"--quick runs {fw} on the first {case.quick_limit[fw]} only"
                    continue
                if need > budget_bytes:
                    row["status"] = "skipped"
                    row["reason"] = (f"needs ~{need / GiB:.3g} GiB for {what} "
                                     f"(budget {budget_bytes / GiB:.1f} GiB)")
                    alt = case.fallback.get(fw)
                    if alt and alt not in fws:
                        fws.insert(i, alt)
                        forced.add(alt)
                    continue
                if fw == "mfntk" and not mfntk_info.get("ok"):
                    row["status"] = "unavailable"
                    row["reason"] = f"unavailable: {mfntk_info.get('error')}"
                    continue
                row["status"] = "planned"
                tasks.append({"id": row["id"], "case": name, "cfg": cfg, "framework": fw,
                              "threads": threads, "repeats": args.repeats,
                              "min_repeats": args.min_repeats, "budget_s": args.budget})
    return rows, tasks


def batches(tasks, quick):
    if not quick:
        return [[t] for t in tasks]
    groups = {}
    for t in tasks:
        groups.setdefault((t["case"], t["framework"]), []).append(t)
    return list(groups.values())


def child_env(batch):
    env = dict(os.environ)
    threads = max(t["threads"] for t in batch)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    fw = batch[0]["framework"]
    if fw.startswith("jax") and threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                            " intra_op_parallelism_threads=1").strip()
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_batch(batch, timeout, tmp):
    tpath = os.path.join(tmp, f"tasks-{batch[0]['id']}.json")
    rpath = os.path.join(tmp, f"results-{batch[0]['id']}.json")
    lpath = os.path.join(tmp, f"log-{batch[0]['id']}.txt")
    with open(tpath, "w") as fh:
        json.dump(batch, fh)
    reason = None
    with open(lpath, "w") as log:
        try:
            p = subprocess.run([sys.executable, "-m", "bench.child", tpath, rpath], cwd=ROOT,
                               env=child_env(batch), stdout=log, stderr=subprocess.STDOUT,
                               timeout=timeout)
            if p.returncode < 0:
                sig = -p.returncode
                reason = f"child killed by signal {sig}" + (" (out of memory?)" if sig == 9 else "")
            elif p.returncode != 0:
                reason = f"child exited with status {p.returncode}"
        except subprocess.TimeoutExpired:
            reason = f"child timed out after {timeout:.0f} s"
    results = {}
    if os.path.exists(rpath):
        with open(rpath) as fh:
            for r in json.load(fh):
                results[r["task_id"]] = r
    if reason:
        with open(lpath) as fh:
            tail = fh.read()[-600:].strip().splitlines()
        reason += (": " + tail[-1][:200]) if tail else ""
    for t in batch:
        if t["id"] not in results:
            results[t["id"]] = {"status": "failed", "reason": reason or "no result"}
    return results


# ----------------------------------------------------------------------------- analysis


def _rel_err(x, ref):
    x, ref = np.asarray(x, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if x.shape != ref.shape:
        return float("inf")
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(x - ref) / (den if den > 0 else 1.0))


def analyse(rows, result):
    gemm = {}
    for r in rows:
        if r["case"] == "gemm" and r["status"] == "ok":
            key = f"{r['config']['dtype']} {r['threads']}t"
            gemm[key] = {"gflops": r["flops"] / r["median_s"] / 1e9, "size": r["config"]["size"],
                         "median_s": r["median_s"]}
    result["gemm"] = gemm

    groups = {}
    for r in rows:
        groups.setdefault((r["case"], r["label"]), []).append(r)
    for (name, _), grp in groups.items():
        case = CASES[name]
        ok = {r["framework"]: r for r in grp if r["status"] == "ok"}
        ref = next((ok[f] for f in case.reference if f in ok), None)
        mf = ok.get("mfntk")
        for r in grp:
            if r["status"] != "ok":
                continue
            cfg = r["config"]
            dtype = cfg.get("dtype", "float64")
            g = gemm.get(f"{dtype} {r['threads']}t")
            if r.get("gflops") is not None and g:
                r["gemm_gflops"] = g["gflops"]
                r["frac_gemm"] = r["gflops"] / g["gflops"]
            if mf is not None and r is not mf:
                r["speedup_mfntk"] = r["median_s"] / mf["median_s"]
            cs = r.get("checksum") or {}
            if "n_iter" in cs:
                r["n_iter"] = int(cs["n_iter"][0])
                if r["n_iter"] > 0:
                    r["s_per_iter"] = r["median_s"] / r["n_iter"]
            tol = TOL[dtype] * case.tol_scale
            if "rel_residual" in cs:
                # the solution must have the residual the solver reports (within 2x),
                # or 1e-4 when it reports none / converged further
                res = cs["rel_residual"][0]
                rep = cs.get("reported_residual", [None])[0]
                lim = max(1e-4, 2 * rep) if rep is not None else 1e-4
                r["check"] = {"rel_residual": res, "reported_residual": rep, "tol": lim,
                              "ok": bool(res < lim)}
            elif r is ref:
                r["check"] = {"is_reference": True}
            elif ref is not None:
                keys = [k for k in cs if k in ref["checksum"]]
                errs = {k: _rel_err(cs[k], ref["checksum"][k]) for k in keys}
                worst = max(errs.values()) if errs else None
                dtype_ok = r.get("out_dtype") in (None, dtype)
                r["check"] = {"ref": ref["framework"], "rel_err": worst, "tol": tol,
                              "detail": errs, "dtype_ok": dtype_ok,
                              "ok": bool(worst is not None and worst <= tol and dtype_ok)}
                if worst is None:
                    r["check"]["note"] = "no common checksum"
            elif case.reference:
                r["check"] = {"note": "no reference"}

    scaling = {}
    th = [r for r in rows if r["case"] == "threads" and r["status"] == "ok"]
    for fw in sorted({r["framework"] for r in th}):
        t = {r["threads"]: r["median_s"] for r in th if r["framework"] == fw}
        if 1 in t and len(t) > 1:
            scaling[fw] = t[1] / t[max(t)]
    result["thread_scaling"] = scaling


# ----------------------------------------------------------------------------- main


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.list:
        for name in ["gemm"] + ORDER:
            c = CASES[name]
            print(f"{name}: {c.doc}\n  frameworks: {', '.join(c.frameworks)}\n  flops: {c.flop_formula}")
            for cfg in c.configs(args.quick, args.threads):
                print(f"    {label(cfg)}")
        return 0

    facts = machine.facts()
    mem = machine.meminfo()
    if args.mem_budget_gib is not None:
        budget = args.mem_budget_gib * GiB
    else:
        budget = min(0.6 * mem.get("MemTotal", 16 * GiB), 0.85 * mem.get("MemAvailable", 16 * GiB))
    want_mf = args.frameworks is None or "mfntk" in args.frameworks.split(",")
    mfntk_info = machine.mfntk_probe() if want_mf else {"ok": False, "error": "not selected"}

    load_start = os.getloadavg()
    rows, tasks = plan(args, budget, mfntk_info)
    byid = {r["id"]: r for r in rows}
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="mfntk-bench-") as tmp:
        done = 0
        for batch in batches(tasks, args.quick):
            res = run_batch(batch, args.child_timeout, tmp)
            for t in batch:
                r = byid[t["id"]]
                out = res[t["id"]]
                r["status"] = out.get("status", "failed")
                for k in ("reason", "median_s", "min_s", "times_s", "warmup_s", "repeats",
                          "out_dtype", "checksum", "wall_s"):
                    if k in out:
                        r[k] = out[k]
                r["peak_rss_mib"] = out.get("rss_peak_mib")
                r["setup_rss_mib"] = out.get("rss_setup_mib")
                r["rss_shared"] = len(batch) > 1
                case = CASES[r["case"]]
                if r["status"] == "ok":
                    r["flops"] = case.flops(r["config"])
                    if r["flops"]:
                        r["gflops"] = r["flops"] / r["median_s"] / 1e9
                done += 1
                what = (f"{r['median_s']:.4g} s (median of {r['repeats']})" if r["status"] == "ok"
                        else f"{r['status']}: {r.get('reason', '')}")
                print(f"[bench {done}/{len(tasks)}] {r['case']} {r['label']} {r['framework']}: {what}",
                      file=sys.stderr, flush=True)

    result = {
        "machine": facts,
        "mfntk": mfntk_info,
        "args": vars(args),
        "mem_budget_gib": budget / GiB,
        "elapsed_s": time.time() - t_start,
        # 1-minute load averages: above the core count, other processes competed for the CPUs
        "loadavg": {"start": load_start[0], "end": os.getloadavg()[0]},
        "cases": {n: {"doc": CASES[n].doc, "flop_formula": CASES[n].flop_formula}
                  for n in {r["case"] for r in rows}},
        "tolerances": TOL,
        "rows": rows,
    }
    analyse(rows, result)
    for r in rows:  # keep the short checksum entries (norms, traces); the differences are in check
        if "checksum" in r:
            r["checksum"] = {k: v for k, v in r["checksum"].items() if len(v) <= 4}

    os.makedirs(args.out, exist_ok=True)
    stem = f"{facts['hostname']}-{facts['date']}"
    if args.quick:
        stem += "-quick"
    if args.tag:
        stem += f"-{args.tag}"
    elif args.match or args.frameworks or args.cases != ",".join(ORDER):
        stem += "-partial"  # never overwrite a full run's files with a subset
    base = os.path.join(args.out, stem)
    with open(base + ".json", "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    md = report.markdown(result)
    with open(base + ".md", "w") as fh:
        fh.write(md + "\n")
    if not args.no_plot:
        try:
            report.plot(result, base + ".png")
        except Exception as e:  # noqa: BLE001 - the numbers matter more than the picture
            print(f"[bench] plot failed: {type(e).__name__}: {e}", file=sys.stderr)
    print(md)
    print(f"\n[bench] wrote {base}.json, .md" + ("" if args.no_plot else ", .png")
          + f" in {result['elapsed_s']:.0f} s", file=sys.stderr)
    bad = [r for r in rows if (r.get("check") or {}).get("ok") is False]
    return 1 if bad else 0
