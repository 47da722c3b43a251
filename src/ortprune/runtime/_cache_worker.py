"""``python -m ortprune.runtime._cache_worker MODEL LIB LEVEL ROOT``: build one optimized-model cache entry
(the background job of a cache miss). Quiet; an entry another process finished first is left alone."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from ortprune.runtime.cache import OptimizedModelCache
    from ortprune.runtime.session import Session

    model, lib, level, root = argv
    Session(
        model, lib, optimization_level=int(level), log_level="fatal", cache=OptimizedModelCache(root, background=False)
    ).close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
