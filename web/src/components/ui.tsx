// Small building blocks shared by the screens.
import { cloneElement, useId } from "react";
import type { ReactElement, ReactNode } from "react";
import { ApiError } from "../api";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n";
import { en } from "../messages";

export function errorText(err: unknown, t: (key: MessageKey) => string): string {
  if (err instanceof ApiError) {
    const reason = typeof err.details.reason === "string" ? err.details.reason : null;
    if (reason && `password.${reason}` in en) return t(`password.${reason}` as MessageKey);
    if (`error.${err.code}` in en) return t(`error.${err.code}` as MessageKey);
    return err.message;
  }
  return t("error.unexpected");
}

export function ErrorMessage({ error }: { error: unknown }) {
  const { t } = useI18n();
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {errorText(error, t)}
    </p>
  );
}

export function Loading() {
  const { t } = useI18n();
  return (
    <p className="muted" aria-busy="true">
      {t("common.loading")}
    </p>
  );
}

export function Screen({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="screen">
      <header className="screen-head">
        <h1>{title}</h1>
        {actions ? <div className="screen-actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

export function Card({ title, children, className }: { title?: string; children: ReactNode; className?: string }) {
  return (
    <div className={`card ${className ?? ""}`}>
      {title ? <h2>{title}</h2> : null}
      {children}
    </div>
  );
}

/** A secret shown once (one-time password, recovery codes, SCIM token). */
export function OnceBox({ title, children, testId }: { title: string; children: ReactNode; testId?: string }) {
  const { t } = useI18n();
  return (
    <div className="once" role="status" data-testid={testId}>
      <strong>{title}</strong>
      <div className="once-value">{children}</div>
      <p className="muted">{t("common.shownOnce")}</p>
    </div>
  );
}

/** A labelled control; the hint is its description, not part of its name. */
export function Field({ label, children, hint }: { label: string; children: ReactElement<Record<string, unknown>>; hint?: string }) {
  const id = useId();
  const hintId = `${id}-hint`;
  return (
    <div className="field">
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {cloneElement(children, { id, "aria-describedby": hint ? hintId : undefined })}
      {hint ? (
        <span className="field-hint" id={hintId}>
          {hint}
        </span>
      ) : null}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="muted empty">{children}</p>;
}
