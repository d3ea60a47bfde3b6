// Tenant administrators manage their users: create (one-time password), roles, company
// scope, disable/enable, reset, delete; and see the seats in use.
import { useState } from "react";
import type { FormEvent } from "react";
import { api, get } from "../api";
import { Card, ErrorMessage, Field, Loading, OnceBox, Screen } from "../components/ui";
import * as format from "../format";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";
import { companyLabel, ROLES, roleLabel } from "../labels";
import { useSession } from "../session";

export interface UserRow {
  id: string;
  username: string;
  roles: string[];
  companies: string[];
  active: boolean;
  mfa_enabled: boolean;
  must_change_password: boolean;
  created_at: string;
}

interface Secret {
  username: string;
  password: string;
}

function RolesAndCompanies({ roles, companies }: { roles: string[]; companies: string[] }) {
  const { t } = useI18n();
  const session = useSession();
  return (
    <>
      <fieldset className="checks">
        <legend>{t("users.roles")}</legend>
        {ROLES.map((role) => (
          <label key={role} className="check">
            <input type="checkbox" name="roles" value={role} defaultChecked={roles.includes(role)} />
            {roleLabel(role, t)}
          </label>
        ))}
      </fieldset>
      <fieldset className="checks">
        <legend>{t("users.companies")}</legend>
        {session.companies.map((c) => (
          <label key={c.code} className="check">
            <input type="checkbox" name="companies" value={c.code} defaultChecked={companies.includes(c.code)} />
            {companyLabel(c.code, session.companies, t)}
          </label>
        ))}
        <span className="field-hint">{t("users.companiesHint")}</span>
      </fieldset>
    </>
  );
}

function Seats({ tick }: { tick: number }) {
  const { lang, t } = useI18n();
  const { me } = useSession();
  const tenant = useLoad(() => get<{ seats: number }>(`/tenants/v1/tenants/${me.tenant_id}`), [tick]);
  const assets = useLoad(
    () => get<{ users: { active: number } }>(`/tenants/v1/tenants/${me.tenant_id}/assets`),
    [tick],
  );
  if (!tenant.data || !assets.data) return null;
  const used = assets.data.users.active;
  const seats = tenant.data.seats;
  return (
    <p className="seats" data-testid="seats">
      {t("users.seats", {
        used: format.plainNumber(used, lang),
        seats: format.plainNumber(seats, lang),
        free: format.plainNumber(Math.max(seats - used, 0), lang),
      })}
      <meter min={0} max={seats} value={used} />
    </p>
  );
}

export function AdminUsers() {
  const { lang, t } = useI18n();
  const { companies } = useSession();
  const [tick, setTick] = useState(0);
  const users = useLoad(() => get<{ users: UserRow[]; total: number }>("/identity/v1/users", { limit: 500 }), [tick]);
  const action = useAction();
  const [secret, setSecret] = useState<Secret | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const changed = () => setTick((n) => n + 1);

  const create = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    void action.run(async () => {
      const made = await api<{ username: string; one_time_password: string }>("POST", "/identity/v1/users", {
        json: {
          username: String(data.get("username")).trim(),
          roles: data.getAll("roles").map(String),
          companies: data.getAll("companies").map(String),
        },
      });
      setSecret({ username: made.username, password: made.one_time_password });
      form.reset();
      changed();
    });
  };

  const save = (user: UserRow) => (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    void action.run(async () => {
      await api("PATCH", `/identity/v1/users/${user.id}`, {
        json: { roles: data.getAll("roles").map(String), companies: data.getAll("companies").map(String) },
      });
      setEditing(null);
      changed();
    });
  };

  const setActive = (user: UserRow, active: boolean) =>
    action.run(async () => {
      await api("PATCH", `/identity/v1/users/${user.id}`, { json: { active } });
      changed();
    });

  const reset = (user: UserRow) =>
    action.run(async () => {
      if (!window.confirm(t("users.confirmReset", { user: user.username }))) return;
      const done = await api<{ one_time_password: string }>("POST", `/identity/v1/users/${user.id}/reset`);
      setSecret({ username: user.username, password: done.one_time_password });
      changed();
    });

  const remove = (user: UserRow) =>
    action.run(async () => {
      if (!window.confirm(t("users.confirmDelete", { user: user.username }))) return;
      await api("DELETE", `/identity/v1/users/${user.id}`);
      changed();
    });

  return (
    <Screen title={t("users.title")}>
      <Seats tick={tick} />
      {secret ? (
        <OnceBox title={t("users.oneTimePassword", { user: secret.username })} testId="one-time-password">
          <code className="secret" data-secret={secret.password}>
            {secret.password}
          </code>
        </OnceBox>
      ) : null}
      <ErrorMessage error={action.error} />
      <div className="grid-2 wide-left">
        <Card title={t("users.list")}>
          {users.loading && !users.data ? <Loading /> : null}
          <ErrorMessage error={users.error} />
          {users.data ? (
            <table data-testid="users">
              <thead>
                <tr>
                  <th>{t("users.username")}</th>
                  <th>{t("users.roles")}</th>
                  <th>{t("users.companies")}</th>
                  <th>{t("common.status")}</th>
                  <th>MFA</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {users.data.users.map((u) =>
                  editing === u.id ? (
                    <tr key={u.id}>
                      <td colSpan={6}>
                        <form onSubmit={save(u)} className="edit-user">
                          <strong>{u.username}</strong>
                          <RolesAndCompanies roles={u.roles} companies={u.companies} />
                          <button type="submit" className="primary small" disabled={action.busy}>
                            {t("common.save")}
                          </button>
                          <button type="button" className="small" onClick={() => setEditing(null)}>
                            {t("common.cancel")}
                          </button>
                        </form>
                      </td>
                    </tr>
                  ) : (
                    <tr key={u.id} data-username={u.username} className={u.active ? undefined : "inactive"}>
                      <td>
                        {u.username}
                        <div className="muted small">{format.date(u.created_at, lang)}</div>
                      </td>
                      <td>{u.roles.map((r) => roleLabel(r, t)).join("、")}</td>
                      <td>{u.companies.length ? u.companies.map((c) => companyLabel(c, companies, t)).join("、") : t("users.allCompanies")}</td>
                      <td>
                        {u.active ? t("users.active") : t("users.disabled")}
                        {u.must_change_password ? <div className="muted small">{t("users.mustChange")}</div> : null}
                      </td>
                      <td>{u.mfa_enabled ? "✓" : "—"}</td>
                      <td className="buttons">
                        <button type="button" className="small" onClick={() => setEditing(u.id)}>
                          {t("common.edit")}
                        </button>
                        <button type="button" className="small" onClick={() => void setActive(u, !u.active)}>
                          {u.active ? t("users.disable") : t("users.enable")}
                        </button>
                        <button type="button" className="small" onClick={() => void reset(u)}>
                          {t("users.reset")}
                        </button>
                        <button type="button" className="small danger" onClick={() => void remove(u)}>
                          {t("common.delete")}
                        </button>
                      </td>
                    </tr>
                  ),
                )}
              </tbody>
            </table>
          ) : null}
        </Card>
        <Card title={t("users.create")}>
          <form onSubmit={create}>
            <Field label={t("users.username")} hint={t("users.usernameHint")}>
              <input name="username" required pattern="[A-Za-z0-9._@\-]+" maxLength={64} />
            </Field>
            <RolesAndCompanies roles={["viewer"]} companies={[]} />
            <button type="submit" className="primary" disabled={action.busy}>
              {t("users.createSubmit")}
            </button>
          </form>
        </Card>
      </div>
    </Screen>
  );
}
