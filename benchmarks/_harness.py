"""Shared by the benchmark scripts: run a measurement in a child process, read its figures."""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def peak_mb() -> float:
    """Peak resident memory of this process, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(figures: dict) -> None:
    """Print a child's figures as the JSON line ``in_child`` reads."""
    print(json.dumps(figures), flush=True)


def in_child(script: str, *args: str) -> dict:
    """Run ``script --child ARGS`` in a fresh interpreter and return the figures it reported."""
    out = subprocess.run(
        [sys.executable, script, "--child", *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])
