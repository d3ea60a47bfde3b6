"""The five services: name, public prefix, and how to build each app."""

from __future__ import annotations

import importlib
from typing import Protocol

from fastapi import FastAPI

from jinji.web import ServiceSpec

SPECS: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("identity", "/identity", "Jinji identity"),
        ServiceSpec("tenant_admin", "/tenants", "Jinji tenant administration"),
        ServiceSpec("ingestion", "/ingestion", "Jinji HR data ingestion"),
        ServiceSpec("analytics", "/analytics", "Jinji HR analytics"),
        ServiceSpec("audit_log", "/audit", "Jinji audit log"),
    )
}


class _AppModule(Protocol):
    def create_app(self) -> FastAPI: ...


def create(name: str) -> FastAPI:
    if name not in SPECS:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SPECS)}")
    module: _AppModule = importlib.import_module(f"services.{name}.app")
    return module.create_app()
