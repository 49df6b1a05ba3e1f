"""The files in deploy/ as an operator uses them: the PostgreSQL settings of a
primary + standby pair, the environment file, the Procfile's processes and
the systemd units' commands."""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from api.auth import KeyRing, Role
from ledger.tree_head import write_new_key
from tests.chaos.support import SERVER_START_SECONDS_MAX, OwnCluster, free_port, trade_body
from tools.cli import parse

pytestmark = pytest.mark.postgres

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
T = "2026-03-02T09:00:00Z"


def settings_of(path: Path) -> list[str]:
    """A PostgreSQL settings file's ``name = value`` lines, as ``-c`` takes them."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line.replace(" = ", "=", 1) for line in lines if line]


def environment_of(path: Path, primary: OwnCluster, standby: OwnCluster) -> dict[str, str]:
    """The example environment file, pointed at the test's own pair."""
    text = path.read_text()
    text = text.replace("db1:5432", f"127.0.0.1:{primary.port}")
    text = text.replace("db2:5432", f"127.0.0.1:{standby.port}")
    text = text.replace("trustledger@", "postgres@").replace("/trustledger?", "/postgres?")
    lines = (line for line in text.splitlines() if line and not line.startswith("#"))
    return dict(line.split("=", 1) for line in lines)


def test_the_deployment_files_run_a_primary_standby_pair_with_workers_and_a_follower(
    tmp_path: Path,
) -> None:
    primary_settings = settings_of(DEPLOY / "postgresql" / "primary.conf")
    standby_settings = settings_of(DEPLOY / "postgresql" / "standby.conf")
    assert "synchronous_commit=on" in primary_settings
    with (
        OwnCluster(*primary_settings) as primary,
        OwnCluster(*standby_settings, standby_of=primary) as standby,
    ):
        env = environment_of(DEPLOY / "trustledger.env.example", primary, standby)
        ring = KeyRing([])
        keys = {role: ring.add(role) for role in Role}
        ring.save(tmp_path / "keys.json")
        write_new_key(tmp_path / "head.pem")
        env["TRUSTLEDGER_KEYS_FILE"] = str(tmp_path / "keys.json")
        env["TRUSTLEDGER_TREE_HEAD_KEY"] = str(tmp_path / "head.pem")
        port = free_port()
        env = {**os.environ, **env, "PORT": str(port), "WEB_CONCURRENCY": "2"}
        processes = [_start(command, env, tmp_path) for command in _procfile().values()]
        try:
            _wait_healthy(port)
            base = f"http://127.0.0.1:{port}"
            service = {"Authorization": f"Bearer {keys[Role.SERVICE]}"}
            for member in ("b1", "s1"):
                body = {"member_id": member, "occurred_at": T}
                answer = httpx.post(
                    f"{base}/v1/members", json=body, headers={**service, "Idempotency-Key": member}
                )
                assert answer.status_code == 201, answer.text
            answer = httpx.post(
                f"{base}/v1/trades",
                json=trade_body("T1", T, buyer="b1", seller="s1"),
                headers={**service, "Idempotency-Key": "T1"},
            )
            assert answer.status_code == 201, answer.text
            last = answer.json()["positions"][-1]
            credit = httpx.get(  # folded by the follower, read from the standby
                f"{base}/v1/members/s1/credit",
                params={"min_position": last},
                headers={"Authorization": f"Bearer {keys[Role.READER]}"},
                timeout=30,
            )
            assert credit.status_code == 200, credit.text
            assert httpx.get(f"{base}/readyz").json()["replica"] is not None
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def test_the_systemd_units_run_commands_the_cli_takes() -> None:
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read(unit)
        service = parsed["Service"]
        assert service["EnvironmentFile"].endswith("trustledger.env")
        program, *arguments = shlex.split(service["ExecStart"])
        assert program.endswith("/trustledger")
        parse(arguments)  # raises on anything the CLI refuses


def _procfile() -> dict[str, str]:
    lines = (DEPLOY / "Procfile").read_text().splitlines()
    entries = (line.split(":", 1) for line in lines if line and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in entries}


def _start(command: str, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    """A Procfile line as a process manager runs it, with this checkout's CLI."""
    program, *arguments = shlex.split(os.path.expandvars(_expand(command, env)))
    assert program == "trustledger"
    with (workdir / f"{arguments[0]}.log").open("ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "tools.cli", *arguments],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=log,
        )


def _expand(command: str, env: dict[str, str]) -> str:
    """``${NAME:-default}`` as a shell expands it, from ``env``."""
    result = command
    while "${" in result:
        start = result.index("${")
        end = result.index("}", start)
        name, _, default = result[start + 2 : end].partition(":-")
        result = result[:start] + env.get(name, default) + result[end + 1 :]
    return result


def _wait_healthy(port: int) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS_MAX
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the API workers did not start")
