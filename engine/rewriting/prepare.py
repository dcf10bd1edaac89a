"""One set-up for every request the engine decodes: a rewrite, a chat completion.

The thread count for this request, the pass-cost curve where drafts are sized from it, a
runner that asks the thread governor before every pass, and the method's proposer.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.decode.methods import DraftModel, MethodConfig, build_proposer
from engine.decode.proposers import Proposer
from engine.decode.runner import ModelRunner
from engine.model.loading import LoadedModel
from engine.model.pass_cost import pass_cost
from engine.model.threads import apply_threads, thread_governor


def prepare_decoding(loaded: LoadedModel, config: MethodConfig, *, prompt: Sequence[int],
                     original: Sequence[int] = (), lookup: Sequence[int] | None = None,
                     stop_ids: frozenset[int] = frozenset(), draft: LoadedModel | None = None,
                     runner: ModelRunner | None = None) -> tuple[ModelRunner, Proposer | None]:
    """(runner, proposer) for one request; `runner` is reused when given (its cache is reset).

    prompt, original, lookup, stop_ids, draft: as `decode.methods.build_proposer` takes them.
    """
    apply_threads(loaded.threads)
    # Measured once per model and thread count (kept on `loaded`), and only where drafts are
    # sized from it.
    cost = pass_cost(loaded) if config.uses_pass_cost else None
    if runner is None:
        runner = ModelRunner(loaded.model)
    else:
        runner.reset()  # a fresh cache: each request then equals a fresh greedy run exactly
    governor = thread_governor(loaded.threads)
    runner.before_pass = governor.tick if governor is not None else None
    drafter = (DraftModel(draft.model, draft.tokenizer, loaded.tokenizer)
               if draft is not None else None)
    proposer = build_proposer(config, prompt=prompt, original=original, lookup=lookup,
                              stop_ids=stop_ids, draft=drafter, cost=cost)
    return runner, proposer
