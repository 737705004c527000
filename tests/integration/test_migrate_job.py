"""Issue 14: ``python -m server migrate``, the one-shot job before the servers start
(docker/compose.yaml): it applies the pending migrations and exits; run again, it applies
nothing; without a database URL it says which variable is missing and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg

from server.db.migrate import load_migrations
from tests.conftest import ROOT, _with_database


def job(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "migrate"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_migration_job_migrates_once_and_exits(
    test_services: object, tmp_path: object
) -> None:
    admin_url = test_services.admin_database_url  # type: ignore[attr-defined]
    name = f"voucher_job_{os.getpid()}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _with_database(admin_url, name)
        first = job({"VOUCHER_DATABASE_URL": url})
        assert first.returncode == 0, first.stderr
        conn = await asyncpg.connect(url)
        try:
            versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        finally:
            await conn.close()
        assert [v["version"] for v in versions] == [m.version for m in load_migrations()]
        again = job({"VOUCHER_DATABASE_URL": url})
        assert again.returncode == 0 and "none pending" in again.stderr, again.stderr
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def test_the_migration_job_without_a_database_says_what_is_missing() -> None:
    done = job({})
    assert done.returncode != 0
    assert "VOUCHER_DATABASE_URL is not set" in done.stderr
    assert "Traceback" not in done.stderr
