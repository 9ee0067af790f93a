"""Helpers shared by the benchmarks: fresh databases, servers in subprocesses, wrk."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def fresh_database(admin_url: str | None, label: str) -> tuple[str, callable]:
    """A new empty database: a temp SQLite file, or a new PostgreSQL database."""
    if not admin_url:
        path = Path(tempfile.mkdtemp(prefix=f"hgbench-{label}-")) / "bench.sqlite3"
        return f"sqlite:///{path}", lambda: None
    name = f"hgbench_{label}_{os.getpid()}"
    admin = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), drop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(args: list[str], port: int, env: dict | None = None) -> Iterator[str]:
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # the server answers, even if with an error status
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = proc.stderr.read().decode()[-2000:]
                    raise RuntimeError(f"server did not start: {log}") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def uvicorn_args(target: str, port: int, factory: bool = False) -> list[str]:
    args = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "warning"]
    return args + (["--factory"] if factory else [])


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url_base: str, paths: list[str], *, seconds: int, connections: int,
        token: str | None = None) -> dict[str, float]:
    """Run wrk cycling through ``paths`` (with a bearer token when given); returns
    requests/s, p50 and p99 in ms, errors."""
    auth = f", ['Authorization']='Bearer {token}'" if token else ""
    script = Path(tempfile.mkdtemp(prefix="hgwrk-")) / "paths.lua"
    quoted = ",".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in paths)
    script.write_text("local paths = {" + quoted + "}\nlocal i = 0\n"
                      "request = function()\n  i = i % #paths + 1\n"
                      "  return wrk.format('GET', paths[i], {['Accept']='application/fhir+json'" + auth + "})\nend\n")
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                          url_base], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {m.group(1): float(m.group(2)) * _UNITS[m.group(3)]
           for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"], "non2xx": int(non2xx.group(1)) if non2xx else 0}
