"""One call run in a thread while the caller goes on (cold start: ORT's load beside numpy's import, a model's
hash beside its load). ctypes and hashlib release the GIL, so on two cores the caller waits for the longer
of the two, not the sum."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class InThread(Generic[T]):
    """``fn()`` run in a daemon thread at once; :meth:`result` waits for it and returns or raises what it did."""

    def __init__(self, fn: Callable[[], T], name: str) -> None:
        self._fn = fn
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
            self._done = True
        except BaseException as e:  # handed to the caller by result()
            self._error = e

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error.with_traceback(self._error.__traceback__)
        assert self._done
        return self._value  # type: ignore[return-value]

    def discard(self, release: Callable[[T], object] | None = None) -> None:
        """Wait for the thread and release what it made (the caller failed before using it)."""
        self._thread.join()
        if self._done and release is not None:
            release(self._value)  # type: ignore[arg-type]
