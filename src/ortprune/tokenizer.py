"""Tokenizer setup shared by ``embed`` (embeddings) and ``verify`` (realistic model inputs): a model
directory's ``tokenizer.json`` with the truncation, padding and special tokens fastembed applies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ortprune.errors import OrtpruneError

DEFAULT_MAX_LENGTH = 512
#: The files a tokenizer is read from (tokenizer.json, and the configs fastembed reads beside it).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json")


def load_tokenizer(directory: Path, max_length: int | None = None) -> tuple[Any, int]:
    """``tokenizer.json`` of ``directory`` set up as fastembed 0.9 does (``preprocessor_utils.load_tokenizer``):
    truncation at the smaller valid one of tokenizer_config's ``model_max_length`` and ``max_length``
    (and of ``max_length`` given here; 512 when the config has none), on its ``truncation_side``;
    special tokens of special_tokens_map.json added first; padding always to the longest text of the
    batch (a fixed length in tokenizer.json would give ragged or needlessly long batches), pad token and
    id from tokenizer.json's padding, else the configs, on tokenizer_config's ``padding_side``.
    Returns the tokenizer and the truncation length."""
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

    limits = [
        v
        for k in ("model_max_length", "max_length")
        if isinstance(v := tokenizer_config.get(k), int) and not isinstance(v, bool) and 0 < v <= sys.maxsize
    ]
    length = min(limits) if limits else DEFAULT_MAX_LENGTH
    if max_length is not None:
        length = min(length, max_length)
    truncation = tokenizer.truncation or {}
    tokenizer.enable_truncation(max_length=length, direction=tokenizer_config.get("truncation_side")
                                or truncation.get("direction", "right"))  # fmt: skip

    for value in special.values():
        for token in value if isinstance(value, list) else [value]:  # additional_special_tokens is a list
            if isinstance(token, str):
                tokenizer.add_special_tokens([token])
            elif isinstance(token, dict) and "content" in token:
                keys = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")
                tokenizer.add_special_tokens([AddedToken(**{k: v for k, v in token.items() if k in keys})])

    padding = tokenizer.padding or {}
    pad_token = padding.get("pad_token") or _token_text(tokenizer_config.get("pad_token"))
    pad_token = pad_token or _token_text(special.get("pad_token")) or "[PAD]"
    pad_id = padding.get("pad_id", config.get("pad_token_id"))
    if not isinstance(pad_id, int):
        pad_id = tokenizer.token_to_id(pad_token) or 0
    tokenizer.enable_padding(direction=tokenizer_config.get("padding_side") or padding.get("direction", "right"),
                             pad_id=pad_id, pad_type_id=padding.get("pad_type_id", 0), pad_token=pad_token,
                             pad_to_multiple_of=padding.get("pad_to_multiple_of"), length=None)  # fmt: skip
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
