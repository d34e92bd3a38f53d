"""Markdown table and plot of a benchmark run (the JSON written by bench.run)."""
from __future__ import annotations

import math


def _fmt_t(s):
    if s is None:
        return ""
    if s >= 100:
        return f"{s:.0f} s"
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def _fmt(v, spec):
    return "" if v is None else format(v, spec)


def _check_cell(row):
    c = row.get("check")
    if not c:
        return ""
    if c.get("is_reference"):
        return "ref"
    if "rel_residual" in c:
        rep = c.get("reported_residual")
        return (f"{'ok' if c['ok'] else 'FAIL'} res {c['rel_residual']:.1e}"
                + ("" if rep is None else f" (reported {rep:.1e})"))
    if c.get("rel_err") is None:
        return c.get("note", "")
    s = f"{'ok' if c['ok'] else 'FAIL'} {c['rel_err']:.1e}"
    if not c.get("dtype_ok", True):
        s += f" (out {row.get('out_dtype')})"
    return s


def _status_cell(row):
    st = row["status"]
    if st == "ok":
        return _fmt_t(row["median_s"])
    return st


def _note(row):
    parts = []
    if row["status"] != "ok" and row.get("reason"):
        parts.append(row["reason"].replace("|", "/"))
    if row["status"] == "ok":
        if row.get("repeats") is not None:
            parts.append(f"R={row['repeats']}")
        w = row.get("warmup_s") or []
        if w and row.get("median_s") and w[0] > 3 * row["median_s"] and w[0] > 0.5:
            parts.append(f"1st call {_fmt_t(w[0])}")
        if row.get("n_iter") is not None:
            parts.append(f"{row['n_iter']} CG iterations")
        if row.get("s_per_iter") is not None:
            parts.append(f"{_fmt_t(row['s_per_iter'])}/iteration (setup included)")
    return "; ".join(parts)


def markdown(result):
    m = result["machine"]
    g = result.get("gemm", {})
    lines = [
        f"# mfntk benchmarks: {m['hostname']} {m['timestamp']}" + (" (--quick)" if result["args"]["quick"] else ""),
        "",
        f"- CPU: {m['cpu'].get('model')} (family {m['cpu'].get('family')} model "
        f"{m['cpu'].get('model_id')}, {', '.join(m['cpu'].get('simd', []))}); "
        f"{m['cores']['usable']} usable cores; {m['mem_total_gib']} GiB RAM",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        f"- threads: {result['args']['threads']}; memory budget for a task "
        f"{result['mem_budget_gib']:.1f} GiB; repeats {result['args']['repeats']} "
        f"(min {result['args']['min_repeats']}, {result['args']['budget']} s budget per task)",
    ]
    la = result.get("loadavg")
    if la:
        busy = max(la["start"], la["end"]) > m["cores"]["usable"] + 0.5
        lines.append(f"- load average (1 min) at start / end: {la['start']:.1f} / {la['end']:.1f}"
                     + (" -- the machine was shared, timings are noisy" if busy else ""))
    if g:
        lines.append("- reference GEMM (numpy, same run): " + ", ".join(
            f"{k}: {v['gflops']:.1f} GFLOP/s ({v['size']}^2)" for k, v in g.items()))
    mf = result.get("mfntk", {})
    if mf.get("ok"):
        lines.append(f"- mfntk: {mf.get('version') or ''} {mf.get('path') or ''}")
    elif mf.get("error") == "not selected":
        lines.append("- mfntk: not run (--frameworks)")
    else:
        lines.append(f"- mfntk: unavailable ({mf.get('error')})")
    lines += ["", "speed-up = peer median / mfntk median (> 1: mfntk faster). "
              "% GEMM = achieved GFLOP/s / the GEMM rate above (same dtype and threads). "
              "check = normwise relative difference to the reference framework's checksum.", ""]

    by_case = {}
    for row in result["rows"]:
        by_case.setdefault(row["case"], []).append(row)
    for case, rows in by_case.items():
        info = result["cases"][case]
        lines += [f"## {case}", "", f"{info['doc']}. Flops: {info['flop_formula']}.", "",
                  "| configuration | framework | median | min | GFLOP/s | % GEMM | peak RSS MiB "
                  "| mfntk speed-up | check | notes |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
        for r in rows:
            sp = r.get("speedup_mfntk")
            lines.append(
                f"| {r['label']} | {r['framework']} | {_status_cell(r)} | "
                f"{_fmt_t(r.get('min_s')) if r['status'] == 'ok' else ''} | "
                f"{_fmt(r.get('gflops'), '.1f')} | "
                f"{'' if r.get('frac_gemm') is None else format(100 * r['frac_gemm'], '.0f') + '%'} | "
                f"{_fmt(r.get('peak_rss_mib'), '.0f')}"
                f"{'*' if r.get('rss_shared') and r.get('peak_rss_mib') else ''} | "
                f"{'' if sp is None else 'x' + format(sp, '.2f')} | {_check_cell(r)} | {_note(r)} |")
        lines.append("")
    ts = result.get("thread_scaling")
    if ts:
        lines.append("Thread scaling of the DD step (time at 1 thread / time at "
                     f"{result['args']['threads']} threads): " +
                     ", ".join(f"{k} x{v:.2f}" for k, v in ts.items()))
        lines.append("")
    if any(r.get("rss_shared") for r in result["rows"]):
        lines.append("\\* --quick runs all configurations of a case and framework in one "
                     "process: the RSS is that process's peak so far, not per task.")
        lines.append("")
    return "\n".join(lines)


def plot(result, path):
    """Horizontal bars, one group per (case, configuration), log-scale time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups, seen = [], {}
    for r in result["rows"]:
        key = (r["case"], r["label"])
        if key not in seen:
            seen[key] = len(groups)
            groups.append((key, []))
        groups[seen[key]][1].append(r)
    fws = []
    for r in result["rows"]:
        if r["framework"] not in fws:
            fws.append(r["framework"])
    colors = {fw: plt.cm.tab10(i % 10) for i, fw in enumerate(fws)}
    nb = max(len(rows) for _, rows in groups)
    h = 0.8 / nb
    fig, ax = plt.subplots(figsize=(11, max(4, 0.22 * nb * len(groups) + 1.5)))
    yt, yl = [], []
    tmin = min((r["median_s"] for r in result["rows"] if r["status"] == "ok"), default=1e-3)
    for gi, ((case, lab), rows) in enumerate(groups):
        y0 = -gi
        for bi, r in enumerate(rows):
            y = y0 + 0.4 - (bi + 0.5) * h
            if r["status"] == "ok":
                ax.barh(y, r["median_s"], height=h * 0.9, color=colors[r["framework"]],
                        label=r["framework"])
                ax.text(r["median_s"], y, f" {_fmt_t(r['median_s'])}", va="center", fontsize=6)
            else:
                ax.text(tmin / 2, y, f"{r['framework']}: {r['status']}", va="center",
                        fontsize=6, color="gray")
        yt.append(y0)
        yl.append(f"{case}\n{lab}")
    ax.set_xscale("log")
    ax.set_yticks(yt)
    ax.set_yticklabels(yl, fontsize=7)
    ax.set_xlabel("median wall time per call [s] (log)")
    m = result["machine"]
    ax.set_title(f"mfntk benchmarks, {m['hostname']} {m['date']}, "
                 f"{result['args']['threads']} threads", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=7, loc="lower right")
    ax.grid(axis="x", which="both", alpha=0.3)
    left = tmin / 3
    ax.set_xlim(left=left if math.isfinite(left) else None)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
