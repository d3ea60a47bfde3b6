// Sign-in: tenant, username and password, then whatever identity asks next — a new
// password (one-time passwords), a TOTP or recovery code, or TOTP enrolment (QR code, then
// the recovery codes, shown once).
import { useState } from "react";
import type { FormEvent, ReactNode } from "react";
import { api, setTokens } from "../api";
import { ErrorMessage, Field, OnceBox } from "../components/ui";
import { useAction } from "../hooks";
import { useI18n } from "../i18n";
import { LanguageSwitch } from "../components/LanguageSwitch";

interface Tokens {
  access_token: string;
  expires_in: number;
  recovery_codes?: string[];
}

interface Challenge {
  challenge: "password_change" | "mfa" | "mfa_enrollment";
  challenge_token: string;
}

type Step = Tokens | Challenge;

interface Enrollment {
  secret: string;
  otpauth_uri: string;
  qr_svg: string;
}

export function qrSource(svg: string): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}

export function groupedSecret(secret: string): string {
  return secret.replace(/(.{4})/g, "$1 ").trim();
}

function Frame({ title, children }: { title: string; children: ReactNode }) {
  const { t } = useI18n();
  return (
    <main className="login">
      <div className="login-box">
        <div className="login-brand">
          <span className="logo">人</span>
          <span>{t("app.name")}</span>
          <LanguageSwitch />
        </div>
        <h1>{title}</h1>
        {children}
      </div>
    </main>
  );
}

export function Login({ onSignedIn }: { onSignedIn: () => void }) {
  const { t } = useI18n();
  const [challenge, setChallenge] = useState<Challenge | null>(null);
  const [enrollment, setEnrollment] = useState<Enrollment | null>(null);
  const [recoveryCodes, setRecoveryCodes] = useState<string[] | null>(null);
  const action = useAction();
  const [useRecovery, setUseRecovery] = useState(false);

  const advance = async (step: Step) => {
    if ("access_token" in step) {
      setTokens(step);
      if (step.recovery_codes) {
        setRecoveryCodes(step.recovery_codes);
        return;
      }
      onSignedIn();
      return;
    }
    setChallenge(step);
    if (step.challenge === "mfa_enrollment") {
      setEnrollment(
        await api<Enrollment>("POST", "/identity/v1/login/challenge/totp", {
          anonymous: true,
          json: { challenge_token: step.challenge_token },
        }),
      );
    }
  };

  const answer = (body: Record<string, string>) =>
    action.run(async () => {
      const step = await api<Step>("POST", "/identity/v1/login/challenge", {
        anonymous: true,
        json: { challenge_token: challenge?.challenge_token, client: "browser", ...body },
      });
      await advance(step);
    });

  const restart = () => {
    setChallenge(null);
    setEnrollment(null);
    action.clear();
  };

  const expired = action.error instanceof Error && "code" in action.error && action.error.code === "invalid_challenge";

  if (recoveryCodes) {
    return (
      <Frame title={t("login.recoveryTitle")}>
        <p>{t("login.recoveryIntro")}</p>
        <OnceBox title={t("login.recoveryCodes")} testId="recovery-codes">
          <ol className="codes">
            {recoveryCodes.map((code) => (
              <li key={code}>
                <code>{code}</code>
              </li>
            ))}
          </ol>
        </OnceBox>
        <button type="button" className="primary" onClick={onSignedIn}>
          {t("login.recoverySaved")}
        </button>
      </Frame>
    );
  }

  if (challenge === null) {
    const submit = (event: FormEvent<HTMLFormElement>) => {
      event.preventDefault();
      const data = new FormData(event.currentTarget);
      void action.run(async () =>
        advance(
          await api<Step>("POST", "/identity/v1/login", {
            anonymous: true,
            json: {
              tenant: String(data.get("tenant")).trim().toLowerCase(),
              username: String(data.get("username")).trim(),
              password: String(data.get("password")),
              client: "browser",
            },
          }),
        ),
      );
    };
    return (
      <Frame title={t("login.title")}>
        <form onSubmit={submit}>
          <Field label={t("login.tenant")}>
            <input name="tenant" autoComplete="organization" required autoFocus />
          </Field>
          <Field label={t("login.username")}>
            <input name="username" autoComplete="username" required />
          </Field>
          <Field label={t("login.password")}>
            <input name="password" type="password" autoComplete="current-password" required />
          </Field>
          <ErrorMessage error={action.error} />
          <button type="submit" className="primary" disabled={action.busy}>
            {t("login.submit")}
          </button>
        </form>
      </Frame>
    );
  }

  if (challenge.challenge === "password_change") {
    const submit = (event: FormEvent<HTMLFormElement>) => {
      event.preventDefault();
      const data = new FormData(event.currentTarget);
      const next = String(data.get("new_password"));
      if (next !== String(data.get("confirm"))) {
        action.clear();
        event.currentTarget.querySelector<HTMLInputElement>("[name=confirm]")?.setCustomValidity(t("login.mismatch"));
        event.currentTarget.reportValidity();
        return;
      }
      void answer({ new_password: next });
    };
    return (
      <Frame title={t("login.passwordChangeTitle")}>
        <p>{t("login.passwordChangeIntro")}</p>
        <form onSubmit={submit}>
          <Field label={t("login.newPassword")} hint={t("login.passwordRules")}>
            <input name="new_password" type="password" autoComplete="new-password" required minLength={12} autoFocus />
          </Field>
          <Field label={t("login.confirmPassword")}>
            <input
              name="confirm"
              type="password"
              autoComplete="new-password"
              required
              onInput={(e) => e.currentTarget.setCustomValidity("")}
            />
          </Field>
          <ErrorMessage error={action.error} />
          <button type="submit" className="primary" disabled={action.busy}>
            {t("login.passwordChangeSubmit")}
          </button>
        </form>
        {expired ? <Restart onClick={restart} /> : null}
      </Frame>
    );
  }

  const codeForm = (submitLabel: string) => {
    const submit = (event: FormEvent<HTMLFormElement>) => {
      event.preventDefault();
      const data = new FormData(event.currentTarget);
      const value = String(data.get("code")).replace(/\s/g, "");
      void answer(useRecovery ? { recovery_code: value } : { code: value });
    };
    return (
      <form onSubmit={submit}>
        <Field label={useRecovery ? t("login.recoveryCode") : t("login.code")}>
          <input
            key={useRecovery ? "recovery" : "code"}
            name="code"
            required
            autoFocus
            autoComplete="one-time-code"
            inputMode={useRecovery ? "text" : "numeric"}
            pattern={useRecovery ? undefined : "[0-9 ]{6,7}"}
          />
        </Field>
        <ErrorMessage error={action.error} />
        <button type="submit" className="primary" disabled={action.busy}>
          {submitLabel}
        </button>
      </form>
    );
  };

  if (challenge.challenge === "mfa") {
    return (
      <Frame title={t("login.mfaTitle")}>
        <p>{useRecovery ? t("login.recoveryPrompt") : t("login.mfaIntro")}</p>
        {codeForm(t("login.verify"))}
        <button type="button" className="link" onClick={() => setUseRecovery((v) => !v)}>
          {useRecovery ? t("login.useCode") : t("login.useRecovery")}
        </button>
        {expired ? <Restart onClick={restart} /> : null}
      </Frame>
    );
  }

  return (
    <Frame title={t("login.enrolTitle")}>
      <p>{t("login.enrolIntro")}</p>
      {enrollment ? <TotpSetup enrollment={enrollment} /> : null}
      {codeForm(t("login.enrolSubmit"))}
      {expired ? <Restart onClick={restart} /> : null}
    </Frame>
  );
}

function Restart({ onClick }: { onClick: () => void }) {
  const { t } = useI18n();
  return (
    <button type="button" className="link" onClick={onClick}>
      {t("login.restart")}
    </button>
  );
}

export function TotpSetup({ enrollment }: { enrollment: Enrollment }) {
  const { t } = useI18n();
  return (
    <div className="totp-setup">
      <img src={qrSource(enrollment.qr_svg)} alt={t("login.qrAlt")} width={180} height={180} />
      <div>
        <p className="muted">{t("login.secretIntro")}</p>
        <code className="secret" data-testid="totp-secret" data-secret={enrollment.secret}>
          {groupedSecret(enrollment.secret)}
        </code>
      </div>
    </div>
  );
}
