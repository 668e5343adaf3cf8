"""Write a tiny model folder the Dynamo frontend and mocker accept, without any download.

Run with the Dynamo venv's Python (it has `tokenizers`): `python -m ops.tiny_model DIR`.
The folder has what Dynamo reads from a Hugging Face snapshot: tokenizer.json,
tokenizer_config.json (with a chat template and EOS token) and config.json (eos_token_id and
the layer/head sizes the mocker turns into KV-cache bytes per token). No weights: the
mocker simulates the engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The mocker emits token ids in the low thousands; every id below VOCAB_SIZE decodes to a
# plain word, so responses carry visible text the smoke test can check.
VOCAB_SIZE = 4096
SPECIAL_TOKENS = ("<unk>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>")
WORDS = [
    "hello",
    "world",
    "the",
    "a",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "how",
    "are",
    "you",
    "today",
    "what",
    "is",
    "dynamo",
    "fast",
    "model",
    "serving",
    "on",
    "kubernetes",
    "say",
    "one",
    "two",
    "three",
    "four",
    "five",
    "ok",
    "yes",
    "no",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }} "
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def write_tiny_model(folder: Path) -> Path:
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    vocab_words = [*SPECIAL_TOKENS, *WORDS, *",.?!:;'"]
    vocab_words += [f"w{i}" for i in range(VOCAB_SIZE - len(vocab_words))]
    vocab = {word: index for index, word in enumerate(vocab_words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in SPECIAL_TOKENS])
    tokenizer.save(str(folder / "tokenizer.json"))
    eos_token = "<|endoftext|>"
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": eos_token,
            "unk_token": "<unk>",
            "model_max_length": 4096,
            "chat_template": CHAT_TEMPLATE,
        },
    )
    _write_json(
        folder / "config.json",
        {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": VOCAB_SIZE,
            "eos_token_id": vocab[eos_token],
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 4096,
            "torch_dtype": "bfloat16",
        },
    )
    return folder


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m ops.tiny_model DIR")
    print(write_tiny_model(Path(sys.argv[1])))
