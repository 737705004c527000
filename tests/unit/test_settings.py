"""Settings are validated once, at start-up, with a message naming what is wrong."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from server.campaign_files import bundled_campaigns_dir, bundled_ticket_campaigns_dir
from server.settings import Settings, SettingsError, write_qr_key_file
from shared.errors import CampaignConfigInvalid
from shared.tokens import QrKey

KEY = QrKey.generate("A")


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
    assert s.qr_keys_by_id == {"A": KEY}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id_hash_key": b"short"}, "ID hash key"),
        ({"access_token_secret": b"short"}, "access token secret"),
        ({"qr_keys": ()}, "one QR key"),
        ({"qr_keys": (KEY, QrKey.generate("B"), QrKey.generate("C"))}, "previous"),
        ({"qr_keys": (KEY, QrKey.generate("A"))}, "distinct"),
        ({"campaign_files": ()}, "campaign files"),
        ({"pg_pool_min": 0}, "pool sizes"),
        ({"pg_pool_min": 40, "pg_pool_max": 32}, "pool sizes"),
        ({"batch_max_size": 0}, "batches"),
        ({"batch_concurrency": 0}, "batches"),
        ({"replica_max_lag_s": -1}, "replica"),
        ({"replica_poll_s": 0}, "replica"),
        ({"replica_pool_max": 0}, "replica"),
        ({"replica_connect_timeout_s": 0}, "replica"),
        # rule X2: the real-name app's sign-in address (the nonce goes there)
        ({"idp_sign_in_url": "http://idp.example/start"}, "https address"),
        ({"idp_sign_in_url": "https:///start"}, "https address"),
        ({"idp_sign_in_url": "https://idp.example/start#x"}, "https address"),
    ],
)
def test_unsound_settings_are_refused_by_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(**changes)


def test_production_settings_need_their_variables() -> None:
    with pytest.raises(SettingsError, match="VOUCHER_DATABASE_URL"):
        Settings.from_env({}, demo=True)


ENV = {
    "VOUCHER_DATABASE_URL": "postgresql://db/vouchers",
    "VOUCHER_REDIS_URL": "redis://cache/0",
    "VOUCHER_ID_HASH_KEY": base64.b64encode(b"k" * 32).decode(),
    "VOUCHER_ACCESS_TOKEN_SECRET": base64.b64encode(b"s" * 32).decode(),
}


def test_the_real_name_apps_sign_in_address_is_read_and_optional(tmp_path: Path) -> None:
    write_qr_key_file(tmp_path / "a.key", KEY)
    env = {**ENV, "VOUCHER_QR_KEYS": f"A={tmp_path / 'a.key'}"}
    assert Settings.from_env(env, demo=True).idp_sign_in_url is None
    url = "https://idp.example/oauth/start?client=vouchers"
    env["VOUCHER_IDP_SIGN_IN_URL"] = url
    assert Settings.from_env(env, demo=True).idp_sign_in_url == url


def test_qr_keys_come_from_secrets_files_the_first_mints(tmp_path: Path) -> None:
    # rule U5: "B=current,A=previous" while rotating from A to B
    current, previous = QrKey.generate("B"), QrKey.generate("A")
    write_qr_key_file(tmp_path / "b.key", current)
    write_qr_key_file(tmp_path / "a.key", previous)
    env = {**ENV, "VOUCHER_QR_KEYS": f"B={tmp_path / 'b.key'}, A={tmp_path / 'a.key'}"}
    got = Settings.from_env(env, demo=True)
    assert [(k.kid, k.secret) for k in got.qr_keys] == [
        ("B", current.secret),
        ("A", previous.secret),
    ]
    assert (tmp_path / "b.key").stat().st_mode & 0o777 == 0o600


def test_even_the_demo_is_given_its_qr_key_never_a_new_one_at_each_start() -> None:
    # issue 11 item 8: a code shown before a restart must not read as forged after it
    with pytest.raises(SettingsError, match="one QR key is needed"):
        Settings.from_env(ENV, demo=True)


@pytest.mark.parametrize(
    ("content", "kid", "message"),
    [
        ("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n", "A", "PEM key"),
        (base64.b64encode(bytes(16)).decode(), "A", "32 bytes"),
        (base64.b64encode(bytes(32)).decode(), "qr-1", "key id"),
        ("not base64!", "A", "QR key 'A'"),
    ],
)
def test_a_bad_qr_key_file_is_refused_by_name(
    tmp_path: Path, content: str, kid: str, message: str
) -> None:
    path = tmp_path / "qr.key"
    path.write_text(content)
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**ENV, "VOUCHER_QR_KEYS": f"{kid}={path}"})


def test_the_house_ticket_programmes_are_served_unless_others_are_named(tmp_path: Path) -> None:
    # issue 13 (rule C1): Shangqiu's and Suining's programmes beside the vouchers by default
    write_qr_key_file(tmp_path / "a.key", KEY)
    env = {**ENV, "VOUCHER_QR_KEYS": f"A={tmp_path / 'a.key'}"}
    got = Settings.from_env(env)
    assert [p.name for p in got.ticket_campaign_files] == [
        "shangqiu-2025.toml",
        "shangqiu-demo.toml",
        "suining-chuanshan-2025.toml",
    ]
    one = bundled_ticket_campaigns_dir() / "shangqiu-2025.toml"
    got = Settings.from_env({**env, "VOUCHER_TICKET_CAMPAIGN_FILES": str(one)})
    assert got.ticket_campaign_files == (one,)


def test_a_programme_may_not_take_a_voucher_campaigns_id(tmp_path: Path) -> None:
    # rule C1: one id names one campaign, whatever its kind
    from server.app import create_app

    text = (bundled_ticket_campaigns_dir() / "shangqiu-2025.toml").read_text(encoding="utf-8")
    clash = tmp_path / "clash.toml"
    clash.write_text(text.replace('id = "shangqiu-2025"', 'id = "liaocheng-2024"'))
    with pytest.raises(CampaignConfigInvalid, match="share ids"):
        create_app(settings(ticket_campaign_files=(clash,)))


def test_a_secret_may_come_from_a_file_named_by_its_FILE_variable(tmp_path: Path) -> None:
    # issue 14: Docker's secrets are files (docker/compose.yaml); the QR keys were files already
    (tmp_path / "url").write_text("postgresql://primary/vouchers\n")
    (tmp_path / "hash").write_text(base64.b64encode(b"h" * 32).decode() + "\n")
    write_qr_key_file(tmp_path / "qr.key", KEY)
    plain = ("VOUCHER_DATABASE_URL", "VOUCHER_ID_HASH_KEY")
    env = {
        **{k: v for k, v in ENV.items() if k not in plain},
        "VOUCHER_DATABASE_URL_FILE": str(tmp_path / "url"),
        "VOUCHER_ID_HASH_KEY_FILE": str(tmp_path / "hash"),
        "VOUCHER_QR_KEYS": f"A={tmp_path / 'qr.key'}",
    }
    got = Settings.from_env(env)
    assert (got.database_url, got.id_hash_key) == ("postgresql://primary/vouchers", b"h" * 32)
    assert [(k.kid, k.secret) for k in got.qr_keys] == [("A", KEY.secret)]


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
    without_url = {k: v for k, v in ENV.items() if k != "VOUCHER_DATABASE_URL"}
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**without_url, **env}, demo=True)
