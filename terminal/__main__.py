"""python -m terminal [--server URL] [--pair CREDENTIALS_JSON | --terminal-id N --secret S]
                      [--lang zh|en] [--config PATH]

Pairing stores the server URL, terminal id and secret in the config file (mode 0600);
later starts need no arguments. Without a pairing the terminal opens its settings screen.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from terminal.config import (
    DEFAULT_SERVER,
    LANGS,
    ConfigInvalid,
    TerminalConfig,
    config_from_credentials,
    default_config_path,
    keep_local_settings,
    load_config,
    normalise_server_url,
    parse_lang,
    parse_secret,
    parse_terminal_id,
    save_config,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m terminal", description="Liaocheng consumption-voucher cashier terminal"
    )
    parser.add_argument("--server", help=f"server URL (default: saved, or {DEFAULT_SERVER})")
    pairing = parser.add_mutually_exclusive_group()
    pairing.add_argument(
        "--pair",
        metavar="CREDENTIALS_JSON",
        type=Path,
        help="pair with a credential file ({terminal_id, terminal_secret}), e.g. the demo's",
    )
    pairing.add_argument("--terminal-id", type=int, help="pair with this terminal id ...")
    parser.add_argument("--secret", help="... and this secret (prefer --pair: argv is visible)")
    parser.add_argument("--lang", choices=LANGS, help="zh (default) or en; saved")
    parser.add_argument(
        "--config",
        type=Path,
        help="config file (default: $VOUCHER_TERMINAL_CONFIG or "
        "~/.config/liaocheng-voucher-terminal/config.json)",
    )
    return parser


def resolve_config(args: argparse.Namespace) -> tuple[Path, TerminalConfig | None]:
    """Apply the command line to the saved config; save when it changed anything."""
    path: Path = args.config or default_config_path()
    saved = load_config(path)
    lang = parse_lang(args.lang) if args.lang else (saved.lang if saved else "zh")
    server = args.server or (saved.server_url if saved else DEFAULT_SERVER)
    config = saved
    if args.pair is not None:
        config = config_from_credentials(args.pair, server, lang)
        if args.server:
            config = TerminalConfig(
                normalise_server_url(args.server), config.terminal_id, config.secret, lang
            )
    elif args.terminal_id is not None:
        if not args.secret:
            raise ConfigInvalid("--terminal-id needs --secret (or use --pair FILE)")
        config = TerminalConfig(
            normalise_server_url(server),
            parse_terminal_id(args.terminal_id),
            parse_secret(args.secret),
            lang,
        )
    elif args.secret:
        raise ConfigInvalid("--secret needs --terminal-id")
    elif saved is not None:
        config = TerminalConfig(normalise_server_url(server), saved.terminal_id, saved.secret, lang)
    if config is not None and saved is not None and config is not saved:
        config = keep_local_settings(config, saved)
    if config is not None and config != saved:
        save_config(path, config)
    return path, config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path, config = resolve_config(args)
    except ConfigInvalid as exc:
        print(f"terminal: {exc}", file=sys.stderr)
        return 2
    from terminal.app import TerminalApp  # Textual only once the arguments are good

    lang = parse_lang(args.lang) if args.lang else None
    TerminalApp(config, config_path=path, lang=lang).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
