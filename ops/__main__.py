"""python -m ops demo [--host H] [--port P]: the README's demo (see ops/demo.py)."""

from __future__ import annotations

import argparse
import sys

from ops.demo import demo


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the demo with embedded services and seeded data")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    return demo(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
