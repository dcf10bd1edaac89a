"""Who guesses the next tokens, one proposer a file, all behind `base.Proposer`:

- `OriginalCodeProposer` (original.py): the code being rewritten is the draft (speculative edits).
- `PromptLookupProposer` (prompt_lookup.py): n-gram lookup in the prompt and output so far.
- `DraftModelProposer` (draft_model.py): a smaller model decodes K tokens ahead.
- `LookupFallbackProposer` and `HybridProposer` (combined.py): the original first, n-gram
  lookup or a draft model where it falls short.
The factory that picks one for a method is decode/methods.py.
"""

from .base import NoProposer, Proposer
from .combined import HybridProposer, LookupFallbackProposer, OriginalFirstProposer
from .draft_model import AdaptiveK, DraftModelProposer, check_same_tokenizer
from .original import OriginalCodeProposer, OriginalDraftSettings
from .prompt_lookup import PromptLookupProposer

__all__ = ["AdaptiveK", "DraftModelProposer", "HybridProposer", "LookupFallbackProposer",
           "NoProposer", "OriginalCodeProposer", "OriginalDraftSettings", "OriginalFirstProposer",
           "PromptLookupProposer", "Proposer", "check_same_tokenizer"]
