/**
 * The landing page (`/`): exchange a join code for the hearing link and go there.
 *
 * `POST /api/join-codes/exchange` with `{"code": "..."}` answers `{"url": "..."}` on success; anything
 * else is shown as a localized error. The response body's own text is not shown: it is in one language.
 */

import { bindLanguageSelect, initLanguage, t } from "./i18n.js";

const MAX_CODE_LENGTH = 64;

initLanguage();
bindLanguageSelect(document.getElementById("language-select"));

const form = document.getElementById("join-code-form");
const input = document.getElementById("join-code");
const errorBox = document.getElementById("join-code-error");
const submit = document.getElementById("join-code-submit");

function showError(key, params) {
  errorBox.textContent = t(key, params);
  errorBox.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.focus();
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
  input.removeAttribute("aria-invalid");
}

/** Only http(s) links are followed: the answer decides where the browser goes next. */
function safeUrl(value) {
  if (typeof value !== "string" || value === "") return null;
  try {
    const url = new URL(value, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url : null;
  } catch {
    return null;
  }
}

function setWorking(working) {
  submit.disabled = working;
  submit.textContent = t(working ? "landing.working" : "landing.submit");
  form.setAttribute("aria-busy", String(working));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError();
  const code = input.value.trim();
  if (code === "") {
    showError("landing.error.empty");
    return;
  }
  setWorking(true);
  let response;
  try {
    response = await fetch("/api/join-codes/exchange", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ code: code.slice(0, MAX_CODE_LENGTH) }),
      credentials: "same-origin",
    });
  } catch (err) {
    console.warn("[landing] exchange failed", err);
    setWorking(false);
    showError("landing.error.network");
    return;
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: judged by the status alone
  }
  const url = response.ok ? safeUrl(body?.url) : null;
  if (url) {
    // The chosen language is remembered in localStorage, so the hearing page opens in it.
    location.assign(url.href);
    return;
  }
  setWorking(false);
  if (response.status === 429) showError("landing.error.rateLimited");
  else if (response.status >= 500) showError("landing.error.server", { status: response.status });
  else showError("landing.error.invalid");
});
