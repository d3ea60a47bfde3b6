// Operators: customer tenants — list, create (the first administrator's one-time password
// is shown once), and per tenant its details, asset inventory, termination and, once
// purged, its signed deletion certificate.
import { useState } from "react";
import type { FormEvent } from "react";
import { api, get } from "../api";
import { Card, Empty, ErrorMessage, Field, Loading, OnceBox, Screen } from "../components/ui";
import * as format from "../format";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";
import { Link, navigate } from "../router";

interface Tenant {
  id: string;
  slug: string;
  name: string;
  status: "provisioning" | "active" | "terminated" | "purged";
  seats: number;
  fiscal_year_start_month: number;
  min_group_size: number;
  mfa_required: boolean;
  data_region: string;
  created_at: string;
  contract_end: string | null;
  purge_due_at: string | null;
  companies?: { code: string; name: string }[];
  admins?: { id: string; username: string; active: boolean }[];
}

interface Created {
  id: string;
  slug: string;
  initial_admin: { username: string; one_time_password: string };
}

/** "HQ,本社" per line → companies. */
export function parseCompanies(text: string): { code: string; name: string }[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [code, ...rest] = line.split(/[,、\t]/);
      return { code: (code ?? "").trim(), name: rest.join(",").trim() || (code ?? "").trim() };
    });
}

function StatusBadge({ status }: { status: Tenant["status"] }) {
  const { t } = useI18n();
  return <span className={`badge tenant-${status}`}>{t(`tenant.status.${status}`)}</span>;
}

function CreateTenant({ onCreated }: { onCreated: () => void }) {
  const { t } = useI18n();
  const action = useAction();
  const [created, setCreated] = useState<Created | null>(null);
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    void action.run(async () => {
      const made = await api<Created>("POST", "/tenants/v1/tenants", {
        json: {
          slug: String(data.get("slug")).trim(),
          name: String(data.get("name")).trim(),
          seats: Number(data.get("seats")),
          companies: parseCompanies(String(data.get("companies"))),
          fiscal_year_start_month: Number(data.get("fiscal_year_start_month")),
          min_group_size: Number(data.get("min_group_size")),
          mfa_required: data.get("mfa_required") === "on",
          data_region: "jp",
        },
      });
      setCreated(made);
      form.reset();
      onCreated();
    });
  };
  return (
    <Card title={t("tenants.create")}>
      {created ? (
        <OnceBox title={t("tenants.firstAdmin", { slug: created.slug })} testId="initial-admin">
          <dl className="facts">
            <dt>{t("login.tenant")}</dt>
            <dd className="mono">{created.slug}</dd>
            <dt>{t("login.username")}</dt>
            <dd className="mono">{created.initial_admin.username}</dd>
            <dt>{t("tenants.oneTimePassword")}</dt>
            <dd>
              <code className="secret" data-secret={created.initial_admin.one_time_password}>
                {created.initial_admin.one_time_password}
              </code>
            </dd>
          </dl>
        </OnceBox>
      ) : null}
      <form onSubmit={submit}>
        <Field label={t("tenants.slug")} hint={t("tenants.slugHint")}>
          <input name="slug" required pattern="[a-z0-9][a-z0-9\-]*" minLength={2} maxLength={63} />
        </Field>
        <Field label={t("settings.name")}>
          <input name="name" required maxLength={200} />
        </Field>
        <Field label={t("settings.seats")}>
          <input name="seats" type="number" min={1} required defaultValue={50} />
        </Field>
        <Field label={t("users.companies")} hint={t("tenants.companiesHint")}>
          <textarea name="companies" required rows={3} placeholder={"HQ,本社\nSUB1,子会社"} />
        </Field>
        <Field label={t("settings.fiscalYearStart")}>
          <select name="fiscal_year_start_month" defaultValue={4}>
            {Array.from({ length: 12 }, (_, i) => i + 1).map((m) => (
              <option key={m} value={m}>
                {t("settings.month", { month: m })}
              </option>
            ))}
          </select>
        </Field>
        <Field label={t("settings.minGroupSize")}>
          <input name="min_group_size" type="number" min={3} defaultValue={5} required />
        </Field>
        <label className="check">
          <input type="checkbox" name="mfa_required" defaultChecked />
          {t("settings.mfaRequired")}
        </label>
        <p className="muted">{t("tenants.regionNote")}</p>
        <button type="submit" className="primary" disabled={action.busy}>
          {t("tenants.createSubmit")}
        </button>
      </form>
      <ErrorMessage error={action.error} />
    </Card>
  );
}

export function OperatorTenants() {
  const { lang, t } = useI18n();
  const [status, setStatus] = useState("");
  const [tick, setTick] = useState(0);
  const tenants = useLoad(
    () => get<{ tenants: Tenant[]; total: number }>("/tenants/v1/tenants", { status, limit: 500 }),
    [status, tick],
  );
  return (
    <Screen title={t("tenants.title")}>
      <div className="grid-2 wide-left">
        <Card title={t("tenants.list")}>
          <div className="pickers">
            <label>
              {t("common.status")}
              <select value={status} onChange={(e) => setStatus(e.target.value)}>
                <option value="">{t("common.all")}</option>
                {(["provisioning", "active", "terminated", "purged"] as const).map((s) => (
                  <option key={s} value={s}>
                    {t(`tenant.status.${s}`)}
                  </option>
                ))}
              </select>
            </label>
            {tenants.data ? <span className="muted">{t("tenants.total", { total: tenants.data.total })}</span> : null}
          </div>
          <ErrorMessage error={tenants.error} />
          {tenants.loading && !tenants.data ? <Loading /> : null}
          {tenants.data?.tenants.length === 0 ? <Empty>{t("tenants.none")}</Empty> : null}
          {tenants.data && tenants.data.tenants.length > 0 ? (
            <table data-testid="tenants">
              <thead>
                <tr>
                  <th>{t("tenants.slug")}</th>
                  <th>{t("settings.name")}</th>
                  <th>{t("common.status")}</th>
                  <th className="num">{t("settings.seats")}</th>
                  <th>{t("settings.since")}</th>
                </tr>
              </thead>
              <tbody>
                {tenants.data.tenants.map((tenant) => (
                  <tr key={tenant.id} data-slug={tenant.slug}>
                    <td>
                      <Link to={`/operator/tenants/${tenant.id}`}>{tenant.slug}</Link>
                    </td>
                    <td>{tenant.name}</td>
                    <td>
                      <StatusBadge status={tenant.status} />
                    </td>
                    <td className="num">{format.plainNumber(tenant.seats, lang)}</td>
                    <td>{format.date(tenant.created_at, lang)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </Card>
        <CreateTenant onCreated={() => setTick((n) => n + 1)} />
      </div>
    </Screen>
  );
}

interface Assets {
  taken_at: string;
  uploads: { count: number; bytes: number; last_at: string | null };
  dataset_versions: { count: number; rows: number; bytes: number; last_at: string | null };
  tables: { table: string; rows: number; bytes: number }[];
  users: { active: number; disabled: number; total: number };
  keys: { kek: { ref: string | null; state: string }; deks: { version: number }[] };
  backups: unknown[];
}

function Inventory({ id }: { id: string }) {
  const { lang, t } = useI18n();
  const assets = useLoad(() => get<Assets>(`/tenants/v1/tenants/${id}/assets`), [id]);
  return (
    <Card title={t("tenants.inventory")}>
      <ErrorMessage error={assets.error} />
      {assets.loading ? <Loading /> : null}
      {assets.data ? (
        <>
          <p className="muted">{t("tenants.takenAt", { at: format.dateTime(assets.data.taken_at, lang) })}</p>
          <dl className="facts">
            <dt>{t("tenants.uploads")}</dt>
            <dd>
              {format.plainNumber(assets.data.uploads.count, lang)} / {format.bytes(assets.data.uploads.bytes, lang)}
            </dd>
            <dt>{t("tenants.datasetVersions")}</dt>
            <dd>
              {t("tenants.versionsRows", {
                count: format.plainNumber(assets.data.dataset_versions.count, lang),
                rows: format.plainNumber(assets.data.dataset_versions.rows, lang),
              })}
            </dd>
            <dt>{t("tenants.users")}</dt>
            <dd>{t("tenants.usersSummary", { active: assets.data.users.active, disabled: assets.data.users.disabled })}</dd>
            <dt>{t("tenants.keys")}</dt>
            <dd className="mono">
              KEK {assets.data.keys.kek.state}, DEK v{assets.data.keys.deks.map((d) => d.version).join(", v")}
            </dd>
          </dl>
          <table>
            <thead>
              <tr>
                <th>{t("tenants.table")}</th>
                <th className="num">{t("data.rows")}</th>
                <th className="num">{t("data.size")}</th>
              </tr>
            </thead>
            <tbody>
              {assets.data.tables.map((table) => (
                <tr key={table.table}>
                  <td className="mono">{table.table}</td>
                  <td className="num">{format.plainNumber(table.rows, lang)}</td>
                  <td className="num">{format.bytes(table.bytes, lang)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </Card>
  );
}

function Certificate({ id }: { id: string }) {
  const { t } = useI18n();
  const certificate = useLoad(() => get<Record<string, unknown>>(`/tenants/v1/tenants/${id}/deletion-certificate`), [id]);
  const save = () => {
    const blob = new Blob([JSON.stringify(certificate.data, null, 2)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = `deletion-certificate-${id}.json`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  return (
    <Card title={t("tenants.certificate")}>
      <ErrorMessage error={certificate.error} />
      {certificate.data ? (
        <>
          <button type="button" onClick={save}>
            {t("tenants.downloadCertificate")}
          </button>
          <pre className="json">{JSON.stringify(certificate.data, null, 2)}</pre>
        </>
      ) : null}
    </Card>
  );
}

export function OperatorTenant({ id }: { id: string }) {
  const { lang, t } = useI18n();
  const [tick, setTick] = useState(0);
  const tenant = useLoad(() => get<Tenant>(`/tenants/v1/tenants/${id}`), [id, tick]);
  const action = useAction();
  const terminate = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const end = String(new FormData(event.currentTarget).get("contract_end") ?? "");
    if (!window.confirm(t("tenants.confirmTerminate", { slug: tenant.data?.slug ?? id }))) return;
    void action.run(async () => {
      await api("POST", `/tenants/v1/tenants/${id}/terminate`, {
        json: { contract_end: end ? `${end}T00:00:00+09:00` : null },
      });
      setTick((n) => n + 1);
    });
  };
  const data = tenant.data;
  return (
    <Screen
      title={data ? `${data.name}（${data.slug}）` : t("tenants.title")}
      actions={
        <button type="button" onClick={() => navigate("/operator/tenants")}>
          {t("common.back")}
        </button>
      }
    >
      <ErrorMessage error={tenant.error ?? action.error} />
      {tenant.loading && !data ? <Loading /> : null}
      {data ? (
        <div className="grid-2">
          <Card title={t("tenants.details")}>
            <dl className="facts">
              <dt>{t("common.status")}</dt>
              <dd>
                <StatusBadge status={data.status} />
              </dd>
              <dt>ID</dt>
              <dd className="mono">{data.id}</dd>
              <dt>{t("settings.seats")}</dt>
              <dd>{data.seats}</dd>
              <dt>{t("settings.mfaRequired")}</dt>
              <dd>{data.mfa_required ? t("common.yes") : t("common.no")}</dd>
              <dt>{t("settings.minGroupSize")}</dt>
              <dd>{data.min_group_size}</dd>
              <dt>{t("settings.fiscalYearStart")}</dt>
              <dd>{t("settings.month", { month: data.fiscal_year_start_month })}</dd>
              <dt>{t("settings.since")}</dt>
              <dd>{format.date(data.created_at, lang)}</dd>
              <dt>{t("tenants.contractEnd")}</dt>
              <dd>{format.date(data.contract_end, lang)}</dd>
              <dt>{t("tenants.purgeDue")}</dt>
              <dd>{format.date(data.purge_due_at, lang)}</dd>
              <dt>{t("users.companies")}</dt>
              <dd>{data.companies?.map((c) => `${c.name}（${c.code}）`).join("、")}</dd>
              <dt>{t("tenants.admins")}</dt>
              <dd>{data.admins?.map((a) => a.username).join("、") ?? "—"}</dd>
            </dl>
            {data.status === "active" ? (
              <form onSubmit={terminate} className="inline-form danger-zone">
                <Field label={t("tenants.contractEnd")} hint={t("tenants.terminateHint")}>
                  <input type="date" name="contract_end" />
                </Field>
                <button type="submit" className="danger" disabled={action.busy}>
                  {t("tenants.terminate")}
                </button>
              </form>
            ) : null}
          </Card>
          {data.status === "active" || data.status === "terminated" ? <Inventory id={id} /> : null}
          {data.status === "purged" ? <Certificate id={id} /> : null}
        </div>
      ) : null}
    </Screen>
  );
}
