import { AuditTrail } from "../components/AuditTrail";
import { Screen } from "../components/ui";
import { useI18n } from "../i18n";
import { useSession } from "../session";

export function AdminAudit() {
  const { t } = useI18n();
  const { me } = useSession();
  return (
    <Screen title={t("audit.tenantTitle")}>
      <p className="muted">{t("audit.tenantIntro")}</p>
      <AuditTrail fixedStream={me.tenant_id} />
    </Screen>
  );
}
