"""`specedit rewrite`: rewrite lines of a file headless, as a diff, JSON or in place."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

from engine.contract import DEFAULT_CONTEXT_LINES, DEFAULT_METHOD, METHODS, InvalidRequestError
from engine.decode.methods import check_draft_model, parse_method
from engine.rewriting.request import check_rewrite_request, region_of_lines

from .options import add_model_options


def parse_lines(spec: str | None, total: int) -> tuple[int, int]:
    """1-based inclusive START-END to 0-based [start, end)."""
    if spec is None:
        return 0, total
    try:
        first, _, last = spec.partition("-")
        start, end = int(first), int(last or first)
    except ValueError:
        raise InvalidRequestError(f"--lines {spec!r} is not START-END, e.g. --lines 9-10") from None
    if not 1 <= start <= end <= total:
        raise InvalidRequestError(
            f"--lines {spec} is out of range: the file has {total} lines (use 1-{total})")
    return start - 1, end


def read_source(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError(f"{path} is not UTF-8 text; convert it to UTF-8 first") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rewrite", help="rewrite lines of a file following an instruction")
    p.add_argument("file", type=Path)
    p.add_argument("--instruction", required=True)
    p.add_argument("--lines", help="START-END, 1-based and inclusive (default: whole file)")
    add_model_options(p)
    p.add_argument("--method", default=DEFAULT_METHOD, metavar="METHOD",
                   help=f"one of {', '.join(METHODS)} (default: %(default)s, which sizes "
                   "each draft from what a pass costs on this device and dtype); speculative:N "
                   "caps every draft at N tokens instead (for experiments); draft-model:K drafts "
                   "K tokens per pass instead of an adaptive K")
    p.add_argument("--draft", help="draft model for --method draft-model; with speculative, "
                   "it drafts where the rewrite leaves the original code (hybrid)")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--context-lines", type=int, default=DEFAULT_CONTEXT_LINES,
                   help="lines on each side of the selection given to the model as context "
                   "(default: %(default)s)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON object")
    out.add_argument("--in-place", action="store_true", help="write the file")
    p.set_defaults(func=_run_rewrite)


# What the request check calls each part of a request, in this command's terms.
_REQUEST_NAMES = {"selection": "the selection (--lines)", "instruction": "--instruction",
                  "max_new_tokens": "--max-new-tokens"}


def _run_rewrite(args: argparse.Namespace) -> int:

    # Everything that can be refused is refused before a model loads (seconds to minutes).
    method = parse_method(args.method)
    check_draft_model(method, args.draft is not None, "--draft")
    source = read_source(args.file)
    lines = source.splitlines(keepends=True)
    start, end = parse_lines(args.lines, len(lines))
    region = region_of_lines(lines, start, end, args.context_lines)
    check_rewrite_request(region.text, args.instruction, max_new_tokens=args.max_new_tokens,
                          names=_REQUEST_NAMES)

    from engine.model.loading import load_model
    from engine.rewriting.prompt import language_for_path
    from engine.rewriting.rewrite import rewrite

    from .progress_bar import ProgressBar

    loaded = load_model(args.model, args.device, args.dtype, threads=args.threads)
    draft = (load_model(args.draft, args.device, args.dtype, threads=args.threads)
             if args.draft else None)
    with ProgressBar(total=None) as progress:
        result = rewrite(loaded, region.text, args.instruction,
                         language=language_for_path(args.file.name),
                         context_before=region.context_before,
                         context_after=region.context_after,
                         method=method, max_new_tokens=args.max_new_tokens,
                         on_progress=progress.update, draft=draft)
    new_source = "".join(lines[:start]) + result.text + "".join(lines[end:])
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    elif args.in_place:
        args.file.write_text(new_source, encoding="utf-8")
    else:
        diff = difflib.unified_diff(source.splitlines(keepends=True),
                                    new_source.splitlines(keepends=True),
                                    fromfile=f"a/{args.file}", tofile=f"b/{args.file}")
        sys.stdout.writelines(line if line.endswith("\n") else line + "\n" for line in diff)
    if result.finish_reason == "length":
        print("warning: stopped at --max-new-tokens before the model finished; "
              "the rewrite may be cut short", file=sys.stderr)
    s = result.stats
    speedup = (f", ~{s.estimated_speedup:.1f}x vs greedy (estimated)"
               if s.estimated_speedup else "")
    print(f"{s.output_tokens} tokens, {s.forward_passes} forward passes, "
          f"{s.wall_seconds:.2f} s, {s.tokens_per_second:.1f} tokens/s{speedup}",
          file=sys.stderr if args.json else sys.stdout)
    return 0
