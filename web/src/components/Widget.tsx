// One dashboard widget: a trend or breakdown chart, or key figures, always with the cells
// as a table (the figures behind the chart, readable by anyone and by screen readers).
import { lazy, Suspense, useMemo } from "react";
import type { EChartsCoreOption } from "echarts/core";
import * as format from "../format";
import { pick, useI18n } from "../i18n";
import type { Lang, Localised, MessageKey } from "../i18n";
import { companyLabel, groupLabel } from "../labels";
import type { Company } from "../session";

export interface Cell {
  period: string;
  company: string | null;
  group: string | null;
  value: number | null;
  n: number | null;
  suppressed: boolean;
}

export interface WidgetData {
  key: string;
  title: Localised;
  metric: string;
  unit: string;
  chart: "line" | "bar" | "number" | "table";
  group_by: string | null;
  series: Cell[];
}

// ECharts is most of the bundle: it loads with the first chart, not with the sign-in page.
const Chart = lazy(() => import("./Chart").then((m) => ({ default: m.Chart })));

type T = (key: MessageKey, vars?: Record<string, string | number>) => string;

function unique<V>(values: V[]): V[] {
  return [...new Set(values)];
}

function chartOption(
  widget: WidgetData,
  months: string[],
  companies: Company[],
  lang: Lang,
  t: T,
): EChartsCoreOption {
  const byGroup = widget.group_by !== null;
  const periods = unique(widget.series.map((c) => c.period)).sort();
  // A monthly trend spans the whole fiscal year, months without data left empty.
  const monthly = periods.every((p) => p.length === 7);
  const categories = byGroup ? unique(widget.series.map((c) => c.group)) : monthly ? months : periods;
  const lines = unique(widget.series.map((c) => c.company));
  const label = (value: string | null) =>
    byGroup ? groupLabel(widget.group_by, value, t) : format.period(value ?? "", lang);
  return {
    aria: { enabled: true },
    animation: false,
    tooltip: { trigger: "axis", valueFormatter: (v: unknown) => format.figure(v as number | null, widget.unit, lang) },
    legend: { top: 0, type: "scroll" },
    grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: categories.map(label) },
    yAxis: { type: "value", min: 0, minInterval: widget.unit === "people" ? 1 : undefined },
    series: lines.map((company) => ({
      name: companyLabel(company, companies, t),
      type: widget.chart === "line" ? "line" : "bar",
      connectNulls: false,
      symbolSize: 7,
      data: categories.map((category) => {
        const cell = widget.series.find(
          (c) => c.company === company && (byGroup ? c.group === category : c.period === category),
        );
        return cell && !cell.suppressed ? cell.value : null;
      }),
    })),
  };
}

function CellsTable({ widget, companies }: { widget: WidgetData; companies: Company[] }) {
  const { lang, t } = useI18n();
  return (
    <table className="cells">
      <thead>
        <tr>
          <th>{t("widget.period")}</th>
          <th>{t("widget.company")}</th>
          {widget.group_by ? <th>{t(`groupBy.${widget.group_by}` as MessageKey)}</th> : null}
          <th className="num">{t("widget.value")}</th>
          <th className="num">{t("widget.n")}</th>
        </tr>
      </thead>
      <tbody>
        {widget.series.map((cell, index) => (
          <tr
            key={index}
            data-period={cell.period}
            data-company={cell.company ?? ""}
            data-group={cell.group ?? ""}
            data-value={cell.value ?? ""}
            className={cell.suppressed ? "suppressed" : undefined}
          >
            <td>{format.period(cell.period, lang)}</td>
            <td>{companyLabel(cell.company, companies, t)}</td>
            {widget.group_by ? <td>{groupLabel(widget.group_by, cell.group, t)}</td> : null}
            <td className="num">{cell.suppressed ? t("widget.suppressed") : format.figure(cell.value, widget.unit, lang)}</td>
            <td className="num">{cell.suppressed ? "—" : format.plainNumber(cell.n, lang)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Figures({ widget, companies }: { widget: WidgetData; companies: Company[] }) {
  const { lang, t } = useI18n();
  const main = widget.series.find((c) => c.company === null) ?? widget.series[0];
  const others = widget.series.filter((c) => c !== main);
  return (
    <div className="figures">
      {main ? (
        <p className="figure-main" data-company={main.company ?? ""}>
          <span className="figure-value">
            {main.suppressed ? t("widget.suppressed") : format.figure(main.value, widget.unit, lang)}
          </span>
          <span className="figure-label">{companyLabel(main.company, companies, t)}</span>
        </p>
      ) : (
        <p className="muted">{t("widget.noData")}</p>
      )}
      {others.length > 0 ? (
        <ul className="figure-list">
          {others.map((cell, index) => (
            <li key={index}>
              <span>{widget.group_by ? groupLabel(widget.group_by, cell.group, t) : companyLabel(cell.company, companies, t)}</span>
              <span>{cell.suppressed ? t("widget.suppressed") : format.figure(cell.value, widget.unit, lang)}</span>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function Widget({
  widget,
  months,
  companies,
  minGroupSize,
}: {
  widget: WidgetData;
  months: string[];
  companies: Company[];
  minGroupSize: number | null;
}) {
  const { lang, t } = useI18n();
  const title = pick(widget.title, lang);
  const graphic = (widget.chart === "line" || widget.chart === "bar") && widget.series.length > 0;
  const option = useMemo(
    () => (graphic ? chartOption(widget, months, companies, lang, t) : null),
    [graphic, widget, months, companies, lang, t],
  );
  const hidden = widget.series.filter((c) => c.suppressed).length;
  return (
    <article className={`widget widget-${widget.chart}`} data-widget={widget.key}>
      <h2>{title}</h2>
      {widget.series.length === 0 ? (
        <p className="muted">{t("widget.noData")}</p>
      ) : option ? (
        <Suspense fallback={<div className="chart" aria-busy="true" />}>
          <Chart option={option} label={title} />
        </Suspense>
      ) : (
        <Figures widget={widget} companies={companies} />
      )}
      {hidden > 0 ? (
        <p className="note" data-testid="suppressed-note">
          {minGroupSize
            ? t("widget.suppressedNote", { count: hidden, size: minGroupSize })
            : t("widget.suppressedNotePlain", { count: hidden })}
        </p>
      ) : null}
      {widget.series.length > 0 ? (
        <details className="cells-details">
          <summary>{t("widget.showData")}</summary>
          <CellsTable widget={widget} companies={companies} />
        </details>
      ) : null}
    </article>
  );
}
