"""The chart as Helm renders it: valid Kubernetes objects, hardened pods (CLD9.5.2), the
documented network flows only (13.1.3, CLD13.1.4), secrets by reference only, Japan only
(6.1.3), and wiring that matches what the code reads."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any
from urllib.parse import urlsplit

import helm_python as helm
import kubernetes_validate
import pytest
from chartlib import (
    CHART,
    COMPONENTS,
    CONSOLE,
    DEV,
    KUBE_VERSIONS,
    NAMESPACE,
    PRODUCTION,
    RELEASE,
    SERVICE_NAMES,
    Rendered,
    effective_values,
    load_values,
    render,
)

from jinji.config import REPO_ROOT, Settings
from services import bootstrap
from services.analytics.settings import AnalyticsSettings
from services.audit_log.settings import AuditLogSettings
from services.backup.settings import BackupSettings
from services.console import HEALTH_PATH
from services.identity.settings import IdentitySettings
from services.ingestion.settings import IngestionSettings
from services.registry import SPECS
from services.tenant_admin.settings import TenantAdminSettings

CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
SETTINGS: dict[str, type[Settings]] = {
    "identity": IdentitySettings,
    "tenant-admin": TenantAdminSettings,
    "ingestion": IngestionSettings,
    "analytics": AnalyticsSettings,
    "audit-log": AuditLogSettings,
    "migrate": Settings,
    # Bootstrap reads the shared settings and identity's (password hashing); the secrets it
    # is given are checked against services/bootstrap.py separately.
    "bootstrap": IdentitySettings,
    "purge": TenantAdminSettings,
    "backup": BackupSettings,
    "backup-verify": BackupSettings,
    CONSOLE: Settings,
}
# What `jinji bootstrap` reads from its environment besides settings (each service client's
# secret, the first operator's password), as services/bootstrap.py names them.
BOOTSTRAP_SECRETS = {
    *bootstrap.CLIENT_SECRET_SETTINGS.values(),
    bootstrap.OPERATOR_PASSWORD_SETTING,
}


def name(component: str) -> str:
    return f"{RELEASE}-{component}"


def pod_specs(release: Rendered) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(kind/name, pod spec, pod labels) of every workload: Deployments, Jobs, CronJobs and
    the helm test Pod."""
    found = []
    for _, doc in release.docs:
        kind, meta = doc["kind"], doc["metadata"]
        if kind in ("Deployment", "Job"):
            template = doc["spec"]["template"]
        elif kind == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]
        elif kind == "Pod":
            template = doc
        else:
            continue
        found.append((f"{kind}/{meta['name']}", template["spec"], template["metadata"]["labels"]))
    return found


def component_of(labels: dict[str, str]) -> str:
    return labels["app.kubernetes.io/component"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # the chart uses matchLabels only
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("values_file", [None, PRODUCTION, DEV], ids=["default", "prod", "dev"])
def test_helm_lint_is_clean(values_file: Any) -> None:
    for version in KUBE_VERSIONS:
        report = helm.lint(CHART, load_values(values_file), strict=True, kube_version=f"v{version}")
        assert report["errors"] == []
        # Severity 1 is informational ("icon is recommended"); warnings and errors fail.
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_manifest_is_a_valid_kubernetes_object(any_release: Rendered) -> None:
    kinds = set()
    for path, doc in any_release.docs:
        kinds.add(doc["kind"])
        if doc["kind"] in CRD_KINDS:
            # Prometheus Operator CRDs: no schema here; promtool checks the rules' content.
            assert doc["apiVersion"] == "monitoring.coreos.com/v1", path
            continue
        for version in KUBE_VERSIONS:
            # strict: unknown fields are errors too (a typo would be silently dropped).
            kubernetes_validate.validate(doc, version, strict=True)
    assert {"Deployment", "Service", "ServiceAccount", "NetworkPolicy", "Job", "CronJob"} <= kinds


def test_production_renders_every_kind_the_issue_lists(production_release: Rendered) -> None:
    counts: dict[str, int] = {}
    for _, doc in production_release.docs:
        counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
    # The console has a Deployment, Service and PDB too, but no HPA and no ServiceMonitor.
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        assert counts[kind] == len(COMPONENTS) + 1, kind
    for kind in ("HorizontalPodAutoscaler", "ServiceMonitor"):
        assert counts[kind] == len(COMPONENTS), kind
    assert counts["Ingress"] == 1
    assert counts["PrometheusRule"] == 1
    assert counts["ConfigMap"] == 4  # the dashboards
    # migrate, bootstrap; purge, backup, backup-verify; the helm test pod.
    assert (counts["Job"], counts["CronJob"], counts["Pod"]) == (2, 3, 1)
    # + the console's, the bootstrap hook's and the backup jobs' own.
    assert counts["ServiceAccount"] == len(COMPONENTS) + 3


def test_every_pod_is_hardened_and_bounded(any_release: Rendered) -> None:
    specs = pod_specs(any_release)
    workloads = {component_of(labels) for _, _, labels in specs}
    always = {*COMPONENTS, CONSOLE, "migrate", "bootstrap", "purge", "helm-test"}
    assert always <= workloads <= always | {"backup", "backup-verify"}
    for where, spec, _ in specs:
        assert spec["automountServiceAccountToken"] is False, where
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, where
        assert pod_sc["runAsUser"] > 0, where
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["privileged"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, where
            # The only writable path is /tmp: a size-limited emptyDir.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts == {"/tmp": "tmp"}, where  # noqa: S108 (the pod's own emptyDir)
            assert volumes["tmp"]["emptyDir"]["sizeLimit"], where


def test_each_service_runs_its_own_command_with_probes_on_its_prefix(
    any_release: Rendered,
) -> None:
    for component in COMPONENTS:
        deployment = any_release.one("Deployment", name(component))
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        service = SERVICE_NAMES[component]
        prefix = SPECS[service].prefix
        port = container["ports"][0]
        assert port["name"] == "http"
        assert container["args"] == [
            "serve",
            service,
            "--host",
            "0.0.0.0",  # noqa: S104 (inside the pod, behind its NetworkPolicy)
            "--port",
            str(port["containerPort"]),
        ]
        probes = {
            probe: (container[probe]["httpGet"]["path"], container[probe]["httpGet"]["port"])
            for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert probes == {
            "startupProbe": (f"{prefix}/healthz", "http"),
            "livenessProbe": (f"{prefix}/healthz", "http"),
            "readinessProbe": (f"{prefix}/readyz", "http"),
        }
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name(component)


def test_console_runs_alone_with_probes_on_its_health_path(any_release: Rendered) -> None:
    deployment = any_release.one("Deployment", name(CONSOLE))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = container["ports"][0]
    assert port["name"] == "http"
    assert container["args"] == [
        "serve",
        "console",
        "--host",
        "0.0.0.0",  # noqa: S104 (inside the pod, behind its NetworkPolicy)
        "--port",
        str(port["containerPort"]),
    ]
    probes = {
        probe: (container[probe]["httpGet"]["path"], container[probe]["httpGet"]["port"])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert set(probes.values()) == {(HEALTH_PATH, "http")}
    # Static files: no database, secret, KMS setting or credentials, no in-cluster URL.
    assert set(env_of(container)) <= {"JINJI_LOG_LEVEL", "FORWARDED_ALLOW_IPS"}
    assert "envFrom" not in container
    # Its own ServiceAccount, without the services' IRSA role (nor a token).
    account = any_release.one("ServiceAccount", name(CONSOLE))
    assert pod["serviceAccountName"] == name(CONSOLE)
    assert "annotations" not in account["metadata"]
    assert account["automountServiceAccountToken"] is False
    # Small: static files only.
    resources = container["resources"]
    assert _quantity(resources["requests"]["cpu"]) <= 0.05
    assert _quantity(resources["limits"]["memory"]) <= 256 * 2**20


def _quantity(text: str | int | float) -> float:
    """A Kubernetes quantity (100m, 1, 64Mi, 1Gi) as a number."""
    units = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text))
    assert match, text
    return float(match.group(1)) * units[match.group(2)]


def test_jobs_run_migrate_before_install_and_upgrade_and_purge_daily(
    production_release: Rendered,
) -> None:
    job = production_release.one("Job", name("migrate"))
    hooks = job["metadata"]["annotations"]
    assert hooks["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in hooks["helm.sh/hook-delete-policy"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][0] == "migrate"
    # On upgrade the default deny already exists: the Job's own policy is a hook that comes
    # first (lower weight).
    policy = production_release.one("NetworkPolicy", name("migrate"))
    assert policy["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(policy["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        hooks["helm.sh/hook-weight"]
    )

    # Then `jinji bootstrap`, a hook of its own with a later weight: Helm runs hooks by weight
    # and waits for each Job, so it starts only on a migrated database. Its policy and its
    # ServiceAccount (KMS rights: IRSA) are hooks that come before either Job.
    boot = production_release.one("Job", name("bootstrap"))
    boot_hooks = boot["metadata"]["annotations"]
    assert boot_hooks["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(boot_hooks["helm.sh/hook-weight"]) > int(hooks["helm.sh/hook-weight"])
    assert "before-hook-creation" in boot_hooks["helm.sh/hook-delete-policy"]
    boot_pod = boot["spec"]["template"]["spec"]
    assert boot_pod["containers"][0]["args"] == ["bootstrap"]
    for kind in ("NetworkPolicy", "ServiceAccount"):
        prerequisite = production_release.one(kind, name("bootstrap"))["metadata"]["annotations"]
        assert prerequisite["helm.sh/hook"] == "pre-install,pre-upgrade", kind
        assert int(prerequisite["helm.sh/hook-weight"]) < int(hooks["helm.sh/hook-weight"]), kind
        assert prerequisite["helm.sh/hook-delete-policy"] == "before-hook-creation", kind
    account = production_release.one("ServiceAccount", name("bootstrap"))
    assert boot_pod["serviceAccountName"] == name("bootstrap")
    assert account["automountServiceAccountToken"] is False
    irsa = production_release.one("ServiceAccount", name("identity"))["metadata"]["annotations"]
    assert irsa.items() <= account["metadata"]["annotations"].items()
    # A missing or weak setting (exit 2) is not retried.
    (rule,) = boot["spec"]["podFailurePolicy"]["rules"]
    assert rule == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "bootstrap", "operator": "In", "values": [2]},
    }

    cron = production_release.one("CronJob", name("purge"))
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Asia/Tokyo"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["purge"]
    assert pod["serviceAccountName"] == name("tenant-admin")

    for job, args, schedule in (
        ("backup", ["backup", "run"], "30 2 * * *"),
        ("backup-verify", ["backup", "verify"], "30 5 * * *"),
    ):
        cron = production_release.one("CronJob", name(job))
        assert cron["spec"]["schedule"] == schedule
        pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["containers"][0]["args"] == args
        assert pod["serviceAccountName"] == name("backup")
        env = env_of(pod["containers"][0])
        assert env["JINJI_BACKUP_STORE"]["value"].startswith("s3://")
        assert env["JINJI_BACKUP_S3_REGION"]["value"] == "ap-northeast-1"
        assert int(env["JINJI_BACKUP_KEEP_DAILY_DAYS"]["value"]) >= 31

    test_pod = production_release.one("Pod", name("helm-test"))
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def test_cli_commands_in_manifests_exist() -> None:
    """Every command the chart runs is one the `jinji` CLI accepts (argparse exits 2 on an
    unknown command, 0 on --help)."""
    from services.cli import main

    release = render(load_values(PRODUCTION))
    for where, spec, _ in pod_specs(release):
        container = spec["containers"][0]
        if "args" not in container:
            continue
        # --help last: every argument before it is parsed (and checked) first.
        with pytest.raises(SystemExit) as exited:
            main([*container["args"], "--help"])
        assert exited.value.code == 0, where


def test_secrets_are_only_referenced_and_each_pod_gets_only_its_own(
    any_release: Rendered,
) -> None:
    assert any_release.of_kind("Secret") == []
    client_secret = {
        "tenant-admin": "JINJI_IDENTITY_CLIENT_SECRET",
        "ingestion": "JINJI_INGESTION_CLIENT_SECRET",
        "analytics": "JINJI_ANALYTICS_CLIENT_SECRET",
        "purge": "JINJI_IDENTITY_CLIENT_SECRET",
    }
    for where, spec, labels in pod_specs(any_release):
        component = component_of(labels)
        for container in spec["containers"]:
            env = env_of(container)
            secret_names = {n for n, e in env.items() if "secretKeyRef" in e.get("valueFrom", {})}
            for env_name in env:
                if re.search(r"(SECRET|PASSWORD|DATABASE_URL|SERVER_URL|TOKEN)$", env_name):
                    assert env_name in secret_names, f"{where}: {env_name} is not a reference"
            if component in ("helm-test", CONSOLE):
                assert secret_names == set(), where
                continue
            expected = {"JINJI_DATABASE_URL"}
            if component == "bootstrap":
                expected |= BOOTSTRAP_SECRETS
            if component in client_secret:
                expected.add(client_secret[component])
            if component == "backup-verify" and "JINJI_BACKUP_VERIFY_SERVER_URL" in env:
                expected.add("JINJI_BACKUP_VERIFY_SERVER_URL")
            assert secret_names == expected, where


def test_bootstrap_gets_the_secrets_the_services_hold_as_it_reads_them(
    any_release: Rendered,
) -> None:
    """The bootstrap Job registers each service client with the secret that client's service
    reads: the same Secret key, under the name services/bootstrap.py reads it by. Resolving
    the rendered references from a stand-in Secret store, `secrets_from_environment` must
    find every client's secret and the operator's password."""
    job = any_release.one("Job", name("bootstrap"))
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    refs = {
        env_name: entry["valueFrom"]["secretKeyRef"]
        for env_name, entry in env.items()
        if "secretKeyRef" in entry.get("valueFrom", {})
    }
    for client_id, setting in bootstrap.CLIENT_SECRET_SETTINGS.items():
        service = any_release.one("Deployment", name(client_id))
        held = env_of(service["spec"]["template"]["spec"]["containers"][0])[setting]
        assert refs[setting] == held["valueFrom"]["secretKeyRef"], client_id
    values = effective_values(None)["bootstrap"]["initialOperatorPassword"]
    password = refs[bootstrap.OPERATOR_PASSWORD_SETTING]
    assert (password["name"], password["key"]) == (values["existingSecret"], values["key"])
    # Read only while no operator exists: the Secret may go once the operator signed in.
    assert password["optional"] is True
    for env_name, ref in refs.items():
        if env_name != bootstrap.OPERATOR_PASSWORD_SETTING:
            assert "optional" not in ref, env_name

    # A distinct stand-in per Secret key, long enough for every check.
    store = {
        (ref["name"], ref["key"]): hashlib.sha256(
            f"{ref['name']}/{ref['key']}".encode()
        ).hexdigest()
        for ref in refs.values()
    }
    environ = {env_name: store[(ref["name"], ref["key"])] for env_name, ref in refs.items()}
    given = bootstrap.secrets_from_environment(environ)
    assert given.clients == {
        client_id: environ[setting]
        for client_id, setting in bootstrap.CLIENT_SECRET_SETTINGS.items()
    }
    assert given.operator_password == environ[bootstrap.OPERATOR_PASSWORD_SETTING]


def test_install_notes_name_every_secret_the_release_reads(any_release: Rendered) -> None:
    notes = any_release.files[f"{RELEASE}/templates/NOTES.txt"]
    for _, spec, _ in pod_specs(any_release):
        for container in spec["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert f"- {ref['name']}" in notes, ref
            for source in container.get("envFrom", []):
                assert f"- {source['secretRef']['name']}" in notes


@pytest.mark.parametrize(
    ("override", "refused"),
    [
        ({"global": {"dataRegion": "us"}}, "dataRegion"),
        ({"kms": {"region": "us-east-1"}}, "region"),
        ({"kms": {"provider": "local"}}, "provider"),
        ({"containerSecurityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
        ({"containerSecurityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilege"),
        ({"containerSecurityContext": {"capabilities": {"drop": ["NET_RAW"]}}}, "drop"),
        ({"containerSecurityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}, "add"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        (
            {"config": {"env": {"JINJI_DATABASE_URL": "postgresql://u:p@db/jinji"}}},
            "JINJI_DATABASE_URL",
        ),
        (
            {"services": {"ingestion": {"env": {"JINJI_INGESTION_CLIENT_SECRET": "s3cret"}}}},
            "JINJI_INGESTION_CLIENT_SECRET",
        ),
        ({"config": {"issuer": "https://jinji.example.jp/"}}, "issuer"),
        ({"database": {"existingSecret": ""}}, "existingSecret"),
        ({"services": {"payroll": {}}}, "payroll"),
        ({"backup": {"keepDailyDays": 14}}, "keepDailyDays"),
        ({"backup": {"s3Region": "eu-west-1"}}, "s3Region"),
        ({"backup": {"store": ""}}, "store"),
        # The first operator's password: only a Secret reference, and one is required.
        (
            {"bootstrap": {"initialOperatorPassword": None}},
            "missing property 'initialOperatorPassword'",
        ),
        ({"bootstrap": {"initialOperatorPassword": {"existingSecret": ""}}}, "existingSecret"),
        (
            {"bootstrap": {"initialOperatorPassword": "first-password-2026"}},
            "got string, want object",
        ),
        (
            {"bootstrap": {"initialOperatorPassword": {"value": "first-password-2026"}}},
            "additional properties 'value'",
        ),
    ],
)
def test_schema_refuses_values_that_break_a_control(override: dict[str, Any], refused: str) -> None:
    values = _merge(load_values(PRODUCTION) or {}, override)
    with pytest.raises(helm.HelmValuesError, match=refused):
        render(values)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_every_setting_the_chart_passes_is_one_the_service_reads(any_release: Rendered) -> None:
    """pydantic-settings ignores unknown JINJI_* variables: a misspelt name would be lost
    silently. Each must be a field of that workload's settings class, and the values must
    validate (secrets replaced by stand-ins, as Kubernetes would inject them)."""
    for where, spec, labels in pod_specs(any_release):
        component = component_of(labels)
        if component == "helm-test":
            continue
        settings_class = SETTINGS[component]
        env = env_of(spec["containers"][0])
        if component == "bootstrap":
            # Read by secrets_from_environment, not by a settings class (tested above).
            assert set(env) >= BOOTSTRAP_SECRETS, where
            env = {k: v for k, v in env.items() if k not in BOOTSTRAP_SECRETS}
        kwargs: dict[str, Any] = {}
        for env_name, entry in env.items():
            if not env_name.startswith("JINJI_"):
                assert env_name == "FORWARDED_ALLOW_IPS", where  # read by uvicorn
                continue
            field = env_name.removeprefix("JINJI_").lower()
            assert field in settings_class.model_fields, f"{where}: {env_name} is not read"
            kwargs[field] = entry.get("value", "postgresql://stand-in@db/jinji")
        settings = settings_class.model_validate(kwargs)
        if component == CONSOLE:
            assert settings.database_url is None, where  # and no keys either
            continue
        assert settings.key_provider == "aws-kms"
        assert settings.kms_region in ("ap-northeast-1", "ap-northeast-3")


def test_in_cluster_urls_name_the_rendered_services(any_release: Rendered) -> None:
    services = {s["metadata"]["name"]: s for s in any_release.of_kind("Service")}
    for where, spec, labels in pod_specs(any_release):
        if component_of(labels) == "helm-test":
            continue
        env = env_of(spec["containers"][0])
        for env_name in (
            "JINJI_IDENTITY_URL",
            "JINJI_AUDIT_URL",
            "JINJI_TENANTS_URL",
            "JINJI_ANALYTICS_URL",
        ):
            if env_name not in env:
                continue
            url = urlsplit(env[env_name]["value"])
            host, _, namespace = url.hostname.partition(".")  # type: ignore[union-attr]
            assert namespace == f"{NAMESPACE}.svc", where
            assert host in services, f"{where}: {env_name} names no Service"
            assert url.port == services[host]["spec"]["ports"][0]["port"]
            assert url.path in ("", "/identity"), where
        # Identity's issuer is public; its own JWKS is read over loopback.
        if component_of(labels) == "identity":
            assert env["JINJI_JWKS_URL"]["value"].startswith("http://127.0.0.1:")


def ingress_backend(paths: list[dict[str, Any]], path: str) -> str | None:
    """The Service a request path goes to, by the Ingress rules for pathType Prefix: a path
    matches a prefix element by element, and the longest matching prefix wins."""
    elements = [e for e in path.split("/") if e]
    best: tuple[int, str] | None = None
    for rule in paths:
        assert rule["pathType"] == "Prefix"
        prefix = [e for e in rule["path"].split("/") if e]
        if elements[: len(prefix)] == prefix and (best is None or len(prefix) > best[0]):
            best = (len(prefix), rule["backend"]["service"]["name"])
    return None if best is None else best[1]


def test_ingress_routes_each_prefix_to_its_service_over_tls(production_release: Rendered) -> None:
    (ingress,) = production_release.of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    paths = rule["http"]["paths"]
    routes = {p["path"]: (p["pathType"], p["backend"]["service"]["name"]) for p in paths}
    assert routes == {
        **{SPECS[SERVICE_NAMES[c]].prefix: ("Prefix", name(c)) for c in COMPONENTS},
        "/": ("Prefix", name(CONSOLE)),
    }  # and nothing else
    # Longer prefixes win: the console gets only what no service claims (and the services'
    # /metrics, at their root, stays unrouted: the console answers 404 for it).
    for path, component in {
        "/identity/oauth2/token": "identity",
        "/identity": "identity",
        "/tenants/v1/tenants": "tenant-admin",
        "/audit/v1/events": "audit-log",
        "/": CONSOLE,
        "/dashboards/workforce": CONSOLE,
        "/assets/index.js": CONSOLE,
        "/identityx": CONSOLE,
        "/metrics": CONSOLE,
    }.items():
        assert ingress_backend(paths, path) == name(component), path
    assert ingress["spec"]["tls"] == [{"hosts": [rule["host"]], "secretName": "jinji-tls"}]
    # Security headers are the console's own (CSP, HSTS, ...): none set at the controller.
    annotations = ingress["metadata"].get("annotations", {})
    assert not [a for a in annotations if re.search(r"snippet|header|cors", a, re.IGNORECASE)]
    issuer = urlsplit(
        env_of(
            production_release.one("Deployment", name("identity"))["spec"]["template"]["spec"][
                "containers"
            ][0]
        )["JINJI_ISSUER"]["value"]
    )
    assert (issuer.scheme, issuer.hostname, issuer.path) == ("https", rule["host"], "/identity")


def test_console_refresh_cookie_travels_on_one_https_origin(production_release: Rendered) -> None:
    """The console and identity share the Ingress host, so the SameSite=Strict refresh cookie
    (path /identity/oauth2/token) reaches the token endpoint; the cookie stays Secure
    (identity's default): production serves the host over TLS and does not turn it off."""
    (ingress,) = production_release.of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    backends = {p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert {name(CONSOLE), name("identity")} <= backends
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    identity = env_of(
        production_release.one("Deployment", name("identity"))["spec"]["template"]["spec"][
            "containers"
        ][0]
    )
    assert "JINJI_REFRESH_COOKIE_SECURE" not in identity
    assert IdentitySettings.model_fields["refresh_cookie_secure"].default is True


def test_production_scales_and_survives_disruptions(production_release: Rendered) -> None:
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in production_release.of_kind("HorizontalPodAutoscaler")
    }
    for component in COMPONENTS:
        deployment = production_release.one("Deployment", name(component))
        # The HPA owns the replica count: the Deployment must not fight it.
        assert "replicas" not in deployment["spec"]
        assert hpas[name(component)]["spec"]["minReplicas"] >= 2
        pdb = production_release.one("PodDisruptionBudget", name(component))
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(pdb["spec"]["selector"], labels)
        assert pdb["spec"]["maxUnavailable"] == 1
    # The console: a fixed pair of replicas (no HPA) under a budget of its own.
    console = production_release.one("Deployment", name(CONSOLE))
    assert console["spec"]["replicas"] == 2
    assert name(CONSOLE) not in hpas
    pdb = production_release.one("PodDisruptionBudget", name(CONSOLE))
    assert selects(pdb["spec"]["selector"], console["spec"]["template"]["metadata"]["labels"])
    assert pdb["spec"]["maxUnavailable"] == 1


def _policies(release: Rendered) -> list[dict[str, Any]]:
    return release.of_kind("NetworkPolicy")


def test_namespace_default_deny_and_every_pod_has_its_own_policy(any_release: Rendered) -> None:
    policies = _policies(any_release)
    deny = any_release.one("NetworkPolicy", f"{RELEASE}-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for where, _, labels in pod_specs(any_release):
        own = [p for p in policies if p is not deny and selects(p["spec"]["podSelector"], labels)]
        assert len(own) == 1, f"{where}: {len(own)} policies select it"
        assert own[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]


def documented_table() -> dict[str, set[str]]:
    """The caller → callees table of docs/architecture.md ("Network flows"); "—": none."""
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    section = text.split("### Network flows", 1)[1].split("\n#", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip(" `") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] not in ("from", "") and not cells[0].startswith("-"):
            callees = table.setdefault(cells[0], set())
            if cells[1] != "—":
                callees.update(callee.strip(" `") for callee in cells[1].split(","))
    return table


def documented_flows() -> set[tuple[str, str]]:
    return {
        (caller, callee) for caller, callees in documented_table().items() for callee in callees
    }


def _peer_components(peers: list[dict[str, Any]]) -> set[str]:
    return {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for p in peers
        if "namespaceSelector" not in p and "podSelector" in p
    }


def test_network_flows_are_exactly_the_documented_ones(production_release: Rendered) -> None:
    """Egress of the caller and ingress of the callee must both allow a flow, and the
    flows allowed must be the documented table, nothing more."""
    egress: set[tuple[str, str]] = set()
    ingress: set[tuple[str, str]] = set()
    for policy in _policies(production_release):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        owner = selector.get("app.kubernetes.io/component")
        if owner is None:
            continue
        for rule in policy["spec"].get("egress", []):
            egress |= {(owner, callee) for callee in _peer_components(rule.get("to", []))}
        for rule in policy["spec"].get("ingress", []):
            ingress |= {(caller, owner) for caller in _peer_components(rule.get("from", []))}
    assert egress == ingress
    documented = documented_flows()
    assert len(documented) >= 12
    assert egress == documented
    # Every Deployment is in the table, those that call no one (the console) too.
    deployments = {
        component_of(d["spec"]["template"]["metadata"]["labels"])
        for d in production_release.of_kind("Deployment")
    }
    assert deployments <= set(documented_table())


def test_egress_outside_the_namespace_is_dns_database_kms_and_webhooks_only(
    production_release: Rendered,
) -> None:
    np = effective_values(load_values(PRODUCTION))["networkPolicy"]
    for policy in _policies(production_release):
        owner = (
            policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
        )
        if owner is None:
            continue
        external = []
        for rule in policy["spec"].get("egress", []):
            peers = rule.get("to", [])
            ports = sorted((p["port"], p["protocol"]) for p in rule["ports"])
            if peers and _peer_components(peers):
                assert ports == [(8000, "TCP")], owner
                continue
            external.append((ports, peers))
        dns = (
            [(53, "TCP"), (53, "UDP")],
            [
                {
                    "namespaceSelector": np["dns"]["namespaceSelector"],
                    "podSelector": np["dns"]["podSelector"],
                }
            ],
        )
        database = ([(5432, "TCP")], np["database"]["to"])
        kms = ([(443, "TCP")], np["kms"]["to"])
        store = ([(443, "TCP")], np["backupStore"]["to"])
        expected = [dns, database]
        if owner in ("backup", "backup-verify"):
            expected.append(store)
        if owner not in ("migrate", "helm-test"):
            expected.append(kms)
        if owner == "helm-test":
            expected = [dns]
        if owner == CONSOLE:
            expected = []  # nothing at all, not even DNS: it serves files and calls no one
        if owner == "tenant-admin":
            webhooks = external[-1]
            assert webhooks[0] == [(443, "TCP")]
            assert webhooks[1][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
            assert "10.0.0.0/8" in webhooks[1][0]["ipBlock"]["except"]
            assert "169.254.0.0/16" in webhooks[1][0]["ipBlock"]["except"]
            external = external[:-1]
        assert external == expected, owner


def test_services_admit_only_the_gateway_prometheus_and_their_callers(
    production_release: Rendered,
) -> None:
    np = effective_values(load_values(PRODUCTION))["networkPolicy"]
    for component in COMPONENTS:
        policy = production_release.one("NetworkPolicy", name(component))
        outside = [
            peer
            for rule in policy["spec"]["ingress"]
            for peer in rule["from"]
            if "namespaceSelector" in peer
        ]
        assert outside == [
            {
                "namespaceSelector": np["ingressController"]["namespaceSelector"],
                "podSelector": np["ingressController"]["podSelector"],
            },
            {
                "namespaceSelector": np["prometheus"]["namespaceSelector"],
                "podSelector": np["prometheus"]["podSelector"],
            },
        ]
        for rule in policy["spec"]["ingress"]:
            assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
    # The console: the ingress controller only (no /metrics for Prometheus, no caller inside
    # the namespace), and no egress.
    console = production_release.one("NetworkPolicy", name(CONSOLE))["spec"]
    assert console["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": np["ingressController"]["namespaceSelector"],
                    "podSelector": np["ingressController"]["podSelector"],
                }
            ],
            "ports": [{"port": 8000, "protocol": "TCP"}],
        }
    ]
    assert console["egress"] == []
    assert console["policyTypes"] == ["Ingress", "Egress"]


def test_service_monitors_and_rules_carry_the_prometheus_selector_label(
    production_release: Rendered,
) -> None:
    services = {s["metadata"]["name"]: s for s in production_release.of_kind("Service")}
    for monitor in production_release.of_kind("ServiceMonitor"):
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        service = services[monitor["metadata"]["name"]]
        assert selects(monitor["spec"]["selector"], service["metadata"]["labels"])
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
        assert endpoint["honorLabels"] is True
        # Every target gets the service's metrics label (service="tenant_admin", ...).
        (relabel,) = endpoint["relabelings"]
        assert relabel["targetLabel"] == "service"
        label = relabel["sourceLabels"][0].removeprefix("__meta_kubernetes_service_label_")
        assert service["metadata"]["labels"]["jinji.io/service"] in SPECS
        assert label == "jinji_io_service"
    (rule,) = production_release.of_kind("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_dashboards_are_configmaps_the_grafana_sidecar_loads(
    production_release: Rendered,
) -> None:
    uids = set()
    for config_map in production_release.of_kind("ConfigMap"):
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((filename, body),) = config_map["data"].items()
        dashboard = json.loads(body)
        assert filename == f"{dashboard['uid']}.json"
        uids.add(dashboard["uid"])
        assert dashboard["panels"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for panel in dashboard["panels"]:
            assert panel["targets"], panel["title"]
            assert all(t["expr"] for t in panel["targets"])
    assert uids == {"jinji-red", "jinji-capacity", "jinji-security", "jinji-audit"}


def test_default_values_install_without_prometheus_operator_crds(default_release: Rendered) -> None:
    """A cluster without kube-prometheus-stack: nothing of the operator's kinds by default."""
    assert not {doc["kind"] for _, doc in default_release.docs} & CRD_KINDS
