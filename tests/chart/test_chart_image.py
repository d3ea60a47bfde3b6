"""The image recipe and skaffold agree with the chart and the Makefile (no Docker daemon
here, so what can be checked without building is checked)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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


@pytest.mark.e2e
def test_image_dependencies_run_every_service_and_command(tmp_path: Path) -> None:
    """The Dockerfile's build stage without Docker: the files its COPY lines take, then
    `uv sync --locked --no-dev` into a fresh environment (from uv's cache, offline). The
    entrypoint must then build every service and accept every command the chart runs: no
    development-only package may be needed at run time."""
    app = tmp_path / "app"
    app.mkdir()
    text = DOCKERFILE.read_text()
    for line in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for source in line.split():
            if (REPO_ROOT / source).is_dir():
                shutil.copytree(
                    REPO_ROOT / source,
                    app / source,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                shutil.copy(REPO_ROOT / source, app / source)
    uv = Path(sys.executable).parent / "uv"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "UV_PROJECT_ENVIRONMENT": str(app / ".venv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON_PREFERENCE": "only-system",
        "UV_LINK_MODE": "hardlink",
        **{k: v for k, v in os.environ.items() if k.startswith("UV_CACHE")},
    }
    for step in re.findall(r"^RUN uv sync (.*)$", text, re.MULTILINE):
        synced = subprocess.run(
            [str(uv), "sync", *step.split(), "--offline", "--quiet"],
            cwd=app,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert synced.returncode == 0, synced.stderr
    site = next((app / ".venv" / "lib").glob("python*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"fastapi", "uvicorn", "asyncpg", "boto3"} <= installed
    development = {"pytest", "moto", "mypy", "ruff", "helm_python_sdk", "kubernetes_validate"}
    assert not development & installed

    release = render(load_values(REPO_ROOT / "deploy" / "values-production.yaml"))
    commands = []
    for kind in ("Deployment", "Job", "CronJob"):
        for doc in release.of_kind(kind):
            spec = doc["spec"]
            spec = spec["jobTemplate"]["spec"] if kind == "CronJob" else spec
            commands.append(spec["template"]["spec"]["containers"][0]["args"])
    check = (
        "import json, sys\n"
        "from services.registry import SPECS, create\n"
        "from services.cli import main\n"
        "apps = [create(name) for name in SPECS]\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        main([*args, '--help'])\n"
        "    except SystemExit as exited:\n"
        "        assert exited.code == 0, args\n"
        "print(len(apps), 'services')\n"
    )
    ran = subprocess.run(
        [str(app / ".venv" / "bin" / "python"), "-c", check, json.dumps(commands)],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "JINJI_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.strip().endswith("5 services")
