"""The rewrite prompt, the draft taken from the original code, and where the answer ends."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .decoding import StopTokens

FENCE = "```"
# A closing fence at the start of a line ends the answer.
_CLOSING_FENCE = re.compile(r"(?:^|\n)```")

SYSTEM_MESSAGE = (
    "You are a careful coding assistant. You rewrite the code you are given according to "
    "the instruction. Reply with the complete rewritten code in one fenced code block and "
    "nothing else. Keep everything the instruction does not ask to change exactly as it is."
)

# Editors' language ids that differ from the usual fence tag.
_FENCE_TAGS = {"typescriptreact": "tsx", "javascriptreact": "jsx", "shellscript": "bash"}
_EXTENSION_LANGUAGES = {
    ".py": "python", ".ts": "typescript", ".tsx": "tsx", ".js": "javascript",
    ".jsx": "jsx", ".rs": "rust", ".go": "go", ".java": "java", ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".cs": "csharp", ".rb": "ruby",
    ".php": "php", ".lua": "lua", ".sh": "bash", ".kt": "kotlin", ".swift": "swift",
    ".scala": "scala", ".sql": "sql", ".html": "html", ".css": "css", ".json": "json",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".md": "markdown",
}


def language_for_path(path: str) -> str | None:
    for ext, lang in _EXTENSION_LANGUAGES.items():
        if path.endswith(ext):
            return lang
    return None


def fence_tag(language: str | None) -> str:
    if not language:
        return ""
    return _FENCE_TAGS.get(language, language)


@dataclass
class FenceStop:
    """Stops at a closing fence in the decoded text, and at stop tokens."""

    tokenizer: Any
    stop_tokens: StopTokens

    def first_stop(self, tokens: Sequence[int], start: int) -> int | None:
        end = self.stop_tokens.first_stop(tokens, start)
        limit = len(tokens) if end is None else end
        if limit <= start or not self._has_fence(tokens, limit):
            return end
        # Text is monotone in the prefix for an ASCII fence: binary-search the first token
        # whose prefix contains it, so a fence inside an accepted block stops at the right place.
        lo, hi = start + 1, limit
        while lo < hi:
            mid = (lo + hi) // 2
            if self._has_fence(tokens, mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _has_fence(self, tokens: Sequence[int], n: int) -> bool:
        return _CLOSING_FENCE.search(self.tokenizer.decode(list(tokens[:n]))) is not None


def answer_text(decoded: str, original: str) -> str:
    """The rewritten region: text before the closing fence, newline convention of the original."""
    match = _CLOSING_FENCE.search(decoded)
    text = decoded
    if match is not None:
        # Keep the newline that precedes the fence: it ends the region's last line.
        text = decoded[: match.start() + (1 if match.group().startswith("\n") else 0)]
    if not original.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    return text


@dataclass
class RewritePrompt:
    prompt_ids: list[int]
    draft_ids: list[int]  # the original region as the answer would spell it, then the fence
    stop: FenceStop
    text: str  # the prompt as text, for debugging and --verbose


def stop_token_ids(tokenizer: Any, model: Any = None) -> frozenset[int]:
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(eos)
    for name in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>"):
        tid = tokenizer.convert_tokens_to_ids(name)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None:
            ids.add(tid)
    return frozenset(ids)


def _user_message(code: str, instruction: str, tag: str, before: str, after: str) -> str:
    parts = [f"Instruction: {instruction.strip()}", ""]
    if before.strip():
        parts += ["Code before the part to rewrite (context only, do not repeat it):",
                  f"{FENCE}{tag}", before.rstrip("\n"), FENCE, ""]
    if after.strip():
        parts += ["Code after the part to rewrite (context only, do not repeat it):",
                  f"{FENCE}{tag}", after.rstrip("\n"), FENCE, ""]
    parts += ["The code to rewrite:", f"{FENCE}{tag}", code.rstrip("\n"), FENCE]
    return "\n".join(parts)


def _plain_prompt(code: str, instruction: str, tag: str, before: str, after: str) -> str:
    parts = ["## Instructions", instruction.strip(), ""]
    if before.strip():
        parts += ["## Code before (context)", f"{FENCE}{tag}", before.rstrip("\n"), FENCE, ""]
    if after.strip():
        parts += ["## Code after (context)", f"{FENCE}{tag}", after.rstrip("\n"), FENCE, ""]
    parts += ["## Code", f"{FENCE}{tag}", code.rstrip("\n"), FENCE, "", "## Rewritten code", ""]
    return "\n".join(parts)


def build_prompt(tokenizer: Any, code: str, instruction: str, *, language: str | None = None,
                 context_before: str = "", context_after: str = "",
                 model: Any = None) -> RewritePrompt:
    tag = fence_tag(language)
    if getattr(tokenizer, "chat_template", None):
        messages = [
            {"role": "system", "content": SYSTEM_MESSAGE},
            {"role": "user", "content": _user_message(code, instruction, tag,
                                                      context_before, context_after)},
        ]
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        head = _plain_prompt(code, instruction, tag, context_before, context_after)
    # Prime the answer with the opening fence: the model starts straight into the code.
    prompt_text = f"{head}{FENCE}{tag}\n"
    answer = code if code.endswith("\n") or not code else code + "\n"
    answer += FENCE
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    # Tokenise the original as it would appear in the answer: in context when the prompt's
    # tokens survive unchanged, else on its own.
    joint = tokenizer(prompt_text + answer, add_special_tokens=False)["input_ids"]
    if joint[: len(prompt_ids)] == prompt_ids:
        draft_ids = joint[len(prompt_ids):]
    else:
        draft_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    stop = FenceStop(tokenizer, StopTokens(stop_token_ids(tokenizer, model)))
    return RewritePrompt(prompt_ids, draft_ids, stop, prompt_text)
