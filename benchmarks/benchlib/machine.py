"""A description of the machine and software a benchmark ran on, for the results file."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

PACKAGES = ("uvicorn", "uvloop", "httptools", "fastapi", "starlette", "aiohttp", "duckdb", "prometheus-client")


def describe_machine() -> dict:
    """CPU model, cores, memory, OS, Python and the versions of the packages on the hot path."""
    return {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "virtual_machine": _is_virtual(),
        "memory_gib": round(_memory_kib() / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "wrk": _wrk_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _is_virtual() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return any(line.startswith("flags") and " hypervisor" in line for line in cpuinfo)
    except OSError:
        return False


def _memory_kib() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            return int(meminfo.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _wrk_version() -> str | None:
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    except OSError:
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
