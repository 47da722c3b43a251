"""Tokenizer setup shared by ``embed`` (embeddings) and ``verify`` (realistic model inputs): a model
directory's ``tokenizer.json`` with the truncation, padding and special tokens fastembed applies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ortprune.errors import OrtpruneError

DEFAULT_MAX_LENGTH = 512


def load_tokenizer(directory: Path, max_length: int = DEFAULT_MAX_LENGTH) -> tuple[Any, int]:
    """``tokenizer.json`` of ``directory``, truncating at min(max_length, model_max_length) and padding to
    the longest text of each batch. Returns the tokenizer and the truncation length."""
    from tokenizers import AddedToken, Tokenizer

    path = directory / "tokenizer.json"
    if not path.is_file():
        raise OrtpruneError("no tokenizer.json: a text model directory needs one beside the .onnx file", directory)
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on bad files
        raise OrtpruneError(f"cannot read the tokenizer: {e}", path) from None
    tokenizer_config = read_json(directory / "tokenizer_config.json")
    config = read_json(directory / "config.json")
    special = read_json(directory / "special_tokens_map.json")

    model_max = tokenizer_config.get("model_max_length")
    length = min(max_length, int(model_max)) if isinstance(model_max, int | float) and model_max > 0 else max_length
    tokenizer.enable_truncation(max_length=length)

    pad_token = _token_text(tokenizer_config.get("pad_token")) or _token_text(special.get("pad_token"))
    if pad_token is None:
        pad_token = (tokenizer.padding or {}).get("pad_token", "[PAD]")
    pad_id = config.get("pad_token_id")
    if not isinstance(pad_id, int):
        pad_id = tokenizer.token_to_id(pad_token) or 0
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)  # no length: pad to the batch's longest

    for value in special.values():
        if isinstance(value, str):
            tokenizer.add_special_tokens([value])
        elif isinstance(value, dict) and "content" in value:
            keys = ("content", "single_word", "lstrip", "rstrip", "normalized")
            tokenizer.add_special_tokens([AddedToken(**{k: v for k, v in value.items() if k in keys})])
    return tokenizer, length


def _token_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise OrtpruneError(f"cannot read JSON: {e}", path) from None
    return data if isinstance(data, dict) else {}
