"""Fixtures of the chart tests: the chart rendered for the default values and each example
values file in deploy/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import DEV, PRODUCTION, Rendered, load_values, render, rule_groups


@pytest.fixture(scope="session")
def default_release() -> Rendered:
    return render()


@pytest.fixture(scope="session")
def production_values() -> dict[str, Any]:
    values = load_values(PRODUCTION)
    assert values is not None
    return values


@pytest.fixture(scope="session")
def production_release(production_values: dict[str, Any]) -> Rendered:
    return render(production_values)


@pytest.fixture(params=["default", "production", "dev"], scope="session")
def any_release(request: pytest.FixtureRequest) -> Rendered:
    path = {"default": None, "production": PRODUCTION, "dev": DEV}[request.param]
    return render(load_values(path))


@pytest.fixture
def rules_file(production_release: Rendered, tmp_path: Path) -> Path:
    path = tmp_path / "jinji-rules.yaml"
    path.write_text(yaml.safe_dump(rule_groups(production_release), sort_keys=False))
    return path
