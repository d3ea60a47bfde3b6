"""The image recipe and skaffold agree with the chart and the Makefile (no Docker daemon
here, so what can be checked without building is checked)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from chartlib import CHART, load_values, render

from jinji.config import REPO_ROOT, Settings

DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
# The image's /app is the repository root (the project is installed editable there).
IMAGE_ROOT = Path("/app")


def dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE))


@dataclass
class Stage:
    name: str
    workdir: str = "/"
    copies: list[tuple[list[str], str]] = field(default_factory=list)  # (sources, destination)
    copies_from: list[tuple[str, str, str]] = field(default_factory=list)  # (stage, src, dest)
    runs: list[str] = field(default_factory=list)


def dockerfile_stages() -> dict[str, Stage]:
    """The Dockerfile's stages in order, each with its WORKDIR, COPY and RUN lines."""
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in DOCKERFILE.read_text().splitlines():
        if match := re.match(r"^FROM \S+ AS (\S+)$", line):
            stage = stages[match.group(1)] = Stage(match.group(1))
        elif stage is None or line.startswith("#"):
            continue
        elif match := re.match(r"^WORKDIR (\S+)$", line):
            stage.workdir = match.group(1)
        elif match := re.match(r"^COPY --from=(\S+) (?:--chown=\S+ )?(\S+) (\S+)$", line):
            stage.copies_from.append((match.group(1), match.group(2), match.group(3)))
        elif match := re.match(r"^COPY (?!--)(.+) (\S+)$", line):
            stage.copies.append((match.group(1).split(), match.group(2)))
        elif match := re.match(r"^RUN (.+)$", line):
            stage.runs.append(match.group(1))
    return stages


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker matches it (moby/patternmatcher): Go's
    filepath.Match, plus ``**`` for any number of directories."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        cleaned = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((include, _dockerignore_regex(cleaned)))
    return rules


def in_build_context(path: str) -> bool:
    """Whether Docker sends ``path`` (relative to the context) to the build: the last
    pattern matching it or one of its parent directories decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    sent = True
    for include, regex in dockerignore():
        if any(regex.fullmatch(c) for c in candidates):
            sent = include
    return sent


def tracked_files(source: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", source], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed, f"COPY {source}: no such file in the repository"
    return listed


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


def test_build_context_is_what_the_stages_copy_and_nothing_else() -> None:
    """Every file a COPY line takes (the Python stage's and the console's Node stage's) passes
    .dockerignore, as Docker matches it; no other tracked file does; and local environments,
    data, installed packages and builds never do."""
    copied: set[str] = set()
    for stage in dockerfile_stages().values():
        for sources, _ in stage.copies:
            for source in sources:
                copied.update(tracked_files(source))
    assert {"uv.lock", "web/package-lock.json", "web/index.html"} <= copied
    refused = sorted(f for f in copied if not in_build_context(f))
    assert refused == [], f"COPY needs these, .dockerignore leaves them out: {refused}"
    everything = tracked_files(".")
    extra = sorted(f for f in everything if in_build_context(f) and f not in copied)
    assert extra == [], f"sent to the build but never copied: {extra}"
    for local in (
        "web/node_modules/vite/package.json",
        "web/node_modules/.package-lock.json",
        "web/dist/index.html",
        "web/dist/assets/index.js",
        "web/src/node_modules/x.js",
        ".venv/bin/python",
        ".data/keys/platform.key",
        ".data/initial-operator.json",
        ".git/HEAD",
        "libs/jinji/__pycache__/config.cpython-311.pyc",
        "tests/conftest.py",
        "test-artifacts/console/sign-in.png",
    ):
        assert not in_build_context(local), local


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _satisfies(version: tuple[int, ...], npm_range: str) -> bool:
    """npm's engines ranges as the lock uses them: ``^X[.Y[.Z]]`` and ``>=X[.Y[.Z]]``
    alternatives joined by ``||``."""
    for alternative in npm_range.split("||"):
        match = re.fullmatch(r"\s*(\^|>=)\s*([0-9.]+)\s*", alternative)
        assert match, npm_range
        low = _version(match.group(2))
        padded = low + (0,) * (3 - len(low))
        if match.group(1) == ">=" and version >= padded:
            return True
        if match.group(1) == "^" and version >= padded and version[0] == low[0]:
            return True
    return False


def test_console_is_built_by_an_exact_node_20_from_the_lock_into_the_web_dir() -> None:
    node_image = dockerfile_args()["NODE_IMAGE"]
    match = re.fullmatch(r"node:(20\.\d+\.\d+)-bookworm-slim(@sha256:[0-9a-f]{64})?", node_image)
    assert match, f"{node_image}: not an exact Node 20 slim image"
    # The image's Debian matches the Python image's.
    assert dockerfile_args()["PYTHON_IMAGE"].endswith("-bookworm")
    node = _version(match.group(1))
    lock = json.loads((REPO_ROOT / "web" / "package-lock.json").read_text())
    for package, entry in lock["packages"].items():
        wanted = entry.get("engines", {}).get("node")
        if wanted:
            assert _satisfies(node, wanted), f"{package} wants node {wanted}"

    stages = dockerfile_stages()
    web = stages["web"]
    assert web.runs == ["npm ci", "npm run build"]  # the lock exactly, never npm install
    # The runtime stage puts the build where the console looks by default (JINJI_WEB_DIR).
    runtime = stages["runtime"]
    web_dir = Settings.model_fields["web_dir"].default
    assert ("web", f"{web.workdir}/dist", str(IMAGE_ROOT / web_dir.relative_to(REPO_ROOT))) in (
        runtime.copies_from
    )
    assert ("build", "/app", str(IMAGE_ROOT)) in runtime.copies_from
    assert stages["build"].workdir == str(IMAGE_ROOT)


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
    assert forward["resourceName"] == "ingress-nginx-controller"
    dev_values = load_values(REPO_ROOT / "deploy" / "values-dev.yaml")
    assert dev_values is not None
    assert dev_values["config"]["issuer"] == "http://localhost:8080/identity"
    # Through that forward the console and the APIs are one origin (the refresh cookie's
    # condition): the dev Ingress routes "/" to the console and the prefixes to the services
    # on the host the issuer names.
    (ingress,) = render(dev_values).of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    issuer = urlsplit(dev_values["config"]["issuer"])
    assert (issuer.hostname, issuer.port) == (rule["host"], forward["localPort"])
    backends = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert backends["/"] == "jinji-console"
    assert backends["/identity"] == "jinji-identity"


@pytest.mark.e2e
def test_image_dependencies_run_every_service_and_command(tmp_path: Path) -> None:
    """The Dockerfile's build stage without Docker: the files its COPY lines take, then
    `uv sync --locked --no-dev` into a fresh environment (from uv's cache, offline). The
    entrypoint must then build every service and accept every command the chart runs: no
    development-only package may be needed at run time."""
    app = tmp_path / "app"
    app.mkdir()
    build = dockerfile_stages()["build"]
    for sources, _ in build.copies:
        for source in sources:
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
    for step in [r.removeprefix("uv sync ") for r in build.runs if r.startswith("uv sync ")]:
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


@pytest.mark.e2e
def test_console_stage_builds_from_the_files_it_copies(tmp_path: Path) -> None:
    """The Dockerfile's Node stage without Docker: the files its COPY lines take (as the
    build context holds them), its ENV, then its RUN lines (`npm ci` from npm's cache,
    offline). The build must come out where the runtime stage copies it from."""
    npm = shutil.which("npm")
    assert npm, "npm not found: `make test` needs Node.js 20+ (README, Quick start)"
    stage = dockerfile_stages()["web"]
    workdir = tmp_path / stage.workdir.lstrip("/")
    workdir.mkdir(parents=True)
    for sources, destination in stage.copies:
        target = workdir / destination
        for source in sources:
            for file in tracked_files(source):
                if not in_build_context(file):
                    continue
                relative = Path(file).relative_to(source) if file != source else Path(file).name
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO_ROOT / file, target / relative)
    stage_text = DOCKERFILE.read_text().split(" AS web\n", 1)[1].split("\nFROM ", 1)[0]
    stage_env = dict(re.findall(r"(NPM_CONFIG_\w+)=(\S+)", stage_text))
    assert stage_env
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        **stage_env,
        "NPM_CONFIG_OFFLINE": "true",
        "NPM_CONFIG_LOGLEVEL": "error",
    }
    for command in stage.runs:
        ran = subprocess.run(
            ["sh", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
        )
        assert ran.returncode == 0, f"{command}: {ran.stdout[-2000:]}{ran.stderr[-2000:]}"
    (runtime_source,) = [
        src for name, src, _ in dockerfile_stages()["runtime"].copies_from if name == "web"
    ]
    dist = tmp_path / runtime_source.lstrip("/")
    index = (dist / "index.html").read_text()
    assets = re.findall(r'(?:src|href)="/(assets/[^"]+)"', index)
    assert assets, index
    for asset in assets:
        assert (dist / asset).is_file(), asset
