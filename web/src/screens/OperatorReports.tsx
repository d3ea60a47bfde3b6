// Operators work security reports: received → investigating → resolved, each step with a
// note the reporter's tenant sees as a status change.
import { useState } from "react";
import type { FormEvent } from "react";
import { api, get } from "../api";
import { Card, Empty, ErrorMessage, Field, Loading, Screen } from "../components/ui";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";
import { ReportHistory, ReportTable } from "./SecurityReports";
import type { ReportDetail, ReportSummary } from "./SecurityReports";

export function OperatorReports() {
  const { t } = useI18n();
  const [status, setStatus] = useState("");
  const [tick, setTick] = useState(0);
  const reports = useLoad(
    () => get<{ reports: ReportSummary[]; total: number }>("/tenants/v1/security-reports", { status }),
    [status, tick],
  );
  const [open, setOpen] = useState<ReportDetail | null>(null);
  const action = useAction();
  const show = (id: string) =>
    action.run(async () => setOpen(await get<ReportDetail>(`/tenants/v1/security-reports/${id}`)));
  const move = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!open) return;
    const form = event.currentTarget;
    const data = new FormData(form);
    void action.run(async () => {
      await api("POST", `/tenants/v1/security-reports/${open.id}/transitions`, {
        json: { status: String(data.get("status")), note: String(data.get("note")) },
      });
      form.reset();
      setOpen(await get<ReportDetail>(`/tenants/v1/security-reports/${open.id}`));
      setTick((n) => n + 1);
    });
  };
  return (
    <Screen title={t("opReports.title")}>
      <div className="grid-2">
        <Card title={t("reports.list")}>
          <div className="pickers">
            <label>
              {t("common.status")}
              <select value={status} onChange={(e) => setStatus(e.target.value)}>
                <option value="">{t("common.all")}</option>
                {(["received", "investigating", "resolved"] as const).map((s) => (
                  <option key={s} value={s}>
                    {t(`report.status.${s}`)}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <ErrorMessage error={reports.error} />
          {reports.loading && !reports.data ? <Loading /> : null}
          {reports.data?.reports.length === 0 ? <Empty>{t("reports.none")}</Empty> : null}
          {reports.data && reports.data.reports.length > 0 ? (
            <ReportTable reports={reports.data.reports} onOpen={(id) => void show(id)} withTenant />
          ) : null}
        </Card>
        {open ? (
          <Card title={open.title}>
            <ReportHistory detail={open} />
            {open.status !== "resolved" ? (
              <form onSubmit={move}>
                <Field label={t("opReports.next")}>
                  <select name="status" defaultValue={open.status === "received" ? "investigating" : "resolved"}>
                    <option value="investigating">{t("report.status.investigating")}</option>
                    <option value="resolved">{t("report.status.resolved")}</option>
                  </select>
                </Field>
                <Field label={t("opReports.note")}>
                  <textarea name="note" required rows={3} />
                </Field>
                <button type="submit" className="primary" disabled={action.busy}>
                  {t("common.save")}
                </button>
              </form>
            ) : null}
            <ErrorMessage error={action.error} />
          </Card>
        ) : null}
      </div>
    </Screen>
  );
}
