// The client every widget shares: one POST per query, errors as WidgetError, and the
// light-DOM styles. Widgets render into the light DOM (no shadow root) so that page tests
// and selectors reach their content, and the host page's fonts apply.

const NETWORK_JA =
  "データを読み込めませんでした（接続できないか、このサイトからの利用が許可されていません）。";
const NETWORK_EN =
  "The data could not be loaded (the server is unreachable or this site is not allowed to use it).";

export class WidgetError extends Error {
  constructor(message, code) {
    super(message);
    this.name = "WidgetError";
    this.code = code || null;
  }
}

/** "en" if the element (or its closest [lang] ancestor, or the document) is English, else "ja". */
export function lang(element) {
  const holder = element && element.closest ? element.closest("[lang]") : null;
  const value =
    (holder && holder.getAttribute("lang")) ||
    (typeof document !== "undefined" && document.documentElement
      ? document.documentElement.lang
      : "") ||
    "";
  return value.toLowerCase().startsWith("en") ? "en" : "ja";
}

/** Japanese or English text, following lang(element). */
export function t(element, ja, en) {
  return lang(element) === "en" ? en : ja;
}

function cookie(name) {
  if (typeof document === "undefined" || !document.cookie) return null;
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/**
 * POST {query, variables} to the element's `endpoint`. With a `token` attribute the request
 * carries `Authorization: Bearer` and no cookies; otherwise it uses the session cookie and
 * sends the CSRF token. Returns `data`, or throws WidgetError (message for the user).
 */
export async function graphqlRequest(element, query, variables = {}) {
  const endpoint = element.getAttribute("endpoint");
  if (!endpoint) {
    throw new WidgetError(
      t(element, "endpoint 属性（GraphQL の URL）を指定してください。",
        "Set the endpoint attribute (the GraphQL URL)."),
      "NO_ENDPOINT",
    );
  }
  const headers = { "Content-Type": "application/json" };
  const token = element.getAttribute("token");
  let credentials;
  if (token) {
    headers.Authorization = `Bearer ${token}`;
    credentials = "omit";
  } else {
    credentials = "same-origin";
    const csrf = cookie("csrftoken");
    if (csrf) headers["X-CSRFToken"] = csrf;
  }
  let response;
  try {
    response = await fetch(endpoint, {
      method: "POST",
      headers,
      credentials,
      body: JSON.stringify({ query, variables }),
    });
  } catch (_error) {
    // fetch rejects with a TypeError both when the server is unreachable and when CORS refuses.
    throw new WidgetError(t(element, NETWORK_JA, NETWORK_EN), "NETWORK_ERROR");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_error) {
    body = null;
  }
  const errors = body && Array.isArray(body.errors) ? body.errors : [];
  if (errors.length) {
    const first = errors[0] || {};
    const code = (first.extensions && first.extensions.code) || `HTTP_${response.status}`;
    throw new WidgetError(
      first.message ||
        t(element, "サーバーがエラーを返しました。", "The server returned an error."),
      code,
    );
  }
  if (!response.ok) {
    throw new WidgetError(
      t(element,
        `サーバーがエラーを返しました（HTTP ${response.status}）。時間をおいて再度お試しください。`,
        `The server returned an error (HTTP ${response.status}). Please try again later.`),
      `HTTP_${response.status}`,
    );
  }
  if (!body || typeof body.data !== "object" || body.data === null) {
    throw new WidgetError(
      t(element, "サーバーの応答を読み取れませんでした。", "The server's answer could not be read."),
      "BAD_RESPONSE",
    );
  }
  return body.data;
}

/** Replace the element's content with an alert paragraph and mark it data-state="error". */
export function renderError(element, error) {
  const message =
    error instanceof WidgetError
      ? error.message
      : t(element, "表示中にエラーが発生しました。", "Something went wrong while displaying this.");
  if (!(error instanceof WidgetError) && typeof console !== "undefined") {
    console.error(error);
  }
  const p = document.createElement("p");
  p.setAttribute("role", "alert");
  p.className = "renkei-error";
  p.textContent = message;
  if (error && error.code) p.dataset.code = error.code;
  element.replaceChildren(p);
  element.dataset.state = "error";
}

const STYLES = `
renkei-chart, renkei-table { display: block; font-family: inherit; color: inherit; max-width: 100%; }
.renkei-widget { box-sizing: border-box; }
.renkei-widget h3, .renkei-widget .renkei-title { font-size: 1.05rem; margin: 0 0 .25rem; }
.renkei-widget .renkei-description { font-size: .875rem; margin: 0 0 .5rem; color: #444; }
.renkei-chart-box { position: relative; width: 100%; height: clamp(220px, 40vw, 360px); }
.renkei-chart-box canvas { display: block; max-width: 100%; }
.renkei-legend { font-size: .8125rem; margin: .5rem 0; color: #333; display: flex; gap: .5rem; align-items: flex-start; }
.renkei-legend .renkei-swatch { flex: 0 0 auto; width: 1.5em; height: 1em; border: 1px solid #666; margin-top: .15em; }
.renkei-hatch, .renkei-table td.renkei-suppressed, .renkei-legend .renkei-swatch {
  background-color: #eee;
  background-image: repeating-linear-gradient(45deg, #777 0 1px, transparent 1px 6px),
    repeating-linear-gradient(-45deg, #777 0 1px, transparent 1px 6px);
}
.renkei-table { border-collapse: collapse; font-size: .875rem; margin: .25rem 0; }
.renkei-table caption { text-align: left; font-weight: 600; padding: .25rem 0; caption-side: top; }
.renkei-table th, .renkei-table td { border: 1px solid #bbb; padding: .25rem .5rem; }
.renkei-table thead th { background: #f3f3f3; }
.renkei-table td { text-align: right; font-variant-numeric: tabular-nums; }
.renkei-table th[scope="row"] { text-align: left; font-weight: normal; }
.renkei-table td.renkei-suppressed { color: #222; font-style: italic; font-weight: 600; }
.renkei-table-scroll { position: relative; overflow-x: auto; max-width: 100%; }
.renkei-widget details { margin-top: .5rem; }
.renkei-widget details summary { cursor: pointer; }
.renkei-loading { color: #555; font-size: .875rem; }
.renkei-error { color: #8a1c1c; background: #fff1f1; border: 1px solid #e0a0a0; padding: .5rem .75rem; margin: 0; }
`;

/** Inject the widgets' stylesheet once into document.head. */
export function ensureStyles() {
  if (typeof document === "undefined" || document.getElementById("renkei-widget-styles")) return;
  const style = document.createElement("style");
  style.id = "renkei-widget-styles";
  style.textContent = STYLES;
  (document.head || document.documentElement).appendChild(style);
}

/** Extend the shared stylesheet (for other widget modules); idempotent per key. */
export function addStyles(key, css) {
  if (typeof document === "undefined") return;
  const id = `renkei-widget-styles-${key}`;
  if (document.getElementById(id)) return;
  ensureStyles();
  const style = document.createElement("style");
  style.id = id;
  style.textContent = css;
  (document.head || document.documentElement).appendChild(style);
}
