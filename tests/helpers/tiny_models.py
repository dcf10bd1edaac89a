"""Small random-weight models and a real (trained-in-the-test) tokenizer, built offline.

The hub is unreachable here, so tests build what they need: a byte-level BPE tokenizer
trained in milliseconds on a little code, and models of several architectures built from
small configs with fixed seeds. Weights are initialised with a wide spread so the logits
are peaked: float32 near-ties (where a batched and a one-token pass could round to
different argmaxes) become vanishingly rare, which keeps exactness tests meaningful.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    LlamaConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "for i in range(10):\n    print(i)\n",
    "const [value, setValue] = useState(0);\n// a comment\nexport function f() {}\n",
    "import os\nimport sys\n\nif __name__ == '__main__':\n    main()\n",
    "## Instructions\n## Code\n## Rewritten code\n```python\n```typescript\n```\n",
    "Rewrite the code and add a comment above the line. Return only the code.\n",
]


@functools.cache
def tiny_tokenizer(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    return fast


def chat_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny tokenizer with a chat template (ChatML, as Qwen uses)."""
    tok = tiny_tokenizer()
    chat = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer,
                                   eos_token="<|im_end|>", pad_token="<|endoftext|>")
    chat.chat_template = CHAT_TEMPLATE
    return chat


def tiny_config(arch: str, vocab_size: int, *, layers: int = 2, hidden: int = 64,
                max_positions: int = 4096):
    common = dict(vocab_size=vocab_size, bos_token_id=0, eos_token_id=0)
    if arch == "gpt2":
        return GPT2Config(n_embd=hidden, n_layer=layers, n_head=4, n_positions=max_positions,
                          initializer_range=0.4, **common)
    if arch == "llama":
        return LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=layers, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=max_positions,
                           initializer_range=0.4, **common)
    if arch == "qwen2":
        return Qwen2Config(hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=layers, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=max_positions,
                           initializer_range=0.4, **common)
    raise ValueError(f"unknown arch {arch!r}")


def tiny_model(arch: str, *, seed: int = 0, vocab_size: int | None = None, **config_kw):
    vocab = vocab_size or len(tiny_tokenizer())
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, vocab, **config_kw),
                                             dtype=torch.float32)
    return model.eval()


def make_tiny_model_dir(path: Path, arch: str = "llama", *, chat: bool = True,
                        seed: int = 0, **config_kw) -> Path:
    """Save a tiny random model plus tokenizer as a transformers folder (for the CLI/server);
    config_kw (layers, hidden...) as tiny_config takes them."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = chat_tokenizer() if chat else tiny_tokenizer()
    model = tiny_model(arch, seed=seed, vocab_size=len(tok), **config_kw)
    model.config.eos_token_id = tok.eos_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
