"""`specedit bench` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.options import add_threads_argument
from engine.contract import (
    DEFAULT_CONTEXT_LINES,
    DEFAULT_DEVICE,
    DEFAULT_DTYPE,
    DEFAULT_ENDPOINT_KEY_ENV,
    DEFAULT_METHOD,
    DEFAULT_PROMPT_FORMAT,
    DEVICES,
    DTYPES,
    PROMPT_FORMATS,
    SERVER_METHODS,
    default_model,
)

from .endpoint import PREDICTION_CHOICES
from .sandbox import DEFAULT_TEST_TIMEOUT
from .selection import SELECTION_MODES, WHOLE_FILE
from .tasks import INSTRUCTION_KINDS

if TYPE_CHECKING:  # torch loads only when a command runs, not when the CLI is built
    import torch

# What --methods runs by default: greedy (the reference), the baseline a user would otherwise
# pick (transformers' prompt lookup) and ours. Synthetic mode cannot run the baseline (no
# tokenizer): it compares with our n-gram proposer instead.
DEFAULT_METHODS = "greedy,hf-prompt-lookup,speculative"
DEFAULT_SYNTHETIC_METHODS = "greedy,prompt-lookup,speculative"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmark methods on CanItEdit and the worked example")
    p.add_argument("--model", default=None, help="catalog name, folder or hub id "
                   "(default: the CLI's default model)")
    p.add_argument("--methods",
                   help="comma-separated: greedy, speculative, speculative:N (every draft at "
                   "most N tokens), prompt-lookup (our n-gram proposer), draft-model, "
                   "draft-model:K, hf-prompt-lookup (transformers' generate), "
                   "speculative-original (the original alone, no n-gram lookup) "
                   f"(default: {DEFAULT_METHODS}; --synthetic: {DEFAULT_SYNTHETIC_METHODS})")
    p.add_argument("--draft", help="draft model for the draft-model method")
    p.add_argument("--instruction", choices=INSTRUCTION_KINDS, default="descriptive")
    p.add_argument("--limit", type=int, help="first N CanItEdit tasks")
    p.add_argument("--tasks", help="comma-separated task ids (e.g. 10_csv_parser or 10)")
    p.add_argument("--no-example", action="store_true", help="leave out the worked example")
    p.add_argument("--data", type=Path, help="folder with canitedit/ and examples/")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--dtype", default="auto", choices=DTYPES)
    add_threads_argument(p)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--out", type=Path, default=Path("bench-out"))
    p.add_argument("--resume", action="store_true", help="skip rows already in the CSV")
    p.add_argument("--synthetic", action="store_true",
                   help="random-weight model of a real shape (for machines without weights)")
    p.add_argument("--arch", default="qwen2")
    p.add_argument("--size", default="0.5b", choices=["tiny", "0.5b", "1.5b", "7b"])
    p.add_argument("--synthetic-tokens", type=int, default=256)
    p.add_argument("--endpoint", metavar="URL",
                   help="also (or only) rewrite at this OpenAI-compatible server, base URL as "
                   "OpenAI clients take it (e.g. http://gpu-box:8000/v1); in-process methods "
                   "run only when --methods names them")
    p.add_argument("--endpoint-model", metavar="M",
                   help="the model name the endpoint serves (default: --model, else the "
                   "CLI's default model)")
    p.add_argument("--api-key-env", metavar="VAR", default=DEFAULT_ENDPOINT_KEY_ENV,
                   help="environment variable holding the endpoint's key (default: "
                   "%(default)s; unset: no key)")
    p.add_argument("--prediction", choices=PREDICTION_CHOICES, default="both",
                   help="send the original as `prediction`, not, or both as separate rows "
                   "(default: %(default)s)")
    p.set_defaults(func=_run)

    c = subparsers.add_parser("passcost", help="time one forward pass against the tokens it "
                              "verifies (explains the speed-ups on this device and dtype), and "
                              "print the curve speculative sizes its drafts from")
    c.add_argument("--model", default=None, help="catalog name, folder or hub id")
    c.add_argument("--synthetic", action="store_true", help="random-weight qwen2 of --size")
    c.add_argument("--size", default="0.5b", choices=["tiny", "0.5b", "1.5b", "7b"])
    c.add_argument("--device", default="auto", choices=DEVICES)
    c.add_argument("--dtype", default="auto", choices=DTYPES)
    add_threads_argument(c)
    c.add_argument("--context", type=int, default=512, help="cached tokens before each pass")
    c.add_argument("--sizes", default="1,8,32,128,512", help="tokens per pass to time")
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--prompt-tokens", type=int, default=450,
                   help="for the ceiling line: prompt length of a typical task")
    c.add_argument("--output-tokens", type=int, default=300)
    c.add_argument("--out", type=Path, help="also write the Markdown table here")
    c.set_defaults(func=_run_passcost)

    _register_eval(subparsers)

    st = subparsers.add_parser(
        "bench-stream", help="time to the first and the last change of the worked example, "
        "streamed through a real language server over stdio")
    st.add_argument("--model", default=None, help="catalog name, folder or hub id "
                    "(default: the CLI's default model)")
    st.add_argument("--device", default=DEFAULT_DEVICE, choices=DEVICES)
    st.add_argument("--dtype", default=DEFAULT_DTYPE, choices=DTYPES)
    add_threads_argument(st)
    st.add_argument("--method", default=DEFAULT_METHOD, choices=SERVER_METHODS)
    st.add_argument("--context-lines", type=int, default=DEFAULT_CONTEXT_LINES)
    st.add_argument("--data", type=Path, help="folder with examples/")
    st.add_argument("--runs", type=int, default=2,
                    help="rewrites through the same server (the first one pays warm-up costs)")
    st.set_defaults(func=_run_stream)

    k = subparsers.add_parser("ksweep", help="draft-model speculative decoding: sweep K")
    k.add_argument("--target", default="gpt2-medium")
    k.add_argument("--draft", default="gpt2")
    k.add_argument("--prompt",
                   default="Artificial intelligence is rapidly transforming our world by")
    k.add_argument("--max-new-tokens", type=int, default=100)
    k.add_argument("--k", default="1,2,3,4,5,8", help="comma-separated K values; 'auto' = adaptive")
    k.add_argument("--device", default="auto", choices=DEVICES)
    k.add_argument("--dtype", default="auto", choices=DTYPES)
    add_threads_argument(k)
    k.add_argument("--out", type=Path, default=Path("ksweep-out"))
    k.set_defaults(func=_run_ksweep)


def _register_eval(subparsers: argparse._SubParsersAction) -> None:
    e = subparsers.add_parser("eval", help="how often the rewrite is right: CanItEdit pass@1 "
                              "for a model, prompt format and method, with failure causes")
    e.add_argument("--model", default=None, help="catalog name, folder or hub id "
                   "(default: the CLI's default model)")
    e.add_argument("--device", default=DEFAULT_DEVICE, choices=DEVICES)
    e.add_argument("--dtype", default=DEFAULT_DTYPE, choices=DTYPES)
    add_threads_argument(e)
    e.add_argument("--method", default=DEFAULT_METHOD,
                   help="comma-separated methods; speculative:N caps every draft at N tokens "
                   "(default: %(default)s, greedy's text, faster)")
    e.add_argument("--draft", help="draft model for the draft-model method")
    e.add_argument("--prompt-format", default=DEFAULT_PROMPT_FORMAT,
                   help=f"comma-separated, or all: {', '.join(PROMPT_FORMATS)} "
                   "(default: %(default)s)")
    e.add_argument("--instruction", default="descriptive",
                   help="descriptive, lazy, or both comma-separated (default: %(default)s)")
    e.add_argument("--limit", type=int, help="first N CanItEdit problems")
    e.add_argument("--tasks", help="comma-separated problem ids (e.g. 10_csv_parser or 10)")
    e.add_argument("--selection", choices=SELECTION_MODES, default=WHOLE_FILE,
                   help="file: rewrite the whole file, no context (the benchmark's setting); "
                   "changed: rewrite the top-level blocks the reference solution changes, with "
                   "--context-lines of context each side")
    e.add_argument("--context-lines", type=int, default=DEFAULT_CONTEXT_LINES,
                   help="with --selection changed: context lines each side (default: "
                   "%(default)s)")
    e.add_argument("--max-new-tokens", type=int,
                   help="cap on each rewrite (default: about twice the selection)")
    e.add_argument("--timeout", type=float, default=DEFAULT_TEST_TIMEOUT,
                   help="seconds for each problem's tests (default: %(default)s)")
    e.add_argument("--data", type=Path, help="folder with canitedit/")
    e.add_argument("--out", type=Path, default=Path("eval-out"),
                   help="folder for rows.csv and summary.md (default: %(default)s)")
    e.add_argument("--resume", action="store_true", help="skip rows already in the CSV")
    e.set_defaults(func=_run_eval)


def _run_stream(args: argparse.Namespace) -> int:
    from .stream import markdown, measure
    from .tasks import find_data_dir, load_worked_example

    task = load_worked_example(find_data_dir(args.data))
    settings = {"model": args.model or default_model(), "device": args.device,
                "dtype": args.dtype, "method": args.method, "contextLines": args.context_lines,
                "maxNewTokens": 0}
    timings = measure(task.code, task.instruction, settings, language=task.language or "",
                      runs=args.runs)
    print(f"{settings['model']}, {args.method}, {args.dtype}, {args.device}: worked example "
          f"({len(task.code.splitlines())} lines) streamed over stdio")
    print(markdown(timings))
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from engine.contract import InvalidRequestError

    # Check every option before torch and the model load, not an hour into the run.
    formats = _parse_list(args.prompt_format, PROMPT_FORMATS, "--prompt-format")
    kinds = _parse_list(args.instruction, INSTRUCTION_KINDS, "--instruction")
    if args.context_lines < 0 or args.timeout <= 0 or (
            args.max_new_tokens is not None and args.max_new_tokens < 1):
        raise InvalidRequestError("--context-lines must be >= 0, --timeout > 0 and "
                                  "--max-new-tokens >= 1")
    from engine.decode.methods import parse_method
    from engine.model.loading import load_model

    from .eval import EvalSettings, evaluate, open_log
    from .eval_report import write_eval_report
    from .run import warm_up
    from .tasks import find_data_dir, load_canitedit, select

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    for method in methods:  # rewrite methods only, refused before the model loads
        parse_method(method)
    if any(m.startswith("draft-model") for m in methods) and not args.draft:
        raise InvalidRequestError("method draft-model needs a draft model (--draft)")
    data = find_data_dir(args.data)
    problems = [(kind, task) for kind in kinds
                for task in select(load_canitedit(data, kind), args.tasks, args.limit)]
    settings = EvalSettings(methods=methods, prompt_formats=formats, selection=args.selection,
                            context_lines=args.context_lines,
                            max_new_tokens=args.max_new_tokens, timeout=args.timeout)
    log = open_log(args.out / "rows.csv", args.resume)
    loaded = load_model(args.model or default_model(), args.device, args.dtype,
                        threads=args.threads)
    draft = (load_model(args.draft, args.device, args.dtype, threads=args.threads)
             if args.draft else None)
    warm_up(loaded, methods, draft)
    with _progress(len(problems) * len(formats) * len(methods), "eval") as bar:
        evaluate(loaded, problems, settings, log, draft=draft,
                 on_row=lambda row: (bar.update(1), row and bar.set_postfix_str(
                     f"{row.task} {row.prompt_format} {row.cause}")))
    count = len({task.id for _, task in problems})
    title = (f"**{loaded.name}**, {str(loaded.dtype).split('.')[-1]}, {loaded.device}: "
             f"{count} CanItEdit problems, tests limited to {args.timeout:g} s each\n")
    summary = write_eval_report(log.path, args.out, title)
    print(summary.read_text())
    print(f"wrote {args.out}/rows.csv and summary.md")
    return 0


def _parse_list(value: str, allowed: tuple[str, ...], option: str) -> list[str]:
    """A comma-separated option, or "all"; each item must be one of `allowed`."""
    from engine.contract import InvalidRequestError

    items = list(allowed) if value.strip() == "all" else [
        v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise InvalidRequestError(f"{option} {value!r}: use one or more of "
                                  f"{', '.join(allowed)}, comma-separated, or all")
    return list(dict.fromkeys(items))


def _progress(total: int, desc: str = "bench"):  # noqa: ANN202 - a tqdm bar or a no-op stand-in
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="row", file=sys.stderr,
                disable=not sys.stderr.isatty())


def _run(args: argparse.Namespace) -> int:
    from .methods import parse_bench_method
    from .report import write_report
    from .run import CsvLog
    from .synthetic import parse_synthetic_method

    if args.endpoint and args.synthetic:
        from engine.contract import InvalidRequestError

        raise InvalidRequestError("--endpoint and --synthetic do not go together")
    spec = args.methods or (DEFAULT_SYNTHETIC_METHODS if args.synthetic else DEFAULT_METHODS)
    if args.endpoint and not args.methods:
        spec = ""  # only the endpoint's rows, unless in-process methods are asked for too
    methods = [m.strip() for m in spec.split(",") if m.strip()]
    parse = parse_synthetic_method if args.synthetic else parse_bench_method
    for method in methods:  # fail before the model loads, not an hour into the run
        parse(method)
    args.out.mkdir(parents=True, exist_ok=True)
    log = CsvLog(args.out / "rows.csv", args.resume)
    run = _run_synthetic if args.synthetic else _run_endpoint if args.endpoint else _run_real
    title = run(args, methods, log)
    summary = write_report(log.path, args.out, title)
    print(summary.read_text())
    print(f"wrote {args.out}/rows.csv, summary.md, speedup_per_task.png, "
          "passes_vs_lower_bound.png")
    return 0


def _run_real(args: argparse.Namespace, methods: list[str], log) -> str:  # noqa: ANN001
    from engine.model.loading import load_model

    from .run import run_task, warm_up
    from .tasks import find_data_dir, load_canitedit, load_worked_example, select

    data = find_data_dir(args.data)
    tasks = select(load_canitedit(data, args.instruction), args.tasks, args.limit)
    if not args.no_example:
        tasks.append(load_worked_example(data))
    todo = [t for t in tasks if not all((t.id, m) in log.done for m in methods)]
    loaded = load_model(args.model or default_model(), args.device, args.dtype,
                        threads=args.threads)
    draft = (load_model(args.draft, args.device, args.dtype, threads=args.threads)
             if args.draft else None)
    warm_up(loaded, methods, draft)
    with _progress(len(todo) * len(methods)) as bar:
        for task in todo:
            run_task(loaded, task, methods, log, draft=draft, max_new_tokens=args.max_new_tokens,
                     on_row=lambda row: (bar.update(1), bar.set_postfix_str(
                         f"{row.task} {row.method} {row.tokens_per_second} tok/s")))
    return (f"**{loaded.name}**, {str(loaded.dtype).split('.')[-1]}, {loaded.device}, "
            f"{len(tasks)} tasks ({args.instruction} instructions)\n")


def _run_endpoint(args: argparse.Namespace, methods: list[str], log) -> str:  # noqa: ANN001
    from .endpoint import (
        endpoint_bench,
        endpoint_methods,
        make_endpoint,
        run_endpoint_task,
        warm_up_endpoint,
        without_special_tokens,
    )
    from .tasks import find_data_dir, load_canitedit, load_worked_example, select

    remote = endpoint_methods(args.prediction)
    endpoint = make_endpoint(args.endpoint, args.endpoint_model or args.model or default_model(),
                             args.api_key_env)
    data = find_data_dir(args.data)
    tasks = select(load_canitedit(data, args.instruction), args.tasks, args.limit)
    if not args.no_example:
        tasks.append(load_worked_example(data))
    loaded = draft = None
    if methods:  # in-process methods too: greedy's text is then the reference
        from engine.model.loading import load_model

        from .run import warm_up

        loaded = load_model(args.model or default_model(), args.device, args.dtype,
                            threads=args.threads)
        draft = (load_model(args.draft, args.device, args.dtype, threads=args.threads)
                 if args.draft else None)
        warm_up(loaded, methods, draft)
    with endpoint_bench(endpoint) as bench, _progress(
            len(tasks) * (len(methods) + len(remote))) as bar:
        warm_up_endpoint(bench)
        for task in tasks:
            results = {}
            if loaded is not None:
                from .run import run_task

                results = run_task(loaded, task, methods, log, draft=draft,
                                   max_new_tokens=args.max_new_tokens,
                                   on_row=lambda row: bar.update(1))
            greedy = results.get("greedy")
            reference = (without_special_tokens(loaded.tokenizer, greedy.text)
                         if greedy is not None and loaded is not None else None)
            run_endpoint_task(bench, task, [m for m in remote if (task.id, m) not in log.done],
                              log, reference=reference, max_new_tokens=args.max_new_tokens,
                              on_row=lambda row: (bar.update(1), bar.set_postfix_str(
                                  f"{row.task} {row.method} {row.tokens_per_second} tok/s")))
    against = "in-process greedy" if "greedy" in methods else remote[0]
    return (f"**{endpoint.model}** at {endpoint.base_url}, {len(tasks)} tasks "
            f"({args.instruction} instructions); endpoint rows compared with {against}, "
            "their first difference in characters\n")


def _synthetic_model(arch: str, args: argparse.Namespace
                     ) -> tuple[torch.nn.Module, torch.device, torch.dtype, str]:
    """A random-weight model of --size on --device, and where it runs, in words."""
    import torch

    from engine.model.devices import resolve_device, resolve_dtype

    from .synthetic import build_model

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model = build_model(arch, args.size, device, dtype)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    return model, device, dtype, where


def _run_synthetic(args: argparse.Namespace, methods: list[str], log) -> str:  # noqa: ANN001
    from .synthetic import QWEN2_SHAPES, make_tasks, run_synthetic

    model, device, dtype, where = _synthetic_model(args.arch, args)
    vocab = QWEN2_SHAPES[args.size]["vocab_size"]
    count = args.limit or 10
    tasks, refs = make_tasks(model, count, 64, args.synthetic_tokens, vocab)
    # Warm-up: the first task once, untimed.
    run_synthetic(model, tasks[0], refs[tasks[0].id].tokens, methods, args.synthetic_tokens,
                  args.size, str(dtype), device)
    name = f"synthetic-{args.arch}-{args.size}"
    with _progress(len(tasks) * len(methods)) as bar:
        for task in tasks:
            if all((task.id, m) in log.done for m in methods):
                continue
            for row in run_synthetic(model, task, refs[task.id].tokens, methods,
                                     args.synthetic_tokens, name,
                                     str(dtype).split(".")[-1], device):
                if (row.task, row.method) not in log.done:
                    log.add(row)
                bar.update(1)
    return f"**{name}** (random weights), {str(dtype).split('.')[-1]}, {where}, {count} tasks\n"


def _run_passcost(args: argparse.Namespace) -> int:
    from engine.contract import InvalidRequestError
    from engine.model.pass_cost import model_pass_cost, pass_cost

    from .pass_cost import draft_lengths_markdown, measure_pass_costs, pass_cost_markdown

    try:
        sizes = sorted({int(v) for v in args.sizes.split(",")})
    except ValueError:
        raise InvalidRequestError(f"--sizes {args.sizes!r} is not a list of integers") from None
    if sizes[0] != 1 or args.context < 1 or args.repeats < 1:
        raise InvalidRequestError("--sizes must include 1; --context and --repeats must be >= 1")
    if args.synthetic:
        model, _, dtype, where = _synthetic_model("qwen2", args)
        name = f"synthetic-qwen2-{args.size} (random weights)"
        curve = model_pass_cost(model)
    else:
        from engine.model.loading import load_model
        from engine.model.threads import apply_threads

        loaded = load_model(args.model or default_model(), args.device, args.dtype,
                            threads=args.threads)
        model, dtype, name, where = loaded.model, loaded.dtype, loaded.name, str(loaded.device)
        where += f", {apply_threads(loaded.threads)} threads"
        curve = pass_cost(loaded)  # what `speculative` sizes its drafts from
    costs = measure_pass_costs(model, context=args.context, sizes=sizes, repeats=args.repeats)
    title = (f"**{name}**, {str(dtype).split('.')[-1]}, {where}: one pass after "
             f"{args.context} cached tokens (median of {args.repeats})")
    text = (pass_cost_markdown(costs, title, args.prompt_tokens, args.output_tokens) + "\n"
            + draft_lengths_markdown(curve))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def _run_ksweep(args: argparse.Namespace) -> int:
    from .ksweep import run_cli

    return run_cli(args)
