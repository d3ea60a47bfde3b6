"""Who sees what (control 9.4.1): dashboards by role or user, companies by token, pay figures
by role.

- Row scope: ``tenant_admin`` and ``group_viewer`` see every company and the group
  (consolidated figures); ``viewer`` and ``data_updater`` see only the companies in their
  token's ``companies`` and never a consolidated figure, which would include the others.
- Pay figures (the gender pay gap metrics) and the disclosure report are for ``tenant_admin``
  and ``group_viewer`` only, whatever a dashboard's access rule says: a rule can narrow who
  sees a dashboard, never widen who sees pay.
- Dashboards: every tenant role sees ``overview``; the rule of a dashboard (roles and users,
  set by tenant admins) replaces its default. ``tenant_admin`` always sees every dashboard, so
  the people who set rules cannot lock themselves out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from jinji.errors import Forbidden
from jinji.tokens import Principal

TENANT_ROLES = ("tenant_admin", "group_viewer", "viewer", "data_updater")
ALL_COMPANIES = frozenset({"tenant_admin", "group_viewer"})
PAY_ROLES = ALL_COMPANIES
PAY_METRICS = frozenset({"gender_pay_gap", "gender_pay_gap_regular", "gender_pay_gap_non_regular"})


@dataclass(frozen=True)
class Scope:
    companies: frozenset[str] | None  # None: every company of the tenant
    consolidated: bool
    pay: bool

    def may_see_company(self, code: str) -> bool:
        return self.companies is None or code in self.companies

    def visible(self, tenant_companies: tuple[str, ...]) -> list[str]:
        return [code for code in tenant_companies if self.may_see_company(code)]


def scope_of(principal: Principal) -> Scope:
    if principal.roles & ALL_COMPANIES:
        return Scope(None, consolidated=True, pay=True)
    return Scope(frozenset(principal.companies), consolidated=False, pay=False)


def tenant_of(principal: Principal) -> uuid.UUID:
    if principal.tenant_id is None:
        raise Forbidden("A tenant user's token is needed.")
    return uuid.UUID(principal.tenant_id)


@dataclass(frozen=True)
class Rule:
    roles: tuple[str, ...]
    users: tuple[uuid.UUID, ...]
    custom: bool  # set by a tenant admin (else the default)

    def as_dict(self) -> dict[str, object]:
        return {
            "roles": list(self.roles),
            "users": [str(u) for u in self.users],
            "custom": self.custom,
        }


def may_view(rule: Rule, principal: Principal, *, needs_pay: bool) -> bool:
    if needs_pay and not principal.roles & PAY_ROLES:
        return False
    if "tenant_admin" in principal.roles:
        return True
    if principal.roles & set(rule.roles):
        return True
    return any(str(user) == principal.subject for user in rule.users)
