// Dates, months, fiscal years and figures the way each language reads them. Times are shown
// in Japan time: the tenants are Japanese companies, whatever the viewer's machine says.
import type { Lang } from "./i18n";

const ZONE = "Asia/Tokyo";
const EMPTY = "—";

export function fiscalYear(fy: number, lang: Lang): string {
  if (lang === "en") return `FY${fy}`;
  // 令和6年度: the era year of the fiscal year's first day (April 1 for most tenants).
  const era = new Intl.DateTimeFormat("ja-JP-u-ca-japanese", {
    era: "long",
    year: "numeric",
    timeZone: ZONE,
  }).format(new Date(Date.UTC(fy, 3, 1, 3)));
  return `${fy}年度（${era}度）`;
}

export function month(period: string, lang: Lang): string {
  const [year, mon] = period.split("-").map(Number);
  if (!year || !mon) return period;
  if (lang === "ja") return `${year}年${mon}月`;
  return new Intl.DateTimeFormat("en-GB", { year: "numeric", month: "short", timeZone: "UTC" }).format(
    new Date(Date.UTC(year, mon - 1, 1)),
  );
}

/** A period as the API names it: "YYYY-MM" (a month) or "YYYY" (a fiscal year). */
export function period(value: string, lang: Lang): string {
  return value.length === 4 ? fiscalYear(Number(value), lang) : month(value, lang);
}

export function date(iso: string | null | undefined, lang: Lang): string {
  if (!iso) return EMPTY;
  return new Intl.DateTimeFormat(lang === "ja" ? "ja-JP" : "en-GB", {
    year: "numeric",
    month: lang === "ja" ? "long" : "short",
    day: "numeric",
    timeZone: ZONE,
  }).format(new Date(iso));
}

export function dateTime(iso: string | null | undefined, lang: Lang): string {
  if (!iso) return EMPTY;
  return new Intl.DateTimeFormat(lang === "ja" ? "ja-JP" : "en-GB", {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZone: ZONE,
  }).format(new Date(iso));
}

export function plainNumber(value: number | null | undefined, lang: Lang): string {
  if (value === null || value === undefined) return EMPTY;
  return new Intl.NumberFormat(lang === "ja" ? "ja-JP" : "en-US", {
    maximumFractionDigits: 1,
  }).format(value);
}

const UNITS: Record<Lang, Record<string, string>> = {
  ja: { percent: "%", people: "人", years: "年", hours: "時間" },
  en: { percent: "%", people: "", years: " yrs", hours: " h" },
};

export function figure(value: number | null | undefined, unit: string, lang: Lang): string {
  if (value === null || value === undefined) return EMPTY;
  return `${plainNumber(value, lang)}${UNITS[lang][unit] ?? ""}`;
}

export function bytes(size: number, lang: Lang): string {
  const units = ["B", "KB", "MB", "GB"];
  let value = size;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index += 1;
  }
  return `${plainNumber(index === 0 ? value : Math.round(value * 10) / 10, lang)} ${units[index]}`;
}
