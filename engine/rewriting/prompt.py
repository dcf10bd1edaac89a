"""The rewrite prompt, the draft taken from the original code, and where the answer ends."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.contract import DEFAULT_PROMPT_FORMAT, PROMPT_FORMATS, InvalidRequestError
from engine.decode.stopping import StopTokens, TextStop

FENCE = "```"
# A closing fence at the start of a line ends the answer.
CLOSING_FENCE = re.compile(r"(?:^|\n)```")
# What may yet become a closing fence: one or two backticks at the start of the last line.
_FENCE_BEGUN = re.compile(r"(?:^|\n)`{1,2}\Z")

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


def has_closing_fence(decoded: str) -> bool:
    """Did the answer end with a closing fence (rather than an end-of-text token or the cap)?"""
    return CLOSING_FENCE.search(decoded) is not None


def answer_text(decoded: str, original: str) -> str:
    """The rewritten region: text before the closing fence, newline convention of the original."""
    match = CLOSING_FENCE.search(decoded)
    text = decoded
    if match is not None:
        # Keep the newline that precedes the fence: it ends the region's last line.
        text = decoded[: match.start() + (1 if match.group().startswith("\n") else 0)]
    if not original.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    return text


def partial_answer_text(decoded: str, original: str) -> str:
    """The rewritten region so far, from the output decoded so far (it may end mid-line).

    Holds back what the next tokens could still take away, so that each partial text is a
    prefix of the later ones and of the final answer: an incomplete UTF-8 character at the
    end (decoded as U+FFFD) and backticks that may be the beginning of the closing fence.
    """
    if not has_closing_fence(decoded):
        decoded = decoded.rstrip("\ufffd")
        begun = _FENCE_BEGUN.search(decoded)
        if begun is not None:
            decoded = decoded[: begun.start() + (1 if begun.group().startswith("\n") else 0)]
    return answer_text(decoded, original)


@dataclass
class RewritePrompt:
    prompt_ids: list[int]
    draft_ids: list[int]  # the original region as the answer would spell it, then the fence
    stop: TextStop  # stop tokens and the closing fence
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


@dataclass(frozen=True)
class PromptParts:
    """What one prompt format says: chat messages for chat models, one text for base models."""

    system: str
    user: str
    plain: str  # for tokenizers without a chat template; the opening fence is appended to it


def _fenced(tag: str, text: str) -> list[str]:
    return [f"{FENCE}{tag}", text.rstrip("\n"), FENCE]


def _user_message(code: str, instruction: str, tag: str, before: str, after: str) -> str:
    parts = [f"Instruction: {instruction.strip()}", ""]
    if before.strip():
        parts += ["Code before the part to rewrite (context only, do not repeat it):",
                  *_fenced(tag, before), ""]
    if after.strip():
        parts += ["Code after the part to rewrite (context only, do not repeat it):",
                  *_fenced(tag, after), ""]
    parts += ["The code to rewrite:", *_fenced(tag, code)]
    return "\n".join(parts)


def _plain_prompt(code: str, instruction: str, tag: str, before: str, after: str) -> str:
    parts = ["## Instructions", instruction.strip(), ""]
    if before.strip():
        parts += ["## Code before (context)", *_fenced(tag, before), ""]
    if after.strip():
        parts += ["## Code after (context)", *_fenced(tag, after), ""]
    parts += ["## Code", *_fenced(tag, code), "", "## Rewritten code", ""]
    return "\n".join(parts)


def _instruction_first(code: str, instruction: str, tag: str, before: str,
                       after: str) -> PromptParts:
    """Today's prompt: a system message with the rules, the instruction ahead of the code."""
    return PromptParts(SYSTEM_MESSAGE, _user_message(code, instruction, tag, before, after),
                       _plain_prompt(code, instruction, tag, before, after))


CANITEDIT_SYSTEM_MESSAGE = (
    "You edit code. You are given the original code and an instruction that says what to "
    "change. Reply with the changed code only, with no explanation."
)


def _canitedit(code: str, instruction: str, tag: str, before: str, after: str) -> PromptParts:
    """The CanItEdit harness's layout (its chat form for chat models, its direct form for base
    models). The harness has no context; ours goes in sections of the same style, in the
    file's order around the code to change, so the code reads as the file does and the
    instruction comes last."""
    above = ["## Code Above (context, unchanged)", *_fenced(tag, before), ""]
    below = ["## Code Below (context, unchanged)", *_fenced(tag, after), ""]
    above, below = (above if before.strip() else []), (below if after.strip() else [])
    user = [*above, "## Code Before", *_fenced(tag, code), "", *below, "## Instruction",
            instruction.strip(), "", "## Code After"]
    plain = [*above, "## Code Before:", *_fenced(tag, code), *([""] if below else []), *below,
             "## Instruction:", instruction.strip(), "## Code After:", ""]
    return PromptParts(CANITEDIT_SYSTEM_MESSAGE, "\n".join(user), "\n".join(plain))


INSTRUCTION_LAST_SYSTEM_MESSAGE = (
    "Rewrite the user's code as instructed and reply with all of it in one code block.")


def _instruction_last(code: str, instruction: str, tag: str, before: str,
                      after: str) -> PromptParts:
    """Our alternative: a one-line system message, the code first and the instruction last,
    where a small model attends to it right before it answers."""
    parts = []
    if before.strip():
        parts += ["Context above the code (do not repeat it):", *_fenced(tag, before), ""]
    if after.strip():
        parts += ["Context below the code (do not repeat it):", *_fenced(tag, after), ""]
    parts += ["Code:", *_fenced(tag, code), "",
              f"Rewrite the code above: {instruction.strip()}",
              "Change nothing else and reply with the complete code."]
    user = "\n".join(parts)
    return PromptParts(INSTRUCTION_LAST_SYSTEM_MESSAGE, user, f"{user}\n\nRewritten code:\n")


_FORMATS = {
    "instruction-first": _instruction_first,
    "canitedit": _canitedit,
    "instruction-last": _instruction_last,
}
assert tuple(_FORMATS) == PROMPT_FORMATS, "engine/contract.PROMPT_FORMATS and _FORMATS differ"


@dataclass(frozen=True)
class RewriteMessages:
    """The rewrite prompt before any tokenizer sees it: what a remote chat endpoint is sent.

    `primer` opens the answer (the opening fence); `answer` is the original code as the answer
    would spell it, closing fence included: the draft, or an endpoint's `prediction`.
    """

    parts: PromptParts
    primer: str
    answer: str

    def chat(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.parts.system},
                {"role": "user", "content": self.parts.user}]


def rewrite_messages(code: str, instruction: str, *, language: str | None = None,
                     context_before: str = "", context_after: str = "",
                     prompt_format: str = DEFAULT_PROMPT_FORMAT) -> RewriteMessages:
    """The prompt's wording for `prompt_format`; imports no tokenizer (or torch)."""
    if prompt_format not in _FORMATS:
        raise InvalidRequestError(f"unknown prompt format {prompt_format!r}; use one of "
                                  f"{', '.join(PROMPT_FORMATS)}", field="prompt_format")
    tag = fence_tag(language)
    parts = _FORMATS[prompt_format](code, instruction, tag, context_before, context_after)
    answer = code if code.endswith("\n") or not code else code + "\n"
    # Prime the answer with the opening fence, whatever the format: the model starts straight
    # into the code, so the original (tokenised in context) stays the draft.
    return RewriteMessages(parts, f"{FENCE}{tag}\n", answer + FENCE)


def build_prompt(tokenizer: Any, code: str, instruction: str, *, language: str | None = None,
                 context_before: str = "", context_after: str = "",
                 model: Any = None,
                 prompt_format: str = DEFAULT_PROMPT_FORMAT) -> RewritePrompt:
    wording = rewrite_messages(code, instruction, language=language,
                               context_before=context_before, context_after=context_after,
                               prompt_format=prompt_format)
    if getattr(tokenizer, "chat_template", None):
        head = tokenizer.apply_chat_template(wording.chat(), tokenize=False,
                                             add_generation_prompt=True)
    else:
        head = wording.parts.plain
    prompt_text = head + wording.primer
    answer = wording.answer
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    # Tokenise the original as it would appear in the answer: in context when the prompt's
    # tokens survive unchanged, else on its own.
    joint = tokenizer(prompt_text + answer, add_special_tokens=False)["input_ids"]
    if joint[: len(prompt_ids)] == prompt_ids:
        draft_ids = joint[len(prompt_ids):]
    else:
        draft_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    stop = TextStop(tokenizer, StopTokens(stop_token_ids(tokenizer, model)), pattern=CLOSING_FENCE)
    return RewritePrompt(prompt_ids, draft_ids, stop, prompt_text)
