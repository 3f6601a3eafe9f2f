"""Build backend: setuptools, plus the dashboard bundle built into every wheel and sdist.

The bundle (``plugins/ccproxy_dashboard/static/``) is made by npm from ``dashboard-ui/`` and
is not kept in git. An editable install leaves it to ``make dashboard`` (a Python-only
contributor can work without Node.js); a wheel or an sdist without it would serve a
dashboard that answers 503, so building one runs the npm build first when it is missing,
and stops with a message saying what to install when npm is not there.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - the PEP 517 hooks this module does not change

ROOT = Path(__file__).resolve().parent.parent
UI_DIR = ROOT / "dashboard-ui"
BUNDLE_FILES = [ROOT / "plugins" / "ccproxy_dashboard" / "static" / name for name in ("dashboard.js", "dashboard.css")]


def ensure_dashboard_bundle() -> None:
    """Build the dashboard bundle unless it is already there (an sdist carries it built)."""
    if all(path.is_file() for path in BUNDLE_FILES):
        return
    npm = shutil.which("npm")
    if npm is None or not UI_DIR.is_dir():
        raise SystemExit(
            "building ccproxy needs the dashboard bundle: install Node.js 18+ and npm "
            "(or run `make dashboard` in a source checkout) and build again"
        )
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=UI_DIR, check=True)
    subprocess.run([npm, "run", "build"], cwd=UI_DIR, check=True)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    ensure_dashboard_bundle()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    ensure_dashboard_bundle()
    return _setuptools.build_sdist(sdist_directory, config_settings)
