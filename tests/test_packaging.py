"""The distribution as a user gets it: an sdist and a wheel built from a clean checkout, installed in a new venv."""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from ccproxy_core.testing import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.needs_tool("npm")  # the wheel carries the dashboard bundle, built with npm


def clean_checkout(destination: Path) -> Path:
    """The files git tracks, and nothing built or ignored (no dashboard bundle, no venv)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """``python -m build``: the sdist first, then the wheel built from that sdist."""
    work = tmp_path_factory.mktemp("build")
    source = clean_checkout(work / "src")
    assert not (source / "plugins" / "ccproxy_dashboard" / "static").exists()
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return work / "dist"


def test_wheel_carries_the_dashboard_bundle_license_and_type_marker(built):
    wheel = next(built.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ccproxy_dashboard/static/dashboard.js" in names
    assert "ccproxy_dashboard/static/dashboard.css" in names
    assert "ccproxy_core/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_installed_wheel_serves_the_dashboard(built, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    wheel = next(built.glob("*.whl"))
    constraints = ROOT / "constraints.txt"
    install = [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)]
    if constraints.is_file():
        install += ["-c", str(constraints)]
    subprocess.run(install, check=True, capture_output=True, timeout=900)
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "OBSERVABILITY__DASHBOARD_ENABLED": "true",
        "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED": "true",
    }
    server = subprocess.Popen(
        [str(venv / "bin" / "ccproxy"), "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        page = _get_when_up(f"http://127.0.0.1:{port}/dashboard", server)
        assert page.status == 200 and b"<html" in page.read().lower()
        script = urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard/static/dashboard.js", timeout=10)
        assert script.status == 200 and len(script.read()) > 10_000
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get_when_up(url: str, server: subprocess.Popen):
    import time

    deadline = time.monotonic() + 60
    while True:
        try:
            return urllib.request.urlopen(url, timeout=10)
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ccproxy did not come up: {server.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)
