"""The terminal's pairing: server URL, terminal id and its secret, kept in a file only the
user can read (0600), so that later starts need no arguments."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from terminal.printing import PrinterInvalid, PrinterSettings, parse_paper, parse_printer
from terminal.scanning import SUFFIX_KEYS, ScannerSettings

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
    scan_gap_ms: int = 30
    """Keys closer than this are one burst (a scanner); see ``ScannerSettings``."""
    scan_prefix: str = ""
    scan_suffix: str = "enter"
    scan_min_length: int = 8
    answer_wait_s: float = 10.0
    """The longest a cashier waits for a redeem or refund before the unknown-outcome flow
    (issue 11 item 4)."""
    refund_needs_manager: bool = False
    """A refund needs a merchant manager's username and password, checked by the server,
    before it is sent (issue 11 item 5; until the merchant can set it on the server)."""
    printer: str = "none"
    """The receipt printer (``terminal/printing.py``: none, network:, usb:, serial:, device:)."""
    paper_mm: int = 58
    """58 mm paper has 32 columns, 80 mm has 48."""

    def with_lang(self, lang: Lang) -> TerminalConfig:
        return replace(self, lang=lang)

    @property
    def scanner(self) -> ScannerSettings:
        return ScannerSettings(
            self.scan_gap_ms, self.scan_prefix, self.scan_suffix, self.scan_min_length
        )

    @property
    def printer_settings(self) -> PrinterSettings:
        return parse_printer(self.printer)

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


def _whole(data: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = data.get(name, default)
    if type(value) is not int or not low <= value <= high:
        raise ConfigInvalid(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def parse_scanner(data: dict[str, Any]) -> dict[str, Any]:
    """The scanner, waiting and approval settings of a config file (all optional)."""
    prefix = data.get("scan_prefix", "")
    if not isinstance(prefix, str) or len(prefix) > 8:
        raise ConfigInvalid(f"scan_prefix must be a text of at most 8 characters, got {prefix!r}")
    suffix = data.get("scan_suffix", "enter")
    if suffix not in SUFFIX_KEYS:
        raise ConfigInvalid(f"scan_suffix must be one of enter, tab or empty, got {suffix!r}")
    wait = data.get("answer_wait_s", 10.0)
    if type(wait) not in (int, float) or not 1 <= wait <= 60:
        raise ConfigInvalid(f"answer_wait_s must be from 1 to 60 seconds, got {wait!r}")
    needs_manager = data.get("refund_needs_manager", False)
    if type(needs_manager) is not bool:
        raise ConfigInvalid(f"refund_needs_manager must be true or false, got {needs_manager!r}")
    try:
        printer = parse_printer(str(data.get("printer", "none"))).spec
        paper = parse_paper(data.get("paper_mm", 58))
    except PrinterInvalid as exc:
        raise ConfigInvalid(str(exc)) from exc
    return {
        "printer": printer,
        "paper_mm": paper,
        "refund_needs_manager": needs_manager,
        "scan_gap_ms": _whole(data, "scan_gap_ms", 30, 5, 500),
        "scan_prefix": prefix,
        "scan_suffix": suffix,
        "scan_min_length": _whole(data, "scan_min_length", 8, 4, 64),
        "answer_wait_s": float(wait),
    }


def config_from_dict(data: dict[str, Any]) -> TerminalConfig:
    return TerminalConfig(
        server_url=normalise_server_url(str(data.get("server_url", ""))),
        terminal_id=parse_terminal_id(data.get("terminal_id")),
        secret=parse_secret(data.get("secret")),
        lang=parse_lang(data.get("lang", "zh")),
        **parse_scanner(data),
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


def keep_local_settings(config: TerminalConfig, saved: TerminalConfig) -> TerminalConfig:
    """A new pairing keeps this till's own settings (scanner, waiting)."""
    return replace(
        config,
        scan_gap_ms=saved.scan_gap_ms,
        scan_prefix=saved.scan_prefix,
        scan_suffix=saved.scan_suffix,
        scan_min_length=saved.scan_min_length,
        answer_wait_s=saved.answer_wait_s,
        refund_needs_manager=saved.refund_needs_manager,
        printer=saved.printer,
        paper_mm=saved.paper_mm,
    )


def data_dir(config_path: Path) -> Path:
    """Where receipts and exports go by default: next to the config file."""
    return config_path.parent
