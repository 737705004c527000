#!/usr/bin/env python3
"""Issue 11 item 1, "done when": 0 lost or merged keystrokes over 1,000 simulated scans
typed at 2 ms a key, each right after a screen change (tests/terminal/storm.py).

    PYTHONPATH=. .venv/bin/python scripts/scan_storm.py [--customers 1000] [--seed 11]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from tests.terminal.storm import storm


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(storm(args.customers, Path(tmp), seed=args.seed))
    took = time.monotonic() - started
    print(
        f"{result.customers} customers, {result.keys} keys in {took:.0f} s: "
        f"{result.scans_lost} scans lost, {result.scans_merged} merged, "
        f"{result.fields_wrong} fields wrong"
    )
    for line in result.failures[:20]:
        print("  ", line)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
