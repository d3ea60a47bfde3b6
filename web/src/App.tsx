// The shell: sign-in state, the navigation each role is offered, the notices banner, and
// the screen for the current path.
import { useCallback, useEffect, useMemo, useState } from "react";
import type { ReactNode } from "react";
import { api, clearTokens, refresh, setSignedOutHandler } from "./api";
import { LanguageSwitch } from "./components/LanguageSwitch";
import { NoticesBanner } from "./components/NoticesBanner";
import { ErrorMessage, Loading } from "./components/ui";
import { useI18n } from "./i18n";
import type { MessageKey } from "./i18n";
import { Link, match, navigate, usePath } from "./router";
import { canUpload, isOperator, isTenantAdmin, loadSession, SessionContext } from "./session";
import type { Company, Me, Session } from "./session";
import { Account } from "./screens/Account";
import { AdminAccess } from "./screens/AdminAccess";
import { AdminAudit } from "./screens/AdminAudit";
import { AdminScim } from "./screens/AdminScim";
import { AdminSettings } from "./screens/AdminSettings";
import { AdminUsers } from "./screens/AdminUsers";
import { Dashboards, useDashboards } from "./screens/Dashboards";
import { Data } from "./screens/Data";
import { Disclosure } from "./screens/Disclosure";
import { Login } from "./screens/Login";
import { Notices } from "./screens/Notices";
import { OperatorAudit } from "./screens/OperatorAudit";
import { OperatorNotices } from "./screens/OperatorNotices";
import { OperatorReports } from "./screens/OperatorReports";
import { OperatorTenant, OperatorTenants } from "./screens/OperatorTenants";
import { SecurityReports } from "./screens/SecurityReports";

type Phase = { kind: "starting" } | { kind: "signed-out" } | { kind: "signed-in"; me: Me; companies: Company[] } | { kind: "failed"; error: unknown };

interface NavItem {
  to: string;
  label: MessageKey;
  group: MessageKey;
}

function navFor(me: Me, disclosure: boolean): NavItem[] {
  if (isOperator(me)) {
    return [
      { to: "/operator/tenants", label: "nav.tenants", group: "nav.groupOperator" },
      { to: "/operator/notices", label: "nav.operatorNotices", group: "nav.groupOperator" },
      { to: "/operator/reports", label: "nav.operatorReports", group: "nav.groupOperator" },
      { to: "/operator/audit", label: "nav.operatorAudit", group: "nav.groupOperator" },
      { to: "/account", label: "nav.account", group: "nav.groupYou" },
    ];
  }
  const items: NavItem[] = [{ to: "/dashboards/overview", label: "nav.dashboards", group: "nav.groupAnalytics" }];
  if (disclosure) items.push({ to: "/disclosure", label: "nav.disclosure", group: "nav.groupAnalytics" });
  if (canUpload(me)) items.push({ to: "/data", label: "nav.data", group: "nav.groupAnalytics" });
  if (isTenantAdmin(me)) {
    items.push(
      { to: "/admin/users", label: "nav.users", group: "nav.groupAdmin" },
      { to: "/admin/access", label: "nav.access", group: "nav.groupAdmin" },
      { to: "/admin/settings", label: "nav.settings", group: "nav.groupAdmin" },
      { to: "/admin/audit", label: "nav.audit", group: "nav.groupAdmin" },
      { to: "/admin/scim", label: "nav.scim", group: "nav.groupAdmin" },
    );
  }
  items.push(
    { to: "/notices", label: "nav.notices", group: "nav.groupYou" },
    { to: "/security-reports", label: "nav.securityReports", group: "nav.groupYou" },
    { to: "/account", label: "nav.account", group: "nav.groupYou" },
  );
  return items;
}

function Route({ path, me }: { path: string; me: Me }) {
  const { t } = useI18n();
  const operator = isOperator(me);
  const admin = isTenantAdmin(me);
  let params: Record<string, string> | null;
  if (path === "/account") return <Account />;
  if (operator) {
    if (path === "/operator/tenants") return <OperatorTenants />;
    if ((params = match("/operator/tenants/:id", path))) return <OperatorTenant id={params.id ?? ""} />;
    if (path === "/operator/notices") return <OperatorNotices />;
    if (path === "/operator/reports") return <OperatorReports />;
    if (path === "/operator/audit") return <OperatorAudit />;
    return <NotFound home="/operator/tenants" />;
  }
  if ((params = match("/dashboards/:key", path))) return <Dashboards boardKey={params.key ?? "overview"} />;
  if (path === "/disclosure") return <Disclosure />;
  if (path === "/data" && canUpload(me)) return <Data />;
  if (path === "/notices") return <Notices />;
  if (path === "/security-reports") return <SecurityReports />;
  if (admin) {
    if (path === "/admin/users") return <AdminUsers />;
    if (path === "/admin/access") return <AdminAccess />;
    if (path === "/admin/settings") return <AdminSettings />;
    if (path === "/admin/audit") return <AdminAudit />;
    if (path === "/admin/scim") return <AdminScim />;
  }
  return <NotFound home="/dashboards/overview" label={t("common.backHome")} />;
}

function NotFound({ home, label }: { home: string; label?: string }) {
  const { t } = useI18n();
  return (
    <section className="screen">
      <h1>{t("common.notFound")}</h1>
      <Link to={home}>{label ?? t("common.backHome")}</Link>
    </section>
  );
}

function Shell({ session, children }: { session: Session; children: (path: string) => ReactNode }) {
  const { t } = useI18n();
  const path = usePath();
  const { me } = session;
  const boards = useDashboards();
  const disclosure = !isOperator(me) && (boards.data?.dashboards.some((b) => b.key === "disclosure") ?? false);
  const items = navFor(me, disclosure);
  const groups = [...new Set(items.map((i) => i.group))];
  return (
    <div className="shell">
      <header className="topbar">
        <Link to="/" className="brand">
          <span className="logo">人</span> {t("app.name")}
        </Link>
        <span className="who" data-testid="who">
          {me.tenant} / {me.username}
        </span>
        <LanguageSwitch />
        <button type="button" className="link" onClick={() => void session.signOut()}>
          {t("nav.signOut")}
        </button>
      </header>
      <div className="body">
        <nav className="sidebar" aria-label={t("nav.main")}>
          {groups.map((group) => (
            <div key={group} className="nav-group">
              <h2>{t(group)}</h2>
              <ul>
                {items
                  .filter((i) => i.group === group)
                  .map((i) => (
                    <li key={i.to}>
                      <Link
                        to={i.to}
                        className={path === i.to || (i.to.startsWith("/dashboards") && path.startsWith("/dashboards")) || (i.to !== "/" && path.startsWith(`${i.to}/`)) ? "active" : undefined}
                      >
                        {t(i.label)}
                      </Link>
                    </li>
                  ))}
              </ul>
            </div>
          ))}
        </nav>
        <main className="content">
          {!isOperator(me) ? <NoticesBanner /> : null}
          {children(path)}
        </main>
      </div>
    </div>
  );
}

export function App() {
  const { t } = useI18n();
  const [phase, setPhase] = useState<Phase>({ kind: "starting" });

  const enter = useCallback(async () => {
    try {
      const { me, companies } = await loadSession();
      setPhase({ kind: "signed-in", me, companies });
      if (location.pathname === "/" || location.pathname === "/login") {
        navigate(isOperator(me) ? "/operator/tenants" : "/dashboards/overview", true);
      }
    } catch (error) {
      setPhase({ kind: "failed", error });
    }
  }, []);

  useEffect(() => {
    setSignedOutHandler(() => setPhase({ kind: "signed-out" }));
    // A reload or a new tab: the refresh cookie, if any, gives a new access token.
    void refresh().then((ok) => (ok ? enter() : setPhase({ kind: "signed-out" })));
  }, [enter]);

  const session = useMemo<Session | null>(() => {
    if (phase.kind !== "signed-in") return null;
    return {
      me: phase.me,
      companies: phase.companies,
      reload: enter,
      signOut: async () => {
        try {
          await api("POST", "/identity/v1/logout");
        } catch {
          // already signed out: nothing to end
        }
        clearTokens();
        setPhase({ kind: "signed-out" });
        navigate("/", true);
      },
    };
  }, [phase, enter]);

  if (phase.kind === "starting") return <Loading />;
  if (phase.kind === "failed") {
    return (
      <main className="login">
        <ErrorMessage error={phase.error} />
        <button type="button" onClick={() => setPhase({ kind: "signed-out" })}>
          {t("login.title")}
        </button>
      </main>
    );
  }
  if (phase.kind === "signed-out" || session === null) return <Login onSignedIn={() => void enter()} />;
  return (
    <SessionContext.Provider value={session}>
      <Shell session={session}>{(current) => <Route path={current === "/" ? (isOperator(session.me) ? "/operator/tenants" : "/dashboards/overview") : current} me={session.me} />}</Shell>
    </SessionContext.Provider>
  );
}
