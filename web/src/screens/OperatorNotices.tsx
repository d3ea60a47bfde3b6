// Operators publish notices (changes and maintenance announced ahead, incidents at once) to
// every tenant or to some, and see past ones too.
import { useState } from "react";
import type { FormEvent } from "react";
import { api, get } from "../api";
import type { Notice } from "../components/NoticesBanner";
import { Card, Empty, ErrorMessage, Field, Loading, Screen } from "../components/ui";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";
import { NoticeList } from "./Notices";

function jst(local: string): string | null {
  return local ? `${local}:00+09:00` : null;
}

export function OperatorNotices() {
  const { t } = useI18n();
  const [tick, setTick] = useState(0);
  const notices = useLoad(() => get<{ notices: Notice[] }>("/tenants/v1/notices", { include_past: true }), [tick]);
  const action = useAction();
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const targets = String(data.get("tenants") ?? "")
      .split(/[\s,]+/)
      .filter(Boolean);
    void action.run(async () => {
      await api("POST", "/tenants/v1/notices", {
        json: {
          kind: String(data.get("kind")),
          severity: String(data.get("severity")),
          title: { ja: String(data.get("title_ja")), en: String(data.get("title_en")) },
          body: { ja: String(data.get("body_ja")), en: String(data.get("body_en")) },
          starts_at: jst(String(data.get("starts_at"))),
          ends_at: jst(String(data.get("ends_at") ?? "")),
          tenants: targets.length ? targets : "all",
        },
      });
      form.reset();
      setTick((n) => n + 1);
    });
  };
  return (
    <Screen title={t("opNotices.title")}>
      <div className="grid-2 wide-left">
        <Card title={t("opNotices.list")}>
          <ErrorMessage error={notices.error} />
          {notices.loading && !notices.data ? <Loading /> : null}
          {notices.data?.notices.length === 0 ? <Empty>{t("notices.none")}</Empty> : null}
          {notices.data ? <NoticeList notices={notices.data.notices} /> : null}
        </Card>
        <Card title={t("opNotices.publish")}>
          <form onSubmit={submit}>
            <Field label={t("opNotices.kind")} hint={t("opNotices.leadHint")}>
              <select name="kind" defaultValue="maintenance">
                {(["maintenance", "change", "incident"] as const).map((k) => (
                  <option key={k} value={k}>
                    {t(`notice.kind.${k}`)}
                  </option>
                ))}
              </select>
            </Field>
            <Field label={t("opNotices.severity")}>
              <select name="severity" defaultValue="info">
                {(["info", "warning", "critical"] as const).map((s) => (
                  <option key={s} value={s}>
                    {t(`notice.severity.${s}`)}
                  </option>
                ))}
              </select>
            </Field>
            <Field label={t("opNotices.titleJa")}>
              <input name="title_ja" required maxLength={200} lang="ja" />
            </Field>
            <Field label={t("opNotices.titleEn")}>
              <input name="title_en" required maxLength={200} lang="en" />
            </Field>
            <Field label={t("opNotices.bodyJa")}>
              <textarea name="body_ja" required rows={3} lang="ja" />
            </Field>
            <Field label={t("opNotices.bodyEn")}>
              <textarea name="body_en" required rows={3} lang="en" />
            </Field>
            <Field label={t("opNotices.startsAt")} hint={t("common.japanTime")}>
              <input name="starts_at" type="datetime-local" required />
            </Field>
            <Field label={t("opNotices.endsAt")}>
              <input name="ends_at" type="datetime-local" />
            </Field>
            <Field label={t("opNotices.tenants")} hint={t("opNotices.tenantsHint")}>
              <input name="tenants" />
            </Field>
            <button type="submit" className="primary" disabled={action.busy}>
              {t("opNotices.submit")}
            </button>
          </form>
          <ErrorMessage error={action.error} />
        </Card>
      </div>
    </Screen>
  );
}
