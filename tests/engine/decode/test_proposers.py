"""Direct tests of OriginalCodeProposer (lookup and feedback), the lookup fallback, the
method parser and the proposer factory. The exactness and efficiency tests cover them end to
end; these pin down each rule on its own, on token lists small enough to follow by hand."""

from __future__ import annotations

import pytest

from engine.contract import METHODS, InvalidRequestError, TokenizerMismatchError
from engine.decode.draft_length import WEAK_PRIOR, DraftLengthPolicy, PassCostCurve
from engine.decode.methods import (
    DraftModel,
    MethodConfig,
    as_method,
    build_proposer,
    parse_method,
)
from engine.decode.proposers import (
    AdaptiveK,
    DraftModelProposer,
    LookupFallbackProposer,
    OriginalCodeProposer,
    OriginalDraftSettings,
    PromptLookupProposer,
)
from tests.helpers.tiny_models import chat_tokenizer, tiny_model, tiny_tokenizer

# 40 distinct tokens: every n-gram occurs once, so each lookup has one answer.
DISTINCT = list(range(100, 140))


def after_first_draft(original: list[int], accepted: int,
                      settings: OriginalDraftSettings | None = None) -> OriginalCodeProposer:
    """A proposer whose first (whole-original) draft had its first `accepted` tokens kept."""
    p = OriginalCodeProposer(original, settings)
    first = p.propose([], 1000)
    p.feedback(len(first), accepted)
    return p


# -- the first draft -------------------------------------------------------------------------


def test_first_draft_is_the_whole_original() -> None:
    p = OriginalCodeProposer(DISTINCT)
    assert p.propose([], 1000) == DISTINCT


def test_first_draft_respects_the_cap_and_the_room_left() -> None:
    assert OriginalCodeProposer(DISTINCT, OriginalDraftSettings.capped(3)).propose(
        [], 1000) == DISTINCT[:3]
    assert OriginalCodeProposer(DISTINCT, OriginalDraftSettings(first_draft=5)).propose(
        [], 1000) == DISTINCT[:5]
    assert OriginalCodeProposer(DISTINCT).propose([], 7) == DISTINCT[:7]


def test_empty_original_proposes_nothing_and_counts_as_covered() -> None:
    p = OriginalCodeProposer([])
    assert p.propose([], 10) == []
    assert p.propose([5], 10) == []
    assert p.covered == 1.0


# -- lookup after a divergence ---------------------------------------------------------------


def test_the_longest_matching_suffix_wins() -> None:
    original = [5, 20, 7, 8, 9, 1, 20, 3, 4]
    p = after_first_draft(original, 0)
    # [20] alone continues at index 2, but [1, 20] continues at index 7: the longer wins.
    assert p.propose([99, 1, 20], 1000) == [3, 4]


def test_the_nearest_copy_at_or_after_the_pointer_wins() -> None:
    line = [7, 8, 9, 1]
    original = line * 3 + [2]
    p = after_first_draft(original, 4)  # the first line confirmed: pointer at the second
    assert p.pointer == 4
    # The model inserted 50, then went on with the line: [7, 8] continues at 2, 6 and 10;
    # 2 is behind the pointer and 10 would skip a line, so the draft resumes at 6.
    assert p.propose([*line, 50, 7, 8], 1000) == original[6:]


def test_a_short_match_ahead_beats_a_longer_one_behind() -> None:
    original = [1, 2, 3, 4, 9, 3, 5, 6]
    p = after_first_draft(original, 5)
    # [2, 3] matches only behind the pointer (5); [3] also occurs ahead, at 5.
    assert p.propose([1, 2, 3, 4, 9, 2, 3], 1000) == [5, 6]


def test_an_earlier_copy_is_used_only_when_nothing_fits_ahead() -> None:
    original = [7, 8, 9, 1, 3, 4, 5, 6, 2]
    p = after_first_draft(original, 8)  # everything but the last token confirmed
    # The rewrite repeats the first line: [7, 8] occurs only behind the pointer, so the
    # draft resumes after that copy (a weak match: 4 tokens, the halved weak length).
    assert p.propose([*original[:8], 7, 8], 1000) == [9, 1, 3, 4]


def test_of_several_earlier_copies_the_latest_is_used() -> None:
    original = [7, 8, 1, 7, 8, 2, 3, 4, 5, 6]
    p = after_first_draft(original, 9)
    # [7, 8] continues at 2 and at 5, both behind the pointer (9): resume after the later.
    assert p.propose([*original[:9], 7, 8], 1000) == [2, 3, 4, 5]


def test_no_match_proposes_nothing() -> None:
    p = after_first_draft(DISTINCT, 3)
    assert p.propose([*DISTINCT[:3], 7], 1000) == []


# -- strong and weak matches, and feedback ---------------------------------------------------


def test_strong_match_drafts_the_whole_rest_or_the_cap() -> None:
    # Four tokens matched far from the pointer: trusted, so no cap but max_draft.
    output = [55, 130, 131, 132, 133]
    assert after_first_draft(DISTINCT, 0).propose(output, 1000) == DISTINCT[34:]
    capped = after_first_draft(DISTINCT, 0, OriginalDraftSettings(max_draft=3))
    assert capped.propose(output, 1000) == DISTINCT[34:37]
    assert after_first_draft(DISTINCT, 0).propose(output, 2) == DISTINCT[34:36]


def test_match_that_resumes_at_the_pointer_is_strong_even_if_short() -> None:
    p = after_first_draft(DISTINCT, 10)  # pointer at 10
    # The model inserted 55, then wrote DISTINCT[10]: a one-token match touching the pointer.
    assert p.propose([*DISTINCT[:10], 55, DISTINCT[10]], 1000) == DISTINCT[11:]


def test_weak_draft_length_doubles_on_full_acceptance_and_halves_on_rejection() -> None:
    p = after_first_draft(DISTINCT, 0)  # a rejection: the weak length halves, 8 -> 4
    assert p.propose([55, 110], 1000) == DISTINCT[11:15]  # weak: one token, far ahead
    p.feedback(4, 4)  # fully accepted: 4 -> 8
    assert p.propose([55, 130], 1000) == DISTINCT[31:39]
    p.feedback(8, 3)  # rejected: 8 -> 4
    assert p.propose([55, 120], 1000) == DISTINCT[21:25]
    p.feedback(4, 0)  # 4 -> 2
    p.feedback(2, 0)  # 2 -> 1, the floor
    p.feedback(1, 0)
    assert p.propose([55, 120], 1000) == DISTINCT[21:22]


def test_feedback_on_an_empty_proposal_changes_nothing() -> None:
    p = after_first_draft(DISTINCT, 0)  # weak length 4
    p.feedback(0, 0)  # an empty proposal is neither accepted nor rejected
    assert p.propose([55, 110], 1000) == DISTINCT[11:15]
    p.feedback(0, 0)
    assert p.pointer == 0
    assert p.propose([55, 110], 1000) == DISTINCT[11:15]


def test_pointer_moves_only_on_trusted_acceptance() -> None:
    p = after_first_draft(DISTINCT, 0)
    assert p.pointer == 0  # nothing accepted: the model's token may be an insertion
    p.propose([55, 110], 1000)  # weak match, proposal starts at 11
    p.feedback(4, 3)  # fewer than strong_match (4) agreed: may be chance
    assert p.pointer == 0
    p.propose([55, 110], 1000)
    p.feedback(2, 2)  # all of a weak draft, still under strong_match: not trusted either
    assert p.pointer == 0
    p.propose([55, 130, 131, 132, 133], 1000)  # strong: the proposal starts at 34
    assert p.trusted
    p.feedback(6, 2)  # a long match away from the pointer, two tokens agreed: may be chance
    assert p.pointer == 0  # (a repeated line further on would match as well)
    p.propose([55, 130, 131, 132, 133], 1000)
    p.feedback(6, 4)  # strong_match tokens agreed: now it moves
    assert p.pointer == 38
    p.propose([55, 110], 1000)  # weak again, starts at 11 (behind: nothing ahead)
    p.feedback(4, 4)  # strong_match tokens agreed: trusted although the match was weak
    assert p.pointer == 15


def test_covered_is_the_share_of_the_original_reached() -> None:
    p = after_first_draft(DISTINCT, 10)
    assert p.covered == pytest.approx(10 / 40)
    rest = p.propose([*DISTINCT[:10], 55, DISTINCT[10]], 1000)
    p.feedback(len(rest), len(rest))
    assert p.covered == 1.0


# -- the lookup fallback ---------------------------------------------------------------------


def fallback_after_first_draft(prompt: list[int], accepted: int,
                               lookup: PromptLookupProposer | None = None
                               ) -> LookupFallbackProposer:
    p = LookupFallbackProposer(OriginalCodeProposer(DISTINCT),
                               lookup or PromptLookupProposer(prompt))
    first = p.propose([], 1000)
    assert first == DISTINCT  # the first pass is the original's
    p.feedback(len(first), accepted)
    return p


def test_lookup_stands_in_only_where_the_original_has_no_match() -> None:
    # The prompt holds new code the answer will repeat: 7 8 9 10 after 6.
    p = fallback_after_first_draft([1, 6, 7, 8, 9, 10, 2], 3)
    # The output left the original (6 occurs nowhere in it): lookup finds 6 in the prompt.
    assert p.propose([*DISTINCT[:3], 6], 1000) == [7, 8, 9, 10, 2, *DISTINCT[:3], 6]
    assert p.stand_in_proposals == 1
    # As soon as a suffix of the output matches the original, the original drafts again.
    assert p.propose([*DISTINCT[:3], 6, 7, DISTINCT[3]], 1000) == DISTINCT[4:]
    assert p.stand_in_proposals == 1


def test_new_code_repeating_itself_is_found_in_the_output() -> None:
    p = fallback_after_first_draft([1, 2], 0)
    # The rewrite wrote 60 61 62 63 once; a second copy is drafted from the first.
    assert p.propose([60, 61, 62, 63, 5, 60], 1000)[:4] == [61, 62, 63, 5]


def test_nothing_anywhere_proposes_nothing() -> None:
    p = fallback_after_first_draft([1, 2], 0)
    assert p.propose([77], 1000) == []


def test_each_verdict_goes_to_the_proposer_that_drafted() -> None:
    policy = DraftLengthPolicy(PassCostCurve(1.0, 0.5), WEAK_PRIOR, None)
    lookup = PromptLookupProposer([1, 6, 7, 8, 9, 10, 2], policy=policy)
    p = fallback_after_first_draft([], 3, lookup)
    pointer = p.original.pointer
    p.propose([*DISTINCT[:3], 6], 1000)
    p.feedback(2, 0)  # a lookup draft rejected: lookup's policy hears it, not the original
    assert (policy.accepted, policy.rejections) == (0, 1)
    assert p.original.pointer == pointer
    p.propose([*DISTINCT[:3], 6, 50, DISTINCT[3], DISTINCT[4], DISTINCT[5], DISTINCT[6]], 1000)
    p.feedback(5, 5)
    assert policy.rejections == 1 and p.original.pointer == 12


def test_lookup_with_a_policy_sizes_its_drafts_from_the_curve() -> None:
    prompt = [5, *range(200, 260)]
    free = PromptLookupProposer(prompt, policy=DraftLengthPolicy(PassCostCurve(1.0, 0.0)))
    continuation = [*range(200, 260), 5]
    assert free.propose([5], 1000) == continuation  # verified tokens free: all of it
    costly = DraftLengthPolicy(PassCostCurve(1.0, 0.5), WEAK_PRIOR, None)
    drafted = PromptLookupProposer(prompt, policy=costly).propose([5], 1000)
    assert drafted == continuation[: costly.choose(61)]
    assert 0 < len(drafted) < 61
    assert len(PromptLookupProposer(prompt).propose([5], 1000)) == 10  # no policy: num_tokens


# -- the method parser -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "config"), [
    ("speculative", MethodConfig("speculative")),
    ("speculative:32", MethodConfig("speculative", max_draft=32)),
    (" greedy ", MethodConfig("greedy")),
    ("prompt-lookup", MethodConfig("prompt-lookup")),
    ("draft-model", MethodConfig("draft-model")),
    ("draft-model:4", MethodConfig("draft-model", draft_k=4)),
])
def test_parser_reads_every_spelling(text: str, config: MethodConfig) -> None:
    assert parse_method(text) == config
    assert parse_method(config.label) == config  # the label reads back the same


def test_every_contract_method_parses() -> None:
    assert [parse_method(m).name for m in METHODS] == list(METHODS)


def test_a_method_outside_what_the_caller_runs_is_refused_by_name() -> None:
    with pytest.raises(InvalidRequestError, match="'draft-model' cannot be used in an editor"):
        parse_method("draft-model", ("speculative", "greedy"), not_here="in an editor")


def test_a_parsed_config_is_checked_as_its_spelling() -> None:
    config = MethodConfig("speculative", max_draft=4, lookup_fallback=False)
    assert as_method(config) is config
    with pytest.raises(InvalidRequestError, match="unknown method 'beam'"):
        as_method(MethodConfig("beam"))


@pytest.mark.parametrize(("text", "message"), [
    ("speculative:0", "bad method 'speculative:0'"),
    ("speculative:-1", "bad method"),
    ("speculative:", "bad method"),
    ("speculative:x", "bad method"),
    ("greedy:3", "bad method 'greedy:3'"),
    ("prompt-lookup:5", "bad method"),
    ("beam", "unknown method 'beam'; use one of speculative, greedy"),
    ("", "unknown method ''"),
    ("ngram", "unknown method 'ngram'"),
    ("hf-prompt-lookup", "unknown method 'hf-prompt-lookup'"),  # a baseline of the bench
])
def test_parser_refuses_bad_spellings_in_one_line(text: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as info:
        parse_method(text)
    assert info.value.field == "method"
    assert "\n" not in str(info.value)


def test_cap_becomes_the_original_draft_settings() -> None:
    assert parse_method("speculative:8").original_draft_settings() == (
        OriginalDraftSettings.capped(8))
    assert parse_method("speculative").original_draft_settings() is None


# -- the proposer factory --------------------------------------------------------------------


def test_factory_greedy_proposes_nothing() -> None:
    assert build_proposer(MethodConfig("greedy"), prompt=[1, 2], original=[3]) is None


def test_factory_speculative_drafts_from_the_original_with_the_cap() -> None:
    p = build_proposer(MethodConfig("speculative"), prompt=[1, 2], original=DISTINCT)
    assert isinstance(p, LookupFallbackProposer) and p.propose([], 1000) == DISTINCT
    capped = build_proposer(parse_method("speculative:3"), prompt=[1, 2, 7, 8, 9, 10, 11],
                            original=DISTINCT)
    assert isinstance(capped, LookupFallbackProposer)
    assert capped.propose([], 1000) == DISTINCT[:3]
    capped.feedback(3, 0)
    assert capped.propose([2], 1000) == [7, 8, 9]  # the cap holds for lookup drafts too
    alone = build_proposer(MethodConfig("speculative", lookup_fallback=False), prompt=[1, 2],
                           original=DISTINCT)
    assert isinstance(alone, OriginalCodeProposer) and alone.propose([], 1000) == DISTINCT


def test_factory_prompt_lookup_searches_the_prompt_or_the_given_text() -> None:
    p = build_proposer(MethodConfig("prompt-lookup"), prompt=[1, 2, 3, 4], original=[9])
    assert isinstance(p, PromptLookupProposer)
    assert p.propose([2], 2) == [3, 4]
    q = build_proposer(MethodConfig("prompt-lookup"), prompt=[1], lookup=[1, 2, 3, 4])
    assert isinstance(q, PromptLookupProposer) and q.propose([2], 2) == [3, 4]


def _drafter(tokenizer: object, target_tokenizer: object | None = None) -> DraftModel:
    model = tiny_model("llama", vocab_size=len(chat_tokenizer()), layers=1, hidden=32)
    return DraftModel(model, tokenizer, target_tokenizer or chat_tokenizer())


def test_factory_draft_model_takes_k_or_a_fresh_adaptive_schedule() -> None:
    draft = _drafter(chat_tokenizer())
    fixed = build_proposer(parse_method("draft-model:3"), prompt=[5, 6], stop_ids=frozenset({0}),
                           draft=draft)
    assert isinstance(fixed, DraftModelProposer)
    assert fixed.k == 3 and fixed.stop_ids == frozenset({0}) and fixed.prompt == [5, 6]
    assert len(fixed.propose([7], 1000)) == 3
    first, second = (build_proposer(MethodConfig("draft-model"), prompt=[5], draft=draft)
                     for _ in range(2))
    assert isinstance(first, DraftModelProposer) and isinstance(second, DraftModelProposer)
    assert isinstance(first.k, AdaptiveK) and first.k is not second.k  # no state shared


def test_factory_draft_model_needs_a_draft_of_the_same_tokenizer() -> None:
    with pytest.raises(InvalidRequestError, match="needs a draft model"):
        build_proposer(MethodConfig("draft-model"), prompt=[5])
    with pytest.raises(TokenizerMismatchError):
        build_proposer(MethodConfig("draft-model"), prompt=[5],
                       draft=_drafter(tiny_tokenizer(300)))


def test_factory_has_no_proposer_for_an_unknown_method() -> None:
    with pytest.raises(InvalidRequestError, match="unknown method"):
        build_proposer(MethodConfig("hf-prompt-lookup"), prompt=[1])
