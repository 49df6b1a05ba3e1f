"""The OpenAPI contract from outside: the Schemathesis command line, every
check and every phase (examples, coverage, fuzzing, stateful through the
document's links), against a real server on a real port holding the demo
story, each operation called with its caller's key. The run ends with no
failure, or this test fails with Schemathesis's report.

This is the short form (few examples per operation); docs/api.md gives the
long one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from api.auth import Role
from api.catalog import OPERATIONS
from ledger.app import LedgerApp
from tests.e2e.support import live_server
from tools.scenario import run_scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = 15
# Fixed, so a failure found in CI is found again by the same command.
SEED = 20261206
RUN_SECONDS_MAX = 420


def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "the dev extra installs the Schemathesis command line"
    database_url = f"sqlite:///{tmp_path / 'contract.db'}"
    ledger = LedgerApp(database_url)
    try:
        run_scenario(ledger)
    finally:
        ledger.close()
    with live_server(
        database_url,
        tmp_path,
        # Streams of the change feed end soon; an unauthenticated caller is
        # refused 401 every time, not rate limited after the 30th try.
        feed_follow_seconds=1.0,
        failed_auth_limit={"per_second": 10_000, "burst": 100_000},
    ) as (url, keys):
        env = {**os.environ, **{f"TL_{role.upper()}_KEY": keys[role] for role in Role}}
        # The hooks are imported from the repository; Schemathesis's own cache
        # goes to the test's folder.
        env["PYTHONPATH"] = str(ROOT)
        run = subprocess.run(
            [
                st,
                "--config-file",
                str(ROOT / "tests" / "schemathesis.toml"),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                # Replaced by tests/openapi_hooks.py's check (the config says why).
                "--exclude-checks",
                "positive_data_acceptance",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--seed",
                str(SEED),
                "--no-color",
                "--workers",
                "1",
                # Nothing kept between runs: the same seed finds the same cases.
                "--generation-database",
                "none",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_SECONDS_MAX,
            check=False,
        )
    report = run.stdout + run.stderr
    if run.returncode != 0:
        pytest.fail(f"Schemathesis found failures (exit {run.returncode}):\n{report[-20_000:]}")
    # Every operation was called with a key its role may use, in every phase.
    assert "Authentication failed" not in report, report[-5_000:]
    operations = len(OPERATIONS)
    assert f"Selected: {operations}/{operations}" in report
    assert f"Tested: {operations}" in report
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, phase
