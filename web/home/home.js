// @ts-check
// The landing page: translated text and the language switch, nothing else.
import { initI18n } from "/shared/i18n.js";

await initI18n();
