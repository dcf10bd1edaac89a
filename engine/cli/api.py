"""`specedit api`: the OpenAI-compatible server. Imports no torch or FastAPI until it runs."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from engine.contract import (
    DEFAULT_API_HOST,
    DEFAULT_API_MAX_BODY_BYTES,
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
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    key = api_key_from(args.api_key_env, args.host)
    if args.max_queue < 0 or args.max_body_bytes < 1:
        raise SpecEditError("--max-queue must be at least 0 and --max-body-bytes at least 1")
    require_extra("api", "fastapi", "uvicorn")
    import uvicorn

    from engine.api.app import ApiSettings, Service, create_app
    from engine.model.loading import load_model

    loaded = load_model(args.model, args.device, args.dtype, threads=args.threads)
    settings = ApiSettings(model_name=args.served_model_name or args.model, api_key=key,
                           max_queue=args.max_queue, max_body_bytes=args.max_body_bytes)
    app = create_app(Service(loaded, settings))
    print(f"specedit api: serving {settings.model_name!r} on http://{args.host}:{args.port}/v1",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `specedit api` (engine/cli/main.py calls this)."""
    parser = subparsers.add_parser(
        "api", help="serve an OpenAI-compatible chat completions API (Predicted Outputs)",
        description="Serve OpenAI's chat completions API; a request's `prediction` is the "
        "draft for speculative decoding.")
    add_api_arguments(parser)
    parser.set_defaults(func=run)
