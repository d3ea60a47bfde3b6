"""The image recipe and skaffold agree with the chart and the Makefile (no Docker daemon
here, so what can be checked without building is checked)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from chartlib import CHART, load_values, render

from jinji.config import REPO_ROOT

DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"


def dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE))


def test_image_runs_as_the_uid_the_chart_requires() -> None:
    text = DOCKERFILE.read_text()
    uid = int(dockerfile_args()["JINJI_UID"])
    assert uid >= 10000
    assert re.findall(r"^USER (\S+)$", text, re.MULTILINE) == ["${JINJI_UID}:${JINJI_UID}"]
    values = load_values(CHART / "values.yaml")
    assert values is not None
    assert values["podSecurityContext"]["runAsUser"] == uid
    assert values["podSecurityContext"]["runAsGroup"] == uid
    assert values["containerSecurityContext"]["runAsUser"] == uid
    assert re.search(r'^ENTRYPOINT \["jinji"\]$', text, re.MULTILINE)


def test_image_installs_the_locked_production_dependencies_with_the_projects_uv() -> None:
    text = DOCKERFILE.read_text()
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv is not None
    assert dockerfile_args()["UV_VERSION"] == makefile_uv.group(1)
    syncs = re.findall(r"^RUN uv sync (.*)$", text, re.MULTILINE)
    assert syncs
    assert all("--locked" in s and "--no-dev" in s for s in syncs)
    # The Python the project is locked for.
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    requires = re.search(r'requires-python = ">=(\d+\.\d+)"', pyproject)
    assert requires is not None
    assert dockerfile_args()["PYTHON_IMAGE"].startswith(f"python:{requires.group(1)}-slim")


def test_build_context_leaves_out_local_data_and_environments() -> None:
    ignore = (REPO_ROOT / ".dockerignore").read_text().split()
    # Everything is excluded, then only what the image needs is let back in.
    assert ignore[ignore.index("*")] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "libs", "services", "migrations"}
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE))
    sources = {s for line in copied for s in line.split()}
    assert sources <= allowed


def test_skaffold_builds_this_dockerfile_and_deploys_the_chart_with_values_that_render() -> None:
    config = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())
    assert re.fullmatch(r"skaffold/v4beta\d+", config["apiVersion"])
    profiles = {p["name"]: p for p in config["profiles"]}
    assert set(profiles) == {"dev", "prod"}
    deploys = [config["deploy"], profiles["prod"]["deploy"]]
    builds = [config["build"], profiles["prod"]["build"]]
    for build in builds:
        (artifact,) = build["artifacts"]
        dockerfile = Path(REPO_ROOT / artifact["context"] / artifact["docker"]["dockerfile"])
        assert dockerfile == DOCKERFILE
    assert profiles["prod"]["build"]["local"]["push"] is True
    for deploy in deploys:
        (release,) = deploy["helm"]["releases"]
        assert REPO_ROOT / release["chartPath"] == CHART
        image = release["setValueTemplates"]
        assert image["image.repository"] == "{{.IMAGE_REPO_jinji}}"
        values: dict[str, object] = {}
        for values_file in release["valuesFiles"]:
            values.update(load_values(REPO_ROOT / values_file) or {})
        values["image"] = {"repository": "registry.example/jinji", "tag": "abc123"}
        rendered = render(values)
        assert rendered.of_kind("Deployment")
    # `skaffold dev` forwards the gateway (the ingress controller) to localhost.
    (forward,) = config["portForward"]
    assert (forward["resourceType"], forward["port"], forward["localPort"]) == ("service", 80, 8080)
    dev_values = load_values(REPO_ROOT / "deploy" / "values-dev.yaml")
    assert dev_values is not None
    assert dev_values["config"]["issuer"] == "http://localhost:8080/identity"
