"""`specedit models list` and `specedit models pull NAME [--dtype ...]`.

A pull fetches and verifies the model's GGUF, which the native decoder runs on the CPU;
`--dtype float32|bfloat16` also converts it to a transformers folder (for a GPU, or for
other tools).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.model import catalog


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def run_list(args: argparse.Namespace) -> int:
    print(f"cache: {catalog.cache_root()} (set SPECEDIT_CACHE to move it)")
    for name in catalog.catalog_names():
        status = catalog.model_status(name)
        print(f"{name}  {status.model}, GGUF {_size(status.gguf_bytes)}")
        if status.gguf is not None:
            print(f"    verified GGUF (what runs on the CPU): {status.gguf}")
        elif not status.folders:
            print(f"    not cached: `specedit models pull {name}` (or first use) fetches it")
        else:
            print("    GGUF deleted after conversion; the next CPU run downloads it again")
        for dtype, folder in status.folders.items():
            print(f"    converted {dtype}: {folder} ({_size(_folder_bytes(folder))})")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    try:
        if args.dtype is None:
            if args.drop_gguf:
                raise catalog.CatalogError("--drop-gguf goes with --dtype: the GGUF is what "
                                           "runs on the CPU")
            path = catalog.ensure_gguf(args.name, progress=not args.quiet)
            from engine.model.gguf.tokenizer import load_tokenizer

            load_tokenizer(path)  # converted once now, not on the first rewrite
            print(path)
            return 0
        folder = catalog.pull(args.name, args.dtype, progress=not args.quiet,
                              keep_gguf=not args.drop_gguf)
    except catalog.CatalogError as exc:
        print(f"specedit: error: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="list or pull the offline catalog models")
    models.set_defaults(func=lambda _args: (models.print_help(sys.stderr), 2)[1])
    actions = models.add_subparsers(dest="models_command")

    listing = actions.add_parser("list", help="catalog names, sizes, and what is cached where")
    listing.set_defaults(func=run_list)

    pull = actions.add_parser(
        "pull", help="download and verify a catalog model's GGUF once, into the cache")
    pull.add_argument("name", choices=catalog.catalog_names(), metavar="NAME",
                      help=f"one of: {', '.join(catalog.catalog_names())}")
    pull.add_argument("--dtype", choices=catalog.DTYPES,
                      help="also convert it to a transformers folder of this dtype (for a "
                           "GPU, or other tools); the CPU runs the GGUF itself")
    pull.add_argument("--drop-gguf", action="store_true",
                      help="with --dtype: delete the verified GGUF after converting (a CPU "
                           "run or another dtype then downloads it again)")
    pull.add_argument("--quiet", action="store_true", help="no progress bars")
    pull.set_defaults(func=run_pull)
