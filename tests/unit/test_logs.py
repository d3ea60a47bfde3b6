"""Logs leave the machine: they carry request ids and route templates, never secrets."""

from __future__ import annotations

import io
import json
import logging
import sys

import httpx
import pytest

from jinji.logs import JsonFormatter, StderrHandler, request_id_var
from jinji.web import ServiceSpec, create_app, service_router


def _format(record: logging.LogRecord) -> dict[str, object]:
    return json.loads(JsonFormatter().format(record))


def test_secret_looking_fields_are_masked_and_request_id_is_attached() -> None:
    record = logging.LogRecord("jinji.test", logging.INFO, __file__, 1, "login", None, None)
    record.__dict__.update(
        {"password": "hunter2", "refresh_token": "abc", "client_secret": "s", "route": "/x"}
    )
    token = request_id_var.set("req-42")
    try:
        line = _format(record)
    finally:
        request_id_var.reset(token)
    assert line["password"] == "***"
    assert line["refresh_token"] == "***"
    assert line["client_secret"] == "***"
    assert line["route"] == "/x"
    assert line["request_id"] == "req-42"
    assert line["msg"] == "login"


async def test_access_log_has_route_template_not_path_or_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = ServiceSpec("probe", "/probe", "probe")
    router = service_router(spec)

    @router.get("/v1/employees/{employee_id}")
    async def employee(employee_id: str) -> dict[str, str]:
        return {"id": employee_id}

    app = create_app(spec, routers=[router])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with caplog.at_level(logging.INFO, logger="jinji.access"):
            response = await client.get(
                "/probe/v1/employees/E-9911?access_token=tok-secret",
                headers={"X-Request-ID": "r-1"},
            )
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "jinji.access"]
    line = JsonFormatter().format(record)
    assert json.loads(line)["route"] == "/probe/v1/employees/{employee_id}"
    assert json.loads(line)["status"] == 200
    assert "E-9911" not in line
    assert "tok-secret" not in line


def test_the_handler_writes_to_the_stderr_of_the_moment(monkeypatch) -> None:
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    handler.emit(logging.LogRecord("t", logging.INFO, __file__, 1, "one", None, None))
    first.close()  # as a test harness closes the stderr it captured
    monkeypatch.setattr(sys, "stderr", second)
    handler.emit(logging.LogRecord("t", logging.INFO, __file__, 1, "two", None, None))
    assert '"two"' in second.getvalue()
