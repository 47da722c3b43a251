"""Data-parallel embedding (fastembed's ``embed(..., parallel=N)``): N worker processes, one ORT thread each.

Like fastembed, workers are started with forkserver (else spawn), never fork: a forked ORT thread pool
is not safe. Batches go out in order and at most two per worker are in flight, so a long iterator is
consumed lazily and results come back in input order.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ortprune.embed.text import TextEmbedding

_worker: TextEmbedding | None = None


def _init(factory: Callable[..., TextEmbedding], state: dict[str, Any]) -> None:
    global _worker
    _worker = factory(state, threads=1)


def _embed(batch: list[str], task_id: int | None = None) -> np.ndarray:
    assert _worker is not None
    return _worker.embed_batch(batch, task_id=task_id)


def embed_parallel(
    factory: Callable[..., TextEmbedding],
    state: dict[str, Any],
    batches: Iterable[list[str]],
    workers: int,
    task_id: int | None = None,
) -> Iterator[np.ndarray]:
    """Vectors of every batch, in order, computed by ``workers`` processes, each built by
    ``factory(state, threads=1)`` (passed in, pickled by reference, so this module needs no import of text)."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init, initargs=(factory, state)) as pool:
        pending: deque[Future[np.ndarray]] = deque()
        for batch in batches:
            pending.append(pool.submit(_embed, batch, task_id))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
