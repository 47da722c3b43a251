"""Probe worker: ``python -m ortprune.verify._probe_worker LIB`` reads ``[[id, base64 model], ...]`` on stdin
and prints one JSON line per probe as soon as it is done, so a crash loses only the probe in flight."""

from __future__ import annotations

import base64
import json
import sys


def main() -> None:
    from ortprune.errors import OrtpruneError
    from ortprune.runtime import OrtError, Session, load_library

    try:
        lib = load_library(sys.argv[1])
    except OrtpruneError as e:
        print(json.dumps({"fatal": str(e)}), flush=True)
        return
    print(json.dumps({"library": str(lib.path), "version": lib.version}), flush=True)
    for key, model in json.loads(sys.stdin.read()):
        code: int | None = None
        message = ""
        try:
            Session(base64.b64decode(model), lib, optimization_level="disable", log_level="fatal").close()
        except OrtError as e:
            code, message = e.code, e.ort_message
        except OrtpruneError as e:
            code, message = -2, str(e)
        print(json.dumps({"id": key, "code": code, "message": message}), flush=True)


if __name__ == "__main__":
    main()
