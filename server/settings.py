"""Everything the server is configured with, validated once. The environment is read only by
``Settings.from_env`` (called from ``server/__main__.py``); ``create_app`` takes a Settings."""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.campaign_files import bundled_campaigns_dir, bundled_ticket_campaigns_dir
from shared.keys import SigningKey, VerifyingKey
from shared.tokens import QrKey

SERVICE_ISSUER = "liaocheng-vouchers"
ACCESS_AUDIENCE = "voucher-api"


class SettingsError(ValueError):
    pass


def with_files(env: Mapping[str, str]) -> dict[str, str]:
    """``env``, with each ``VOUCHER_X_FILE`` read into ``VOUCHER_X`` (trailing newline
    dropped); both set is an error, as is a file that cannot be read."""
    out = dict(env)
    for name, path in env.items():
        if not (name.startswith("VOUCHER_") and name.endswith("_FILE")) or not path:
            continue
        plain = name.removesuffix("_FILE")
        if env.get(plain):
            raise SettingsError(f"set {plain} or {name}, not both")
        try:
            out[plain] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SettingsError(f"{name}: cannot read {path}: {exc.strerror}") from exc
    return out


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    redis_url: str
    # rule X3: key of the HMAC that stands in for ID numbers; losing it loses every citizen
    id_hash_key: bytes
    # HS256 secret of the short-lived access tokens this server issues (terminals, staff,
    # citizens after the identity provider vouched for them)
    access_token_secret: bytes
    # rule U5: the first key mints the citizens' QR codes; a second one, the previous, still
    # verifies the codes it minted (key rotation; shared/tokens.py)
    qr_keys: tuple[QrKey, ...]
    # rule X2: the city's real-name app, whose signed assertion identifies a citizen
    idp_issuer: str
    idp_keys: Mapping[str, VerifyingKey]
    campaign_files: tuple[Path, ...]
    # rule X2: where the wallet's sign-in page sends the citizen to start the real-name flow
    # (the app's https address); the page adds ``nonce=…``, which the app's assertion must
    # carry back (server/pages/signin.py). None: the page offers no production sign-in.
    idp_sign_in_url: str | None = None
    # rules C1, T1-T14 (issue 13): the house-ticket programmes served beside the vouchers
    ticket_campaign_files: tuple[Path, ...] = ()
    # the development identity provider (mints assertions for any ID number): demo only
    dev_idp_key: SigningKey | None = None
    access_token_ttl_seconds: int = 900
    max_body_bytes: int = 16 * 1024  # JSON requests
    max_upload_bytes: int = 64 * 1024 * 1024  # registry files
    pg_pool_min: int = 4
    pg_pool_max: int = 32
    lock_ttl_ms: int = 5000
    # concurrent quotes and redemptions share statements (server/batching.py): at most this
    # many bills per statement, and this many such statements of each kind in flight at once
    # (on a pool of their own of 2 x batch_concurrency connections)
    batch_max_size: int = 64
    batch_concurrency: int = 3
    host: str = "127.0.0.1"
    port: int = 8080
    # Throttles (server/throttle.py, issue 9). Redis keeps them: they are filters, so with Redis
    # out of reach they fail open and the credential check alone decides.
    # Failed sign-ins per (account or terminal, client address) in a window, then 429 until the
    # window ends: one address cannot guess more than this, nor lock the account for others.
    sign_in_client_failures: int = 10
    sign_in_window_seconds: int = 15 * 60
    # Failed sign-ins per account from all addresses in the window before the account backs
    # off: each further failure shuts it for the first back-off, then twice that, and so on, at
    # most sign_in_backoff_max_seconds (OWASP: a gentler per-account ceiling, never a long
    # lock-out a stranger can cause).
    sign_in_account_failures: int = 30
    sign_in_backoff_first_seconds: int = 1
    sign_in_backoff_max_seconds: int = 60
    # Failed claims per citizen per hour (rule E3: certificate numbers are not enumerable).
    claim_failures_per_hour: int = 10
    # QR codes a citizen may mint (rule U5): a steady rate, after a burst from idle. A phone
    # needs one about every 50 s.
    qr_mints_per_minute: int = 6
    qr_mint_burst: int = 6
    # Addresses (or networks, CIDR) of reverse proxies whose X-Forwarded-For is believed; with
    # none, the client address is the peer's and X-Forwarded-For is ignored.
    trusted_proxies: tuple[str, ...] = ()
    # issue 9 item 11: after this many consecutive Redis failures or timeouts, Redis is
    # skipped (the database alone guards) for the cool-down, then probed by one call
    redis_breaker_failures: int = 3
    redis_breaker_cool_down_s: float = 2.0
    # issue 9, retention (rule U7): consumed QR token ids and kept refusals older than this
    # (and than every campaign's idempotency_retention_hours; never under 24 h) are purged
    # every retention_interval_s, retention_batch rows per statement (server/db/retention.py)
    retention_hours: int = 24
    retention_interval_s: float = 3600.0
    retention_batch: int = 5000
    # issue 14: a streaming replica for what only reads (server/db/replica.py): the merchant's
    # day and month, the ranking, the dashboard. Reads go to the primary while the replica is
    # more than replica_max_lag_s behind or does not answer (polled every replica_poll_s).
    database_replica_url: str | None = None
    replica_pool_max: int = 8
    replica_max_lag_s: float = 5.0
    replica_poll_s: float = 1.0
    replica_connect_timeout_s: float = 1.0
    # issue 14, load shedding (server/admission.py): per process, at most this many requests
    # in flight (starting at shed_initial_in_flight, the limit adapts to keep their time in
    # the server under shed_target_ms, or twice what it is uncrowded, on average); one more
    # waits at most shed_queue_wait_ms for a slot, else it is refused at once (503
    # server_busy, or waiting_room for claims)
    shed_max_in_flight: int = 256
    shed_initial_in_flight: int = 256
    shed_target_ms: float = 50.0
    shed_queue_wait_ms: float = 5.0
    # a client (a till's token, a browser's session) refused again before its Retry-After
    # (at most this long) waits for it before its answer: one refusal per client per
    # shed_tarpit_s at most (0: never)
    shed_tarpit_s: float = 1.0
    # issue 14: redis_url names one node of a Redis Cluster (its masters are found from it),
    # not a single Redis; every key carries a hash tag (server/redis_keys.py)
    redis_cluster: bool = False
    # issue 14: a stopped host answers the requests it has received for at most this long
    # before its pools close (server/process.py)
    shutdown_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if len(self.id_hash_key) < 32:
            raise SettingsError("the ID hash key must be at least 32 bytes")
        if len(self.access_token_secret) < 32:
            raise SettingsError("the access token secret must be at least 32 bytes")
        if not 1 <= len(self.qr_keys) <= 2:
            raise SettingsError("one QR key is needed, and the previous one may follow it")
        if len({k.kid for k in self.qr_keys}) != len(self.qr_keys):
            raise SettingsError("QR key ids must be distinct")
        if not self.campaign_files:
            raise SettingsError("no campaign files configured")
        if not 1 <= self.pg_pool_min <= self.pg_pool_max:
            raise SettingsError("pool sizes must satisfy 1 <= min <= max")
        if self.batch_max_size < 1 or self.batch_concurrency < 1:
            raise SettingsError("batches need a size and a concurrency of at least 1")
        for name in (
            "sign_in_client_failures",
            "sign_in_window_seconds",
            "sign_in_account_failures",
            "sign_in_backoff_first_seconds",
            "sign_in_backoff_max_seconds",
            "claim_failures_per_hour",
            "qr_mints_per_minute",
            "qr_mint_burst",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        if self.sign_in_account_failures < self.sign_in_client_failures:
            raise SettingsError(
                "sign_in_account_failures must be at least sign_in_client_failures: "
                "one address alone must not make the account back off"
            )
        if self.sign_in_backoff_first_seconds > self.sign_in_backoff_max_seconds:
            raise SettingsError("the first sign-in back-off cannot exceed the longest")
        if (
            self.replica_max_lag_s < 0
            or min(self.replica_poll_s, self.replica_connect_timeout_s) <= 0
            or self.replica_pool_max < 1
        ):
            raise SettingsError(
                "the replica needs a lag bound >= 0, a poll and a connect timeout > 0, a pool >= 1"
            )
        if not 2 <= self.shed_initial_in_flight <= self.shed_max_in_flight:
            raise SettingsError("shedding needs 2 <= shed_initial_in_flight <= shed_max_in_flight")
        if self.shed_target_ms <= 0 or self.shed_queue_wait_ms < 0 or self.shed_tarpit_s < 0:
            raise SettingsError(
                "shedding needs a latency target > 0, a queue wait >= 0 and a tarpit >= 0"
            )
        if self.idp_sign_in_url is not None:
            parts = urlsplit(self.idp_sign_in_url)
            if parts.scheme != "https" or not parts.netloc or parts.fragment:
                raise SettingsError(
                    "the identity provider's sign-in URL must be an https address, no fragment"
                )
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise SettingsError(f"trusted proxy {proxy!r} is not an address") from exc

    @property
    def qr_keys_by_id(self) -> dict[str, QrKey]:
        return {k.kid: k for k in self.qr_keys}

    @property
    def idp_verifying_keys(self) -> dict[str, VerifyingKey]:
        keys = dict(self.idp_keys)
        if self.dev_idp_key is not None:
            keys[self.dev_idp_key.kid] = self.dev_idp_key.public()
        return keys

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, demo: bool = False) -> Settings:
        """Production settings from VOUCHER_* variables (see README); demo fills the gaps, but
        for the QR key: a key made at each start would turn every code shown before a restart
        into a forgery, so the demo keeps one in its data folder (``ops/demo.py``).
        Any of them may come from a file instead: ``VOUCHER_X_FILE`` names the file that holds
        ``VOUCHER_X`` (Docker's and Kubernetes' secrets, as the postgres image's ``_FILE``)."""
        env = with_files(os.environ if env is None else env)

        def need(name: str) -> str:
            value = env.get(name, "")
            if not value:
                raise SettingsError(f"{name} is not set")
            return value

        def secret(name: str, demo_value: bytes) -> bytes:
            if demo and not env.get(name):
                return demo_value
            return base64.b64decode(need(name), validate=True)

        qr_keys = [
            qr_key_from_file(kid.strip(), Path(path.strip()))
            for kid, _, path in (
                part.partition("=") for part in env.get("VOUCHER_QR_KEYS", "").split(",") if part
            )
        ]
        idp_keys: dict[str, VerifyingKey] = {}
        for part in filter(None, env.get("VOUCHER_IDP_KEYS", "").split(",")):
            kid, _, path = part.partition("=")
            public = serialization.load_pem_public_key(Path(path.strip()).read_bytes())
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise SettingsError(f"identity provider key {kid!r} is not an EC public key")
            idp_keys[kid.strip()] = VerifyingKey(kid.strip(), public)
        files = tuple(
            Path(p) for p in filter(None, env.get("VOUCHER_CAMPAIGN_FILES", "").split(","))
        )
        if not files:
            files = tuple(sorted(bundled_campaigns_dir().glob("*.toml")))
        ticket_files = tuple(
            Path(p) for p in filter(None, env.get("VOUCHER_TICKET_CAMPAIGN_FILES", "").split(","))
        )
        if not ticket_files:
            ticket_files = tuple(sorted(bundled_ticket_campaigns_dir().glob("*.toml")))
        return cls(
            database_url=need("VOUCHER_DATABASE_URL"),
            redis_url=need("VOUCHER_REDIS_URL"),
            id_hash_key=secret("VOUCHER_ID_HASH_KEY", b"demo-id-hash-key-not-for-production!"),
            access_token_secret=secret(
                "VOUCHER_ACCESS_TOKEN_SECRET", b"demo-access-token-secret-not-for-production"
            ),
            qr_keys=tuple(qr_keys),
            idp_issuer=env.get("VOUCHER_IDP_ISSUER", "https://idp.liaocheng.example"),
            idp_keys=idp_keys,
            idp_sign_in_url=env.get("VOUCHER_IDP_SIGN_IN_URL") or None,
            campaign_files=files,
            ticket_campaign_files=ticket_files,
            dev_idp_key=SigningKey.generate("dev-idp") if demo else None,
            host=env.get("VOUCHER_HOST", "127.0.0.1"),
            port=int(env.get("VOUCHER_PORT", "8080")),
            pg_pool_max=int(env.get("VOUCHER_PG_POOL_MAX", "32")),
            database_replica_url=env.get("VOUCHER_DATABASE_REPLICA_URL") or None,
            replica_max_lag_s=float(env.get("VOUCHER_REPLICA_MAX_LAG_S", "5")),
            shed_target_ms=float(env.get("VOUCHER_SHED_TARGET_MS", "50")),
            shed_max_in_flight=int(env.get("VOUCHER_SHED_MAX_IN_FLIGHT", "256")),
            shed_initial_in_flight=int(env.get("VOUCHER_SHED_INITIAL_IN_FLIGHT", "256")),
            shed_tarpit_s=float(env.get("VOUCHER_SHED_TARPIT_S", "1")),
            shutdown_timeout_s=float(env.get("VOUCHER_SHUTDOWN_TIMEOUT_S", "30")),
            redis_cluster=env.get("VOUCHER_REDIS_CLUSTER", "0").lower() in ("1", "true", "yes"),
            trusted_proxies=tuple(
                p.strip() for p in env.get("VOUCHER_TRUSTED_PROXIES", "").split(",") if p.strip()
            ),
        )


def qr_key_from_file(kid: str, path: Path) -> QrKey:
    """A QR key (rule U5) from its secrets file: base64 of at least 32 random bytes (made with
    ``openssl rand -base64 32``, say)."""
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if text.startswith("-----BEGIN"):
        raise SettingsError(
            f"QR key {kid!r} ({path}) is a PEM key: QR codes are now signed with an HMAC key, "
            "base64 of 32 random bytes (README, Configuration)"
        )
    try:
        return QrKey(kid, base64.b64decode(text, validate=True))
    except ValueError as exc:  # binascii.Error is a ValueError, as is a bad key id or length
        raise SettingsError(f"QR key {kid!r} ({path}): {exc}") from exc


def write_qr_key_file(path: Path, key: QrKey) -> None:
    """``key`` in the form ``qr_key_from_file`` reads, readable by its owner only."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(base64.b64encode(key.secret).decode("ascii") + "\n", encoding="ascii")
