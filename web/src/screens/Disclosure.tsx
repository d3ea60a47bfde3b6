// The legal human-capital figures (女性活躍推進法・育児介護休業法) per group company and for
// the group, each with its basis, and their export.
import { useState } from "react";
import { download, get } from "../api";
import { Empty, ErrorMessage, Loading, Screen } from "../components/ui";
import * as format from "../format";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n";
import { companyLabel } from "../labels";
import { useSession } from "../session";
import { useDashboards, yearChoices } from "./Dashboards";

interface Basis {
  numerator: number | null;
  denominator: number | null;
  as_of?: string;
}

interface Entry {
  company_code?: string;
  female_manager_ratio: number | null;
  gender_pay_gap: { all: number | null; regular: number | null; non_regular: number | null };
  male_childcare_leave_rate: number | null;
  male_childcare_leave_or_purpose_rate: number | null;
  basis: {
    female_manager_ratio: Basis;
    gender_pay_gap: { all: Basis; regular: Basis; non_regular: Basis };
    male_childcare_leave_rate: Basis;
    male_childcare_leave_or_purpose_rate: Basis;
  };
}

interface Report {
  fiscal_year: number;
  period: { start: string; end: string };
  companies: Entry[];
  consolidated: Entry;
}

interface Figure {
  key: string;
  label: MessageKey;
  value: (e: Entry) => number | null;
  basis: (e: Entry) => Basis;
  basisLabel: MessageKey;
}

export const FIGURES: Figure[] = [
  {
    key: "female_manager_ratio",
    label: "disclosure.femaleManagerRatio",
    value: (e) => e.female_manager_ratio,
    basis: (e) => e.basis.female_manager_ratio,
    basisLabel: "disclosure.basisManagers",
  },
  {
    key: "gender_pay_gap_all",
    label: "disclosure.payGapAll",
    value: (e) => e.gender_pay_gap.all,
    basis: (e) => e.basis.gender_pay_gap.all,
    basisLabel: "disclosure.basisWages",
  },
  {
    key: "gender_pay_gap_regular",
    label: "disclosure.payGapRegular",
    value: (e) => e.gender_pay_gap.regular,
    basis: (e) => e.basis.gender_pay_gap.regular,
    basisLabel: "disclosure.basisWages",
  },
  {
    key: "gender_pay_gap_non_regular",
    label: "disclosure.payGapNonRegular",
    value: (e) => e.gender_pay_gap.non_regular,
    basis: (e) => e.basis.gender_pay_gap.non_regular,
    basisLabel: "disclosure.basisWages",
  },
  {
    key: "male_childcare_leave_rate",
    label: "disclosure.childcareLeave",
    value: (e) => e.male_childcare_leave_rate,
    basis: (e) => e.basis.male_childcare_leave_rate,
    basisLabel: "disclosure.basisChildren",
  },
  {
    key: "male_childcare_leave_or_purpose_rate",
    label: "disclosure.childcareLeaveOrPurpose",
    value: (e) => e.male_childcare_leave_or_purpose_rate,
    basis: (e) => e.basis.male_childcare_leave_or_purpose_rate,
    basisLabel: "disclosure.basisChildren",
  },
];

function DisclosureTable({ report }: { report: Report }) {
  const { lang, t } = useI18n();
  const { companies } = useSession();
  const rows: [string | null, Entry][] = [
    ...report.companies.map((e): [string | null, Entry] => [e.company_code ?? null, e]),
    [null, report.consolidated],
  ];
  return (
    <div className="table-scroll">
      <table className="disclosure" data-testid="disclosure-table">
        <thead>
          <tr>
            <th>{t("common.company")}</th>
            {FIGURES.map((f) => (
              <th key={f.key} className="num">
                {t(f.label)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map(([code, entry]) => (
            <tr key={code ?? "consolidated"} data-company={code ?? ""} className={code === null ? "total" : undefined}>
              <th scope="row">{companyLabel(code, companies, t)}</th>
              {FIGURES.map((f) => {
                const basis = f.basis(entry);
                const value = f.value(entry);
                return (
                  <td key={f.key} className="num" data-figure={f.key} data-value={value ?? ""}>
                    <span className="figure-cell">{format.figure(value, "percent", lang)}</span>
                    <span className="basis">
                      {t(f.basisLabel, {
                        numerator: format.plainNumber(basis.numerator, lang),
                        denominator: format.plainNumber(basis.denominator, lang),
                      })}
                    </span>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Disclosure() {
  const { lang, t } = useI18n();
  const boards = useDashboards();
  const offered = boards.data?.dashboards.some((b) => b.key === "disclosure") ?? false;
  const [chosen, setChosen] = useState<number | null>(null);
  const latest = useLoad(
    () =>
      offered
        ? get<{ fiscal_year: number }>("/analytics/v1/dashboards/disclosure").then((b) => b.fiscal_year)
        : Promise.resolve(null),
    [offered],
  );
  const year = chosen ?? latest.data;
  const report = useLoad(
    () => (year ? get<Report>(`/analytics/v1/disclosures/${year}`) : Promise.resolve(null)),
    [year],
  );
  const exporting = useAction();
  if (boards.loading) return <Loading />;
  if (!offered) {
    return (
      <Screen title={t("disclosure.title")}>
        <Empty>{t("disclosure.notOffered")}</Empty>
      </Screen>
    );
  }
  const exportAs = (fmt: "csv" | "xlsx") =>
    exporting.run(() => download(`/analytics/v1/disclosures/${year}`, { format: fmt }));
  return (
    <Screen
      title={t("disclosure.title")}
      actions={
        <>
          <button type="button" onClick={() => void exportAs("csv")} disabled={!report.data || exporting.busy}>
            {t("common.exportCsv")}
          </button>
          <button type="button" onClick={() => void exportAs("xlsx")} disabled={!report.data || exporting.busy}>
            {t("common.exportXlsx")}
          </button>
        </>
      }
    >
      <div className="pickers">
        <label>
          {t("common.fiscalYear")}
          <select name="fiscal_year" value={year ?? ""} onChange={(e) => setChosen(Number(e.target.value))}>
            {yearChoices(latest.data ?? undefined).map((fy) => (
              <option key={fy} value={fy}>
                {format.fiscalYear(fy, lang)}
              </option>
            ))}
          </select>
        </label>
        {report.data ? (
          <span className="muted period">
            {format.month(report.data.period.start, lang)} – {format.month(report.data.period.end, lang)}
          </span>
        ) : null}
      </div>
      <p className="muted">{t("disclosure.intro")}</p>
      <ErrorMessage error={latest.error ?? report.error ?? exporting.error} />
      {report.loading && !report.data ? <Loading /> : null}
      {report.data ? <DisclosureTable report={report.data} /> : null}
    </Screen>
  );
}
