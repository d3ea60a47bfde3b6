import { AuditTrail } from "../components/AuditTrail";
import { Screen } from "../components/ui";
import { useI18n } from "../i18n";

export function OperatorAudit() {
  const { t } = useI18n();
  return (
    <Screen title={t("audit.operatorTitle")}>
      <p className="muted">{t("audit.operatorIntro")}</p>
      <AuditTrail />
    </Screen>
  );
}
