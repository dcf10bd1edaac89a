"""`specedit bench --endpoint URL`: the benchmark's tasks against any OpenAI-compatible server.

Each task is rewritten there with our prompt (engine.prompt.rewrite_messages, the fence primed
where the server allows), greedily, with the original as `prediction` and without it: the
rows' method says which (`endpoint:prediction`, `endpoint:no-prediction`). The text is
compared with in-process greedy's when greedy ran here too (`--methods greedy --model M`),
else with the first endpoint method's; an endpoint returns text, not token ids, so its
`first_difference` is a character index. Passes are known only from a server that reports
them (`specedit api`'s `speculative` extension); others get 0.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.contract import InvalidRequestError
from engine.rewriting.endpoint import Endpoint, normalise_base_url
from engine.rewriting.remote import RemoteResult, remote_rewrite

from .tasks import Task

if TYPE_CHECKING:  # .run loads torch; the CLI's parser imports this module without it
    from .run import CsvLog, Row

PREDICTION_CHOICES = ("with", "without", "both")
WITH_PREDICTION = "endpoint:prediction"
WITHOUT_PREDICTION = "endpoint:no-prediction"
# Asked with prediction, the server refused it, and the retry went without.
REFUSED_PREDICTION = "endpoint:prediction-refused"


def endpoint_methods(prediction: str) -> list[str]:
    """The rows' method names for `--prediction with|without|both`."""
    if prediction not in PREDICTION_CHOICES:
        raise InvalidRequestError(f"--prediction {prediction!r}: use one of "
                                  f"{', '.join(PREDICTION_CHOICES)}")
    return {"with": [WITH_PREDICTION], "without": [WITHOUT_PREDICTION],
            "both": [WITH_PREDICTION, WITHOUT_PREDICTION]}[prediction]


def make_endpoint(url: str, model: str, key_env: str | None) -> Endpoint:
    try:
        base = normalise_base_url(url)
    except ValueError as exc:
        raise InvalidRequestError(f"--endpoint {exc}") from None
    key = os.environ.get(key_env, "").strip() if key_env else ""
    return Endpoint(base, model, key or None, key_env)


@dataclass
class EndpointBench:
    """One httpx client on one event loop for the whole run (connections are reused)."""

    endpoint: Endpoint
    runner: asyncio.Runner
    client: Any  # httpx.AsyncClient

    def rewrite(self, task: Task, prediction: bool,
                max_new_tokens: int | None) -> RemoteResult:
        return self.runner.run(remote_rewrite(
            self.client, self.endpoint, task.code, task.instruction, language=task.language,
            max_new_tokens=max_new_tokens, prediction=prediction))


@contextmanager
def endpoint_bench(endpoint: Endpoint) -> Iterator[EndpointBench]:
    import httpx

    with asyncio.Runner() as runner:
        client = runner.run(_client(httpx))
        try:
            yield EndpointBench(endpoint, runner, client)
        finally:
            runner.run(client.aclose())


async def _client(httpx: Any) -> Any:
    return httpx.AsyncClient()


def without_special_tokens(tokenizer: Any, text: str) -> str:
    """In-process text as an endpoint returns it: OpenAI's API never returns special tokens,
    while the in-process rewrite keeps any the model wrote (random test models do)."""
    for token in getattr(tokenizer, "added_tokens_decoder", {}).values():
        if getattr(token, "special", False):
            text = text.replace(token.content, "")
    return text


def first_text_difference(a: str, b: str) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def run_endpoint_task(bench: EndpointBench, task: Task, methods: list[str], log: CsvLog, *,
                      reference: str | None, max_new_tokens: int | None = None,
                      on_row: Callable[[Row], None] | None = None) -> None:
    """The endpoint methods on `task`; `reference` is in-process greedy's text, when it ran.

    Without it the first endpoint method's text is the reference.
    """
    from .run import Row

    for method in methods:
        result = bench.rewrite(task, method == WITH_PREDICTION, max_new_tokens)
        if method == WITH_PREDICTION and not result.prediction_sent:
            method = REFUSED_PREDICTION  # the server refused it: the row says so
        if reference is None:
            reference = result.text
        diff = first_text_difference(result.text, reference)
        s = result.stats
        verdict = task.check(result.text)
        row = Row(
            task=task.id, method=method, model=result.model, dtype="",
            device=bench.endpoint.base_url, prompt_tokens=s.prompt_tokens,
            output_tokens=s.output_tokens, forward_passes=s.forward_passes,
            drafted_tokens=s.drafted_tokens, accepted_tokens=s.accepted_tokens,
            wall_seconds=round(s.wall_seconds, 4), tokens_per_second=round(s.tokens_per_second, 2),
            identical_to_greedy=diff is None, first_difference="" if diff is None else diff,
            lower_bound_passes="", efficiency="",
            correct="" if verdict is None else verdict,
            finish_reason=result.finish_reason,
        )
        if (task.id, method) not in log.done:
            log.add(row)
        if on_row is not None:
            on_row(row)


def warm_up_endpoint(bench: EndpointBench) -> None:
    """One small untimed request: the first one may pay for connecting and compiling."""
    warm = Task(id="warm-up", code="def f(x):\n    return x\n", instruction="rename x to y",
                language="python")
    bench.rewrite(warm, True, 8)
