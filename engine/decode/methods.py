"""How a decoding method is named and parsed, and the one factory that turns it into a proposer.

`parse_method` reads the text spelling every front end shares (`specedit rewrite --method`,
the Python API, the editors' settings): a name from `contract.METHODS`, optionally with a cap
(`speculative:N`: every draft at most N tokens; `draft-model:K`: K draft tokens per
verification instead of the adaptive schedule). `build_proposer` turns the parsed
`MethodConfig` into the proposer the decoding loop runs.

`speculative` with no cap sizes its drafts from the pass-cost curve (draft_length.py). It
drafts from the original and, where the original has no match for the output (new code), by
n-gram lookup in the prompt and output (`lookup_fallback`; off only to measure what it
gains); given a draft model, the draft model proposes there instead (the hybrid).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from engine.contract import METHODS, InvalidRequestError

from .draft_length import WEAK_PRIOR, DraftLengthPolicy, PassCostCurve
from .proposers import (
    AdaptiveK,
    DraftModelProposer,
    HybridProposer,
    LookupFallbackProposer,
    OriginalCodeProposer,
    OriginalDraftSettings,
    PromptLookupProposer,
    Proposer,
    check_same_tokenizer,
)

# The methods whose name takes a `:N` suffix, and what N means for each.
_CAPPED = {"speculative": "every draft at most N tokens",
           "draft-model": "N draft tokens per verification"}


@dataclass(frozen=True)
class MethodConfig:
    """One decoding method, as parsed from its text spelling.

    max_draft: speculative only; cap on every draft, the first included (None: drafts sized
        from the pass-cost curve).
    draft_k: draft-model only; draft tokens per verification (None: adaptive, as
        transformers' heuristic schedule).
    lookup_fallback: speculative only; n-gram lookup drafts where the original has no match.
    """

    name: str
    max_draft: int | None = None
    draft_k: int | None = None
    lookup_fallback: bool = True

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
        return self.name == "speculative" and self.max_draft is None

    def original_draft_settings(self) -> OriginalDraftSettings | None:
        """How OriginalCodeProposer drafts under this method (None: its defaults)."""
        return OriginalDraftSettings.capped(self.max_draft) if self.max_draft is not None else None


def parse_method(text: str, allowed: Collection[str] = METHODS,
                 not_here: str = "here") -> MethodConfig:
    """`speculative`, `speculative:N`, `draft-model:K`, ... to a MethodConfig.

    `allowed` is what the caller can run; another of METHODS is refused with `not_here` (why
    not). Raises InvalidRequestError (field "method") with one line that says what to write.
    """
    name, colon, cap = text.strip().partition(":")
    if name not in allowed:
        choices = ", ".join(allowed)
        if name in METHODS:
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
    if name == "speculative":
        return MethodConfig(name, max_draft=int(cap))
    return MethodConfig(name, draft_k=int(cap))


def as_method(method: str | MethodConfig) -> MethodConfig:
    """A method from either spelling; a config is checked as its text spelling would be."""
    if isinstance(method, MethodConfig):
        parse_method(method.label)
        return method
    return parse_method(method)


def check_draft_model(config: MethodConfig, draft_given: bool, how: str = "draft=") -> None:
    """draft-model needs a second model; `how` is how the caller names it (e.g. --draft)."""
    if config.needs_draft_model and not draft_given:
        raise InvalidRequestError(f"method draft-model needs a draft model ({how})",
                                  field="method")


@dataclass(frozen=True)
class DraftModel:
    """A second model that drafts: its forward callable and both models' tokenizers (which
    must match the target's, token for token)."""

    model: Any
    tokenizer: Any
    target_tokenizer: Any


def build_proposer(config: MethodConfig, *, prompt: Sequence[int], original: Sequence[int] = (),
                   lookup: Sequence[int] | None = None, stop_ids: frozenset[int] = frozenset(),
                   draft: DraftModel | None = None,
                   cost: PassCostCurve | None = None) -> Proposer | None:
    """The proposer for `config`; None for greedy (one token per pass, nothing proposed).

    prompt: the token ids the target is given (a draft model decodes from them too).
    original: the code being rewritten, in tokens (what speculative edits drafts from).
    lookup: what prompt lookup searches besides the output so far (default: the prompt,
        which holds the original code in a real rewrite).
    draft: the second model of draft-model decoding; with speculative, the hybrid's drafter.
    cost: the target's pass-cost curve; uncapped speculative drafts are sized from it
        (None: every trusted draft runs to the end of the original).
    """
    if config.name == "greedy":
        return None
    if config.name == "speculative":
        policy = DraftLengthPolicy(cost) if cost is not None and config.uses_pass_cost else None
        proposer = OriginalCodeProposer(original, config.original_draft_settings(), policy)
        if draft is not None:
            return HybridProposer(proposer, _drafter(draft, prompt, AdaptiveK(), stop_ids))
        if not config.lookup_fallback:
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
        assert draft is not None
        k = AdaptiveK() if config.draft_k is None else config.draft_k
        return _drafter(draft, prompt, k, stop_ids)
    raise InvalidRequestError(f"unknown method {config.name!r}", field="method")


def _drafter(draft: DraftModel, prompt: Sequence[int], k: int | AdaptiveK,
             stop_ids: frozenset[int]) -> DraftModelProposer:
    check_same_tokenizer(draft.tokenizer, draft.target_tokenizer)
    return DraftModelProposer(draft.model, prompt, k, stop_ids)
