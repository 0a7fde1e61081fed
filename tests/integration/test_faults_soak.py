"""The soak benchmark's quick run as a test: 200 shoppers and 10 advisors chatting for 30 s on
a real server process lose no message, see no error and leave the server's memory where the
warm-up put it (``bench/soak.py``; the full run is 2,000 shoppers for 10 minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_quick_soak_loses_nothing_and_does_not_grow() -> None:
    run = subprocess.run(  # noqa: S603 - our own interpreter and bench script
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=240, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["mode"] == "quick"
    assert result["messages_sent"] >= 500, result
    assert result["messages_lost"] == 0, result
    assert result["errors"] == 0, result
    assert result["rss_growth_pct"] < 10, result
