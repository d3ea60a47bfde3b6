"""The Helm chart rendered by Helm's own engine (helm-python-sdk embeds Helm's Go SDK), and
what the chart tests share."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from jinji.config import REPO_ROOT

CHART = REPO_ROOT / "charts" / "jinji"
PRODUCTION = REPO_ROOT / "deploy" / "values-production.yaml"
DEV = REPO_ROOT / "deploy" / "values-dev.yaml"
RELEASE = "jinji"
NAMESPACE = "jinji-prod"
# Oldest and newest Kubernetes versions the chart is validated against (Chart.yaml kubeVersion).
KUBE_VERSIONS = ("1.29.0", "1.37.0")
COMPONENTS = ("identity", "tenant-admin", "ingestion", "analytics", "audit-log")
# The web console's Deployment (`jinji serve console`): static files, no database or secret.
CONSOLE = "console"
# Component → CLI service name (`jinji serve <name>`, the metrics label).
SERVICE_NAMES = {
    "identity": "identity",
    "tenant-admin": "tenant_admin",
    "ingestion": "ingestion",
    "analytics": "analytics",
    "audit-log": "audit_log",
}


@dataclass
class Rendered:
    """A rendered release: every manifest, parsed, with the template it came from."""

    files: dict[str, str]
    docs: list[tuple[str, dict[str, Any]]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for _, doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
        return found[0]

    def text(self) -> str:
        return "\n".join(self.files.values())


def load_values(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else yaml.safe_load(path.read_text())


def effective_values(values: dict[str, Any] | None) -> dict[str, Any]:
    """The chart's defaults coalesced with ``values``, as an install would use them."""
    return helm.Chart.load(CHART).merge_values(values)


def render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> Rendered:
    chart = helm.Chart.load(CHART)
    files = chart.render(values, name=RELEASE, namespace=namespace, is_install=True)
    docs: list[tuple[str, dict[str, Any]]] = []
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend((path, doc) for doc in yaml.safe_load_all(text) if doc)
    return Rendered(files, docs)


def promtool() -> str:
    """Debian's promtool (package prometheus; `make test` installs it when missing)."""
    found = shutil.which("promtool")
    assert found, "promtool not found: `make test` installs Debian's prometheus package"
    return found


def rule_groups(release: Rendered) -> dict[str, Any]:
    """The PrometheusRule's spec: a Prometheus rule file as it is."""
    (rule,) = release.of_kind("PrometheusRule")
    spec: dict[str, Any] = rule["spec"]
    return spec
