"""Checks at the Python API's boundary: a wrong type or value becomes one error naming the argument.

Every public function or class that takes a path, a count or a flag from a caller checks it here before
any work starts, so a caller sees ``ArgumentTypeError`` (a TypeError) or ``ArgumentValueError`` (a
ValueError), both OrtpruneErrors, instead of whatever a library deeper down happens to raise."""

from __future__ import annotations

import difflib
import inspect
import operator
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ortprune.errors import ArgumentTypeError, ArgumentValueError


def _what(value: object) -> str:
    return f"{type(value).__name__} {value!r}" if not isinstance(value, str | bytes) else repr(value)


def path_arg(value: object, name: str) -> Path:
    """``value`` as a Path: a str or os.PathLike (not bytes), not empty, without NUL."""
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike):
        raise ArgumentTypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise ArgumentTypeError(f"{name} must be a path (str or os.PathLike), got bytes")
    if not text:
        raise ArgumentValueError(f"{name} is an empty path")
    if "\0" in text:
        raise ArgumentValueError(f"{name} contains a NUL character: {text!r}")
    return Path(text)


def optional_path_arg(value: object, name: str) -> Path | None:
    return None if value is None else path_arg(value, name)


def paths_arg(value: object, name: str) -> list[Path]:
    """One path (str or os.PathLike: never split into characters) or an iterable of them."""
    if isinstance(value, str | os.PathLike):
        return [path_arg(value, name)]
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise ArgumentTypeError(f"{name} must be a path or a list of paths, got {type(value).__name__}")
    return [path_arg(v, f"{name}[{i}]") for i, v in enumerate(value)]


def int_arg(value: object, name: str, low: int | None = None, high: int | None = None) -> int:
    """An integer (Python or numpy; not a bool, not a float) within [low, high]."""
    if isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ArgumentTypeError(f"{name} must be an integer, got {_what(value)}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        if low is not None and high is not None and high < sys.maxsize:
            raise ArgumentValueError(f"{name} must be between {low} and {high}, got {number}")
        if low is not None and number < low:
            raise ArgumentValueError(f"{name} must be >= {low}, got {number}")
        raise ArgumentValueError(f"{name} must be <= {high}, got {number}")
    return number


def optional_int_arg(value: object, name: str, low: int | None = None, high: int | None = None) -> int | None:
    return None if value is None else int_arg(value, name, low, high)


def bool_arg(value: object, name: str) -> bool:
    """True or False (numpy's bool and the integers 0 and 1 too; not strings, which are all truthy)."""
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_" or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ArgumentTypeError(f"{name} must be True or False, got {_what(value)}")


def str_arg(value: object, name: str, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a str, got {type(value).__name__}")
    if not empty and not value:
        raise ArgumentValueError(f"{name} is empty")
    return value


def choice_arg(value: object, name: str, choices: Iterable[str]) -> str:
    """One of ``choices`` (case-insensitive); the error lists them."""
    options = list(choices)
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be one of {', '.join(options)}; got {type(value).__name__}")
    if value.lower() not in options:
        raise ArgumentValueError(f"unknown {name} {value!r}; choose one of {', '.join(options)}")
    return value.lower()


def texts_arg(value: Any, name: str) -> Iterable[str]:
    """A str (one text) or an iterable of texts; each element is checked as it is consumed."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes | bytearray) or not isinstance(value, Iterable):
        raise ArgumentTypeError(f"{name} must be a str or an iterable of str, got {type(value).__name__}")
    return value


def no_extra_args(
    what: str, func: Callable[..., object], extra: tuple[object, ...], unknown: Mapping[str, object]
) -> None:
    """Arguments ``func`` caught in its ``*extra`` / ``**unknown`` (typed ``NoReturn`` so a type checker flags
    them too) become one ArgumentTypeError naming them and what ``what`` takes, instead of Python's plain
    TypeError."""
    params = [p for p in inspect.signature(func).parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = [p.name for p in params if p.name != "self"]
    if unknown:
        word = sorted(unknown)[0]
        close = difflib.get_close_matches(word, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        plural = "s" if len(unknown) > 1 else ""
        raise ArgumentTypeError(f"{what} got unknown keyword argument{plural} {', '.join(sorted(unknown))}{hint}; "
                                f"it takes {', '.join(names)}")  # fmt: skip
    if extra:
        positional = [p.name for p in params if p.name != "self" and p.kind != p.KEYWORD_ONLY]
        raise ArgumentTypeError(f"{what} takes {len(positional)} positional argument(s) ({', '.join(positional)}), "
                                f"got {len(positional) + len(extra)}; pass the others by name")  # fmt: skip
