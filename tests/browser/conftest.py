"""The pages in a real browser: Playwright driving the system's Chromium (Debian's
``chromium``), never a downloaded one, against the real app on a live port with the suite's
PostgreSQL and Redis (the e2e fixtures).

Where no Chromium is installed the tests are skipped, saying what to install; under CI
(``CI=true``) a missing browser is a failure instead (``.ci/run`` installs it first).
Screenshots of every state go to ``.data/screenshots/`` and the axe-core figures (violations
by impact, per page) to ``.data/screenshots/axe.json``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import client, clock, settings, world  # noqa: F401 - the real app

SHOTS = ROOT / ".data" / "screenshots"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOW_TO_INSTALL = (
    "no Chromium found (looked for: " + ", ".join(BROWSERS) + "); install Debian's: "
    "sudo apt-get install chromium  (the browser tests drive it through Playwright)"
)
AXE_FIGURES: dict[str, dict[str, int]] = {}


def chromium_path() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    path = chromium_path()
    if path is None:
        _missing(HOW_TO_INSTALL)
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


async def axe_check(page: Any, name: str, *, record: bool = True) -> dict[str, int]:
    """axe-core on the page as it is: violations by impact, kept for the report; none may be
    serious or critical (issue 12)."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    violations = results.response["violations"]
    figures = {impact: 0 for impact in ("minor", "moderate", "serious", "critical")}
    for v in violations:
        figures[v.get("impact") or "minor"] += 1
    if record:
        AXE_FIGURES[name] = figures
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / "axe.json").write_text(json.dumps(AXE_FIGURES, indent=2, sort_keys=True))
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]
    assert not bad, f"{name}: " + "; ".join(bad)
    return figures
