"""Settings are validated once, at start-up, with a message naming what is wrong."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from server.campaign_files import bundled_campaigns_dir
from server.settings import Settings, SettingsError
from shared.tokens import SigningKey

KEY = SigningKey.generate("qr-1")


def settings(**changes: Any) -> Settings:
    base = Settings(
        database_url="postgresql://db/vouchers",
        redis_url="redis://cache/0",
        id_hash_key=b"k" * 32,
        access_token_secret=b"s" * 32,
        qr_keys=(KEY,),
        idp_issuer="https://idp.example",
        idp_keys={},
        campaign_files=(bundled_campaigns_dir() / "liaocheng-2024.toml",),
    )
    return replace(base, **changes)


def test_sound_settings_pass_with_batching_defaults() -> None:
    s = settings()
    assert (s.batch_max_size, s.batch_concurrency) == (64, 3)
    assert set(s.qr_verifying_keys) == {"qr-1"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id_hash_key": b"short"}, "ID hash key"),
        ({"access_token_secret": b"short"}, "access token secret"),
        ({"qr_keys": ()}, "QR signing key"),
        ({"qr_keys": (KEY, SigningKey.generate("qr-1"))}, "distinct"),
        ({"campaign_files": ()}, "campaign files"),
        ({"pg_pool_min": 0}, "pool sizes"),
        ({"pg_pool_min": 40, "pg_pool_max": 32}, "pool sizes"),
        ({"batch_max_size": 0}, "batches"),
        ({"batch_concurrency": 0}, "batches"),
        ({"replica_max_lag_s": -1}, "replica"),
        ({"replica_poll_s": 0}, "replica"),
        ({"replica_pool_max": 0}, "replica"),
        ({"replica_connect_timeout_s": 0}, "replica"),
    ],
)
def test_unsound_settings_are_refused_by_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(**changes)


def test_production_settings_need_their_variables() -> None:
    with pytest.raises(SettingsError, match="VOUCHER_DATABASE_URL"):
        Settings.from_env({}, demo=True)


def test_a_secret_may_come_from_a_file_named_by_its_FILE_variable(tmp_path: Any) -> None:
    # issue 14: Docker's secrets are files (docker/compose.yaml)
    (tmp_path / "url").write_text("postgresql://db/vouchers\n")
    env = {"VOUCHER_DATABASE_URL_FILE": str(tmp_path / "url"), "VOUCHER_REDIS_URL": "redis://r"}
    assert Settings.from_env(env, demo=True).database_url == "postgresql://db/vouchers"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"VOUCHER_DATABASE_URL": "postgresql://a", "VOUCHER_DATABASE_URL_FILE": "/x"},
            "not both",
        ),
        ({"VOUCHER_DATABASE_URL_FILE": "/nonexistent/voucher-secret"}, "cannot read"),
    ],
)
def test_a_secret_file_that_cannot_be_read_or_doubles_a_variable_is_refused(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"VOUCHER_REDIS_URL": "redis://r", **env}, demo=True)
