// SCIM provisioning tokens for the tenant's identity provider: issue (shown once), revoke.
import { useState } from "react";
import { api, get } from "../api";
import { Card, Empty, ErrorMessage, Loading, OnceBox, Screen } from "../components/ui";
import * as format from "../format";
import { useAction, useLoad } from "../hooks";
import { useI18n } from "../i18n";

interface ScimToken {
  id: string;
  created_at: string;
  revoked_at?: string | null;
}

export function AdminScim() {
  const { lang, t } = useI18n();
  const tokens = useLoad(() => get<{ tokens: ScimToken[] }>("/identity/v1/scim-tokens"), []);
  const action = useAction();
  const [issued, setIssued] = useState<string | null>(null);
  const issue = () =>
    action.run(async () => {
      const made = await api<{ token: string }>("POST", "/identity/v1/scim-tokens");
      setIssued(made.token);
      tokens.reload();
    });
  const revoke = (id: string) =>
    action.run(async () => {
      if (!window.confirm(t("scim.confirmRevoke"))) return;
      await api("DELETE", `/identity/v1/scim-tokens/${id}`);
      tokens.reload();
    });
  return (
    <Screen title={t("scim.title")}>
      <p className="muted">{t("scim.intro", { url: `${location.origin}/identity/scim/v2` })}</p>
      {issued ? (
        <OnceBox title={t("scim.token")} testId="scim-token">
          <code className="secret">{issued}</code>
        </OnceBox>
      ) : null}
      <ErrorMessage error={action.error ?? tokens.error} />
      <Card title={t("scim.tokens")}>
        <button type="button" className="primary" onClick={() => void issue()} disabled={action.busy}>
          {t("scim.issue")}
        </button>
        {tokens.loading && !tokens.data ? <Loading /> : null}
        {tokens.data?.tokens.length === 0 ? <Empty>{t("scim.none")}</Empty> : null}
        {tokens.data && tokens.data.tokens.length > 0 ? (
          <table>
            <thead>
              <tr>
                <th>ID</th>
                <th>{t("scim.created")}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {tokens.data.tokens.map((tok) => (
                <tr key={tok.id}>
                  <td className="mono">{tok.id.slice(0, 8)}</td>
                  <td>{format.dateTime(tok.created_at, lang)}</td>
                  <td>
                    {tok.revoked_at ? (
                      t("scim.revoked")
                    ) : (
                      <button type="button" className="small danger" onClick={() => void revoke(tok.id)}>
                        {t("scim.revoke")}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Card>
    </Screen>
  );
}
