"""Installing plugin projects with pip as their users do: dependencies resolved against the installed ccproxy."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path


def install_beside_ccproxy(projects: list[Path], folder: Path) -> Path:
    """``pip install`` each project into a new virtual environment under ``folder``; return its site-packages.

    The new environment sees this one's packages through a ``.pth`` file, so pip resolves each
    project's dependencies (``ccproxy-observability`` first of all) against what is installed here
    and fails when one cannot be met; only what is missing lands in the new environment.
    """
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    site = Path(where.stdout.strip())
    outer = sysconfig.get_path("purelib")
    (site / "ccproxy_under_test.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    # Wheels are built here, in pip's usual isolated build; installing them needs no build in the new environment.
    wheels = folder / "wheels"
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--wheel-dir",
        str(wheels),
        *map(str, projects),
    ]
    built = subprocess.run(build, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
    install = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--quiet",
        *map(str, wheels.glob("*.whl")),
    ]
    result = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    assert not list(site.glob("ccproxy_observability-*.dist-info")), "pip installed ccproxy again instead of using it"
    return site
