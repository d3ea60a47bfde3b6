"""The web console as its users meet it, in Chromium: the operator's first sign-in (new
password, TOTP enrolment, recovery codes) and a new tenant; the tenant's administrator
uploading HR files and reading the charts and the disclosure figures the APIs compute; a file
with errors; a viewer enrolling TOTP, signing in with a code, and never offered the
disclosure report; the other screens, in Japanese and in English.

The tests are one journey, in order, each step starting where the last one left off. Each
main screen is saved as a screenshot under test-artifacts/console/.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.analytics.test_analytics import APRIL, CHILDCARE, HEADER, MARCH, PAYROLL, csv_bytes
from tests.conftest import Stack
from tests.console.conftest import Totp, new_page

OPERATOR_PASSWORD = "a long platform passphrase"
ADMIN_PASSWORD = "a manager's own passphrase"
VIEWER_PASSWORD = "a viewer's own passphrase"
# Row 3: an unknown company; row 4: a gender that is none; row 5: no employee number.
BAD_EMPLOYEES = csv_bytes(
    [
        HEADER,
        "E1,HQ,営業部,男,1980-01-01,2010-04-01,,,正社員,○,G3",
        "E2,XX,営業部,女,1985-01-01,2012-04-01,,,正社員,○,G3",
        "E3,HQ,営業部,不詳,1990-01-01,2015-04-01,,,正社員,×,G2",
        ",HQ,人事部,女,1992-01-01,2018-04-01,,,契約社員,×,G1",
    ]
)


@dataclass
class Journey:
    """What one step leaves for the next: pages still signed in, secrets, the tenant."""

    contexts: list[BrowserContext] = field(default_factory=list)
    operator: Page | None = None
    operator_totp: Totp | None = None
    slug: str = ""
    admin_otp: str = ""
    admin: Page | None = None
    admin_refresh: str = ""
    viewer: Page | None = None


@pytest.fixture(scope="module")
async def journey(browser: Browser):
    state = Journey()
    yield state
    for context in state.contexts:
        await context.close()


async def open_page(browser: Browser, journey: Journey) -> Page:
    context, page = await new_page(browser)
    journey.contexts.append(context)
    return page


async def shot(page: Page, artifacts: Path, name: str) -> None:
    await page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


async def no_csp_violations(page: Page) -> None:
    """Nothing the CSP refused, no uncaught error since the page last loaded."""
    assert await page.evaluate("window.__cspViolations") == []
    assert await page.evaluate("window.__errors") == []


async def storage_holds_nothing(page: Page) -> None:
    """The access token lives in memory only; the refresh token only in the httpOnly cookie."""
    assert await page.evaluate("localStorage.length") == 0
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.evaluate("document.cookie") == ""
    cookies = {c["name"]: c for c in await page.context.cookies()}
    refresh = cookies["jinji_refresh"]
    assert refresh["httpOnly"] is True
    assert refresh["secure"] is True
    assert refresh["sameSite"] == "Strict"
    assert refresh["path"] == "/identity/oauth2/token"


async def sign_in(page: Page, stack: Stack, tenant: str, username: str, password: str) -> None:
    await page.goto(stack.base + "/")
    await expect(page.get_by_role("heading", name="ログイン")).to_be_visible()
    await page.get_by_label("テナントID").fill(tenant)
    await page.get_by_label("ユーザー名").fill(username)
    await page.get_by_label("パスワード").fill(password)
    await page.get_by_role("button", name="ログイン").click()


async def change_password(page: Page, new_password: str) -> None:
    await expect(page.get_by_role("heading", name="パスワードの変更")).to_be_visible()
    await page.get_by_label("新しいパスワード", exact=True).fill(new_password)
    await page.get_by_label("新しいパスワード（確認）").fill(new_password)
    await page.get_by_role("button", name="変更して続ける").click()


async def enrol_totp(page: Page) -> Totp:
    """Scan the QR code (here: read the key shown beside it) and confirm with a code."""
    await expect(page.get_by_role("img", name="認証アプリ登録用のQRコード")).to_be_visible()
    secret = await page.get_by_test_id("totp-secret").get_attribute("data-secret")
    assert secret
    totp = Totp(secret)
    await page.get_by_label("確認コード").fill(totp.next_code())
    await page.get_by_role("button", name="登録する").click()
    codes = page.get_by_test_id("recovery-codes").locator("li")
    await expect(codes).to_have_count(10)
    return totp


async def api_tokens(stack: Stack, refresh_token: str) -> tuple[dict[str, str], str]:
    """An access token from an API refresh token (rotated: the new one is returned)."""
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            stack.url("/oauth2/token"),
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {"Authorization": f"Bearer {body['access_token']}"}, body["refresh_token"]


async def as_admin(stack: Stack, journey: Journey, path: str, **params: Any) -> httpx.Response:
    """The tenant administrator's view through the API, to compare with what is shown."""
    headers, journey.admin_refresh = await api_tokens(stack, journey.admin_refresh)
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(f"{stack.base}{path}", headers=headers, params=params)


async def upload(page: Page, kind: str, content: bytes, name: str, as_of: str | None = None):
    await page.get_by_label("データの種類").select_option(label=kind)
    if as_of is not None:
        await page.get_by_label("基準年月").fill(as_of)
    await page.locator("input[name=file]").set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": content}]
    )
    await page.get_by_role("button", name="アップロード").click()


async def search_until_found(page: Page, action: str) -> None:
    """Search the audit trail until ``action`` shows: events reach it through an outbox,
    a moment after the change (as a person would search again)."""
    events = page.get_by_test_id("audit-events")
    for _ in range(30):
        await page.get_by_role("button", name="検索").click()
        await expect(page.get_by_role("heading", name="記録")).to_be_visible()
        if await events.get_by_text(action).count():
            return
        await page.wait_for_timeout(1000)
    raise AssertionError(f"{action} never reached the audit trail")


# --------------------------------------------------------------------------- the journey


async def test_operator_first_sign_in_enrols_totp_and_creates_a_tenant(
    gateway: Stack, browser: Browser, journey: Journey, artifacts: Path
) -> None:
    page = journey.operator = await open_page(browser, journey)
    await page.goto(gateway.base + "/")
    assert await page.evaluate("document.documentElement.lang") == "ja"
    await shot(page, artifacts, "01-login")
    first = gateway.first_login
    await sign_in(page, gateway, first.tenant, first.username, first.one_time_password)
    await change_password(page, OPERATOR_PASSWORD)
    # Operators always use a second factor: enrolment is part of the first sign-in.
    await expect(page.get_by_role("heading", name="認証アプリの登録")).to_be_visible()
    await shot(page, artifacts, "02-totp-enrolment")
    journey.operator_totp = await enrol_totp(page)
    await shot(page, artifacts, "03-recovery-codes")
    await page.get_by_role("button", name="控えました。続ける").click()

    await expect(page.get_by_role("heading", name="テナント", exact=True)).to_be_visible()
    await storage_holds_nothing(page)
    await page.get_by_label("テナントID").fill("kabushiki")
    await page.get_by_label("名称").fill("人事テスト株式会社")
    await page.get_by_label("席数").fill("20")
    await page.get_by_label("会社").fill("HQ,本社\nSUB1,子会社")
    await page.get_by_label("全ユーザーに二要素認証を必須にする").uncheck()
    await page.get_by_role("button", name="作成する").click()
    created = page.get_by_test_id("initial-admin")
    await expect(created).to_be_visible(timeout=60_000)
    journey.slug = "kabushiki"
    journey.admin_otp = await created.locator("code.secret").get_attribute("data-secret") or ""
    assert len(journey.admin_otp) >= 12
    await expect(page.locator("tr[data-slug=kabushiki]")).to_contain_text("利用中")
    await shot(page, artifacts, "04-operator-tenants")
    await no_csp_violations(page)


async def test_tenant_admin_first_sign_in_and_a_reload_keeps_the_session(
    gateway: Stack, browser: Browser, journey: Journey, artifacts: Path
) -> None:
    page = journey.admin = await open_page(browser, journey)
    await sign_in(page, gateway, journey.slug, "admin", journey.admin_otp)
    await change_password(page, ADMIN_PASSWORD)
    await expect(page.get_by_role("heading", name="ダッシュボード")).to_be_visible()
    await expect(page).to_have_url(f"{gateway.base}/dashboards/overview")
    await expect(page.get_by_test_id("who")).to_have_text(f"{journey.slug} / admin")
    await storage_holds_nothing(page)

    # A reload forgets the in-memory token: the httpOnly cookie brings a new one.
    await page.reload()
    await expect(page.get_by_test_id("who")).to_have_text(f"{journey.slug} / admin")
    await expect(page.get_by_role("heading", name="ダッシュボード")).to_be_visible()

    # The same administrator through the API, for comparing figures with what is shown.
    async with httpx.AsyncClient(timeout=30) as http:
        signed_in = await http.post(
            gateway.url("/v1/login"),
            json={"tenant": journey.slug, "username": "admin", "password": ADMIN_PASSWORD},
        )
    assert signed_in.status_code == 200, signed_in.text
    journey.admin_refresh = signed_in.json()["refresh_token"]
    await no_csp_violations(page)


async def test_uploads_then_the_headcount_chart_shows_the_figures_of_the_api(
    gateway: Stack, journey: Journey, artifacts: Path
) -> None:
    page = journey.admin
    assert page is not None
    await page.get_by_role("link", name="データ").click()
    await expect(page.get_by_role("heading", name="データ", exact=True)).to_be_visible()
    success = page.get_by_test_id("upload-success")
    for kind, content, name, as_of, shown in (
        ("従業員", csv_bytes([HEADER, *APRIL]), "社員2024年4月.csv", "2024-04", "従業員 2024-04"),
        ("従業員", csv_bytes([HEADER, *MARCH]), "社員2025年3月.csv", "2025-03", "従業員 2025-03"),
        ("給与", csv_bytes(PAYROLL), "給与2024.csv", None, "給与 2024"),
        ("育児休業", csv_bytes(CHILDCARE), "育児.csv", None, "育児休業 all"),
    ):
        await upload(page, kind, content, name, as_of)
        await expect(success).to_contain_text(shown)
    history = page.get_by_test_id("upload-history").locator("tbody tr")
    await expect(history).to_have_count(4)
    await expect(page.get_by_test_id("datasets").locator("tbody tr")).to_have_count(4)
    await shot(page, artifacts, "05-data")

    await page.get_by_role("link", name="ダッシュボード").click()
    widget = page.locator("[data-widget=headcount]")
    # FY 2024 (April–March) is the latest year with data: the default.
    await expect(page.get_by_label("年度")).to_have_value("2024")
    await expect(widget.locator("canvas").first).to_be_visible()
    await widget.get_by_text("数値を表で見る").click()
    rows = widget.locator("tr[data-period]")
    shown = {
        (await r.get_attribute("data-period"), await r.get_attribute("data-company")): (
            await r.get_attribute("data-value")
        )
        for r in await rows.all()
    }
    board = await as_admin(gateway, journey, "/analytics/v1/dashboards/overview", fiscal_year=2024)
    assert board.status_code == 200, board.text
    series = next(w for w in board.json()["widgets"] if w["key"] == "headcount")["series"]
    expected = {(c["period"], c["company"] or ""): c["value"] for c in series}
    assert shown.keys() == expected.keys()
    assert all(_same(shown[key], value) for key, value in expected.items())
    # The hand-counted April 2024 headcount (tests/analytics): 5 at HQ, 2 at SUB1, 7 in all.
    assert expected[("2024-04", "")] == 7
    assert expected[("2024-04", "HQ")] == 5
    await expect(widget.locator("tr[data-period='2024-04'][data-company='']")).to_contain_text(
        "7人"
    )
    await shot(page, artifacts, "06-dashboard-overview")

    # Breakdown cells about fewer than 5 people are hidden, and shown as hidden.
    await page.get_by_role("link", name="人員構成").click()
    departments = page.locator("[data-widget=by_department]")
    await expect(departments.locator("canvas").first).to_be_visible()
    board = await as_admin(gateway, journey, "/analytics/v1/dashboards/workforce", fiscal_year=2024)
    cells = next(w for w in board.json()["widgets"] if w["key"] == "by_department")["series"]
    hidden = [c for c in cells if c["suppressed"]]
    assert hidden
    await expect(departments.locator("tr.suppressed")).to_have_count(len(hidden))
    for cell in hidden:
        row = departments.locator(
            f"tr[data-company='{cell['company'] or ''}'][data-group='{cell['group']}']"
        )
        await expect(row).to_contain_text("秘匿")
    await expect(departments.get_by_test_id("suppressed-note")).to_contain_text("5人未満")
    await departments.get_by_text("数値を表で見る").click()
    await shot(page, artifacts, "07-dashboard-workforce")
    await no_csp_violations(page)


def _same(shown: str | None, value: float | None) -> bool:
    """A cell's data-value against the API's number (JSON 50.0 is shown as 50)."""
    return shown == "" if value is None else shown is not None and float(shown) == value


def _figure_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}".removesuffix(".0") + "%"


async def test_the_disclosure_figures_are_those_of_the_api_and_export_as_csv(
    gateway: Stack, journey: Journey, artifacts: Path
) -> None:
    page = journey.admin
    assert page is not None
    await page.get_by_role("link", name="人的資本開示").click()
    table = page.get_by_test_id("disclosure-table")
    await expect(table).to_be_visible()
    await expect(page.get_by_label("年度")).to_have_value("2024")
    report = await as_admin(gateway, journey, "/analytics/v1/disclosures/2024")
    assert report.status_code == 200, report.text
    body = report.json()
    expected = {
        "female_manager_ratio": lambda e: e["female_manager_ratio"],
        "gender_pay_gap_all": lambda e: e["gender_pay_gap"]["all"],
        "gender_pay_gap_regular": lambda e: e["gender_pay_gap"]["regular"],
        "gender_pay_gap_non_regular": lambda e: e["gender_pay_gap"]["non_regular"],
        "male_childcare_leave_rate": lambda e: e["male_childcare_leave_rate"],
        "male_childcare_leave_or_purpose_rate": lambda e: e["male_childcare_leave_or_purpose_rate"],
    }
    entries = [(e["company_code"], e) for e in body["companies"]] + [("", body["consolidated"])]
    non_null = 0
    for code, entry in entries:
        row = table.locator(f"tr[data-company='{code}']")
        for key, value_of in expected.items():
            value = value_of(entry)
            cell = row.locator(f"td[data-figure={key}]")
            assert _same(await cell.get_attribute("data-value"), value), (code, key)
            await expect(cell.locator(".figure-cell")).to_have_text(_figure_text(value))
            non_null += value is not None
    assert non_null >= 10  # real figures, not a table of blanks
    await shot(page, artifacts, "08-disclosure")

    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="CSV出力").click()
    download = await download_info.value
    assert download.suggested_filename == "disclosure-2024.csv"
    exported = await asyncio.to_thread(Path(await download.path()).read_bytes)
    same = await as_admin(gateway, journey, "/analytics/v1/disclosures/2024", format="csv")
    assert exported == same.content
    header = next(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert header[0] == "company_code"
    await no_csp_violations(page)


async def test_an_upload_with_errors_shows_each_row_and_column_in_a_table(
    gateway: Stack, journey: Journey, artifacts: Path
) -> None:
    page = journey.admin
    assert page is not None
    # The file through the API first: the table must list exactly its errors.
    headers, journey.admin_refresh = await api_tokens(gateway, journey.admin_refresh)
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(
            gateway.ingestion_url("/v1/uploads"),
            headers=headers,
            files={"file": ("x.csv", BAD_EMPLOYEES)},
            data={"kind": "employees", "as_of": "2024-05"},
        )
    assert refused.status_code == 422
    listed = refused.json()["error"]["details"]["errors"]
    assert {e["row"] for e in listed} >= {3, 4, 5}
    await page.get_by_role("link", name="データ").click()
    await upload(page, "従業員", BAD_EMPLOYEES, "間違い.csv", "2024-05")
    errors = page.get_by_test_id("upload-errors")
    await expect(errors).to_be_visible()
    rows = errors.locator("tbody tr")
    await expect(rows).to_have_count(len(listed))
    for row, error in zip(await rows.all(), listed, strict=True):
        cells = await row.locator("td").all_inner_texts()
        assert cells[0] == str(error["row"])
        assert cells[1] == (error["column"] or "—")
        assert cells[3] == error["message"]
    await expect(errors).to_contain_text(f"{refused.json()['error']['details']['total']}件の誤り")
    # Nothing was stored: the history lists both rejections, the datasets stay four.
    await expect(page.get_by_test_id("upload-history").locator("tr.rejected")).to_have_count(2)
    await expect(page.get_by_test_id("datasets").locator("tbody tr")).to_have_count(4)
    await shot(page, artifacts, "09-data-upload-errors")

    # The templates to fill in: Japanese headers in CP932, as Excel on Japanese Windows reads.
    templates = page.locator(".card", has=page.get_by_role("heading", name="テンプレート"))
    async with page.expect_download() as download_info:
        await (
            templates.get_by_role("row", name="従業員")
            .get_by_role("button", name="日本語 CSV")
            .click()
        )
    template = await download_info.value
    assert template.suggested_filename == "jinji-employees-template-ja.csv"
    content = await asyncio.to_thread(Path(await template.path()).read_bytes)
    assert content.decode("cp932").startswith("社員番号,会社コード")
    await no_csp_violations(page)


async def test_a_viewer_enrols_totp_signs_in_with_a_code_and_is_never_offered_the_disclosure(
    gateway: Stack, browser: Browser, journey: Journey, artifacts: Path
) -> None:
    admin = journey.admin
    assert admin is not None
    await admin.get_by_role("link", name="ユーザー").click()
    await expect(admin.get_by_test_id("seats")).to_contain_text("利用中 1 席")
    await admin.get_by_label("ユーザー名").fill("sato")
    await admin.get_by_label("子会社（SUB1）").check()
    await admin.get_by_role("button", name="追加する").click()
    once = admin.get_by_test_id("one-time-password")
    await expect(once).to_be_visible()
    otp = await once.locator("code").get_attribute("data-secret")
    assert otp
    await expect(admin.locator("tr[data-username=sato]")).to_contain_text("閲覧者")
    await expect(admin.get_by_test_id("seats")).to_contain_text("利用中 2 席")
    await shot(admin, artifacts, "10-admin-users")

    page = journey.viewer = await open_page(browser, journey)
    await sign_in(page, gateway, journey.slug, "sato", otp)
    await change_password(page, VIEWER_PASSWORD)
    await expect(page.get_by_role("heading", name="ダッシュボード")).to_be_visible()

    # Enrol an authenticator on the account screen, then sign in again with a code.
    await page.get_by_role("link", name="アカウント・セッション").click()
    await expect(page.get_by_test_id("mfa-status")).to_have_text("二要素認証は無効です。")
    await page.get_by_role("button", name="認証アプリを登録する").click()
    totp = await enrol_totp(page)
    await expect(page.get_by_test_id("mfa-status")).to_have_text("二要素認証は有効です。")
    await shot(page, artifacts, "11-account-mfa")
    await page.get_by_role("button", name="ログアウト").click()
    await sign_in(page, gateway, journey.slug, "sato", VIEWER_PASSWORD)
    await expect(page.get_by_role("heading", name="二要素認証")).to_be_visible()
    await shot(page, artifacts, "12-login-totp")
    await page.get_by_label("確認コード").fill(totp.next_code())
    await page.get_by_role("button", name="確認").click()
    await expect(page.get_by_role("heading", name="ダッシュボード")).to_be_visible()
    await storage_holds_nothing(page)

    # The viewer sees SUB1 only, no consolidated figure, and no disclosure anywhere.
    widget = page.locator("[data-widget=headcount]")
    await expect(widget.locator("canvas").first).to_be_visible()
    cells = await widget.locator("tr[data-period]").all()
    companies = {await r.get_attribute("data-company") for r in cells}
    assert companies == {"SUB1"}
    nav = page.get_by_role("navigation", name="メニュー")
    await expect(nav.get_by_role("link", name="ダッシュボード")).to_be_visible()
    await expect(nav.get_by_role("link", name="人的資本開示")).to_have_count(0)
    await expect(page.locator(".tabs a")).not_to_have_count(0)
    await expect(page.locator(".tabs").get_by_text("人的資本開示")).to_have_count(0)
    await shot(page, artifacts, "13-viewer-dashboard")
    await page.goto(gateway.base + "/disclosure")
    not_offered = page.get_by_text("テナント管理者とグループ閲覧者のみが利用できます")
    await expect(not_offered).to_be_visible()
    await expect(page.get_by_test_id("disclosure-table")).to_have_count(0)
    # The tenant administrator is offered it, as the API says.
    admin_nav = admin.get_by_role("navigation", name="メニュー")
    await expect(admin_nav.get_by_role("link", name="人的資本開示")).to_be_visible()
    await no_csp_violations(page)


async def test_the_other_screens_work_in_japanese_and_in_english(
    gateway: Stack, journey: Journey, artifacts: Path
) -> None:
    admin, operator, viewer = journey.admin, journey.operator, journey.viewer
    assert admin is not None
    assert operator is not None
    assert viewer is not None

    # A security report from the viewer reaches the operators, who start investigating.
    await viewer.get_by_role("link", name="セキュリティ報告").click()
    await viewer.get_by_label("件名").fill("不審なログイン通知")
    await viewer.get_by_label("内容").fill("見覚えのないログインの通知メールが届きました。")
    await viewer.get_by_role("button", name="送信").click()
    await expect(viewer.get_by_text("報告を受け付けました。")).to_be_visible()
    await expect(viewer.get_by_role("button", name="不審なログイン通知")).to_be_visible()
    await shot(viewer, artifacts, "14-security-report")
    await operator.get_by_role("link", name="セキュリティ報告対応").click()
    await operator.get_by_role("button", name="不審なログイン通知").click()
    await operator.get_by_label("対応内容").fill("ログイン履歴を確認中です。")
    await operator.get_by_role("button", name="保存").click()
    await expect(operator.locator(".report-detail .history li")).to_have_count(2)
    await shot(operator, artifacts, "15-operator-reports")

    # An incident notice shows as a banner to the tenant's users.
    await operator.get_by_role("link", name="お知らせ配信").click()
    await operator.get_by_label("種類").select_option("incident")
    await operator.get_by_label("重要度").select_option("warning")
    await operator.get_by_label("件名（日本語）").fill("一部機能の遅延")
    await operator.get_by_label("件名（英語）").fill("Some features are slow")
    await operator.get_by_label("本文（日本語）").fill("ダッシュボードの表示が遅くなっています。")
    await operator.get_by_label("本文（英語）").fill("Dashboards are loading slowly.")
    await operator.get_by_label("開始日時").fill("2020-01-01T00:00")
    await operator.get_by_role("button", name="配信する").click()
    await expect(operator.locator(".notices li")).to_have_count(1)
    await shot(operator, artifacts, "16-operator-notices")
    await admin.reload()
    await expect(admin.get_by_test_id("notice-banner")).to_contain_text("一部機能の遅延")

    # The operator's view of the tenant: its contract and its asset inventory.
    await operator.get_by_role("link", name="テナント", exact=True).click()
    href = await operator.locator("tr[data-slug=kabushiki] a").get_attribute("href")
    assert href is not None
    await operator.locator("tr[data-slug=kabushiki] a").click()
    await expect(
        operator.get_by_role("heading", name="人事テスト株式会社（kabushiki）")
    ).to_be_visible()
    await expect(operator.get_by_text("4版・")).to_be_visible()  # the four dataset versions
    await expect(operator.get_by_text("有効 2・無効 0")).to_be_visible()
    await shot(operator, artifacts, "17-operator-tenant")

    # The operator searches the tenant's audit stream and verifies it.
    await operator.get_by_role("link", name="監査ログ検索").click()
    await operator.get_by_label("ストリーム").fill(href.rsplit("/", 1)[1])
    await search_until_found(operator, "user.created")
    await operator.get_by_role("button", name="完全性を検証").click()
    verified = operator.get_by_test_id("audit-verification")
    await expect(verified).to_contain_text("改ざんはありません")
    await shot(operator, artifacts, "18-operator-audit")

    # The tenant administrator's screens.
    await admin.get_by_role("link", name="監査ログ").click()
    await admin.get_by_role("button", name="完全性を検証").click()
    await expect(admin.get_by_test_id("audit-verification")).to_contain_text("改ざんはありません")
    await search_until_found(admin, "user.created")
    await shot(admin, artifacts, "19-admin-audit")
    await admin.get_by_role("link", name="閲覧権限").click()
    disclosure_rule = admin.locator("form[data-dashboard=disclosure]")
    await expect(disclosure_rule).to_be_visible()
    await disclosure_rule.get_by_label("閲覧者", exact=True).check()
    await disclosure_rule.get_by_role("button", name="保存").click()
    # Pay figures stay with administrators and group viewers, whatever is chosen.
    await expect(disclosure_rule.locator("xpath=..").get_by_role("alert")).to_contain_text(
        "テナント管理者とグループ閲覧者にのみ"
    )
    await shot(admin, artifacts, "20-admin-access")
    await admin.get_by_role("link", name="テナント設定").click()
    await admin.get_by_label("最小集計人数").fill("3")
    await admin.get_by_role("button", name="保存").click()
    await expect(admin.get_by_text("保存しました")).to_be_visible()
    await shot(admin, artifacts, "21-admin-settings")
    await admin.get_by_role("link", name="SCIM連携").click()
    await admin.get_by_role("button", name="トークンを発行").click()
    await expect(admin.get_by_test_id("scim-token")).to_be_visible()
    await shot(admin, artifacts, "22-admin-scim")
    await admin.get_by_role("link", name="アカウント・セッション").click()
    await expect(admin.get_by_test_id("sessions").locator("tr.current")).to_have_count(1)
    await shot(admin, artifacts, "23-account-sessions")

    # English, on request; the choice is only a display preference.
    await admin.get_by_role("button", name="English").click()
    assert await admin.evaluate("document.documentElement.lang") == "en"
    await admin.get_by_role("link", name="Dashboards").click()
    await expect(admin.get_by_role("heading", name="Dashboards")).to_be_visible()
    await expect(admin.locator("[data-widget=headcount] h2")).to_have_text("Headcount")
    await expect(admin.get_by_label("Fiscal year")).to_have_value("2024")
    await expect(admin.get_by_label("Fiscal year").locator("option:checked")).to_have_text("FY2024")
    await shot(admin, artifacts, "24-dashboard-english")
    await admin.get_by_role("button", name="日本語").click()
    await expect(admin.get_by_label("年度").locator("option:checked")).to_have_text(
        "2024年度（令和6年度）"
    )
    for page in (admin, operator, viewer):
        await no_csp_violations(page)
