"""The demo keeps its QR key across restarts (issue 11, item 8): a code a citizen's phone
showed before the demo restarted still verifies after it, as it would in production."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

from ops.demo import DEMO_QR_KID, demo_qr_key
from server.settings import Settings
from shared.tokens import decode_qr_token, issue_qr_token


def _demo_settings(data_dir: Path) -> Settings:
    """What one start of the demo mints and verifies QR codes with."""
    env = {
        "VOUCHER_DATABASE_URL": "postgresql://demo@127.0.0.1/demo",  # not connected to
        "VOUCHER_REDIS_URL": "redis://127.0.0.1:6379/0",
        "VOUCHER_QR_KEYS": f"{DEMO_QR_KID}={demo_qr_key(data_dir)}",
    }
    return Settings.from_env(env, demo=True)


def test_a_code_from_before_a_restart_still_verifies_after_it(tmp_path: Path) -> None:
    before, after = _demo_settings(tmp_path), _demo_settings(tmp_path)
    token, _ = issue_qr_token(
        key=before.qr_keys[0],  # the first mints, all verify
        holder=77,
        now=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
    )
    assert decode_qr_token(token, keys=after.qr_keys_by_id).holder == 77


def test_the_demo_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = demo_qr_key(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
