"""Analytics over real HTTP, from uploads to dashboards: figures computed by hand from a small
group (HQ and SUB1), the event from ingestion, never a stale figure after a change, company
scope, pay figures by role, dashboard access rules, suppression, the disclosure report and
its exports, tenant separation."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from dataclasses import dataclass

import httpx
import openpyxl
import pytest
from sqlalchemy import func, select

from jinji.tenant_tables import analytics_events, analytics_results
from tests.conftest import Provisioned

COMPANIES = {"HQ": "本社", "SUB1": "子会社"}
HEADER = "社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級"
# April 2024. HQ: E5 leaves on the month's last day (not counted), E6 joins. SUB1: S3 leaves.
APRIL = [
    "E1,HQ,営業部,男,1980-01-01,2010-04-01,,,正社員,○,G3",
    "E2,HQ,営業部,女,1985-01-01,2012-04-01,,,正社員,○,G3",
    "E3,HQ,営業部,女,1990-01-01,2015-04-01,,,正社員,×,G2",
    "E4,HQ,人事部,女,1992-01-01,2018-04-01,,,契約社員,×,G1",
    "E5,HQ,営業部,男,1995-01-01,2020-04-01,2024-04-30,自己都合,正社員,×,G1",
    "E6,HQ,営業部,男,1996-01-01,2024-04-01,,,正社員,×,G1",
    "S1,SUB1,開発部,男,1970-01-01,2000-04-01,,,正社員,○,G4",
    "S2,SUB1,開発部,女,1988-01-01,2016-04-01,,,正社員,×,G2",
    "S3,SUB1,開発部,女,1991-01-01,2019-04-01,2024-04-10,会社都合,契約社員,×,G1",
]
# March 2025, the fiscal year's last month: the same people, the leavers gone.
MARCH = [row for row in APRIL if not row.startswith(("E5", "S3"))]
PAYROLL = [
    "社員番号,会社コード,年度,性別,雇用形態,年収",
    "E1,HQ,2024,男,正社員,6000000",
    "E2,HQ,2024,女,正社員,5000000",
    "E3,HQ,2024,女,正社員,4000000",
    "E4,HQ,2024,女,契約社員,3000000",
    "E5,HQ,2024,男,正社員,3000000",
    "E6,HQ,2024,男,正社員,4000000",
    "S1,SUB1,2024,男,正社員,8000000",
    "S2,SUB1,2024,女,正社員,5000000",
]
CHILDCARE = [
    "社員番号,会社コード,性別,出生日,休業種別,休業開始日",
    "E1,HQ,男,2024-05-10,育児休業,2024-06-01",
    "E1,HQ,男,2024-05-10,育児休業,2024-09-01",  # a second leave for the same child
    "E6,HQ,男,2024-12-01,,",
    "S1,SUB1,男,2024-08-01,育児目的休暇,2024-08-05",
]
ATTENDANCE = [
    "社員番号,年月,残業時間,有給付与日数,有給取得日数",
    "E1,2024-04,10,10,2",
    "E2,2024-04,50,10,1",
    "S1,2024-04,90,20,5",
]


def csv_bytes(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


@dataclass
class World:
    tenant: Provisioned
    group_viewer: dict[str, str]
    sub1_viewer: dict[str, str]
    updater: dict[str, str]
    other_admin: dict[str, str]


@pytest.fixture(scope="module")
def world(stack, operator) -> World:
    with httpx.Client(timeout=60) as http:
        tenant = stack.provision(http, operator, COMPANIES)
        for lines, kind, form in (
            ([HEADER, *APRIL], "employees", {"as_of": "2024-04"}),
            ([HEADER, *MARCH], "employees", {"as_of": "2025-03"}),
            (PAYROLL, "payroll", {}),
            (CHILDCARE, "childcare", {}),
            (ATTENDANCE, "attendance", {}),
        ):
            made = stack.upload(http, tenant.admin, csv_bytes(lines), "f.csv", kind, **form)
            assert made.status_code == 201, made.text
        group_viewer = stack.add_user(http, tenant, "board", ["group_viewer"])
        sub1_viewer = stack.add_user(http, tenant, "sub1", ["viewer"], ["SUB1"])
        updater = stack.add_user(http, tenant, "updater", ["data_updater"], ["HQ"])
        other = stack.provision(http, operator, {"HQ": "別会社"})
        return World(tenant, group_viewer, sub1_viewer, updater, other.admin)


def get(http, stack, headers, path, **params):
    return http.get(stack.analytics_url(path), headers=headers, params=params)


def cells(body) -> dict[tuple, object]:
    return {(c["period"], c["company"], c["group"]): c["value"] for c in body["series"]}


async def test_ingestion_tells_analytics_and_results_are_stored_encrypted(stack, world) -> None:
    deadline = time.monotonic() + 20
    while True:
        async with stack.db.tenant_transaction(world.tenant.id) as tx:
            handled = await tx.session.scalar(select(func.count()).select_from(analytics_events))
            stored = (await tx.session.execute(select(analytics_results.c.content_enc))).all()
        if handled >= 5 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert handled == 5  # one message per upload, each acted on once
    assert len(stored) == 1  # only the results of the datasets as they are now
    # Ciphertext: neither the Parquet magic nor a metric name nor a company code shows.
    for plain in (b"PAR1", b"headcount", b"female_manager_ratio", "営業部".encode()):
        assert plain not in stored[0][0]


def test_headcount_ratios_per_company_and_for_the_group(stack, http, world) -> None:
    admin = world.tenant.admin
    head = get(http, stack, admin, "/v1/metrics/headcount", **{"from": "2024-04", "to": "2024-04"})
    assert head.status_code == 200, head.text
    assert head.json()["unit"] == "people"
    # HQ: E1, E2, E3, E4, E6 (E5 left on April 30); SUB1: S1, S2; the group: 7.
    assert cells(head.json()) == {
        ("2024-04", "HQ", None): 5,
        ("2024-04", "SUB1", None): 2,
        ("2024-04", None, None): 7,
    }
    women = get(
        http, stack, admin, "/v1/metrics/female_ratio", **{"from": "2024-04", "to": "2024-04"}
    )
    # 3/5, 1/2, 4/7 = 57.14… → 57.1
    assert cells(women.json()) == {
        ("2024-04", "HQ", None): 60.0,
        ("2024-04", "SUB1", None): 50.0,
        ("2024-04", None, None): 57.1,
    }
    turnover = get(http, stack, admin, "/v1/metrics/turnover_rate", fiscal_year=2024)
    # Exits in FY 2024 ÷ mean of its month-end headcounts (April, March): HQ 1/5, SUB1 1/2,
    # the group 2/7 = 28.57… → 28.6.
    assert cells(turnover.json()) == {
        ("2024", "HQ", None): 20.0,
        ("2024", "SUB1", None): 50.0,
        ("2024", None, None): 28.6,
    }
    overtime = get(
        http,
        stack,
        admin,
        "/v1/metrics/average_overtime_hours",
        **{"from": "2024-04", "to": "2024-04"},
    )
    assert cells(overtime.json()) == {
        ("2024-04", "HQ", None): 30.0,
        ("2024-04", "SUB1", None): 90.0,
        ("2024-04", None, None): 50.0,
    }


def test_small_breakdown_cells_are_suppressed(stack, http, world) -> None:
    body = get(
        http,
        stack,
        world.tenant.admin,
        "/v1/metrics/headcount",
        **{"from": "2024-04", "to": "2024-04", "company": "HQ", "group_by": "department"},
    ).json()
    # 営業部 4 and 人事部 1 people: both under the minimum group size of 5.
    assert {c["group"]: (c["value"], c["suppressed"]) for c in body["series"]} == {
        "営業部": (None, True),
        "人事部": (None, True),
    }


def test_bad_queries_get_clear_errors(stack, http, world) -> None:
    admin = world.tenant.admin
    cases = [
        ("/v1/metrics/nope", {"fiscal_year": 2024}, 404, "unknown_metric"),
        ("/v1/metrics/headcount", {}, 422, "period_required"),
        ("/v1/metrics/headcount", {"from": "2024-13", "to": "2024-12"}, 422, "invalid_month"),
        ("/v1/metrics/headcount", {"from": "2024-05", "to": "2024-04"}, 422, "invalid_range"),
        ("/v1/metrics/turnover_rate", {"from": "2024-04", "to": "2024-05"}, 422, "yearly_metric"),
        (
            "/v1/metrics/headcount",
            {"from": "2024-04", "to": "2024-04", "group_by": "salary"},
            422,
            "invalid_group_by",
        ),
        (
            "/v1/metrics/headcount",
            {"from": "2024-04", "to": "2024-04", "company": "NOPE"},
            404,
            "company_not_found",
        ),
        ("/v1/dashboards/nope", {}, 404, "dashboard_not_found"),
    ]
    for path, params, status, code in cases:
        response = get(http, stack, admin, path, **params)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["code"] == code


def test_disclosure_report_per_company_and_group(stack, http, world) -> None:
    response = get(http, stack, world.group_viewer, "/v1/disclosures/2024")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"] == {"start": "2024-04", "end": "2025-03"}
    hq, sub1 = body["companies"]
    assert hq["company_code"] == "HQ"
    assert sub1["company_code"] == "SUB1"
    # Managers at 2025-03: HQ E1, E2 (1 woman of 2); SUB1 S1 (0 of 1); the group 1 of 3.
    assert (hq["female_manager_ratio"], sub1["female_manager_ratio"]) == (50.0, 0.0)
    assert body["consolidated"]["female_manager_ratio"] == 33.3
    # HQ women 4.0M mean (5, 4, 3) vs men 4.333M (6, 3, 4): 92.30… → 92.3; regular women 4.5M
    # → 103.8; no non-regular man → null. The group: 4.25M / 5.25M = 80.95… → 81.0.
    assert hq["gender_pay_gap"] == {"all": 92.3, "regular": 103.8, "non_regular": None}
    assert sub1["gender_pay_gap"] == {"all": 62.5, "regular": 62.5, "non_regular": None}
    assert body["consolidated"]["gender_pay_gap"]["all"] == 81.0
    assert body["consolidated"]["gender_pay_gap"]["regular"] == 88.9
    # Men with a child born in FY 2024: E1 (leave, twice: counted once), E6 (none), S1 (purpose
    # leave only). Leave: HQ 1/2, SUB1 0/1, group 1/3 = 33; leave or purpose: group 2/3 = 66.
    assert (hq["male_childcare_leave_rate"], sub1["male_childcare_leave_rate"]) == (50.0, 0.0)
    assert body["consolidated"]["male_childcare_leave_rate"] == 33.0
    assert sub1["male_childcare_leave_or_purpose_rate"] == 100.0
    assert body["consolidated"]["male_childcare_leave_or_purpose_rate"] == 66.0
    basis = body["consolidated"]["basis"]["male_childcare_leave_rate"]
    assert (basis["numerator"], basis["denominator"]) == (1.0, 3.0)

    exported = get(http, stack, world.group_viewer, "/v1/disclosures/2024", format="csv")
    assert exported.status_code == 200
    assert exported.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][0] == "company_code"
    assert rows[1][:3] == ["HQ", "50.0", "92.3"]
    xlsx = get(http, stack, world.group_viewer, "/v1/disclosures/2024", format="xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    assert sheet.cell(row=3, column=1).value == "SUB1"


def test_a_viewer_sees_only_their_companies_and_no_pay(stack, http, world) -> None:
    viewer = world.sub1_viewer
    head = get(http, stack, viewer, "/v1/metrics/headcount", **{"from": "2024-04", "to": "2024-04"})
    assert cells(head.json()) == {("2024-04", "SUB1", None): 2}  # no HQ, no group figure
    hq = get(
        http,
        stack,
        viewer,
        "/v1/metrics/headcount",
        **{"from": "2024-04", "to": "2024-04", "company": "HQ"},
    )
    assert hq.status_code == 404
    assert (
        get(http, stack, viewer, "/v1/metrics/gender_pay_gap", fiscal_year=2024).status_code == 403
    )
    assert get(http, stack, viewer, "/v1/disclosures/2024").status_code == 403
    listed = get(http, stack, viewer, "/v1/dashboards").json()["dashboards"]
    assert "disclosure" not in {d["key"] for d in listed}
    assert "overview" in {d["key"] for d in listed}
    assert get(http, stack, viewer, "/v1/dashboards/disclosure").status_code == 404
    diversity = get(http, stack, viewer, "/v1/dashboards/diversity", fiscal_year=2024).json()
    assert "gender_pay_gap" not in {w["key"] for w in diversity["widgets"]}


def test_dashboard_has_every_widget_and_exports(stack, http, world) -> None:
    board = get(http, stack, world.tenant.admin, "/v1/dashboards/overview", fiscal_year=2024)
    assert board.status_code == 200, board.text
    body = board.json()
    assert body["period"] == {"start": "2024-04", "end": "2025-03"}
    widgets = {w["key"]: w for w in body["widgets"]}
    assert cells(widgets["headcount"])[("2024-04", None, None)] == 7
    assert cells(widgets["headcount"])[("2025-03", None, None)] == 7
    assert cells(widgets["turnover_rate"])[("2024", None, None)] == 28.6
    exported = get(
        http, stack, world.tenant.admin, "/v1/dashboards/overview/export", fiscal_year=2024
    )
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0] == ["widget", "metric", "period", "company", "group_by", "group", "value", "n"]
    assert ["headcount", "headcount", "2024-04", "consolidated", "", "", "7.0", "7"] in rows


ALL_BOARDS = {"overview", "workforce", "diversity", "turnover", "working_hours", "disclosure"}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("tenant_admin", ALL_BOARDS),
        ("group_viewer", ALL_BOARDS),
        ("viewer", ALL_BOARDS - {"disclosure"}),
        ("data_updater", ALL_BOARDS - {"disclosure"}),
    ],
)
def test_which_role_sees_which_dashboard(stack, http, world, role, expected) -> None:
    headers = {
        "tenant_admin": world.tenant.admin,
        "group_viewer": world.group_viewer,
        "viewer": world.sub1_viewer,
        "data_updater": world.updater,
    }[role]
    listed = get(http, stack, headers, "/v1/dashboards").json()["dashboards"]
    assert {d["key"] for d in listed} == expected
    for key in ALL_BOARDS:
        status = get(http, stack, headers, f"/v1/dashboards/{key}", fiscal_year=2024).status_code
        assert status == (200 if key in expected else 404), (role, key)


def test_access_rules_narrow_a_dashboard(stack, http, world) -> None:
    admin = world.tenant.admin
    default = get(http, stack, admin, "/v1/dashboards/workforce/access").json()
    assert default["custom"] is False
    assert get(http, stack, world.sub1_viewer, "/v1/dashboards/workforce").status_code == 200
    changed = http.put(
        stack.analytics_url("/v1/dashboards/workforce/access"),
        headers=admin,
        json={"roles": ["group_viewer"], "users": []},
    )
    assert changed.status_code == 200, changed.text
    assert get(http, stack, world.sub1_viewer, "/v1/dashboards/workforce").status_code == 404
    assert get(http, stack, world.group_viewer, "/v1/dashboards/workforce").status_code == 200
    assert get(http, stack, admin, "/v1/dashboards/workforce").status_code == 200
    refused = http.put(
        stack.analytics_url("/v1/dashboards/disclosure/access"),
        headers=admin,
        json={"roles": ["viewer"], "users": []},
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "pay_figures_restricted"
    not_admin = http.put(
        stack.analytics_url("/v1/dashboards/overview/access"),
        headers=world.group_viewer,
        json={"roles": [], "users": []},
    )
    assert not_admin.status_code == 403
    reset = http.delete(stack.analytics_url("/v1/dashboards/workforce/access"), headers=admin)
    assert reset.json()["custom"] is False
    assert get(http, stack, world.sub1_viewer, "/v1/dashboards/workforce").status_code == 200


async def test_views_exports_and_rule_changes_are_audited(stack, http, world) -> None:
    wanted = {
        "analytics.dashboard.viewed",
        "analytics.dashboard.exported",
        "analytics.disclosure.viewed",
        "analytics.disclosure.exported",
        "analytics.dashboard_access.changed",
        "analytics.dashboard_access.reset",
    }
    deadline = time.monotonic() + 20
    while True:
        found = http.get(
            stack.audit_url("/v1/events"),
            headers=world.tenant.admin,
            params={"action_prefix": "analytics.", "limit": 1000},
        )
        assert found.status_code == 200, found.text
        actions = {e["action"] for e in found.json()["events"]}
        if wanted <= actions or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert wanted <= actions
    for event in found.json()["events"]:  # ids and counts only: no figures, no HR data
        assert "営業部" not in str(event)
        assert "92.3" not in str(event)


def test_another_tenant_sees_none_of_it(stack, http, world) -> None:
    head = get(
        http,
        stack,
        world.other_admin,
        "/v1/metrics/headcount",
        **{"from": "2024-04", "to": "2024-04"},
    )
    assert head.status_code == 200
    assert head.json()["series"] == []


def test_a_change_is_never_answered_with_old_figures(stack, http, world) -> None:
    admin = world.tenant.admin
    joined = [*APRIL, "E7,HQ,人事部,女,1999-01-01,2024-04-15,,,正社員,×,G1"]
    made = stack.upload(
        http, admin, csv_bytes([HEADER, *joined]), "f.csv", "employees", as_of="2024-04"
    )
    assert made.status_code == 201
    # Straight away, before any message from ingestion can have arrived.
    head = get(http, stack, admin, "/v1/metrics/headcount", **{"from": "2024-04", "to": "2024-04"})
    assert cells(head.json())[("2024-04", None, None)] == 8
    deleted = http.delete(stack.ingestion_url("/v1/datasets/attendance/2024-04"), headers=admin)
    assert deleted.status_code == 204
    overtime = get(
        http,
        stack,
        admin,
        "/v1/metrics/average_overtime_hours",
        **{"from": "2024-04", "to": "2024-04"},
    )
    assert overtime.json()["series"] == []
