// Dashboards: the ones the caller may see as tabs, fiscal-year and company pickers, the
// widgets of the chosen one, and its export.
import { useMemo, useState } from "react";
import { download, get } from "../api";
import { ErrorMessage, Loading, Screen } from "../components/ui";
import { Widget } from "../components/Widget";
import type { WidgetData } from "../components/Widget";
import * as format from "../format";
import { useAction, useLoad } from "../hooks";
import { pick, useI18n } from "../i18n";
import type { Localised } from "../i18n";
import { companyLabel } from "../labels";
import { Link } from "../router";
import { seesWholeGroup, useSession } from "../session";

export interface DashboardRef {
  key: string;
  title: Localised;
}

interface DashboardData {
  key: string;
  title: Localised;
  fiscal_year: number;
  period: { start: string; end: string };
  company: string | null;
  widgets: WidgetData[];
}

export function useDashboards() {
  return useLoad(() => get<{ dashboards: DashboardRef[] }>("/analytics/v1/dashboards"), []);
}

export function useMinGroupSize(tenantId: string): number | null {
  const settings = useLoad(
    () => get<{ min_group_size: number }>(`/tenants/v1/tenants/${tenantId}/settings`),
    [tenantId],
  );
  return settings.data?.min_group_size ?? null;
}

/** "2024-04".."2025-03" → every month in between, in order. */
export function monthsBetween(start: string | undefined, end: string | undefined): string[] {
  if (!start || !end) return [];
  const months: string[] = [];
  let [year, month] = start.split("-").map(Number) as [number, number];
  while (months.length < 120) {
    const current = `${year}-${String(month).padStart(2, "0")}`;
    months.push(current);
    if (current >= end) break;
    month += 1;
    if (month > 12) {
      month = 1;
      year += 1;
    }
  }
  return months;
}

/** The fiscal years offered: the one shown and the five before it. */
export function yearChoices(shown: number | undefined): number[] {
  const latest = shown ?? new Date().getFullYear();
  return Array.from({ length: 6 }, (_, i) => latest - i);
}

export function Dashboards({ boardKey }: { boardKey: string }) {
  const { lang, t } = useI18n();
  const { me, companies } = useSession();
  const boards = useDashboards();
  const [fiscalYear, setFiscalYear] = useState<number | null>(null);
  const [company, setCompany] = useState<string>("");
  const minGroupSize = useMinGroupSize(me.tenant_id);
  const board = useLoad(
    () =>
      get<DashboardData>(`/analytics/v1/dashboards/${encodeURIComponent(boardKey)}`, {
        fiscal_year: fiscalYear,
        company,
      }),
    [boardKey, fiscalYear, company],
  );
  const exporting = useAction();
  const visible = boards.data?.dashboards.filter((b) => b.key !== "disclosure") ?? [];
  const ownCompanies = seesWholeGroup(me)
    ? companies
    : companies.filter((c) => me.companies.includes(c.code));
  const exportAs = (fmt: "csv" | "xlsx") =>
    exporting.run(() =>
      download(`/analytics/v1/dashboards/${encodeURIComponent(boardKey)}/export`, {
        format: fmt,
        fiscal_year: board.data?.fiscal_year,
        company,
      }),
    );
  const shownYear = board.data?.fiscal_year;
  // The years offered stay anchored on the latest one with data (the first answer's).
  const [latestYear, setLatestYear] = useState<number | undefined>(undefined);
  if (latestYear === undefined && fiscalYear === null && shownYear !== undefined) setLatestYear(shownYear);
  const months = useMemo(() => monthsBetween(board.data?.period.start, board.data?.period.end), [board.data]);
  return (
    <Screen
      title={t("dashboards.title")}
      actions={
        <>
          <button type="button" onClick={() => void exportAs("csv")} disabled={exporting.busy || !board.data}>
            {t("common.exportCsv")}
          </button>
          <button type="button" onClick={() => void exportAs("xlsx")} disabled={exporting.busy || !board.data}>
            {t("common.exportXlsx")}
          </button>
        </>
      }
    >
      <nav className="tabs" aria-label={t("dashboards.title")}>
        {visible.map((b) => (
          <Link key={b.key} to={`/dashboards/${b.key}`} className={b.key === boardKey ? "tab active" : "tab"}>
            {pick(b.title, lang)}
          </Link>
        ))}
      </nav>
      <div className="pickers">
        <label>
          {t("common.fiscalYear")}
          <select
            name="fiscal_year"
            value={shownYear ?? ""}
            onChange={(e) => setFiscalYear(Number(e.target.value))}
          >
            {yearChoices(latestYear ?? shownYear).map((fy) => (
              <option key={fy} value={fy}>
                {format.fiscalYear(fy, lang)}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("common.company")}
          <select name="company" value={company} onChange={(e) => setCompany(e.target.value)}>
            <option value="">{seesWholeGroup(me) ? t("dashboards.allCompanies") : t("dashboards.myCompanies")}</option>
            {ownCompanies.map((c) => (
              <option key={c.code} value={c.code}>
                {companyLabel(c.code, companies, t)}
              </option>
            ))}
          </select>
        </label>
        {board.data ? (
          <span className="muted period">
            {format.month(board.data.period.start, lang)} – {format.month(board.data.period.end, lang)}
          </span>
        ) : null}
      </div>
      <ErrorMessage error={exporting.error} />
      <ErrorMessage error={board.error ?? boards.error} />
      {board.loading && !board.data ? <Loading /> : null}
      {board.data ? (
        <div className="widgets" aria-busy={board.loading}>
          {board.data.widgets.map((w) => (
            <Widget
              key={`${board.data?.key}-${w.key}`}
              widget={w}
              months={months}
              companies={companies}
              minGroupSize={minGroupSize}
            />
          ))}
        </div>
      ) : null}
    </Screen>
  );
}
