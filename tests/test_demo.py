"""`assay demo` end to end, at full size: the queue's head must be rich in wrong silver labels."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_queue_finds_wrong_silver_labels(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--no-serve"],
        env={**env, "ASSAY_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    match = re.search(
        r"wrong silver labels: ([\d.]+)% of the queue's first 100 items vs "
        r"([\d.]+)% of the extension set",
        result.stdout,
    )
    assert match, result.stdout
    share_top, share_all = float(match[1]), float(match[2])
    assert 30 < share_all < 40  # VADER disagrees with gold on about 35% of the rows
    assert share_top >= 2 * share_all
    assert re.search(r"log in as admin / \S+", result.stdout)
