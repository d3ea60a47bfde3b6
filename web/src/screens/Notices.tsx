import { get } from "../api";
import { inForce } from "../components/NoticesBanner";
import type { Notice } from "../components/NoticesBanner";
import { Empty, ErrorMessage, Loading, Screen } from "../components/ui";
import * as format from "../format";
import { useLoad } from "../hooks";
import { pick, useI18n } from "../i18n";

export function NoticeList({ notices }: { notices: Notice[] }) {
  const { lang, t } = useI18n();
  return (
    <ul className="notices">
      {notices.map((n) => (
        <li key={n.id} className={`notice notice-${n.severity}`}>
          <div className="notice-head">
            <span className={`badge badge-${n.severity}`}>{t(`notice.kind.${n.kind}`)}</span>
            <strong>{pick(n.title, lang)}</strong>
            {inForce(n) ? <span className="badge">{t("notice.inForce")}</span> : null}
          </div>
          <p className="muted">
            {format.dateTime(n.starts_at, lang)} – {n.ends_at ? format.dateTime(n.ends_at, lang) : t("notice.untilFurther")}
          </p>
          <p className="notice-body">{pick(n.body, lang)}</p>
        </li>
      ))}
    </ul>
  );
}

export function Notices() {
  const { t } = useI18n();
  const notices = useLoad(() => get<{ notices: Notice[] }>("/tenants/v1/notices"), []);
  return (
    <Screen title={t("notices.title")}>
      <ErrorMessage error={notices.error} />
      {notices.loading ? <Loading /> : null}
      {notices.data?.notices.length === 0 ? <Empty>{t("notices.none")}</Empty> : null}
      {notices.data ? <NoticeList notices={notices.data.notices} /> : null}
    </Screen>
  );
}
