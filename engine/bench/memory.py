"""What a loaded model takes in memory, beside its GGUF's size.

    python -m engine.bench.memory --model qwen2.5-coder-1.5b-instruct [--dtype auto]

Prints the process's resident memory (anonymous and file-backed apart: the native decoder
maps the GGUF, so its weights show as file pages) after importing torch and transformers,
after loading, and after one rewrite (the README's), one line each, as CSV. Linux only
(/proc/self/status).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def resident_mib() -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of this process, MiB."""
    fields: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) // 1024
    return fields


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.memory",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", default="1")
    args = parser.parse_args(argv)

    import torch  # noqa: F401  (counted in the first line)
    import transformers  # noqa: F401

    import engine
    from engine.model.catalog import ensure_gguf

    gguf_mib = ensure_gguf(args.model).stat().st_size // 2**20
    print("stage,model,dtype,gguf_mib,rss_mib,anon_mib,file_mib,rss_over_gguf")

    def row(stage: str, dtype: str) -> None:
        m = resident_mib()
        print(f"{stage},{args.model},{dtype},{gguf_mib},{m['VmRSS']},{m['RssAnon']},"
              f"{m['RssFile']},{m['VmRSS'] / gguf_mib:.2f}", flush=True)

    row("imports", args.dtype)
    loaded = engine.load_model(args.model, device="cpu", dtype=args.dtype,
                               threads=args.threads)
    row("loaded", loaded.dtype)
    lines = (REPO / "engine" / "cli" / "models.py").read_text(encoding="utf-8").splitlines(True)
    engine.rewrite(loaded, "".join(lines[16:23]), "Rename the variable `value` to `amount`.",
                   language="python")
    row("after a rewrite", loaded.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
