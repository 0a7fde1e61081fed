// @ts-check
// A confirmation step before an action that cannot simply be undone (disable an account,
// delete a team): a modal <dialog>, so focus stays inside and Escape cancels.
import { t } from "/shared/i18n.js";
import { $ } from "/shared/dom.js";

let pending = null;

/** Ask; resolves true when the person confirms. Texts are {key, params}. */
export function confirmAction({ title, text, confirm }) {
  const dialog = $("confirm-dialog");
  pending?.(false);
  const render = () => {
    $("confirm-title").textContent = t(title.key, title.params);
    $("confirm-text").textContent = t(text.key, text.params);
    $("confirm-ok").textContent = t(confirm.key, confirm.params);
  };
  render();
  dialog.renderTexts = render;
  const opener = document.activeElement;
  dialog.showModal();
  $("confirm-cancel").focus();
  return new Promise((resolve) => {
    pending = (answer) => {
      pending = null;
      dialog.renderTexts = null;
      if (dialog.open) dialog.close();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(answer);
    };
  });
}

export function setupConfirm() {
  const dialog = $("confirm-dialog");
  $("confirm-ok").addEventListener("click", () => pending?.(true));
  $("confirm-cancel").addEventListener("click", () => pending?.(false));
  dialog.addEventListener("close", () => pending?.(false));
}

export function renderConfirm() {
  $("confirm-dialog").renderTexts?.();
}
