// HR files in: upload with kind and period (a progress bar while the file is sent), the
// row/column errors of a rejected file, the upload history, the current datasets and the
// templates to fill in.
import { useRef, useState } from "react";
import type { FormEvent } from "react";
import { ApiError, api, download, get, upload } from "../api";
import { Card, Empty, ErrorMessage, Field, Loading, Screen } from "../components/ui";
import * as format from "../format";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";
import { KINDS, kindLabel } from "../labels";
import type { Kind } from "../labels";
import { isTenantAdmin, useSession } from "../session";

interface RowError {
  row: number | null;
  column: string | null;
  value: string | null;
  message: string;
}

interface Version {
  kind: string;
  period: string;
  version: number;
  rows: number;
}

interface Uploaded {
  upload_id: string;
  datasets: Version[];
  warnings: string[];
}

interface UploadRow {
  id: string;
  kind: string;
  status: string;
  size_bytes: number;
  error_count: number;
  created_at: string;
}

interface Dataset extends Version {
  created_at: string;
}

function ErrorTable({ errors, total }: { errors: RowError[]; total: number }) {
  const { t } = useI18n();
  return (
    <div className="upload-errors" data-testid="upload-errors">
      <p className="error" role="alert">
        {t("data.rejected", { total, shown: errors.length })}
      </p>
      <div className="table-scroll">
        <table>
          <thead>
            <tr>
              <th className="num">{t("data.row")}</th>
              <th>{t("data.column")}</th>
              <th>{t("data.value")}</th>
              <th>{t("data.message")}</th>
            </tr>
          </thead>
          <tbody>
            {errors.map((e, i) => (
              <tr key={i}>
                <td className="num">{e.row ?? "—"}</td>
                <td>{e.column ?? "—"}</td>
                <td>
                  <code>{e.value ?? ""}</code>
                </td>
                <td>{e.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function UploadForm({ onDone }: { onDone: () => void }) {
  const { t } = useI18n();
  const [kind, setKind] = useState<Kind>("employees");
  const [asOf, setAsOf] = useState("");
  const [ignoreUnknown, setIgnoreUnknown] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const [result, setResult] = useState<Uploaded | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const file = fileInput.current?.files?.[0];
    if (!file) return;
    const form = new FormData();
    form.set("file", file);
    form.set("kind", kind);
    if (kind === "employees") form.set("as_of", asOf);
    if (ignoreUnknown) form.set("ignore_unknown", "true");
    setResult(null);
    setFailure(null);
    setProgress(0);
    try {
      setResult(await upload<Uploaded>("/ingestion/v1/uploads", form, setProgress));
    } catch (err) {
      setFailure(err);
    } finally {
      setProgress(null);
      onDone();
    }
  };

  const rejected =
    failure instanceof ApiError && failure.code === "invalid_dataset"
      ? {
          errors: (failure.details.errors ?? []) as RowError[],
          total: Number(failure.details.total ?? 0),
        }
      : null;

  return (
    <Card title={t("data.upload")}>
      <form className="upload-form" onSubmit={(e) => void submit(e)}>
        <Field label={t("data.kind")}>
          <select name="kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {kindLabel(k, t)}
              </option>
            ))}
          </select>
        </Field>
        {kind === "employees" ? (
          <Field label={t("data.asOf")} hint={t("data.asOfHint")}>
            <input type="month" name="as_of" required value={asOf} onChange={(e) => setAsOf(e.target.value)} />
          </Field>
        ) : null}
        <Field label={t("data.file")} hint={t("data.fileHint")}>
          <input type="file" name="file" required accept=".csv,.txt,.xlsx" ref={fileInput} />
        </Field>
        <label className="check">
          <input type="checkbox" checked={ignoreUnknown} onChange={(e) => setIgnoreUnknown(e.target.checked)} />
          {t("data.ignoreUnknown")}
        </label>
        <button type="submit" className="primary" disabled={progress !== null}>
          {t("data.send")}
        </button>
      </form>
      {progress !== null ? (
        <div className="progress">
          <progress max={1} value={progress} aria-label={t("data.progress")} />
          <span>{progress < 1 ? `${Math.round(progress * 100)}%` : t("data.validating")}</span>
        </div>
      ) : null}
      {result ? (
        <div className="success" role="status" data-testid="upload-success">
          <p>{t("data.accepted")}</p>
          <ul>
            {result.datasets.map((d) => (
              <li key={`${d.kind}-${d.period}`}>
                {kindLabel(d.kind, t)} {d.period} — {t("data.versionRows", { version: d.version, rows: d.rows })}
              </li>
            ))}
          </ul>
          {result.warnings.length > 0 ? (
            <ul className="warnings">
              {result.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      {rejected ? <ErrorTable errors={rejected.errors} total={rejected.total} /> : <ErrorMessage error={failure} />}
    </Card>
  );
}

function History({ tick }: { tick: number }) {
  const { lang, t } = useI18n();
  const uploads = useLoad(() => get<{ uploads: UploadRow[] }>("/ingestion/v1/uploads", { limit: 50 }), [tick]);
  return (
    <Card title={t("data.history")}>
      <ErrorMessage error={uploads.error} />
      {uploads.loading && !uploads.data ? <Loading /> : null}
      {uploads.data?.uploads.length === 0 ? <Empty>{t("data.noUploads")}</Empty> : null}
      {uploads.data && uploads.data.uploads.length > 0 ? (
        <table data-testid="upload-history">
          <thead>
            <tr>
              <th>{t("common.when")}</th>
              <th>{t("data.kind")}</th>
              <th>{t("common.status")}</th>
              <th className="num">{t("data.size")}</th>
              <th className="num">{t("data.errors")}</th>
            </tr>
          </thead>
          <tbody>
            {uploads.data.uploads.map((u) => (
              <tr key={u.id} className={u.status === "rejected" ? "rejected" : undefined}>
                <td>{format.dateTime(u.created_at, lang)}</td>
                <td>{kindLabel(u.kind, t)}</td>
                <td>{u.status === "rejected" ? t("data.statusRejected") : t("data.statusCommitted")}</td>
                <td className="num">{format.bytes(u.size_bytes, lang)}</td>
                <td className="num">{u.error_count}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Card>
  );
}

function Datasets({ tick, onChange }: { tick: number; onChange: () => void }) {
  const { lang, t } = useI18n();
  const { me } = useSession();
  const datasets = useLoad(() => get<{ datasets: Dataset[] }>("/ingestion/v1/datasets"), [tick]);
  const removing = useAction();
  const remove = async (d: Dataset) => {
    if (!window.confirm(t("data.confirmDelete", { kind: kindLabel(d.kind, t), period: d.period }))) return;
    await removing.run(() => api("DELETE", `/ingestion/v1/datasets/${d.kind}/${encodeURIComponent(d.period)}`));
    onChange();
  };
  return (
    <Card title={t("data.datasets")}>
      <ErrorMessage error={datasets.error ?? removing.error} />
      {datasets.data?.datasets.length === 0 ? <Empty>{t("data.noDatasets")}</Empty> : null}
      {datasets.data && datasets.data.datasets.length > 0 ? (
        <table data-testid="datasets">
          <thead>
            <tr>
              <th>{t("data.kind")}</th>
              <th>{t("data.period")}</th>
              <th className="num">{t("data.version")}</th>
              <th className="num">{t("data.rows")}</th>
              <th>{t("common.when")}</th>
              {isTenantAdmin(me) ? <th /> : null}
            </tr>
          </thead>
          <tbody>
            {datasets.data.datasets.map((d) => (
              <tr key={`${d.kind}-${d.period}`}>
                <td>{kindLabel(d.kind, t)}</td>
                <td>{d.period === "all" ? t("data.allPeriods") : d.period.length === 7 ? format.month(d.period, lang) : format.fiscalYear(Number(d.period), lang)}</td>
                <td className="num">{d.version}</td>
                <td className="num">{format.plainNumber(d.rows, lang)}</td>
                <td>{format.dateTime(d.created_at, lang)}</td>
                {isTenantAdmin(me) ? (
                  <td>
                    <button type="button" className="danger small" onClick={() => void remove(d)} disabled={removing.busy}>
                      {t("common.delete")}
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Card>
  );
}

function Templates() {
  const { t } = useI18n();
  const fetching = useAction();
  const get = (kind: Kind, lang: "ja" | "en", fmt: "csv" | "xlsx") =>
    fetching.run(() => download(`/ingestion/v1/templates/${kind}`, { lang, format: fmt }));
  return (
    <Card title={t("data.templates")}>
      <p className="muted">{t("data.templatesIntro")}</p>
      <ErrorMessage error={fetching.error} />
      <table>
        <tbody>
          {KINDS.map((kind) => (
            <tr key={kind}>
              <th scope="row">{kindLabel(kind, t)}</th>
              <td className="buttons">
                <button type="button" className="small" onClick={() => void get(kind, "ja", "csv")}>
                  {t("data.templateJaCsv")}
                </button>
                <button type="button" className="small" onClick={() => void get(kind, "ja", "xlsx")}>
                  {t("data.templateJaXlsx")}
                </button>
                <button type="button" className="small" onClick={() => void get(kind, "en", "csv")}>
                  {t("data.templateEnCsv")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Card>
  );
}

export function Data() {
  const { t } = useI18n();
  const [tick, setTick] = useState(0);
  const changed = () => setTick((n) => n + 1);
  return (
    <Screen title={t("data.title")}>
      <div className="grid-2">
        <UploadForm onDone={changed} />
        <Templates />
      </div>
      <Datasets tick={tick} onChange={changed} />
      <History tick={tick} />
    </Screen>
  );
}
