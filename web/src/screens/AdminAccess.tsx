// Who may open each dashboard: roles and named users. Pay figures and the disclosure report
// stay with tenant administrators and group viewers whatever is chosen here.
import { useState } from "react";
import type { FormEvent } from "react";
import { api, get } from "../api";
import { Card, ErrorMessage, Loading, Screen } from "../components/ui";
import { useAction, useLoad } from "../hooks";
import { pick, useI18n } from "../i18n";
import { ROLES, roleLabel } from "../labels";
import { useDashboards } from "./Dashboards";
import type { DashboardRef } from "./Dashboards";
import type { UserRow } from "./AdminUsers";

interface Rule {
  dashboard: string;
  roles: string[];
  users: string[];
  custom: boolean;
}

function RuleEditor({ board, users }: { board: DashboardRef; users: UserRow[] }) {
  const { lang, t } = useI18n();
  const [version, setVersion] = useState(0);
  const rule = useLoad(() => get<Rule>(`/analytics/v1/dashboards/${board.key}/access`), [board.key, version]);
  const action = useAction();
  const [saved, setSaved] = useState(false);
  const save = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    setSaved(false);
    void action.run(async () => {
      await api("PUT", `/analytics/v1/dashboards/${board.key}/access`, {
        json: { roles: data.getAll("roles").map(String), users: data.getAll("users").map(String) },
      });
      setSaved(true);
      setVersion((v) => v + 1);
    });
  };
  const reset = () =>
    action.run(async () => {
      await api("DELETE", `/analytics/v1/dashboards/${board.key}/access`);
      setVersion((v) => v + 1);
    });
  return (
    <Card title={pick(board.title, lang)} className="rule">
      {rule.loading && !rule.data ? <Loading /> : null}
      <ErrorMessage error={rule.error ?? action.error} />
      {rule.data ? (
        <form onSubmit={save} key={`${board.key}-${version}`} data-dashboard={board.key}>
          <p className="muted">{rule.data.custom ? t("access.custom") : t("access.default")}</p>
          <fieldset className="checks">
            <legend>{t("users.roles")}</legend>
            {ROLES.map((role) => (
              <label key={role} className="check">
                <input type="checkbox" name="roles" value={role} defaultChecked={rule.data?.roles.includes(role)} />
                {roleLabel(role, t)}
              </label>
            ))}
          </fieldset>
          {users.length > 0 ? (
            <fieldset className="checks">
              <legend>{t("access.users")}</legend>
              {users.map((u) => (
                <label key={u.id} className="check">
                  <input type="checkbox" name="users" value={u.id} defaultChecked={rule.data?.users.includes(u.id)} />
                  {u.username}
                </label>
              ))}
            </fieldset>
          ) : null}
          <div className="buttons">
            <button type="submit" className="primary small" disabled={action.busy}>
              {t("common.save")}
            </button>
            {rule.data.custom ? (
              <button type="button" className="small" onClick={() => void reset()} disabled={action.busy}>
                {t("access.reset")}
              </button>
            ) : null}
            {saved ? <span role="status">{t("common.saved")}</span> : null}
          </div>
        </form>
      ) : null}
    </Card>
  );
}

export function AdminAccess() {
  const { t } = useI18n();
  const boards = useDashboards();
  const users = useLoad(() => get<{ users: UserRow[] }>("/identity/v1/users", { limit: 500 }), []);
  return (
    <Screen title={t("access.title")}>
      <p className="muted">{t("access.intro")}</p>
      <ErrorMessage error={boards.error ?? users.error} />
      {boards.loading ? <Loading /> : null}
      <div className="rules">
        {boards.data?.dashboards.map((b) => (
          <RuleEditor key={b.key} board={b} users={users.data?.users ?? []} />
        ))}
      </div>
    </Screen>
  );
}
