// Report a security event or weakness (16.1.2) and follow what the provider does with it.
import { useState } from "react";
import type { FormEvent } from "react";
import { api, get } from "../api";
import { Card, Empty, ErrorMessage, Field, Loading, Screen } from "../components/ui";
import * as format from "../format";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";

export interface ReportSummary {
  id: string;
  tenant_id: string;
  title: string;
  status: "received" | "investigating" | "resolved";
  occurred_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface ReportDetail extends ReportSummary {
  description: string;
  history: { status: string; at: string; note?: string }[];
}

export function StatusBadge({ status }: { status: string }) {
  const { t } = useI18n();
  return <span className={`badge status-${status}`}>{t(`report.status.${status as ReportSummary["status"]}`)}</span>;
}

export function ReportHistory({ detail }: { detail: ReportDetail }) {
  const { lang } = useI18n();
  return (
    <div className="report-detail">
      <p className="pre">{detail.description}</p>
      <ol className="history">
        {detail.history.map((h, i) => (
          <li key={i}>
            <StatusBadge status={h.status} /> {format.dateTime(h.at, lang)}
            {h.note ? <p className="pre">{h.note}</p> : null}
          </li>
        ))}
      </ol>
    </div>
  );
}

/** The reports list: subject (opens the report), the tenant for operators, status, time. */
export function ReportTable({
  reports,
  onOpen,
  withTenant = false,
}: {
  reports: ReportSummary[];
  onOpen: (id: string) => void;
  withTenant?: boolean;
}) {
  const { t, lang } = useI18n();
  return (
    <table>
      <thead>
        <tr>
          <th>{t("reports.subject")}</th>
          {withTenant ? <th>{t("opReports.tenant")}</th> : null}
          <th>{t("common.status")}</th>
          <th>{t("common.when")}</th>
        </tr>
      </thead>
      <tbody>
        {reports.map((r) => (
          <tr key={r.id}>
            <td>
              <button type="button" className="link" onClick={() => onOpen(r.id)}>
                {r.title}
              </button>
            </td>
            {withTenant ? <td className="mono small">{r.tenant_id.slice(0, 8)}</td> : null}
            <td>
              <StatusBadge status={r.status} />
            </td>
            <td>{format.dateTime(r.created_at, lang)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function SecurityReports() {
  const { t } = useI18n();
  const reports = useLoad(() => get<{ reports: ReportSummary[]; total: number }>("/tenants/v1/security-reports"), []);
  const [open, setOpen] = useState<ReportDetail | null>(null);
  const sending = useAction();
  const [sent, setSent] = useState(false);
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const occurred = String(data.get("occurred_at") ?? "");
    setSent(false);
    void sending.run(async () => {
      await api("POST", "/tenants/v1/security-reports", {
        json: {
          title: String(data.get("title")),
          description: String(data.get("description")),
          // The form's local time is Japan time.
          occurred_at: occurred ? `${occurred}:00+09:00` : null,
        },
      });
      form.reset();
      setSent(true);
      reports.reload();
    });
  };
  const show = (id: string) =>
    sending.run(async () => setOpen(await get<ReportDetail>(`/tenants/v1/security-reports/${id}`)));
  return (
    <Screen title={t("reports.title")}>
      <div className="grid-2">
        <Card title={t("reports.new")}>
          <p className="muted">{t("reports.intro")}</p>
          <form onSubmit={submit}>
            <Field label={t("reports.subject")}>
              <input name="title" required maxLength={200} />
            </Field>
            <Field label={t("reports.description")}>
              <textarea name="description" required rows={6} maxLength={20000} />
            </Field>
            <Field label={t("reports.occurredAt")} hint={t("common.japanTime")}>
              <input name="occurred_at" type="datetime-local" />
            </Field>
            <button type="submit" className="primary" disabled={sending.busy}>
              {t("reports.send")}
            </button>
          </form>
          {sent ? <p role="status">{t("reports.sent")}</p> : null}
          <ErrorMessage error={sending.error} />
        </Card>
        <Card title={t("reports.list")}>
          <ErrorMessage error={reports.error} />
          {reports.loading && !reports.data ? <Loading /> : null}
          {reports.data?.reports.length === 0 ? <Empty>{t("reports.none")}</Empty> : null}
          {reports.data && reports.data.reports.length > 0 ? (
            <ReportTable reports={reports.data.reports} onOpen={(id) => void show(id)} />
          ) : null}
          {open ? <ReportHistory detail={open} /> : null}
        </Card>
      </div>
    </Screen>
  );
}
