"""The chart's workloads run here as Kubernetes would run them, minus Kubernetes: on a new,
empty database the install hooks' Jobs in their hook order (`jinji migrate`, then `jinji
bootstrap`), then each Deployment's own command, the web console's too; every command with
its environment as rendered (secret references resolved from a stand-in Secret store,
in-cluster URLs pointed at loopback ports, KMS as moto's server). Then the probes, the first
operator's sign-in, the `helm test` hook, every metric the rules and dashboards name, and
Debian's Prometheus scraping the five services with the chart's rules loaded."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from chartlib import (
    COMPONENTS,
    CONSOLE,
    DEV,
    NAMESPACE,
    SERVICE_NAMES,
    Rendered,
    effective_values,
    load_values,
    render,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from jinji.config import Settings
from services import bootstrap
from services.console import CONTENT_SECURITY_POLICY
from services.registry import SPECS
from tests.conftest import moto_server

pytestmark = pytest.mark.e2e

# Series the rules and dashboards read that Kubernetes itself provides (the kubelet's
# cAdvisor and kube-state-metrics, both part of kube-prometheus-stack): nothing here can
# export them, so they are named, and the test fails if the chart stops using one.
KUBERNETES_SERIES = {
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "kube_pod_container_resource_limits",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_status_current_replicas",
}
# Made by Prometheus for every target.
PROMETHEUS_SERIES = {"up"}
SLI = 'route!~"/metrics|/[a-z]+/(healthz|readyz)"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pod:
    """One Deployment's container, run as a local process."""

    component: str
    port: int
    manifest: dict[str, Any]
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


SecretStore = dict[tuple[str, str], str]


@dataclass
class HookRun:
    """One hook Job's container, run to completion as a local process."""

    job: str
    returncode: int
    stdout: str
    stderr: str

    def answer(self) -> dict[str, Any]:
        """The one JSON line the command prints."""
        (line,) = self.stdout.splitlines()
        answer: dict[str, Any] = json.loads(line)
        return answer


@dataclass
class Cluster:
    release: Rendered
    pods: dict[str, Pod]
    exporter: str
    tmp: Path
    secrets: SecretStore
    install_hooks: list[HookRun]
    console: Pod
    urls: dict[str, str] = field(default_factory=dict)

    def localize(self, value: str) -> str:
        """An in-cluster URL as this machine reaches it."""
        for internal, local in self.urls.items():
            value = value.replace(internal, local)
        return value


def container_of(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    if manifest["kind"] in ("Deployment", "Job"):
        spec = spec["template"]["spec"]
    (container,) = spec["containers"]
    return container


def env_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The container's secret references: variable → secretKeyRef."""
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def resolve_env(
    container: dict[str, Any], secrets: SecretStore, localize: Any, pod_tmp: Path
) -> dict[str, str]:
    """The container's environment as the kubelet builds it: plain values, and secret
    references looked up (a reference to a missing Secret key fails, as it would there,
    unless it is optional: then the variable is not set)."""
    env = {}
    for entry in container["env"]:
        if "value" in entry:
            value = localize(entry["value"])
            # The pod's /tmp is its own emptyDir.
            env[entry["name"]] = re.sub(r"^/tmp(?=/|$)", str(pod_tmp), value)
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            if ref.get("optional") and (ref["name"], ref["key"]) not in secrets:
                continue
            env[entry["name"]] = secrets[(ref["name"], ref["key"])]
    return env


def hook_jobs(release: Rendered, event: str) -> list[dict[str, Any]]:
    """The Jobs Helm runs for ``event`` (pre-install, pre-upgrade) before the release's
    objects, in Helm's order (hook weight, then name); it waits for each to complete."""
    hooks = [
        job
        for job in release.of_kind("Job")
        if event in job["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(",")
    ]
    return sorted(
        hooks,
        key=lambda j: (
            int(j["metadata"]["annotations"]["helm.sh/hook-weight"]),
            j["metadata"]["name"],
        ),
    )


def run_hooks(release: Rendered, event: str, secrets: SecretStore, tmp: Path) -> list[HookRun]:
    """Each hook Job's command and environment as rendered, in order, until one fails (as
    Helm stops there)."""
    runs = []
    for job in hook_jobs(release, event):
        name = job["metadata"]["name"]
        container = container_of(job)
        pod_tmp = tmp / name
        pod_tmp.mkdir(parents=True, exist_ok=True)
        env = resolve_env(container, secrets, lambda value: value, pod_tmp)
        ran = subprocess.run(
            [str(Path(sys.executable).parent / "jinji"), *container["args"]],
            cwd=pod_tmp,
            env=_process_env(pod_tmp, env),
            capture_output=True,
            text=True,
            timeout=job["spec"]["activeDeadlineSeconds"],
        )
        runs.append(HookRun(name, ran.returncode, ran.stdout, ran.stderr))
        if ran.returncode != 0:
            break
    return runs


def chart_secrets(values: dict[str, Any], database_url: str) -> SecretStore:
    """What the operator puts in the Secrets the chart references (docs/operations.md,
    "Secrets"): the database URL, a random secret per service client, the first operator's
    password."""
    effective = effective_values(values)
    clients = effective["serviceClients"]
    password = effective["bootstrap"]["initialOperatorPassword"]
    database = effective["database"]
    return {
        (database["existingSecret"], database["key"]): database_url,
        **{
            (clients["existingSecret"], key): secrets.token_urlsafe(32)
            for key in clients["keys"].values()
        },
        (password["existingSecret"], password["key"]): f"first sign-in {secrets.token_hex(8)}",
    }


def wait_ok(url: str, pod: Pod, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pod.process.poll() is not None:
            raise AssertionError(f"{pod.component} exited: {pod.log_tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not 200 after {timeout_s}s: {pod.log_tail()}")


@pytest.fixture(scope="module")
def kms() -> Iterator[str]:
    with moto_server() as url:
        yield url


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


@pytest.fixture(scope="module")
async def cluster(
    scratch_database: Any,
    tmp_path_factory: pytest.TempPathFactory,
    tenant_roles: list[str],
    kms: str,
) -> AsyncIterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    values = load_values(DEV) or {}
    values["kms"]["endpointUrl"] = kms
    release = render(values)
    # A new, empty database: the install hooks migrate and bootstrap it, as on a first
    # `helm install`; nothing is set up by the test itself.
    async with scratch_database(migrated=False) as url:
        store = chart_secrets(values, url)
        hooks = run_hooks(release, "pre-install", store, tmp / "install-hooks")
        failed = [h for h in hooks if h.returncode != 0]
        assert not failed, f"{failed[0].job}: {failed[0].stdout}{failed[0].stderr[-3000:]}"
        ports = {c: free_port() for c in COMPONENTS}
        container_port = values.get("containerPort", 8000)
        urls = {
            f"http://jinji-{c}.{NAMESPACE}.svc:80": f"http://127.0.0.1:{p}"
            for c, p in ports.items()
        }
        pods: dict[str, Pod] = {}
        console: Pod | None = None
        try:
            for component in COMPONENTS:
                manifest = release.one("Deployment", f"jinji-{component}")

                def localize(value: str, port: int = ports[component]) -> str:
                    for internal, local in urls.items():
                        value = value.replace(internal, local)
                    # The container's own port (identity's JWKS over loopback).
                    return value.replace(f"127.0.0.1:{container_port}/", f"127.0.0.1:{port}/")

                pods[component] = _start_pod(
                    component, manifest, ports[component], store, localize, tmp
                )
            # The console's build (the image always has it; `make test` builds it first).
            web = Settings.model_fields["web_dir"].default
            assert (web / "index.html").is_file(), "build the console first: make test does"
            manifest = release.one("Deployment", f"jinji-{CONSOLE}")
            console = _start_pod(CONSOLE, manifest, free_port(), store, lambda v: v, tmp)
            for pod in [*pods.values(), console]:
                probe = container_of(pod.manifest)["startupProbe"]["httpGet"]["path"]
                wait_ok(f"{pod.base}{probe}", pod)
            exporter = _start_exporter(url, tmp)
            try:
                yield Cluster(release, pods, exporter.url, tmp, store, hooks, console, urls)
            finally:
                exporter.stop()
        finally:
            for pod in [*pods.values(), *([console] if console else [])]:  # started so far
                _stop(pod.process)
            from jinji.db import Database
            from jinji.tenancy import list_tenant_schemas

            db = Database(url, pool_size=1)
            async with db.engine.connect() as conn:
                tenant_roles.extend(await list_tenant_schemas(conn))
            await db.dispose()


def _start_pod(
    component: str,
    manifest: dict[str, Any],
    port: int,
    secrets: SecretStore,
    localize: Any,
    tmp: Path,
) -> Pod:
    container = container_of(manifest)
    pod_tmp = tmp / component / "tmp"
    pod_tmp.mkdir(parents=True)
    env = resolve_env(container, secrets, localize, pod_tmp)
    args = list(container["args"])
    # Inside a pod 0.0.0.0 is the pod's own address; here, loopback only.
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    process, log = _run_container(args, env, pod_tmp, tmp / f"{component}.log")
    return Pod(component, port, manifest, process, log)


def _process_env(pod_tmp: Path, env: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(pod_tmp),
        "TMPDIR": str(pod_tmp),
        **AWS_ENV,
        **env,
    }


def _run_container(
    args: list[str], env: dict[str, str], pod_tmp: Path, log: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jinji"), *args],  # the image's ENTRYPOINT
            cwd=pod_tmp,
            env=_process_env(pod_tmp, env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Exporter:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        _stop(self.process)


def _start_exporter(database_url: str, tmp: Path) -> Exporter:
    """Debian's postgres_exporter on the test database: the source of pg_* series."""
    port = free_port()
    dsn = make_url(database_url).set(drivername="postgresql", query={"sslmode": "disable"})
    log = (tmp / "postgres-exporter.log").open("wb")
    process = subprocess.Popen(
        [
            "/usr/bin/prometheus-postgres-exporter",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        env={"DATA_SOURCE_NAME": dsn.render_as_string(hide_password=False)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if "pg_up 1" in httpx.get(f"{url}/metrics", timeout=5).text:
                return Exporter(url, process)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    _stop(process)
    raise AssertionError("postgres_exporter did not reach the database")


def traffic(cluster: Cluster) -> None:
    """A few requests of each kind a service sees: probes, a public document, refusals."""
    with httpx.Client(timeout=10) as http:
        for component, pod in cluster.pods.items():
            prefix = SPECS[SERVICE_NAMES[component]].prefix
            for _ in range(3):
                assert http.get(f"{pod.base}{prefix}/openapi.json").status_code == 200
                assert http.get(f"{pod.base}{prefix}/v1/nothing-here").status_code in (401, 404)


def scrape_names(text: str) -> dict[str, set[str]]:
    """Metric names in an exposition → the label names seen on their samples."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        names.setdefault(family.name, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    # Families print HELP/TYPE lines even before their first sample (a labelled counter).
    for declared in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        name, kind = declared
        names.setdefault(name, set())
        if kind == "counter":
            names.setdefault(f"{name.removesuffix('_total')}_total", set())
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names.setdefault(name + suffix, set())
    return names


def grafana_to_promql(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$service", ".*")


def dashboard_queries(release: Rendered) -> list[str]:
    queries = []
    for config_map in release.of_kind("ConfigMap"):
        (body,) = config_map["data"].values()
        dashboard = json.loads(body)
        queries += [grafana_to_promql(t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                # Grafana's label_values(metric, label): the metric must exist too.
                match = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["definition"])
                assert match, variable["definition"]
                queries.append(match.group(1))
    return queries


def rules_of(release: Rendered) -> list[dict[str, Any]]:
    (rule,) = release.of_kind("PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every vector selector of a PromQL expression: (metric name, [(label, op)])."""
    found: list[tuple[str, list[tuple[str, str]]]] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = node.matchers.matchers
            name = node.name or next(m.value for m in matchers if m.name == "__name__")
            found.append((name, [(m.name, str(m.op)) for m in matchers if m.name != "__name__"]))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


@pytest.fixture(scope="module")
def production() -> Rendered:
    # Production values: every rule group and dashboard enabled.
    return render(load_values(Path(__file__).parents[2] / "deploy" / "values-production.yaml"))


def test_probes_and_ports_of_the_manifests_answer(cluster: Cluster) -> None:
    for component, pod in cluster.pods.items():
        container = container_of(pod.manifest)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = container[probe]["httpGet"]["path"]
            answer = httpx.get(f"{pod.base}{path}", timeout=5)
            assert answer.status_code == 200, (component, probe, answer.text)
        ready = httpx.get(f"{pod.base}{container['readinessProbe']['httpGet']['path']}").json()
        assert ready["checks"] == {"database": "ok"}
        assert ready["service"] == SERVICE_NAMES[component]


def test_install_hooks_migrated_then_bootstrapped_and_printed_no_secret(cluster: Cluster) -> None:
    """`jinji migrate`, then `jinji bootstrap`, each ran as its rendered Job on the new
    database (the Deployments above started only afterwards, on what they set up); each
    printed one JSON line, and no secret of the store appears in any output."""
    assert [h.job for h in cluster.install_hooks] == ["jinji-migrate", "jinji-bootstrap"]
    migrated, bootstrapped = (h.answer() for h in cluster.install_hooks)
    assert migrated["ok"] is True
    assert migrated["failed"] == []
    assert bootstrapped == {"ok": True, "service_clients": sorted(bootstrap.CLIENT_SECRET_SETTINGS)}
    for hook in cluster.install_hooks:
        for key, secret in cluster.secrets.items():
            if key[0] != "jinji-database":
                assert secret not in hook.stdout + hook.stderr, (hook.job, key)


def test_first_operator_signs_in_with_the_secrets_password_and_must_change_it(
    cluster: Cluster,
) -> None:
    job = cluster.release.one("Job", "jinji-bootstrap")
    ref = env_refs(container_of(job))[bootstrap.OPERATOR_PASSWORD_SETTING]
    password = cluster.secrets[(ref["name"], ref["key"])]
    login = f"{cluster.pods['identity'].base}/identity/v1/login"
    step = httpx.post(
        login,
        json={"tenant": "platform", "username": bootstrap.OPERATOR_USERNAME, "password": password},
    )
    assert step.status_code == 200, step.text
    assert step.json()["challenge"] == "password_change"
    wrong = httpx.post(
        login,
        json={
            "tenant": "platform",
            "username": bootstrap.OPERATOR_USERNAME,
            "password": password + "x",
        },
    )
    assert wrong.status_code == 401


def test_upgrade_hooks_run_again_without_the_operator_password_secret(cluster: Cluster) -> None:
    """On `helm upgrade` both hooks run again: migrate skips what is at head, bootstrap
    changes nothing. The operator exists, so the first password's Secret, which may be deleted
    after the first sign-in (its reference is optional), is not needed."""
    job = cluster.release.one("Job", "jinji-bootstrap")
    ref = env_refs(container_of(job))[bootstrap.OPERATOR_PASSWORD_SETTING]
    without = {k: v for k, v in cluster.secrets.items() if k != (ref["name"], ref["key"])}
    runs = run_hooks(cluster.release, "pre-upgrade", without, cluster.tmp / "upgrade-hooks")
    assert [(h.job, h.returncode) for h in runs] == [
        ("jinji-migrate", 0),
        ("jinji-bootstrap", 0),
    ], runs[-1].stdout + runs[-1].stderr[-3000:]
    assert all(h.answer()["ok"] is True for h in runs)


def test_console_serves_the_build_as_its_deployment_runs_it(cluster: Cluster) -> None:
    pod = cluster.console
    container = container_of(pod.manifest)
    # It started with no database, secret or KMS setting at all.
    assert not env_refs(container)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        answer = httpx.get(f"{pod.base}{path}", timeout=5)
        assert answer.status_code == 200, (probe, answer.text)
        assert answer.json() == {"status": "ok", "service": "console"}
    # What the Ingress sends it: "/", client routes (page navigations), the built files.
    index = httpx.get(f"{pod.base}/", timeout=5)
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    route = httpx.get(f"{pod.base}/dashboards/workforce", headers={"Accept": "text/html"})
    assert route.text == index.text
    for asset in re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.text):
        assert httpx.get(f"{pod.base}{asset}", timeout=5).status_code == 200, asset
    # /metrics at the root goes to the console through the Ingress: nothing to see there.
    assert httpx.get(f"{pod.base}/metrics", timeout=5).status_code == 404


def test_services_reach_each_other_at_their_in_cluster_addresses(cluster: Cluster) -> None:
    """Service tokens from identity at JINJI_IDENTITY_URL with the secrets from the
    referenced Secret, and the audit log verifying them at JINJI_JWKS_URL: a client
    credentials token issued to tenant-admin's client is accepted by the audit log."""
    tenant_admin = container_of(cluster.pods["tenant-admin"].manifest)
    env = {e["name"]: e.get("value") for e in tenant_admin["env"]}
    identity_url = cluster.localize(env["JINJI_IDENTITY_URL"])
    ref = env_refs(tenant_admin)[bootstrap.CLIENT_SECRET_SETTINGS["tenant-admin"]]
    secret = cluster.secrets[(ref["name"], ref["key"])]
    issued = httpx.post(
        f"{identity_url}/oauth2/token",
        data={"grant_type": "client_credentials", "audience": "jinji-audit-log"},
        auth=("tenant-admin", secret),
    )
    assert issued.status_code == 200, issued.text
    audit = cluster.localize(env["JINJI_AUDIT_URL"])
    token = issued.json()["access_token"]
    # A service token without the read scope: authenticated, then refused (403, not 401).
    answer = httpx.get(f"{audit}/audit/v1/events", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403, answer.text


def _readyz_command(release: Rendered) -> tuple[list[str], dict[str, str]]:
    (pod,) = release.of_kind("Pod")
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    return container["command"], env


def test_helm_test_hook_passes_only_when_every_service_is_ready(cluster: Cluster) -> None:
    command, env = _readyz_command(cluster.release)
    assert command[0] == "python"
    urls = cluster.localize(env["READYZ_URLS"]).split()
    assert len(urls) == len(COMPONENTS)
    run_env = {"PATH": os.environ["PATH"], "READYZ_URLS": " ".join(urls), "READYZ_ATTEMPTS": "1"}
    script = [sys.executable, *command[1:]]
    passed = subprocess.run(script, env=run_env, capture_output=True, text=True, timeout=60)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count("ready ") == len(COMPONENTS)

    # One service unreachable: the hook fails and names it.
    down = f"http://127.0.0.1:{free_port()}/audit/readyz"
    run_env["READYZ_URLS"] = " ".join([*urls[:-1], down])
    failed = subprocess.run(script, env=run_env, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    assert f"NOT READY {down}" in failed.stdout


def test_every_metric_in_rules_and_dashboards_is_really_exported(
    cluster: Cluster, production: Rendered
) -> None:
    traffic(cluster)
    scraped: dict[str, set[str]] = {}
    for pod in cluster.pods.values():
        for name, labels in scrape_names(httpx.get(f"{pod.base}/metrics").text).items():
            scraped.setdefault(name, set()).update(labels)
    exporter = scrape_names(httpx.get(f"{cluster.exporter}/metrics").text)
    recorded = {r["record"] for r in rules_of(production) if "record" in r}
    expressions = [r["expr"] for r in rules_of(production)] + dashboard_queries(production)
    used: dict[str, set[str]] = {}
    for expr in expressions:
        for name, matchers in selectors(expr):
            used.setdefault(name, set()).update(label for label, _ in matchers)

    unknown = (
        set(used) - set(scraped) - set(exporter) - recorded - KUBERNETES_SERIES - PROMETHEUS_SERIES
    )
    assert unknown == set(), f"not exported by anything that runs: {sorted(unknown)}"
    assert set(used) >= KUBERNETES_SERIES, "a Kubernetes series is listed but no longer used"
    assert {"pg_database_size_bytes"} == {n for n in used if n.startswith("pg_")}
    # The services' own series: every label a query filters or groups on is one they carry.
    for name, labels in used.items():
        if name.startswith("jinji_") and scraped.get(name):
            missing = labels - scraped[name] - {"namespace"}
            assert missing == set(), f"{name} has no label {missing}"
    # The Grafana service variable and the SLI selector read the label the services set.
    assert {"service", "route", "status", "method"} <= scraped["jinji_http_requests_total"]


def _prometheus(cluster: Cluster, rules: Path) -> Iterator[str]:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                # As the chart's ServiceMonitors label targets: service="<metrics label>".
                "job_name": "jinji",
                "honor_labels": True,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{pod.port}"],
                        "labels": {"service": SERVICE_NAMES[component]},
                    }
                    for component, pod in cluster.pods.items()
                ],
            },
            {
                "job_name": "postgres",
                "static_configs": [{"targets": [cluster.exporter.removeprefix("http://")]}],
            },
        ],
    }
    config_file = cluster.tmp / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        ["/usr/bin/promtool", "check", "config", str(config_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = (cluster.tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            "/usr/bin/prometheus",
            f"--config.file={config_file}",
            f"--storage.tsdb.path={cluster.tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def _until(check: Any, timeout_s: float = 45, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what}: still {last!r} after {timeout_s}s")


def test_prometheus_scrapes_every_service_and_evaluates_the_charts_rules(
    cluster: Cluster, production: Rendered
) -> None:
    rules = cluster.tmp / "jinji-rules.yaml"
    (rule,) = production.of_kind("PrometheusRule")
    rules.write_text(yaml.safe_dump(rule["spec"]))
    prometheus_gen = _prometheus(cluster, rules)
    prometheus = next(prometheus_gen)
    try:
        with httpx.Client(base_url=prometheus, timeout=10) as api:

            def targets_up() -> bool:
                active = api.get("/api/v1/targets").json()["data"]["activeTargets"]
                return len(active) == len(COMPONENTS) + 1 and all(
                    t["health"] == "up" for t in active
                )

            # Until its storage is open, Prometheus answers 503 in plain text.
            _until(lambda: api.get("/-/ready").status_code == 200, what="prometheus ready")
            _until(targets_up, what="all targets up")
            traffic(cluster)

            def query(expr: str) -> list[dict[str, Any]]:
                answer = api.get("/api/v1/query", params={"query": expr}).json()
                assert answer["status"] == "success", (expr, answer)
                result: list[dict[str, Any]] = answer["data"]["result"]
                return result

            # RED from the raw series, then from the chart's own recording rule.
            raw = f"sum by (service) (rate(jinji_http_requests_total{{{SLI}}}[30s])) > 0"
            expected = set(SERVICE_NAMES.values())
            _until(
                lambda: {r["metric"]["service"] for r in query(raw)} == expected,
                what="request rate for every service",
            )
            _until(
                lambda: (
                    {r["metric"]["service"] for r in query("jinji:http_requests:rate5m > 0")}
                    == expected
                ),
                what="recording rule jinji:http_requests:rate5m",
            )
            latency = query("jinji:http_request_duration_seconds:p99_5m")
            assert {r["metric"]["service"] for r in latency} == expected
            errors = query("jinji:http_request_error_ratio:rate5m")
            assert {r["metric"]["service"] for r in errors} == expected
            assert all(float(r["value"][1]) == 0 for r in errors)  # nothing failed
            assert {r["metric"]["datname"] for r in query("pg_database_size_bytes")}

            # Every dashboard query is valid PromQL to the real engine.
            for expr in dashboard_queries(production):
                query(expr)

            # Every rule group loaded, and every rule evaluates without error on real series
            # (e.g. vector matching in the pool-saturation ratio).
            def evaluated() -> list[dict[str, Any]]:
                groups = api.get("/api/v1/rules").json()["data"]["groups"]
                loaded = [r for g in groups for r in g["rules"]]
                if any(r.get("lastEvaluation", "").startswith("0001") for r in loaded):
                    return []
                return loaded

            loaded = _until(evaluated, what="rules evaluated")
            assert len(loaded) == len(rules_of(production))
            assert [r["name"] for r in loaded if r["health"] != "ok"] == []
            # A healthy stack: no alert is firing, except the capacity ones that need
            # Kubernetes' series (absent here: they simply have no data).
            firing = [
                a["labels"]["alertname"]
                for a in api.get("/api/v1/alerts").json()["data"]["alerts"]
                if a["state"] == "firing"
            ]
            assert firing == []
    finally:
        prometheus_gen.close()
