"""Uploading HR files over real HTTP: encodings and XLSX, Japanese headers and values,
errors with row and column, nothing stored on rejection, idempotent re-upload, company
scope, tenant separation, ciphertext at rest."""

from __future__ import annotations

import io
import uuid

import httpx
import openpyxl
import polars as pl
import pytest
from sqlalchemy import func, select

from jinji import datasets
from jinji.keys import DekCache
from jinji.runtime import make_envelope
from jinji.tenant_tables import dataset_versions, uploads
from services.ingestion import store
from tests.conftest import Provisioned

EMPLOYEES_JA = (
    "社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級\r\n"
    "E0001,HQ,営業部,男,昭和60年4月1日,2010/4/1,,,正社員,○,G3\r\n"
    "E0002,HQ,人事部,女性,H2.5.3,令和2年4月1日,,,契約社員,×,\r\n"
    "E0003,SUB1,開発部,女,1995-01-15,２０２０/１０/１,2024/04/20,自己都合,正規,いいえ,G1\r\n"
)


COMPANIES = {"HQ": "本社", "SUB1": "子会社"}


def _tenant(http, stack, operator) -> Provisioned:
    return stack.provision(http, operator, COMPANIES)


@pytest.fixture(scope="module")
def tenant(stack, operator) -> Provisioned:
    with httpx.Client(timeout=30) as http:
        return _tenant(http, stack, operator)


def upload(http, stack, headers, content: bytes, filename: str, kind: str, **form):
    return stack.upload(http, headers, content, filename, kind, **form)


def _login(http, stack, slug: str, username: str, password: str) -> dict[str, str]:
    return stack.login(http, slug, username, password)


def test_cp932_japanese_employees_then_idempotent_then_new_version(stack, http, tenant) -> None:
    content = EMPLOYEES_JA.encode("cp932")
    first = upload(http, stack, tenant.admin, content, "社員.csv", "employees", as_of="2024-04")
    assert first.status_code == 201, first.text
    dataset = first.json()["dataset"]
    assert dataset["period"] == "2024-04"
    assert dataset["version"] == 1
    assert dataset["rows"] == 3

    again = upload(http, stack, tenant.admin, content, "社員.csv", "employees", as_of="2024-04")
    assert again.status_code == 200
    assert again.json()["dataset"]["version"] == 1

    changed = content.replace(b"G3", b"G4")
    second = upload(http, stack, tenant.admin, changed, "社員.csv", "employees", as_of="2024-04")
    assert second.status_code == 201
    assert second.json()["dataset"]["version"] == 2
    listed = http.get(stack.ingestion_url("/v1/datasets"), headers=tenant.admin).json()
    assert {(d["kind"], d["period"], d["version"]) for d in listed["datasets"]} >= {
        ("employees", "2024-04", 2)
    }


async def test_stored_dataset_is_ciphertext_and_decrypts_to_normalised_rows(
    stack, http, tenant
) -> None:
    content = EMPLOYEES_JA.replace("2010/4/1", "2011/4/1").encode("utf-8-sig")
    made = upload(http, stack, tenant.admin, content, "e.csv", "employees", as_of="2024-05")
    assert made.status_code == 201, made.text
    tenant_id = uuid.UUID(tenant.id)
    async with stack.db.tenant_transaction(tenant_id) as tx:
        row = (
            await tx.session.execute(
                select(dataset_versions.c.version, dataset_versions.c.content_enc).where(
                    dataset_versions.c.kind == "employees", dataset_versions.c.period == "2024-05"
                )
            )
        ).one()
    stored = bytes(row.content_enc)
    for plain in (b"E0001", "営業部".encode(), b"PAR1"):
        assert plain not in stored
    envelope = make_envelope(stack.tenant_admin_settings, stack.db, DekCache(ttl=0))
    parquet = await envelope.decrypt(
        str(tenant_id), stored, datasets.version_aad(tenant_id, "employees", "2024-05", row.version)
    )
    frame = pl.read_parquet(io.BytesIO(parquet))
    first = frame.filter(pl.col("employee_id") == "E0001").row(0, named=True)
    assert first["gender"] == "male"
    assert first["employment_type"] == "regular"
    assert first["is_manager"] is True
    assert str(first["birth_date"]) == "1985-04-01"
    third = frame.filter(pl.col("employee_id") == "E0003").row(0, named=True)
    assert str(third["hire_date"]) == "2020-10-01"
    assert third["exit_reason"] == "voluntary"


def test_xlsx_upload(stack, http, tenant) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "社員"
    rows = [line.split(",") for line in EMPLOYEES_JA.strip().split("\r\n")]
    for row in rows:
        sheet.append([cell or None for cell in row])
    buffer = io.BytesIO()
    book.save(buffer)
    made = upload(
        http, stack, tenant.admin, buffer.getvalue(), "社員.xlsx", "employees", as_of="2024-06"
    )
    assert made.status_code == 201, made.text
    assert made.json()["dataset"]["rows"] == 3


def test_other_kinds_become_one_version_per_period(stack, http, tenant) -> None:
    payroll = (
        "社員番号,会社コード,年度,性別,雇用形態,年間賃金\n"
        'E0001,HQ,2023,男,正社員,"6,000,000"\nE0002,HQ,2023,女,正社員,５５０００００\n'
        "E0001,HQ,2024,男,正社員,6100000\n"
    ).encode("cp932")
    made = upload(http, stack, tenant.admin, payroll, "p.csv", "payroll")
    assert made.status_code == 201, made.text
    assert {d["period"] for d in made.json()["datasets"]} == {"2023", "2024"}
    attendance = (
        b"employee_id,month,overtime_hours,paid_leave_granted_days,paid_leave_taken_days\n"
        b"E0001,2024-04,12.5,20,1\nE0001,2024/05,50,,\nE0002,202404,0,10,10\n"
    )
    made = upload(http, stack, tenant.admin, attendance, "a.csv", "attendance")
    assert made.status_code == 201, made.text
    assert {d["period"] for d in made.json()["datasets"]} == {"2024-04", "2024-05"}
    childcare = (
        "社員番号,会社コード,性別,出生日,休業種別,休業開始日\n"
        "E0001,HQ,男,2024/5/1,育児休業,2024/5/10\nE0001,HQ,男,2024/5/1,育児目的休暇,2024/5/2\n"
        "E0002,HQ,女,2024/6/1,,\n"
    ).encode("cp932")
    made = upload(http, stack, tenant.admin, childcare, "c.csv", "childcare")
    assert made.status_code == 201, made.text
    assert made.json()["dataset"]["period"] == "all"


async def test_errors_name_row_and_column_and_nothing_is_stored(stack, http, operator) -> None:
    fresh = _tenant(http, stack, operator)
    bad = (
        "社員番号,会社コード,性別,入社日,退職日,退職理由,雇用形態,管理職\n"
        "E1,HQ,男,2020/4/1,,,正社員,はい\n"
        "E2,HQ,不詳,2020/4/1,,,正社員,はい\n"  # row 3: unknown gender
        "E3,HQ,女,2025/4/1,,,正社員,いいえ\n"  # row 4: hired after as_of
        "E1,HQ,男,2020/4/1,,,正社員,はい\n"  # row 5: duplicate of row 2
        "E4,XX,女,2020/4/1,2024/4/10,,正社員,いいえ\n"  # row 6: company, missing reason
    ).encode("cp932")
    response = upload(http, stack, fresh.admin, bad, "bad.csv", "employees", as_of="2024-04")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_dataset"
    found = {(e["row"], e["column"]) for e in error["details"]["errors"]}
    assert {
        (3, "性別"),
        (4, "入社日"),
        (5, "社員番号"),
        (6, "会社コード"),
        (6, "退職理由"),
    } <= found
    assert error["details"]["total"] == len(error["details"]["errors"])
    assert http.get(stack.ingestion_url("/v1/datasets"), headers=fresh.admin).json() == {
        "datasets": []
    }
    history = http.get(stack.ingestion_url("/v1/uploads"), headers=fresh.admin).json()["uploads"]
    assert [(u["status"], u["error_count"]) for u in history] == [("rejected", 5)]

    unknown = upload(
        http,
        stack,
        fresh.admin,
        b"employee_id,shoe_size\nE1,27\n",
        "u.csv",
        "employees",
        as_of="2024-04",
    )
    assert unknown.status_code == 422
    undecodable = upload(
        http,
        stack,
        fresh.admin,
        b"employee_id\n\xff\xfe\xfa\n",
        "x.csv",
        "employees",
        as_of="2024-04",
    )
    assert undecodable.status_code == 422
    assert undecodable.json()["error"]["code"] == "undecodable_text"
    empty = upload(http, stack, fresh.admin, b"", "e.csv", "employees", as_of="2024-04")
    assert empty.status_code == 422
    assert empty.json()["error"]["code"] == "empty_file"


def test_company_scope_and_tenant_separation(stack, http, operator, tenant) -> None:
    made = http.post(
        stack.url("/v1/users"),
        headers=tenant.admin,
        json={"username": "hq-updater", "roles": ["data_updater"], "companies": ["HQ"]},
    ).json()
    updater = _login(http, stack, tenant.slug, "hq-updater", made["one_time_password"])
    refused = upload(
        http, stack, updater, EMPLOYEES_JA.encode("cp932"), "e.csv", "employees", as_of="2024-07"
    )
    assert refused.status_code == 422
    rows = {(e["row"], e["column"]) for e in refused.json()["error"]["details"]["errors"]}
    assert rows == {(4, "会社コード")}
    only_hq = "\r\n".join(EMPLOYEES_JA.split("\r\n")[:3]) + "\r\n"
    accepted = upload(
        http, stack, updater, only_hq.encode("cp932"), "e.csv", "employees", as_of="2024-07"
    )
    assert accepted.status_code == 201, accepted.text
    viewer_made = http.post(
        stack.url("/v1/users"), headers=tenant.admin, json={"username": "v", "roles": ["viewer"]}
    ).json()
    viewer = _login(http, stack, tenant.slug, "v", viewer_made["one_time_password"])
    assert (
        upload(http, stack, viewer, b"x", "e.csv", "employees", as_of="2024-07").status_code == 403
    )

    other = _tenant(http, stack, operator)
    theirs = http.get(stack.ingestion_url("/v1/uploads"), headers=other.admin).json()
    assert theirs == {"uploads": []}
    assert http.get(stack.ingestion_url("/v1/datasets"), headers=other.admin).json() == {
        "datasets": []
    }


def test_templates(stack, http, tenant) -> None:
    ja = http.get(stack.ingestion_url("/v1/templates/employees?lang=ja"), headers=tenant.admin)
    assert ja.status_code == 200
    assert ja.content.decode("cp932").startswith("社員番号,会社コード")
    xlsx = http.get(
        stack.ingestion_url("/v1/templates/payroll?lang=en&format=xlsx"), headers=tenant.admin
    )
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert [c.value for c in next(book.active.iter_rows())][:2] == ["employee_id", "company_code"]


def test_ingestion_metrics(stack, http) -> None:
    body = http.get(f"{stack.ingestion_base}/metrics").text
    assert 'jinji_ingestion_rows_total{kind="employees"}' in body
    assert 'jinji_ingestion_rejected_uploads_total{reason="invalid_dataset"}' in body
    assert 'jinji_ingestion_upload_seconds_count{kind="employees"}' in body


async def test_an_upload_that_dies_half_way_leaves_nothing(stack, tenant) -> None:
    """Periods are committed together: a failure while storing the second leaves no trace."""
    from services.ingestion import validate as validation
    from services.ingestion.kinds import SPECS

    rows = [
        (2, ["E1", "2024-04", "1", "", ""]),
        (3, ["E1", "2024-05", "2", "", ""]),
    ]
    header = [
        "employee_id",
        "month",
        "overtime_hours",
        "paid_leave_granted_days",
        "paid_leave_taken_days",
    ]
    checks = validation.Context(None, frozenset({"HQ"}), None, False)
    validated = validation.validate(SPECS["attendance"], header, rows, checks)

    class DiesOnSecondPeriod:
        def __init__(self, real) -> None:
            self.real, self.calls = real, 0

        async def encrypt(self, *args, **kwargs):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("process killed")
            return await self.real.encrypt(*args, **kwargs)

    envelope = make_envelope(stack.tenant_admin_settings, stack.db)
    tenant_id = uuid.UUID(tenant.id)

    async def versions() -> int:
        async with stack.db.tenant_transaction(tenant_id) as tx:
            return int(
                await tx.session.scalar(
                    select(func.count()).where(dataset_versions.c.kind == "attendance")
                )
                or 0
            )

    before = await versions()
    with pytest.raises(RuntimeError, match="killed"):
        await store.commit(
            stack.db,
            DiesOnSecondPeriod(envelope),
            tenant_id=tenant_id,
            kind="attendance",
            validated=validated,
            file_sha256="f" * 64,
            size_bytes=10,
            uploaded_by=uuid.uuid4(),
        )
    assert await versions() == before
    async with stack.db.tenant_transaction(tenant_id) as tx:
        ghost = await tx.session.scalar(select(uploads.c.id).where(uploads.c.sha256 == "f" * 64))
    assert ghost is None


def test_a_tenant_admin_deletes_a_dataset(stack, http, tenant) -> None:
    content = EMPLOYEES_JA.replace("G3", "G5").encode("cp932")
    made = upload(http, stack, tenant.admin, content, "e.csv", "employees", as_of="2024-08")
    assert made.status_code == 201, made.text
    updater_made = http.post(
        stack.url("/v1/users"),
        headers=tenant.admin,
        json={"username": "all-updater", "roles": ["data_updater"], "companies": []},
    ).json()
    updater = _login(http, stack, tenant.slug, "all-updater", updater_made["one_time_password"])
    url = stack.ingestion_url("/v1/datasets/employees/2024-08")
    assert http.delete(url, headers=updater).status_code == 403
    assert http.delete(url, headers=tenant.admin).status_code == 204
    assert http.delete(url, headers=tenant.admin).status_code == 404
    listed = http.get(stack.ingestion_url("/v1/datasets"), headers=tenant.admin).json()
    assert ("employees", "2024-08") not in {(d["kind"], d["period"]) for d in listed["datasets"]}
