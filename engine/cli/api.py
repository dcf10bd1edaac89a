"""`specedit api`: the OpenAI-compatible server. Imports no torch or FastAPI until it runs."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any

from engine.contract import (
    DEFAULT_API_BODY_TIMEOUT,
    DEFAULT_API_HEADER_TIMEOUT,
    DEFAULT_API_HOST,
    DEFAULT_API_KEEP_ALIVE_TIMEOUT,
    DEFAULT_API_MAX_BODY_BYTES,
    DEFAULT_API_MAX_CONNECTIONS,
    DEFAULT_API_MAX_HEADER_BYTES,
    DEFAULT_API_MAX_QUEUE,
    DEFAULT_API_PORT,
    SpecEditError,
)

from .extras import require_extra
from .options import add_model_options


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def api_key_from(env_var: str | None, host: str) -> str | None:
    """The key named by --api-key-env; refuse a non-loopback host without one."""
    key = None
    if env_var:
        key = os.environ.get(env_var, "").strip()
        if not key:
            raise SpecEditError(f"--api-key-env {env_var}: that environment variable is unset "
                                "or empty; set it to the key clients must send")
    if key is None and not is_loopback(host):
        raise SpecEditError(f"--host {host} is reachable from other machines: set an API key "
                            "with --api-key-env VAR (or bind 127.0.0.1)")
    return key


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser, "; clients name it in `model`")
    parser.add_argument("--served-model-name",
                        help="the name clients send as `model` (default: --model)")
    parser.add_argument("--host", default=DEFAULT_API_HOST,
                        help="address to bind (default: %(default)s; any other needs a key)")
    parser.add_argument("--port", type=int, default=DEFAULT_API_PORT,
                        help="default: %(default)s")
    parser.add_argument("--api-key-env", metavar="VAR",
                        help="environment variable holding the key clients must send as "
                        "'Authorization: Bearer <key>' (the key never appears in argv)")
    parser.add_argument("--max-queue", type=int, default=DEFAULT_API_MAX_QUEUE,
                        help="requests that may wait behind the running one; more get 429 "
                        "(default: %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_API_MAX_BODY_BYTES,
                        help="largest request body; larger ones get 413 (default: %(default)s)")
    parser.add_argument("--max-header-bytes", type=int, default=DEFAULT_API_MAX_HEADER_BYTES,
                        help="most bytes of an incomplete request head (line and headers) "
                        "held; past it, 400 (default: %(default)s)")
    parser.add_argument("--header-timeout", type=float, default=DEFAULT_API_HEADER_TIMEOUT,
                        metavar="SECONDS", help="time to send a request's line and headers; "
                        "the connection of a slower one is closed (default: %(default)s)")
    parser.add_argument("--body-timeout", type=float, default=DEFAULT_API_BODY_TIMEOUT,
                        metavar="SECONDS", help="time to send a request's body once its headers "
                        "are in; a slower one gets 408 (default: %(default)s)")
    parser.add_argument("--keep-alive-timeout", type=int,
                        default=DEFAULT_API_KEEP_ALIVE_TIMEOUT, metavar="SECONDS",
                        help="how long an idle connection stays open (default: %(default)s)")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_API_MAX_CONNECTIONS,
                        help="connections open at once; a request on one more gets 503 "
                        "(default: %(default)s)")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"])


def _check_limits(args: argparse.Namespace) -> None:
    if args.max_queue < 0:
        raise SpecEditError("--max-queue must be at least 0")
    for name in ("max_body_bytes", "max_header_bytes", "max_connections", "header_timeout",
                 "body_timeout", "keep_alive_timeout"):
        if not getattr(args, name) > 0:
            raise SpecEditError(f"--{name.replace('_', '-')} must be more than 0")


def run(args: argparse.Namespace) -> int:
    key = api_key_from(args.api_key_env, args.host)
    _check_limits(args)
    require_extra("api", "fastapi", "uvicorn", "h11")

    from engine.api.app import ApiSettings, ServedModel, create_app
    from engine.api.serving import ServerLimits, serve
    from engine.model.loading import load_model

    loaded = load_model(args.model, args.device, args.dtype, threads=args.threads)
    settings = ApiSettings(model_name=args.served_model_name or args.model, api_key=key,
                           max_queue=args.max_queue, max_body_bytes=args.max_body_bytes,
                           body_timeout=args.body_timeout)
    served = ServedModel(loaded, settings)
    limits = ServerLimits(header_timeout=args.header_timeout,
                          keep_alive_timeout=args.keep_alive_timeout,
                          max_connections=args.max_connections,
                          max_header_bytes=args.max_header_bytes)
    print(f"specedit api: serving {settings.model_name!r} on http://{args.host}:{args.port}/v1",
          file=sys.stderr, flush=True)
    ran = serve(create_app(served), args.host, args.port, limits, args.log_level,
                on_shutdown=served.jobs.close)
    if not ran:
        raise SpecEditError(f"could not serve on {args.host}:{args.port} (the log above says "
                            "why; is the port taken?)")
    closed = served.jobs.close()
    print(f"specedit api: stopped; {_closed_summary(closed)}", file=sys.stderr, flush=True)
    # As the language server does: skip the interpreter's teardown, which spends seconds
    # garbage-collecting torch and transformers (1.3-3 s measured on a busy machine) while
    # whoever stopped the server waits; nothing is left to write. Exit 0: a requested stop.
    sys.stdout.flush()
    os._exit(0)


def _closed_summary(closed: Any) -> str:
    refused = f"{closed.refused} waiting request{'s' * (closed.refused != 1)} refused"
    if not closed.running:
        return f"no request was running, {refused}"
    if closed.stopped is None:
        return f"the running request had not stopped yet, {refused}"
    passes = closed.stopped.passes_after_cancel
    return (f"the running request stopped after {passes} more forward "
            f"pass{'es' * (passes != 1)}, {refused}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `specedit api` (engine/cli/main.py calls this)."""
    parser = subparsers.add_parser(
        "api", help="serve an OpenAI-compatible chat completions API (Predicted Outputs)",
        description="Serve OpenAI's chat completions API; a request's `prediction` is the "
        "draft for speculative decoding.")
    add_api_arguments(parser)
    parser.set_defaults(func=run)
