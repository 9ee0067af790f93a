"""The command line as an operator runs it: real processes, real databases."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from tests.conftest import _free_port


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "healthgrid.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_db_upgrade_then_synth_then_refuse_a_second_region(fresh_databases, tmp_path):
    env = {"HEALTHGRID_DATABASE_URL": fresh_databases.create("cli"), "HEALTHGRID_DATA_DIR": str(tmp_path),
           "COLUMNS": "200"}
    upgraded = _cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    from alembic.script import ScriptDirectory

    from healthgrid.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert f"revision {head}" in upgraded.stdout
    made = _cli("synth", "--size", "tiny", "--seed", "3", env=env)
    assert made.returncode == 0, made.stderr
    assert "reg_organization" in made.stdout and "residents" in made.stdout
    again = _cli("synth", "--size", "tiny", "--seed", "3", env=env)
    assert again.returncode == 2
    assert "SYN-001" in again.stdout
    worker = _cli("worker", "--once", env=env)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    verified = _cli("audit", "verify", env=env)
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout


def test_unknown_size_is_a_clear_error(tmp_path):
    res = _cli("synth", "--size", "galaxy", env={"HEALTHGRID_DATA_DIR": str(tmp_path)})
    assert res.returncode == 2
    assert "SYN-002" in res.stdout and "galaxy" in res.stdout


@pytest.mark.slow
def test_demo_serves_a_browsable_region_on_loopback(tmp_path):
    """`healthgrid demo` as in the README: fresh SQLite in the data dir, a region, served."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "healthgrid.cli", "demo", "--port", str(port)],
                            env={**os.environ, "HEALTHGRID_DATA_DIR": str(tmp_path), "COLUMNS": "200"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = _wait_for(f"http://127.0.0.1:{port}/", proc)
        assert "HealthGrid" in body and "lang=\"zh-CN\"" in body
        english = urllib.request.urlopen(f"http://127.0.0.1:{port}/?lang=en", timeout=5).read().decode()
        assert "lang=\"en\"" in english
        assert (tmp_path / "healthgrid.sqlite3").exists()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert f"http://127.0.0.1:{port}/" in out
    assert "demo-commission_admin" in out and "HealthGrid#2026" in out


def _wait_for(url: str, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"demo exited early: {proc.stdout.read()}")
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            time.sleep(0.2)
    raise AssertionError("demo did not answer within 60 s")
