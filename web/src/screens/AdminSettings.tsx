// The tenant's own security settings (MFA required, minimum group size); the contract
// (name, seats, companies) is shown, and changed only by the provider.
import { useState } from "react";
import type { FormEvent } from "react";
import { api, get } from "../api";
import { Card, ErrorMessage, Field, Loading, Screen } from "../components/ui";
import * as format from "../format";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";
import { companyLabel } from "../labels";
import { useSession } from "../session";
import type { Company } from "../session";

interface Tenant {
  id: string;
  slug: string;
  name: string;
  status: string;
  seats: number;
  fiscal_year_start_month: number;
  min_group_size: number;
  mfa_required: boolean;
  data_region: string;
  created_at: string;
  contract_end: string | null;
  companies: Company[];
}

export function AdminSettings() {
  const { lang, t } = useI18n();
  const { me } = useSession();
  const [version, setVersion] = useState(0);
  const tenant = useLoad(() => get<Tenant>(`/tenants/v1/tenants/${me.tenant_id}`), [version]);
  const action = useAction();
  const [saved, setSaved] = useState(false);
  const save = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    setSaved(false);
    void action.run(async () => {
      await api("PATCH", `/tenants/v1/tenants/${me.tenant_id}`, {
        json: { mfa_required: data.get("mfa_required") === "on", min_group_size: Number(data.get("min_group_size")) },
      });
      setSaved(true);
      setVersion((v) => v + 1);
    });
  };
  const data = tenant.data;
  return (
    <Screen title={t("settings.title")}>
      <ErrorMessage error={tenant.error} />
      {tenant.loading && !data ? <Loading /> : null}
      {data ? (
        <div className="grid-2">
          <Card title={t("settings.security")}>
            <form onSubmit={save} key={version}>
              <label className="check">
                <input type="checkbox" name="mfa_required" defaultChecked={data.mfa_required} />
                {t("settings.mfaRequired")}
              </label>
              <Field label={t("settings.minGroupSize")} hint={t("settings.minGroupSizeHint")}>
                <input type="number" name="min_group_size" min={3} max={1000} required defaultValue={data.min_group_size} />
              </Field>
              <button type="submit" className="primary" disabled={action.busy}>
                {t("common.save")}
              </button>
              {saved ? <span role="status"> {t("common.saved")}</span> : null}
            </form>
            <ErrorMessage error={action.error} />
          </Card>
          <Card title={t("settings.contract")}>
            <dl className="facts">
              <dt>{t("settings.name")}</dt>
              <dd>{data.name}</dd>
              <dt>{t("login.tenant")}</dt>
              <dd>{data.slug}</dd>
              <dt>{t("settings.seats")}</dt>
              <dd>{format.plainNumber(data.seats, lang)}</dd>
              <dt>{t("settings.fiscalYearStart")}</dt>
              <dd>{t("settings.month", { month: data.fiscal_year_start_month })}</dd>
              <dt>{t("settings.region")}</dt>
              <dd>{data.data_region === "jp" ? t("settings.regionJp") : data.data_region}</dd>
              <dt>{t("settings.since")}</dt>
              <dd>{format.date(data.created_at, lang)}</dd>
              <dt>{t("users.companies")}</dt>
              <dd>
                <ul className="plain">
                  {data.companies.map((c) => (
                    <li key={c.code}>{companyLabel(c.code, data.companies, t)}</li>
                  ))}
                </ul>
              </dd>
            </dl>
          </Card>
        </div>
      ) : null}
    </Screen>
  );
}
