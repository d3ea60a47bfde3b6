import { useI18n } from "../i18n";

export function LanguageSwitch() {
  const { lang, setLang } = useI18n();
  return (
    <div className="lang-switch" role="group" aria-label="Language / 言語">
      <button type="button" aria-pressed={lang === "ja"} onClick={() => setLang("ja")} lang="ja">
        日本語
      </button>
      <button type="button" aria-pressed={lang === "en"} onClick={() => setLang("en")} lang="en">
        English
      </button>
    </div>
  );
}
