"""The chart's Prometheus rules as Prometheus itself reads them (Debian's promtool): valid,
and the burn-rate, recovery and purge alerts fire exactly when they should."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from chartlib import promtool

PROMTOOL_TESTS = Path(__file__).parent / "promtool"


def test_promtool_checks_the_rendered_rules(rules_file: Path) -> None:
    checked = subprocess.run(
        [promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


@pytest.mark.parametrize("tests", ["alerts_test.yaml", "backups_test.yaml"])
def test_promtool_unit_tests_of_the_alerts_pass(rules_file: Path, tests: str) -> None:
    test_file = rules_file.parent / tests
    shutil.copy(PROMTOOL_TESTS / tests, test_file)
    tested = subprocess.run(
        [promtool(), "test", "rules", str(test_file)], capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
