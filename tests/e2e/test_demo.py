"""The README's main job, `cdgi demo`, end to end in a directory of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import ROOT
from tests.support.softhsm import require_softhsm

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_the_demo_plays_the_whole_business_and_stops_its_daemon_cleanly(
    prefix: str, database_url: str, tmp_path: Path
) -> None:
    require_softhsm()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CDGI_PREFIX": prefix,
           "CDGI_DATABASE_URL": database_url, "CDGI_HTTP_PORT": "0", "COLUMNS": "160"}
    for name in ("CDGI_CARD_PIN", "CDGI_PIN_FILE", "SOFTHSM2_CONF"):
        env.pop(name, None)  # the demo makes its own dev token and PIN file under var/
    done = subprocess.run([sys.executable, "-m", "adapter", "demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert not re.search(r"^\s+!! ", out, re.M), out[-4000:]  # a step that failed
    assert "the waiting restore is applied" in out
    assert "daemon stopped (exit code 0)" in out
    pin = (tmp_path / "var" / "softhsm" / "dev-pin").read_text().strip()
    log = (tmp_path / "var" / "demo-daemon.log").read_text()
    assert pin and pin not in out and pin not in log, "the PIN stays in its file"
    assert "Traceback" not in log
