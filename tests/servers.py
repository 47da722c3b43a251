"""Real servers on 127.0.0.1 for tests, from Debian packages: nginx (nginx-extras: WebDAV PUT/MOVE/DELETE
and PROPFIND), redis-server and distccd; plus two misbehaving ones made from plain sockets: one that accepts and
never answers, one that answers garbage. Each runs on a free port in a temp dir and is stopped after.
Tests skip with the package to install when a binary is absent (``make test-servers`` installs them)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DAV_EXT = Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")

NGINX_CONF = """
{load_module}
{user}
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log {tmp}/access.log;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location /store/ {{
      dav_methods PUT DELETE MKCOL COPY MOVE;
      {dav_ext}
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }}
    location /readonly/ {{
      alias {root}/store/;
      {dav_ext}
      limit_except GET HEAD PROPFIND OPTIONS {{ deny all; }}
    }}
    location /ccache/ {{
      dav_methods PUT DELETE;
      create_full_put_path on;
    }}
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text() if log.exists() else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout} s")


@contextlib.contextmanager
def _running(cmd: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Nginx:
    url: str  # the writable WebDAV store: http://127.0.0.1:PORT/store/
    readonly_url: str  # the same files, GET/PROPFIND only (PUT/MOVE/DELETE answer 403)
    ccache_url: str  # plain PUT/GET for ccache's http remote storage
    root: Path  # the files the store serves: root/<key>/...


@contextlib.contextmanager
def nginx(tmp: Path) -> Iterator[Nginx]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if binary is None or not DAV_EXT.exists():
        pytest.skip("nginx with WebDAV is not installed (apt-get install nginx-extras; make test-servers)")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "root" / "store").mkdir(parents=True)
    (tmp / "root" / "ccache").mkdir(parents=True)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            load_module=f"load_module {DAV_EXT};",
            dav_ext="dav_ext_methods PROPFIND OPTIONS;",
            user="user root;" if os.geteuid() == 0 else "",
            tmp=tmp,
            root=tmp / "root",
            port=port,
        )
    )
    with _running([binary, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")], port, tmp / "error.log"):
        base = f"http://127.0.0.1:{port}"
        yield Nginx(f"{base}/store/", f"{base}/readonly/", f"{base}/ccache/", tmp / "root" / "store")


@contextlib.contextmanager
def redis(tmp: Path) -> Iterator[str]:
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; make test-servers)")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]
    with _running(cmd, port, tmp / "redis.log"):
        yield f"redis://127.0.0.1:{port}"


@dataclass
class Distccd:
    hosts: str  # the DISTCC_HOSTS entry of this daemon: 127.0.0.1:PORT/JOBS
    log: Path  # distccd's own log (one "compile from X to Y" line per object it compiled)

    def compiled(self) -> list[str]:
        """The source names distccd compiled so far (from its log)."""
        return [line.split("compile from ", 1)[1].split(" to ")[0] for line in self.text() if "compile from " in line]

    def text(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []


@contextlib.contextmanager
def distccd(tmp: Path, jobs: int = 2) -> Iterator[Distccd]:
    """A real distccd (Debian ``distcc``) on 127.0.0.1, accepting only 127.0.0.1, logging to ``tmp/distccd.log``
    (through stderr: distccd drops root to its own user, which could not open a file under ``tmp``)."""
    binary = shutil.which("distccd") or ("/usr/bin/distccd" if os.path.exists("/usr/bin/distccd") else None)
    if binary is None or not shutil.which("distcc"):
        pytest.skip("distcc is not installed (apt-get install distcc; make test-servers)")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [binary, "--daemon", "--no-detach", "--port", str(port), "--listen", "127.0.0.1", "--allow", "127.0.0.1"]
    cmd += ["--jobs", str(jobs), "--log-stderr", "--log-level", "info"]
    with _running(cmd, port, tmp / "distccd.log"):
        yield Distccd(f"127.0.0.1:{port}/{jobs}", tmp / "distccd.log")


@contextlib.contextmanager
def raw_server(answer: bytes | None) -> Iterator[str]:
    """A real TCP server on 127.0.0.1: accepts every connection, then sends ``answer`` and closes, or (None)
    holds the connection open and never answers."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if answer is None:
                held.append(conn)
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/store/"
    finally:
        stop.set()
        thread.join(5)
        srv.close()
        for c in held:
            c.close()
