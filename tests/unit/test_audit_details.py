"""Audit event details are checked where they are recorded, as the audit log checks them: a
service cannot queue an event the audit log would refuse (it would wait in the outbox
forever and hold back the events queued after it)."""

from __future__ import annotations

import pytest

from jinji.audit import check_details


def test_ids_codes_numbers_and_code_lists_pass() -> None:
    check_details({"kind": "employees", "rows": 3, "roles": "tenant_admin viewer", "ok": True})


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"roles": ["viewer"]}, "roles"),
        ({"tenants": ["a", "b"]}, "tenants"),
        ({"who": "yamada@example.jp"}, "who"),
        ({"note": "山田さんが退職"}, "note"),
        ({"bad key": 1}, "bad key"),
    ],
)
def test_anything_that_could_be_personal_data_is_refused(details, field) -> None:
    with pytest.raises(ValueError, match=f"details.{field}"):
        check_details(details)
