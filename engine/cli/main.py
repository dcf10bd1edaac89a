"""`specedit`: rewrite code headless, manage models, serve the editor and the API, benchmark.

Each command lives in its own module with `register(subparsers)`, and imports no torch until
it runs (`specedit serve` must answer the editor's handshake at once).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.contract import SpecEditError

# The modules that register a command, in the order `specedit --help` lists them.
_COMMAND_MODULES = ("engine.cli.rewrite", "engine.cli.models", "lsp_server.cli",
                    "engine.cli.api", "engine.bench.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specedit", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpecEditError as exc:
        print(f"specedit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("specedit: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
