"""A stop signal that comes before uvicorn takes the signals over, on a real ``run_server`` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ccproxy_core.runtime import stop_signals

# run_server as the CLI runs it; the signal comes the moment before uvicorn takes SIGTERM and SIGINT over,
# where a service manager's stop right after the start can land.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from ccproxy_core.runtime import serve, stop_signals
    from ccproxy_core.runtime.settings_loader import load_settings

    def hold_then_signal():
        stop_signals.hold_stop_signals()
        os.kill(os.getpid(), signal.{sig})

    serve.hold_stop_signals = hold_then_signal
    code = serve.run_server(load_settings(None, {{"server": {{"port": 0}}}}))
    print("after the stop:", signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), flush=True)
    sys.exit(code)
    """
)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_before_uvicorn_handles_signals_stops_the_server_once_started(tmp_path, sig):
    # Before, stop signals were ignored from just before uvicorn started: this one was lost, and ccproxy served on.
    env = {k: v for k, v in os.environ.items() if "__" not in k} | {"XDG_CONFIG_HOME": str(tmp_path)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT.format(sig=sig)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"the server was still serving 60 s after {sig}: {expired.output!r}")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Application startup complete" in output
    assert "Finished server process" in output
    assert "Traceback" not in output
    ignored = str(signal.SIG_IGN)
    assert f"after the stop: {ignored} {ignored}" in output  # a late signal of a burst cannot kill it now


def test_stop_signals_that_were_not_held_are_left_as_they_were():
    previous = signal.getsignal(signal.SIGTERM)
    stop_signals.ignore_held_stop_signals()
    assert signal.getsignal(signal.SIGTERM) is previous
