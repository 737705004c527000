"""The terminal's pairing: server URL, terminal id and its secret, kept in a file only the
user can read (0600), so that later starts need no arguments."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
CONFIG_ENV = "VOUCHER_TERMINAL_CONFIG"
APP_DIR_NAME = "liaocheng-voucher-terminal"
DEFAULT_SERVER = "http://127.0.0.1:8080"


class ConfigInvalid(ValueError):
    """The config or credential file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    server_url: str
    terminal_id: int
    secret: str
    lang: Lang = "zh"

    def with_lang(self, lang: Lang) -> TerminalConfig:
        return replace(self, lang=lang)

    def __repr__(self) -> str:  # the secret never shows up in logs or tracebacks
        return (
            f"TerminalConfig(server_url={self.server_url!r}, terminal_id={self.terminal_id}, "
            f"lang={self.lang!r}, secret=***)"
        )


def default_config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP_DIR_NAME / "config.json"


def normalise_server_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) < len("http://x"):
        raise ConfigInvalid(f"the server URL must start with http:// or https://, got {url!r}")
    return url


def parse_lang(value: object) -> Lang:
    if value == "zh" or value == "en":
        return value
    raise ConfigInvalid(f"language must be one of {', '.join(LANGS)}, got {value!r}")


def parse_terminal_id(value: object) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or value <= 0:
        raise ConfigInvalid(f"the terminal id must be a positive whole number, got {value!r}")
    return value


def parse_secret(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigInvalid("the terminal secret must be a non-empty text")
    return value.strip()


def config_from_dict(data: dict[str, Any]) -> TerminalConfig:
    return TerminalConfig(
        server_url=normalise_server_url(str(data.get("server_url", ""))),
        terminal_id=parse_terminal_id(data.get("terminal_id")),
        secret=parse_secret(data.get("secret")),
        lang=parse_lang(data.get("lang", "zh")),
    )


def load_config(path: Path) -> TerminalConfig | None:
    """The saved pairing, or None if the terminal was never paired."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigInvalid(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigInvalid(f"{path} does not hold a JSON object")
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # it holds the terminal's secret: owner only
    return config_from_dict(data)


def save_config(path: Path, config: TerminalConfig) -> None:
    """Write atomically, created 0600 from the start (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(config), out, ensure_ascii=False, indent=2)
            out.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_from_credentials(path: Path, server_url: str, lang: Lang = "zh") -> TerminalConfig:
    """A credential file an operator issued (the demo writes ``demo-credentials.json``):
    ``{"terminal_id": 3, "terminal_secret": "..."}`` (``secret`` is accepted too)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigInvalid(f"cannot read the credential file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigInvalid(f"{path} does not hold a JSON object")
    return TerminalConfig(
        server_url=normalise_server_url(str(data.get("server_url") or server_url)),
        terminal_id=parse_terminal_id(data.get("terminal_id")),
        secret=parse_secret(data.get("terminal_secret", data.get("secret"))),
        lang=lang,
    )


def data_dir(config_path: Path) -> Path:
    """Where receipts and exports go by default: next to the config file."""
    return config_path.parent
