"""Lab fixtures: one netns lab per session (root only) and a helper to run code in its inspector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from scanner.lab import lab

# pytest-xdist workers (tests/run.sh runs two) and parallel sessions (developers side by side,
# CAMSWEEP_TEST_LAB_ID) each get their own block of LAB_IDS_PER_WORKER lab ids: NETNS_LAB_ID is the
# session lab, and the tests that need a lab of their own use NETNS_LAB_ID + 2 .. + 19.
WORKER_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
WORKER_COUNT = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
LAB_IDS_PER_WORKER = 20
NETNS_LAB_ID = int(os.environ.get("CAMSWEEP_TEST_LAB_ID", "41")) + LAB_IDS_PER_WORKER * WORKER_INDEX
if NETNS_LAB_ID + LAB_IDS_PER_WORKER - 1 > lab.MAX_LAB_ID:
    raise RuntimeError(f"lab ids {NETNS_LAB_ID}..{NETNS_LAB_ID + LAB_IDS_PER_WORKER - 1} exceed {lab.MAX_LAB_ID}: "
                       "run fewer pytest-xdist workers or a lower CAMSWEEP_TEST_LAB_ID")


@pytest.fixture(scope="session")
def netns_lab() -> Iterator[dict[str, Any]]:
    """A full netns lab (seed 7, no random visitors: tests trigger walk-bys themselves)."""
    lab.down(NETNS_LAB_ID)
    try:
        doc = lab.up(NETNS_LAB_ID, "netns", 7, visitor_interval=0)
        yield doc
    finally:
        lab.down(NETNS_LAB_ID)


def camsweep(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (``python -m scanner``) and return the finished process."""
    proc = subprocess.run([sys.executable, "-m", "scanner", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"camsweep {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def in_inspector(lab_id: int, code: str, *args: str, timeout: float = 60) -> Any:
    """Run a Python snippet inside the lab's inspector (through ``camsweep lab exec``); its
    last stdout line is parsed as JSON."""
    proc = camsweep("lab", "exec", "--lab-id", str(lab_id), "--", sys.executable, "-c", code, *args,
                    timeout=timeout)
    return json.loads(proc.stdout.strip().splitlines()[-1])
