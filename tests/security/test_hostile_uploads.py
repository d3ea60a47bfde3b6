"""Hostile files against the upload endpoint: each gets a clear 4xx naming the problem,
nothing is stored but a rejected-upload record, and the service stays healthy."""

from __future__ import annotations

import io
import os
import zipfile

import httpx
import pytest

from tests.conftest import Provisioned, Stack

HEADER = "社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級"
GOOD_ROW = "E1,HQ,営業部,男,1980-01-01,2010-04-01,,,正社員,○,G3"


def _bomb() -> bytes:
    """An XLSX-shaped zip whose sheet inflates far beyond the limit (about 1000:1)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b"a" * 50_000_000 + b"/>")
    return buffer.getvalue()


CASES = {
    "binary junk": ("junk.csv", os.urandom(4096), 422, "undecodable_text"),
    "a PNG named .csv": ("photo.csv", b"\x89PNG\r\n\x1a\n" + os.urandom(2048), 422, None),
    "broken UTF-8 after Japanese": (
        "e.csv",
        (HEADER + "\r\n" + GOOD_ROW + "\r\n").encode() + b"E2,HQ,\xe5\xff\r\n",
        422,
        "undecodable_text",
    ),
    "a million columns": ("wide.csv", ("c," * 1_000_000).encode() + b"\r\n", 422, None),
    "one huge line": (
        "huge.csv",
        (HEADER + "\r\n").encode() + b"E1," + b"x" * 3_000_000 + b"\r\n",
        422,
        None,
    ),
    "formula cells": (
        "formula.csv",
        (
            HEADER
            + "\r\n"
            + '=HYPERLINK("http://evil"),HQ,=1+1,男,1980-01-01,2010-04-01,,,正社員,○,@SUM(A1)\r\n'
        ).encode("cp932"),
        None,
        None,
    ),
    "xlsx bomb": ("bomb.xlsx", _bomb(), 422, None),
    "not a zip named .xlsx": ("fake.xlsx", b"PK\x03\x04" + os.urandom(1000), 422, None),
    "empty": ("empty.csv", b"", 422, "empty_file"),
}


@pytest.fixture(scope="module")
def tenant(stack: Stack, operator: dict[str, str]) -> Provisioned:
    with httpx.Client(timeout=60) as http:
        return stack.provision(http, operator, {"HQ": "本社"})


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_refused_clearly(stack, http, tenant, case) -> None:
    filename, content, status, code = CASES[case]
    response = stack.upload(http, tenant.admin, content, filename, "employees", as_of="2024-04")
    if status is None:
        # Formula-looking text is data, not a formula: stored as text (exports neutralise it).
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == status, (case, response.status_code, response.text[:300])
        error = response.json()["error"]
        assert error["message"]
        if code is not None:
            assert error["code"] == code, (case, error)
    assert http.get(stack.ingestion_url("/healthz")).status_code == 200


def test_only_rejection_records_are_left(stack, http, tenant) -> None:
    uploads = http.get(stack.ingestion_url("/v1/uploads"), headers=tenant.admin).json()["uploads"]
    rejected = [u for u in uploads if u["status"] == "rejected"]
    assert rejected
    assert all(u["error_count"] >= 0 for u in rejected)
    datasets = http.get(stack.ingestion_url("/v1/datasets"), headers=tenant.admin).json()
    # Only the formula-cells file was a valid dataset.
    assert [(d["kind"], d["rows"]) for d in datasets["datasets"]] == [("employees", 1)]
