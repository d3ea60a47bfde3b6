// Search an audit stream (a tenant's own, or any for operators), page through it, and
// verify its hash chain and signed checkpoints.
import { useState } from "react";
import type { FormEvent } from "react";
import { get } from "../api";
import { Card, Empty, ErrorMessage, Field } from "./ui";
import * as format from "../format";
import { useAction } from "../hooks";
import { useI18n } from "../i18n";

interface AuditEvent {
  id: string;
  stream: string;
  seq: number;
  occurred_at: string;
  recorded_at: string;
  service: string;
  action: string;
  outcome: "success" | "failure";
  actor: { type: string; id: string | null };
  target?: { type: string; id: string } | null;
  source_ip?: string | null;
  details?: Record<string, unknown>;
}

interface Verification {
  stream: string;
  ok: boolean;
  checked: number;
  first_bad_seq: number | null;
  reason: string | null;
}

type Filters = Record<string, string>;

function toIso(local: string): string {
  // datetime-local inputs are read as Japan time.
  return local ? `${local}:00+09:00` : "";
}

export function AuditTrail({ fixedStream }: { fixedStream?: string }) {
  const { lang, t } = useI18n();
  const [filters, setFilters] = useState<Filters | null>(null);
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [verification, setVerification] = useState<Verification | null>(null);
  const action = useAction();

  const fetchPage = async (query: Filters, after: string | null, append: boolean) => {
    const page = await get<{ events: AuditEvent[]; next_cursor: string | null }>("/audit/v1/events", {
      ...query,
      cursor: after,
      limit: 50,
    });
    setEvents((current) => (append ? [...current, ...page.events] : page.events));
    setCursor(page.next_cursor);
  };

  const search = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const query: Filters = {
      stream: fixedStream ?? String(data.get("stream") ?? "").trim(),
      actor: String(data.get("actor") ?? "").trim(),
      action_prefix: String(data.get("action_prefix") ?? "").trim(),
      outcome: String(data.get("outcome") ?? ""),
      since: toIso(String(data.get("since") ?? "")),
      until: toIso(String(data.get("until") ?? "")),
    };
    setFilters(query);
    void action.run(() => fetchPage(query, null, false));
  };

  const verify = (stream: string) =>
    action.run(async () => setVerification(await get<Verification>("/audit/v1/verify", { stream })));

  return (
    <>
      <Card title={t("audit.search")}>
        <form onSubmit={search} className="filters">
          {fixedStream ? null : (
            <Field label={t("audit.stream")} hint={t("audit.streamHint")}>
              <input name="stream" pattern="[a-z0-9\-]*" />
            </Field>
          )}
          <Field label={t("audit.actor")}>
            <input name="actor" />
          </Field>
          <Field label={t("audit.action")} hint={t("audit.actionHint")}>
            <input name="action_prefix" pattern="[a-z0-9_.]*" />
          </Field>
          <Field label={t("audit.outcome")}>
            <select name="outcome" defaultValue="">
              <option value="">{t("common.all")}</option>
              <option value="success">{t("audit.success")}</option>
              <option value="failure">{t("audit.failure")}</option>
            </select>
          </Field>
          <Field label={t("audit.since")}>
            <input name="since" type="datetime-local" />
          </Field>
          <Field label={t("audit.until")}>
            <input name="until" type="datetime-local" />
          </Field>
          <div className="buttons">
            <button type="submit" className="primary" disabled={action.busy}>
              {t("audit.searchSubmit")}
            </button>
            <button
              type="button"
              onClick={(e) => {
                const stream = fixedStream ?? String(new FormData(e.currentTarget.form ?? undefined).get("stream") ?? "").trim();
                if (stream) void verify(stream);
              }}
              disabled={action.busy}
            >
              {t("audit.verify")}
            </button>
          </div>
        </form>
        {verification ? (
          <p className={verification.ok ? "success" : "error"} role="status" data-testid="audit-verification">
            {verification.ok
              ? t("audit.verifiedOk", { stream: verification.stream, checked: verification.checked })
              : t("audit.verifiedBad", {
                  stream: verification.stream,
                  seq: verification.first_bad_seq ?? "?",
                  reason: verification.reason ?? "",
                })}
          </p>
        ) : null}
        <ErrorMessage error={action.error} />
      </Card>
      {filters ? (
        <Card title={t("audit.events")}>
          {events.length === 0 ? <Empty>{t("audit.none")}</Empty> : null}
          {events.length > 0 ? (
            <div className="table-scroll">
              <table data-testid="audit-events">
                <thead>
                  <tr>
                    <th>{t("audit.recordedAt")}</th>
                    {fixedStream ? null : <th>{t("audit.stream")}</th>}
                    <th className="num">#</th>
                    <th>{t("audit.action")}</th>
                    <th>{t("audit.outcome")}</th>
                    <th>{t("audit.actor")}</th>
                    <th>{t("audit.target")}</th>
                    <th>{t("audit.details")}</th>
                  </tr>
                </thead>
                <tbody>
                  {events.map((e) => (
                    <tr key={`${e.stream}-${e.seq}`} className={e.outcome === "failure" ? "failure" : undefined}>
                      <td>{format.dateTime(e.recorded_at, lang)}</td>
                      {fixedStream ? null : <td className="mono">{e.stream}</td>}
                      <td className="num">{e.seq}</td>
                      <td className="mono">{e.action}</td>
                      <td>{e.outcome === "success" ? t("audit.success") : t("audit.failure")}</td>
                      <td className="mono">
                        {e.actor.type}:{e.actor.id ?? "—"}
                      </td>
                      <td className="mono">{e.target ? `${e.target.type}:${e.target.id}` : "—"}</td>
                      <td className="mono small">{e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
          {cursor ? (
            <button type="button" onClick={() => void action.run(() => fetchPage(filters, cursor, true))} disabled={action.busy}>
              {t("audit.more")}
            </button>
          ) : null}
        </Card>
      ) : null}
    </>
  );
}
