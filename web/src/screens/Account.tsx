// The signed-in person's own account: sessions (end any), TOTP (enrol, recovery codes once,
// remove), password.
import { useState } from "react";
import type { FormEvent } from "react";
import { api, get } from "../api";
import { Card, ErrorMessage, Field, Loading, OnceBox, Screen } from "../components/ui";
import * as format from "../format";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";
import { isOperator, useSession } from "../session";
import { TotpSetup } from "./Login";

interface SessionRow {
  id: string;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  amr: string[];
  current: boolean;
}

function Sessions() {
  const { lang, t } = useI18n();
  const { signOut } = useSession();
  const sessions = useLoad(() => get<{ sessions: SessionRow[] }>("/identity/v1/me/sessions"), []);
  const ending = useAction();
  const end = async (row: SessionRow) => {
    await ending.run(() => api("DELETE", `/identity/v1/me/sessions/${row.id}`));
    if (row.current) await signOut();
    else sessions.reload();
  };
  return (
    <Card title={t("account.sessions")}>
      <ErrorMessage error={sessions.error ?? ending.error} />
      {sessions.loading && !sessions.data ? <Loading /> : null}
      {sessions.data ? (
        <table data-testid="sessions">
          <thead>
            <tr>
              <th>{t("account.started")}</th>
              <th>{t("account.lastUsed")}</th>
              <th>{t("account.expires")}</th>
              <th>{t("account.method")}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {sessions.data.sessions.map((s) => (
              <tr key={s.id} className={s.current ? "current" : undefined}>
                <td>
                  {format.dateTime(s.created_at, lang)} {s.current ? <span className="badge">{t("account.thisSession")}</span> : null}
                </td>
                <td>{format.dateTime(s.last_used_at, lang)}</td>
                <td>{format.dateTime(s.expires_at, lang)}</td>
                <td>{s.amr.includes("mfa") ? t("account.withMfa") : t("account.passwordOnly")}</td>
                <td>
                  <button type="button" className="small danger" onClick={() => void end(s)} disabled={ending.busy}>
                    {t("account.endSession")}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Card>
  );
}

interface Enrollment {
  secret: string;
  otpauth_uri: string;
  qr_svg: string;
}

function Mfa() {
  const { t } = useI18n();
  const { me, reload } = useSession();
  const [enrollment, setEnrollment] = useState<Enrollment | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const action = useAction();
  const start = () =>
    action.run(async () => setEnrollment(await api<Enrollment>("POST", "/identity/v1/me/mfa/totp")));
  const confirm = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const code = String(new FormData(event.currentTarget).get("code")).replace(/\s/g, "");
    void action.run(async () => {
      const done = await api<{ recovery_codes: string[] }>("POST", "/identity/v1/me/mfa/totp/confirm", {
        json: { code },
      });
      setCodes(done.recovery_codes);
      setEnrollment(null);
      await reload();
    });
  };
  const remove = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    void action.run(async () => {
      await api("DELETE", "/identity/v1/me/mfa/totp", {
        json: { password: String(data.get("password")), code: String(data.get("code")).replace(/\s/g, "") },
      });
      setCodes(null);
      await reload();
    });
  };
  return (
    <Card title={t("account.mfa")}>
      <p data-testid="mfa-status">{me.mfa_enabled ? t("account.mfaOn") : t("account.mfaOff")}</p>
      {codes ? (
        <OnceBox title={t("login.recoveryCodes")} testId="recovery-codes">
          <ol className="codes">
            {codes.map((c) => (
              <li key={c}>
                <code>{c}</code>
              </li>
            ))}
          </ol>
        </OnceBox>
      ) : null}
      {!me.mfa_enabled && !enrollment ? (
        <button type="button" className="primary" onClick={() => void start()} disabled={action.busy}>
          {t("account.mfaEnable")}
        </button>
      ) : null}
      {enrollment ? (
        <>
          <p>{t("login.enrolIntro")}</p>
          <TotpSetup enrollment={enrollment} />
          <form onSubmit={confirm} className="inline-form">
            <Field label={t("login.code")}>
              <input name="code" required autoComplete="one-time-code" inputMode="numeric" pattern="[0-9 ]{6,7}" />
            </Field>
            <button type="submit" className="primary" disabled={action.busy}>
              {t("login.enrolSubmit")}
            </button>
          </form>
        </>
      ) : null}
      {me.mfa_enabled && !isOperator(me) ? (
        <details>
          <summary>{t("account.mfaDisable")}</summary>
          <form onSubmit={remove} className="inline-form">
            <Field label={t("login.password")}>
              <input name="password" type="password" required autoComplete="current-password" />
            </Field>
            <Field label={t("login.code")}>
              <input name="code" required autoComplete="one-time-code" inputMode="numeric" />
            </Field>
            <button type="submit" className="danger" disabled={action.busy}>
              {t("account.mfaDisable")}
            </button>
          </form>
        </details>
      ) : null}
      <ErrorMessage error={action.error} />
    </Card>
  );
}

function Password() {
  const { t } = useI18n();
  const action = useAction();
  const [done, setDone] = useState(false);
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    setDone(false);
    void action.run(async () => {
      await api("POST", "/identity/v1/me/password", {
        json: { current_password: String(data.get("current")), new_password: String(data.get("new")) },
      });
      form.reset();
      setDone(true);
    });
  };
  return (
    <Card title={t("account.password")}>
      <form onSubmit={submit} className="inline-form">
        <Field label={t("account.currentPassword")}>
          <input name="current" type="password" required autoComplete="current-password" />
        </Field>
        <Field label={t("login.newPassword")} hint={t("login.passwordRules")}>
          <input name="new" type="password" required minLength={12} autoComplete="new-password" />
        </Field>
        <button type="submit" disabled={action.busy}>
          {t("account.changePassword")}
        </button>
      </form>
      {done ? <p role="status">{t("account.passwordChanged")}</p> : null}
      <ErrorMessage error={action.error} />
    </Card>
  );
}

export function Account() {
  const { t } = useI18n();
  const { me } = useSession();
  return (
    <Screen title={t("account.title")}>
      <p className="muted">
        {me.tenant} / {me.username}
      </p>
      <div className="grid-2">
        <Mfa />
        <Password />
      </div>
      <Sessions />
    </Screen>
  );
}
