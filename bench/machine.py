"""Machine facts and the reference GEMM rate.

``facts()`` collects the CPU (from /proc/cpuinfo), cores, memory, library
versions and BLAS configuration without importing torch or jax (versions come
from the package metadata). The GEMM rate is measured in the same run as the
benchmarks by the ``gemm`` case (a child process like every other case, see
:func:`gemm_prepare`): median GFLOP/s of an s x s matmul in numpy, counting
2 s^3 flops. ``python -m bench.machine`` prints both.
"""
from __future__ import annotations

import datetime
import importlib.metadata as md
import os
import platform
import socket
import subprocess
import sys

GiB = 1 << 30


def _cpuinfo():
    info = {}
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
    except OSError:
        return {"model": platform.processor() or platform.machine()}
    first = text.split("\n\n")[0]
    for line in first.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip()] = v.strip()
    flags = set(info.get("flags", "").split())
    simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
            if f in flags]
    return {
        "model": info.get("model name", platform.processor()),
        "vendor": info.get("vendor_id"),
        "family": info.get("cpu family"),
        "model_id": info.get("model"),
        "mhz": info.get("cpu MHz"),
        "cache": info.get("cache size"),
        "simd": simd,
        "logical_cpus_listed": text.count("processor\t:"),
    }


def meminfo():
    """MemTotal and MemAvailable in bytes (Linux), else None."""
    out = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                k, v = line.split(":", 1)
                if k in ("MemTotal", "MemAvailable"):
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def _version(pkg):
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


def _blas():
    out = {}
    try:
        from threadpoolctl import threadpool_info

        out["threadpools"] = [
            {k: p.get(k) for k in ("internal_api", "prefix", "version", "num_threads",
                                   "threading_layer", "architecture")}
            for p in threadpool_info()]
    except ImportError:
        pass
    try:
        import numpy as np

        deps = np.show_config(mode="dicts").get("Build Dependencies", {})
        out["numpy_blas"] = {k: deps.get(k, {}).get(v) for k, v in
                             (("blas", "name"), ("blas", "version"), ("lapack", "name"))}
        out["numpy_blas"]["openblas_config"] = deps.get("blas", {}).get("openblas configuration")
    except Exception:  # noqa: BLE001 - older numpy without mode="dicts"
        pass
    return out


def _cores():
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"logical": os.cpu_count(), "usable": usable}


def mfntk_probe(timeout=120):
    """Import mfntk in a fresh interpreter: {"ok": bool, "version"/"error": ...}."""
    code = ("import json, sys\n"
            "sys.path.insert(0, %r)\n"
            "from bench import mfntk_runner as r\n"
            "try:\n"
            "    print(json.dumps({'ok': True, **r.describe()}, default=str))\n"
            "except ImportError as e:\n"
            "    print(json.dumps({'ok': False, 'error': str(e)}))\n"
            ) % os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=timeout)
        import json

        return json.loads(p.stdout.strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "error": f"probe failed: {type(e).__name__}: {e}"}


def facts():
    mem = meminfo()
    return {
        "hostname": socket.gethostname(),
        "date": datetime.date.today().isoformat(),
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": _cpuinfo(),
        "cores": _cores(),
        "mem_total_gib": round(mem.get("MemTotal", 0) / GiB, 2),
        "mem_available_gib": round(mem.get("MemAvailable", 0) / GiB, 2),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {p: _version(p) for p in
                     ("numpy", "scipy", "torch", "jax", "jaxlib", "threadpoolctl", "mfntk")},
        "blas": _blas(),
        "env": {k: os.environ.get(k) for k in
                ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")
                if os.environ.get(k)},
    }


def gemm_prepare(inp, cfg):
    """The timed GEMM (the ``gemm`` case): C = A @ B, 2 s^3 flops."""
    A, B = inp["A"], inp["B"]
    return lambda: A @ B


def main():
    import json

    from .run import main as run_main

    print(json.dumps(facts(), indent=1))
    run_main(["--cases", "gemm", "--tag", "gemm", "--no-plot"])


if __name__ == "__main__":
    main()
