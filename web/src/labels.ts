// Names for codes the API returns: companies, breakdown groups, roles, upload kinds.
import type { Lang, MessageKey } from "./i18n";
import type { Company } from "./session";

type T = (key: MessageKey) => string;

export function companyLabel(code: string | null, companies: Company[], t: T): string {
  if (code === null) return t("company.consolidated");
  const found = companies.find((c) => c.code === code);
  return found ? `${found.name}（${code}）` : code;
}

const GROUPS: Record<string, Record<string, MessageKey>> = {
  gender: {
    female: "group.female",
    male: "group.male",
    other: "group.other",
    unknown: "group.unknown",
  },
  employment_type: { regular: "group.regular", non_regular: "group.non_regular" },
  age_band: {
    "<30": "group.age_under_30",
    "30-39": "group.age_30s",
    "40-49": "group.age_40s",
    "50+": "group.age_50_plus",
  },
};

export function groupLabel(groupBy: string | null, group: string | null, t: T): string {
  if (group === null) return t("group.unknown");
  const key = groupBy ? GROUPS[groupBy]?.[group] : undefined;
  return key ? t(key) : group;
}

export const ROLES = ["tenant_admin", "group_viewer", "viewer", "data_updater"] as const;

export function roleLabel(role: string, t: T): string {
  const key = `role.${role}` as MessageKey;
  return t(key) || role;
}

export const KINDS = ["employees", "payroll", "attendance", "childcare"] as const;
export type Kind = (typeof KINDS)[number];

export function kindLabel(kind: string, t: T): string {
  return t(`kind.${kind}` as MessageKey) || kind;
}

export function localeOf(lang: Lang): string {
  return lang === "ja" ? "ja-JP" : "en-GB";
}
