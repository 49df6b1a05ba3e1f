"""CI runs `trustledger bench --quick` only to prove it works; its figures are not asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL
from tools.cli import main


@pytest.mark.postgres
def test_the_quick_benchmark_runs_and_writes_its_results(
    postgres_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--quick", "--postgres", POSTGRES_URL, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["workload"]["name"] == "quick"
    for figure in ("appends", "import", "rebuild", "http", "memory"):
        assert figure in results
    assert [row["clients"] for row in results["appends"]] == [1, 32]
    table = (tmp_path / "results.md").read_text()
    assert "| appends, 32 client(s)" in table
    assert "rebuild of" in table
    assert [run["clients"] for run in results["http"]["runs"]] == [1, 8]
    assert "| HTTP batch_1000 penalty, 8 client(s)" in table
    capsys.readouterr()
