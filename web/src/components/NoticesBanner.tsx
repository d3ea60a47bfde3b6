// Notices in force now (maintenance, incidents, changes), above every screen.
import { useState } from "react";
import { get } from "../api";
import { useLoad } from "../hooks";
import { pick, useI18n } from "../i18n";
import type { Localised } from "../i18n";
import { Link } from "../router";

export interface Notice {
  id: string;
  kind: "change" | "maintenance" | "incident";
  severity: "info" | "warning" | "critical";
  title: Localised;
  body: Localised;
  starts_at: string;
  ends_at: string | null;
  tenants?: "all" | string[];
}

export function inForce(notice: Notice, now = Date.now()): boolean {
  return Date.parse(notice.starts_at) <= now && (notice.ends_at === null || Date.parse(notice.ends_at) > now);
}

export function NoticesBanner() {
  const { lang, t } = useI18n();
  const notices = useLoad(() => get<{ notices: Notice[] }>("/tenants/v1/notices"), []);
  const [dismissed, setDismissed] = useState<string[]>([]);
  const current = (notices.data?.notices ?? []).filter((n) => inForce(n) && !dismissed.includes(n.id));
  if (current.length === 0) return null;
  return (
    <div className="banners">
      {current.map((n) => (
        <div key={n.id} className={`banner banner-${n.severity}`} role="status" data-testid="notice-banner">
          <strong>{t(`notice.kind.${n.kind}`)}</strong> {pick(n.title, lang)} <Link to="/notices">{t("notice.details")}</Link>
          <button type="button" className="link" aria-label={t("common.dismiss")} onClick={() => setDismissed((d) => [...d, n.id])}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
