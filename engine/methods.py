"""How a method is named, parsed and turned into a proposer: one place for all decoders.

`parse_method` reads the text spelling every front end shares (`specedit rewrite --method`,
`specedit bench --methods`, the Python API): a name from `contract.METHODS`, optionally with
a cap (`speculative:N`: every draft at most N tokens; `draft-model:K`: K draft tokens per
verification instead of the adaptive schedule). `build_proposer` turns the parsed
`MethodConfig` into the proposer the verifying loop runs, for the rewrite API, the benchmark,
the synthetic mode and the K study alike.

`speculative` with no cap sizes its drafts from the pass-cost curve (draft_length.py): the
default, the best policy measured. `speculative:N` is a fixed cap, kept for experiments.
`speculative` drafts from the original and, where the original has no match for the output
(new code), by n-gram lookup in the prompt and output (proposers.LookupFallbackProposer);
the bench-only `speculative-original` drafts from the original alone, to measure that.
`speculative` given a draft model is the hybrid (hybrid.py): the draft model proposes where
the output has left the original.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .contract import METHODS, InvalidRequestError
from .draft_length import WEAK_PRIOR, DraftLengthPolicy, PassCostCurve
from .proposers import (
    LookupFallbackProposer,
    OriginalCodeProposer,
    OriginalDraftSettings,
    PromptLookupProposer,
    Proposer,
)

if TYPE_CHECKING:
    from .loading import LoadedModel

# transformers' own `generate(prompt_lookup_num_tokens=...)`: a baseline the benchmark
# measures, never a way to rewrite (it has no progress, and its passes need a hook to count).
HF_PROMPT_LOOKUP = "hf-prompt-lookup"
# Speculative edits drafting from the original code alone, without the n-gram fallback where
# the original has no match: a bench-only baseline that measures what the fallback gains.
ORIGINAL_ONLY = "speculative-original"
BENCH_METHODS = (*METHODS, HF_PROMPT_LOOKUP, ORIGINAL_ONLY)
# Methods that draft from the original code (speculative edits and its baseline).
_FROM_ORIGINAL = ("speculative", ORIGINAL_ONLY)
# The methods whose name takes a `:N` suffix, and what N means for each.
_CAPPED = {"speculative": "every draft at most N tokens",
           ORIGINAL_ONLY: "every draft at most N tokens",
           "draft-model": "N draft tokens per verification"}


@dataclass(frozen=True)
class MethodConfig:
    """One decoding method, as parsed from its text spelling.

    max_draft: speculative only; cap on every draft, the first included (None: drafts sized
        from the pass-cost curve).
    draft_k: draft-model only; draft tokens per verification (None: adaptive, as
        transformers' heuristic schedule).
    """

    name: str
    max_draft: int | None = None
    draft_k: int | None = None

    @property
    def label(self) -> str:
        """The text spelling, which `parse_method` reads back to this configuration."""
        cap = self.max_draft if self.max_draft is not None else self.draft_k
        return self.name if cap is None else f"{self.name}:{cap}"

    @property
    def needs_draft_model(self) -> bool:
        return self.name == "draft-model"

    @property
    def uses_pass_cost(self) -> bool:
        """Whether drafts are sized from the pass-cost curve (which may need measuring)."""
        return self.name in _FROM_ORIGINAL and self.max_draft is None

    def original_draft_settings(self) -> OriginalDraftSettings | None:
        """How OriginalCodeProposer drafts under this method (None: its defaults)."""
        return OriginalDraftSettings.capped(self.max_draft) if self.max_draft is not None else None


def parse_method(text: str, allowed: Collection[str] = METHODS,
                 not_here: str = "to rewrite: it is a baseline of specedit bench") -> MethodConfig:
    """`speculative`, `speculative:N`, `draft-model:K`, ... to a MethodConfig.

    `allowed` is what the caller can run; a known method outside it is refused with
    `not_here` (why not). Raises InvalidRequestError (field "method") with one line that
    says what to write.
    """
    name, colon, cap = text.strip().partition(":")
    if name not in allowed:
        choices = ", ".join(allowed)
        if name in BENCH_METHODS:
            raise InvalidRequestError(
                f"method {name!r} cannot be used {not_here}; use one of {choices}",
                field="method")
        raise InvalidRequestError(f"unknown method {text!r}; use one of {choices}",
                                  field="method")
    if not colon:
        return MethodConfig(name)
    if name not in _CAPPED or not cap.isdigit() or int(cap) < 1:
        spellings = ", ".join(f"{m}:N ({what})" for m, what in _CAPPED.items())
        raise InvalidRequestError(
            f"bad method {text!r}: only {spellings} take a number, N >= 1", field="method")
    if name in _FROM_ORIGINAL:
        return MethodConfig(name, max_draft=int(cap))
    return MethodConfig(name, draft_k=int(cap))


# What the engine's rewrite runs given an already parsed MethodConfig: the rewrite methods
# and the bench's original-only baseline (text from users is read against METHODS alone).
_ENGINE_METHODS = (*METHODS, ORIGINAL_ONLY)


def as_method(method: str | MethodConfig) -> MethodConfig:
    """A rewrite method from either spelling, checked the same way either way (a parsed
    config may also be the bench's speculative-original baseline)."""
    if isinstance(method, MethodConfig):
        return parse_method(method.label, _ENGINE_METHODS)
    return parse_method(method)


def check_draft_model(config: MethodConfig, draft_given: bool, how: str = "draft=") -> None:
    """draft-model needs a second model; `how` is how the caller names it (e.g. --draft)."""
    if config.needs_draft_model and not draft_given:
        raise InvalidRequestError(f"method draft-model needs a draft model ({how})",
                                  field="method")


def build_proposer(config: MethodConfig, *, prompt: Sequence[int], original: Sequence[int] = (),
                   lookup: Sequence[int] | None = None, stop_ids: frozenset[int] = frozenset(),
                   target: LoadedModel | None = None,
                   draft: LoadedModel | None = None,
                   cost: PassCostCurve | None = None) -> Proposer | None:
    """The proposer for `config`; None for greedy (one token per pass, nothing proposed).

    prompt: the token ids the target is given (a draft model decodes from them too).
    original: the code being rewritten, in tokens (what speculative edits drafts from).
    lookup: what prompt lookup searches besides the output so far (default: the prompt,
        which holds the original code in a real rewrite).
    target, draft: the two models of draft-model decoding (their tokenizers must match);
        with speculative, a draft model makes the hybrid proposer.
    cost: the target's pass-cost curve; uncapped speculative drafts are sized from it
        (None: every trusted draft runs to the end of the original).
    """
    if config.name == "greedy":
        return None
    if config.name in _FROM_ORIGINAL:
        policy = DraftLengthPolicy(cost) if cost is not None and config.uses_pass_cost else None
        proposer = OriginalCodeProposer(original, config.original_draft_settings(), policy)
        if draft is not None:
            if target is None:
                raise ValueError("hybrid decoding needs the target model to check tokenizers")
            from .draft_model import AdaptiveK, DraftModelProposer
            from .hybrid import HybridProposer

            drafter = DraftModelProposer.for_models(draft, target, prompt, AdaptiveK(),
                                                    stop_ids=stop_ids)
            return HybridProposer(proposer, drafter)
        if config.name == ORIGINAL_ONLY:
            return proposer
        # Lookup drafts are another population than the original's: their own acceptance,
        # starting from even odds, as drafts after weak matches.
        lookup_policy = DraftLengthPolicy(cost, WEAK_PRIOR, None) if policy is not None else None
        cap = {} if config.max_draft is None else {"num_tokens": config.max_draft}
        return LookupFallbackProposer(
            proposer, PromptLookupProposer(prompt if lookup is None else lookup,
                                           policy=lookup_policy, **cap))
    if config.name == "prompt-lookup":
        return PromptLookupProposer(prompt if lookup is None else lookup)
    if config.name == "draft-model":
        check_draft_model(config, draft is not None)
        if target is None:
            raise ValueError("draft-model decoding needs the target model to check tokenizers")
        from .draft_model import AdaptiveK, DraftModelProposer

        k = AdaptiveK() if config.draft_k is None else config.draft_k
        return DraftModelProposer.for_models(draft, target, prompt, k, stop_ids=stop_ids)
    # hf-prompt-lookup runs transformers' generate (engine.bench.hf_prompt_lookup), which
    # brings its own drafting; anything else was refused by parse_method.
    raise ValueError(f"method {config.name!r} has no proposer")
