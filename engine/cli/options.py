"""Options every command that loads a model shares: --model, --device, --dtype, --threads."""

from __future__ import annotations

import argparse

from engine.contract import (
    DEFAULT_DEVICE,
    DEFAULT_DTYPE,
    DEFAULT_THREADS,
    DEVICES,
    DTYPES,
    MODEL_ENV,
    THREADS_ENV,
    default_model,
)
from engine.model.threads import parse_threads


def add_model_options(parser: argparse.ArgumentParser, model_help: str = "") -> None:
    parser.add_argument("--model", default=default_model(),
                        help=f"catalog name, local folder or hub id (default: %(default)s; "
                        f"set {MODEL_ENV} to change it){model_help}")
    parser.add_argument("--device", default=DEFAULT_DEVICE, choices=DEVICES)
    parser.add_argument("--dtype", default=DEFAULT_DTYPE, choices=DTYPES)
    add_threads_argument(parser)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """`--threads` for every command that loads a model (an argparse parser)."""
    parser.add_argument(
        "--threads", type=parse_threads, default=None, metavar="N|auto",
        help=f"CPU threads for forward passes: auto (as many as there are idle cores, looked "
             f"at before each rewrite and every second between passes) or a number "
             f"(default: ${THREADS_ENV}, else {DEFAULT_THREADS})")
