"""Cold compiles spread over machines with distcc (Debian ``distcc``), behind the shared ccache.

ccache runs first (local cache, then ``--ccache-remote``); only a miss runs ``distcc <compiler> ...``
(ccache's ``CCACHE_PREFIX``), which preprocesses here and compiles on the helpers of ``DISTCC_HOSTS``.
ccache does not hash the prefix, so objects and the build key are the same with or without distcc, as long
as every helper runs the same compiler: :func:`check_helpers` compiles one small file on each helper and
compares its bytes (the ``.comment`` section names the compiler's exact version) with a local compile.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ortprune.errors import BuildError

#: The environment variable ``--distcc`` reads when it is not given.
ENV_VAR = "ORTPRUNE_DISTCC_HOSTS"
MAX_LIMIT = 1024  # jobs per host: more is a typo, not a machine

_HOSTNAME = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*"
_HOSTID = rf"(?P<host>{_HOSTNAME}|\[[0-9A-Fa-f:.]+\])"
_OPTIONS = r"(?P<options>(?:,(?:lzo|cpp|auth(?:=[^,\s]+)?))*)"
#: distcc(1), HOST SPECIFICATIONS: TCP_HOST (HOST[:PORT][/LIMIT]), its old form (HOST[/LIMIT][:PORT]), SSH_HOST.
_FORMS = [
    re.compile(rf"{_HOSTID}(?::(?P<port>\d+))?(?:/(?P<limit>\d+))?{_OPTIONS}"),
    re.compile(rf"{_HOSTID}(?:/(?P<limit>\d+))?(?::(?P<port>\d+))?{_OPTIONS}"),
    re.compile(rf"(?P<user>[A-Za-z0-9._-]*)@{_HOSTID}(?:/(?P<limit>\d+))?(?::(?P<command>[^,\s]+))?{_OPTIONS}"),
]
_GLOBAL = re.compile(r"--randomize|--localslots(?:_cpp)?=(?P<limit>\d+)|\+zeroconf")
_HELP = "distcc hosts are HOST[:PORT][/LIMIT], USER@HOST[/LIMIT] or localhost[/LIMIT], separated by spaces"


def _check_host(host: str, token: str) -> None:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise BuildError(f"--distcc: {token!r} has no valid IPv6 address in brackets") from None
    elif re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise BuildError(f"--distcc: {token!r} is not a valid IPv4 address") from None


def _check_number(value: str | None, what: str, top: int, token: str) -> None:
    if value is not None and not 1 <= int(value) <= top:
        raise BuildError(f"--distcc: {what} {int(value)} in {token!r} is not between 1 and {top}")


def parse_hosts(spec: str) -> str:
    """``spec`` (distcc's ``DISTCC_HOSTS`` grammar) checked and normalized to single spaces; BuildError naming
    the first entry that is not a host (empty list, bad address, port outside 1-65535, absurd job limit)."""
    tokens = spec.split()
    hosts = 0
    for token in tokens:
        if m := _GLOBAL.fullmatch(token):
            _check_number(m["limit"], "slot count", MAX_LIMIT, token)
            hosts += token == "+zeroconf"  # the hosts mDNS finds
            continue
        m = next((m for form in _FORMS if (m := form.fullmatch(token))), None)
        if m is None:
            raise BuildError(f"--distcc: {token!r} is not a distcc host ({_HELP})")
        _check_host(m["host"], token)
        _check_number(m.groupdict().get("port"), "port", 65535, token)
        _check_number(m["limit"], "job limit", MAX_LIMIT, token)
        hosts += 1
    if not hosts:
        raise BuildError(f"--distcc names no host ({_HELP}), got {spec!r}")
    return " ".join(tokens)


def distcc_env(spec: str, path: str) -> dict[str, str]:
    """The variables that send ccache's misses through distcc to ``spec``'s hosts; BuildError when ``spec`` is
    not a host list or distcc is not installed (both checked before anything is built)."""
    hosts = parse_hosts(spec)
    distcc = shutil.which("distcc", path=path)
    if distcc is None:
        raise BuildError("--distcc needs distcc on PATH: apt-get install distcc")
    return {"CCACHE_PREFIX": distcc, "DISTCC_HOSTS": hosts}


def uses_distcc(env: dict[str, str]) -> bool:
    return Path(env.get("CCACHE_PREFIX", "")).name == "distcc" and bool(env.get("DISTCC_HOSTS"))


def default_jobs(env: dict[str, str]) -> int | None:
    """``distcc -j`` for ``env``'s hosts (the sum of their job limits: what distcc itself advises for make -j),
    or None when ``env`` does not compile through distcc."""
    if not uses_distcc(env):
        return None
    try:
        out = subprocess.run([env["CCACHE_PREFIX"], "-j"], env=env, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out.strip()) if out.strip().isdigit() and int(out.strip()) > 0 else None


CANARY = "int ortprune_distcc_canary(int x) { return x * 3 + 1; }\n"
CANARY_TIMEOUT = 20  # seconds a helper may take to answer the test compile (DISTCC_IO_TIMEOUT)


def _first_error(stderr: str, code: int) -> str:
    """distcc's first ERROR line, without its ``distcc[pid] (function)`` prefix (the cause, not the summary)."""
    lines = [ln for ln in stderr.splitlines() if "ERROR" in ln] or stderr.strip().splitlines() or [f"exit {code}"]
    return re.sub(r"^distcc\[\d+\] (\(\w+\) )?(ERROR: )?", "", lines[0].strip())


def check_helpers(env: dict[str, str], cxx: str, log: Callable[[str], None] = print) -> dict[str, str]:
    """Compile one small file on each helper of ``env`` (distcc without local fallback) and compare the object
    with this machine's: a helper whose compiler differs would put other bytes under the same build key, so it
    is refused (BuildError naming it). A helper that does not compile it (down, not allowing this machine, no
    answer in ``CANARY_TIMEOUT``) is left out of ``env``'s hosts for this build and logged; with none left,
    ``env`` compiles here without distcc. Returns {host: "ok" | "left out: ..."}."""
    if not uses_distcc(env):
        return {}
    status: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ortprune-distcc-") as tmp:
        src = Path(tmp, "canary.cpp")
        src.write_text(CANARY)
        local = subprocess.run(
            [cxx, "-Os", "-c", src.name, "-o", "local.o"], cwd=tmp, env=env, capture_output=True, text=True
        )
        if local.returncode != 0:
            raise BuildError(f"the compiler cannot compile a one-line file: {local.stderr.strip()}", cxx)
        mine = Path(tmp, "local.o").read_bytes()
        for host in env["DISTCC_HOSTS"].split():
            if host.startswith(("--", "+")) or host.split("/")[0] == "localhost":
                continue  # options, zeroconf and the local slots compile nothing remote to compare
            # (a zero DISTCC_BACKOFF_PERIOD here would make distcc 3.4 spin on a refused connection)
            one = dict(env, DISTCC_HOSTS=host, DISTCC_FALLBACK="0", DISTCC_IO_TIMEOUT=str(CANARY_TIMEOUT))
            cmd = [env["CCACHE_PREFIX"], cxx, "-Os", "-c", src.name, "-o", "remote.o"]
            try:
                done = subprocess.run(
                    cmd, cwd=tmp, env=one, capture_output=True, text=True, timeout=CANARY_TIMEOUT + 30
                )
                last = _first_error(done.stderr, done.returncode) if done.returncode else ""
            except subprocess.TimeoutExpired:
                last = f"no answer in {CANARY_TIMEOUT + 30} s"
            if last:
                status[host] = f"left out: {last}"
                log(f"distcc helper {host} did not compile a test object ({last}): left out of this build")
                continue
            if Path(tmp, "remote.o").read_bytes() != mine:
                raise BuildError(
                    f"distcc helper {host} compiles with another compiler than this machine's {cxx} (a test "
                    "object differs): install the same compiler there or leave it out of --distcc"
                )
            status[host] = "ok"
    kept = [h for h in env["DISTCC_HOSTS"].split() if h not in status or status[h] == "ok"]
    if any(not h.startswith("--") for h in kept):
        env["DISTCC_HOSTS"] = " ".join(kept)
    else:
        log("no distcc helper compiled the test object: this build compiles here only")
        del env["CCACHE_PREFIX"], env["DISTCC_HOSTS"]
    return status
