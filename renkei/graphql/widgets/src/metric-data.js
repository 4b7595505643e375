// Fetching a metric table from the tenant or the federation API, normalising both shapes, and
// the pieces <renkei-chart> and <renkei-table> share (accessible table, legend, formatting).

import { FEDERATION_METRIC, TENANT_METRIC } from "./queries.js";
import { WidgetError, ensureStyles, graphqlRequest, lang, renderError, t } from "./graphql.js";

export const METRIC_ATTRIBUTES = [
  "endpoint", "token", "metric", "school-year", "breakdown", "school-code", "kind", "lang",
  "api", "prefecture",
];

const TOTAL_CODES = new Set(["__total__", "_total"]);
const FEDERATION_FLAGS = { month: "byMonth", grade: "byGrade", municipality: "byMunicipality" };

export const isTotal = (code) => TOTAL_CODES.has(code);

/** The widget's attributes, checked (throws WidgetError with a message saying what to fix). */
export function readAttributes(element) {
  const metric = (element.getAttribute("metric") || "").trim();
  if (!/^[a-z][a-z0-9_]*$/.test(metric)) {
    throw new WidgetError(
      t(element, "metric 属性に指標名（例: long_term_absence）を指定してください。",
        "Set the metric attribute to a metric name (e.g. long_term_absence)."),
      "BAD_ATTRIBUTE",
    );
  }
  const yearText = (element.getAttribute("school-year") || "").trim();
  const schoolYear = Number.parseInt(yearText, 10);
  if (!/^\d{4}$/.test(yearText) || !Number.isFinite(schoolYear)) {
    throw new WidgetError(
      t(element, "school-year 属性に年度（例: 2025）を指定してください。",
        "Set the school-year attribute (e.g. 2025)."),
      "BAD_ATTRIBUTE",
    );
  }
  const breakdown = (element.getAttribute("breakdown") || "")
    .split(",").map((part) => part.trim()).filter(Boolean);
  const api = (element.getAttribute("api") || "tenant").trim().toLowerCase();
  const prefecture = (element.getAttribute("prefecture") || "").trim();
  if (api === "federation") {
    if (!/^\d{2}$/.test(prefecture)) {
      throw new WidgetError(
        t(element, "api=\"federation\" のときは prefecture 属性に都道府県コード（例: 13）を指定してください。",
          "With api=\"federation\", set the prefecture attribute (e.g. 13)."),
        "BAD_ATTRIBUTE",
      );
    }
    const unknown = breakdown.filter((d) => !(d in FEDERATION_FLAGS));
    if (unknown.length) {
      throw new WidgetError(
        t(element, `内訳「${unknown.join("、")}」は使えません（使える内訳: month, grade, municipality）。`,
          `Unknown breakdown "${unknown.join(", ")}" (use month, grade, municipality).`),
        "BAD_ATTRIBUTE",
      );
    }
  } else if (api !== "tenant") {
    throw new WidgetError(
      t(element, "api 属性は tenant（省略時）か federation にしてください。",
        "The api attribute must be tenant (default) or federation."),
      "BAD_ATTRIBUTE",
    );
  }
  return {
    api, metric, schoolYear, breakdown, prefecture,
    schoolCode: (element.getAttribute("school-code") || "").trim() || null,
  };
}

/** The Prefecture field of a metric: strawberry's camelCase of the registry name. */
export function federationField(metric) {
  const [first, ...rest] = metric.split("_");
  return first + rest.map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join("");
}

export function federationQuery(metric, breakdown) {
  const flags = Object.keys(FEDERATION_FLAGS)
    .filter((d) => breakdown.includes(d))
    .map((d) => `, ${FEDERATION_FLAGS[d]}: true`)
    .join("");
  return FEDERATION_METRIC.replace("%FIELD%", federationField(metric)).replace("%FLAGS%", flags);
}

/**
 * Fetch and normalise: {definition, schoolYear, unit, k, dimensions, categories,
 * cells: [{key: {dim: code}, labels: {dim: label}, pupils, value, suppressed, reason}],
 * missing: [{code, name, status, reason}], scopeName}.
 */
export async function loadMetric(element) {
  const a = readAttributes(element);
  if (a.api === "federation") {
    const data = await graphqlRequest(element, federationQuery(a.metric, a.breakdown), {
      prefecture: a.prefecture, schoolYear: a.schoolYear,
    });
    const prefecture = data.prefecture;
    if (!prefecture || !prefecture.result) {
      throw new WidgetError(t(element, "データがありません。", "No data."), "NO_DATA");
    }
    const r = prefecture.result;
    const english = lang(element) === "en";
    const labels = new Map(r.labels.map((l) => [`${l.dimension}\u0000${l.code}`,
      english ? l.labelEn : l.label]));
    const cells = r.cells.map((cell) => {
      const key = {};
      const cellLabels = {};
      r.dimensions.forEach((dimension, i) => {
        const code = cell.key[i];
        key[dimension] = code;
        cellLabels[dimension] = labels.get(`${dimension}\u0000${code}`) || code;
      });
      return { ...cell, key, labels: cellLabels };
    });
    return {
      definition: r.metric, schoolYear: r.schoolYear, unit: r.metric.unit, k: r.k,
      dimensions: r.dimensions, categories: r.metric.categories || [], cells,
      missing: r.missing || [], scopeName: prefecture.name, breakdown: a.breakdown,
    };
  }
  const data = await graphqlRequest(element, TENANT_METRIC, {
    name: a.metric, schoolYear: a.schoolYear,
    breakdown: a.breakdown.length ? a.breakdown : null, schoolCode: a.schoolCode,
  });
  const table = data.metric;
  if (!table) {
    throw new WidgetError(t(element, "データがありません。", "No data."), "NO_DATA");
  }
  const definition = (data.metrics || []).find((m) => m.name === table.metric) || null;
  const english = lang(element) === "en";
  const cells = table.cells.map((cell) => {
    const key = {};
    const cellLabels = {};
    for (const part of cell.key) {
      key[part.dimension] = part.value;
      cellLabels[part.dimension] = english ? part.labelEn : part.label;
    }
    return { ...cell, key, labels: cellLabels };
  });
  const categories = definition
    ? definition.categories
    : table.dimensions.filter((d) => !a.breakdown.includes(d));
  return {
    definition, schoolYear: table.schoolYear, unit: table.unit, k: table.k,
    dimensions: table.dimensions, categories, cells, missing: [], scopeName: null,
    breakdown: a.breakdown,
  };
}

// -- text --------------------------------------------------------------------------------------

const DIMENSION_LABELS = {
  month: ["年度・月", "Month"], grade: ["学校種・学年", "Grade"],
  municipality: ["市区町村", "Municipality"], absence_days: ["年間欠席日数", "Absence days"],
  absence_category: ["長期欠席の区分", "Long-term absence category"],
  monthly_absence: ["月の欠席日数", "Absence days in the month"],
  nurse_reason: ["来室理由", "Reason"], app: ["アプリ", "App"], subject: ["教科", "Subject"],
  score_bin: ["得点率", "Score"],
  learning_minutes: ["1週あたりの学習時間", "Learning minutes per week"],
};

export function dimensionLabel(element, dimension) {
  const pair = DIMENSION_LABELS[dimension];
  return pair ? t(element, pair[0], pair[1]) : dimension;
}

export function metricTitle(element, table) {
  const d = table.definition;
  const name = d ? (lang(element) === "en" ? d.labelEn : d.labelJa) : "";
  const year = t(element, `${table.schoolYear}年度`, `school year ${table.schoolYear}`);
  const scope = table.scopeName ? t(element, `（${table.scopeName}）`, ` (${table.scopeName})`) : "";
  return lang(element) === "en" ? `${name}, ${year}${scope}` : `${name} ${year}${scope}`;
}

export function metricDescription(element, table) {
  const d = table.definition;
  if (!d) return "";
  return lang(element) === "en" ? d.descriptionEn : d.descriptionJa;
}

export function suppressedText(element) {
  return t(element, "秘匿", "Suppressed");
}

export function suppressedTooltip(element) {
  return t(element, "秘匿（少人数のため非公開）", "Suppressed (too few pupils to publish)");
}

export function formatNumber(element, value, digits = 1) {
  return value.toLocaleString(lang(element) === "en" ? "en-US" : "ja-JP", {
    maximumFractionDigits: digits, minimumFractionDigits: digits,
  });
}

export function formatValue(element, value, unit, digits = 1) {
  if (value === null || value === undefined) return "";
  const number = formatNumber(element, value, digits);
  if (!unit) return number;
  return unit === "%" ? `${number}%` : `${number} ${unit}`;
}

/** The explanation of the hatched cells, with the table's k. */
export function legend(element, k) {
  const box = document.createElement("p");
  box.className = "renkei-legend";
  const swatch = document.createElement("span");
  swatch.className = "renkei-swatch";
  swatch.setAttribute("aria-hidden", "true");
  const text = document.createElement("span");
  text.textContent = t(element,
    `斜線（×）は秘匿: 児童生徒が ${k} 人未満など、個人が特定されるおそれがあるため表示していません（0 ではありません）。`,
    `Hatched (×) = suppressed: fewer than ${k} pupils or otherwise identifying, so not shown (it is not 0).`);
  box.append(swatch, text);
  return box;
}

/** Municipalities that did not answer (federation): a note, or null. */
export function missingNote(element, table) {
  if (!table.missing || !table.missing.length) return null;
  const p = document.createElement("p");
  p.className = "renkei-description renkei-missing";
  const names = table.missing.map((m) => m.name || m.code).join(t(element, "、", ", "));
  p.textContent = t(element, `応答がなかった市区町村（合計に含まれていません）: ${names}`,
    `Municipalities that did not answer (not in the totals): ${names}`);
  return p;
}

/**
 * The accessible table of every cell, one row per cell: a column per dimension, the value and
 * (when any cell has it) the pupils. Suppressed cells read 「秘匿」 with data-suppressed="true".
 */
export function buildTable(element, table, caption) {
  const el = document.createElement("table");
  el.className = "renkei-table";
  const cap = document.createElement("caption");
  cap.textContent = caption;
  el.append(cap);
  const showPupils = table.cells.some((c) => c.pupils !== null && c.pupils !== undefined);
  const thead = document.createElement("thead");
  const headRow = document.createElement("tr");
  const headers = table.dimensions.map((d) => dimensionLabel(element, d));
  const valueHeader = table.unit
    ? t(element, `値（${table.unit}）`, `Value (${table.unit})`)
    : t(element, "値", "Value");
  headers.push(valueHeader);
  if (showPupils) headers.push(t(element, "人数", "Pupils"));
  for (const text of headers) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = text;
    headRow.append(th);
  }
  thead.append(headRow);
  const tbody = document.createElement("tbody");
  for (const cell of table.cells) {
    const tr = document.createElement("tr");
    if (table.dimensions.length === 0) {
      tr.dataset.total = "true";
    }
    table.dimensions.forEach((dimension, i) => {
      const th = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) th.scope = "row";
      th.className = "renkei-key";
      th.textContent = cell.labels[dimension];
      th.dataset.code = cell.key[dimension];
      tr.append(th);
    });
    const value = document.createElement("td");
    if (cell.suppressed) {
      value.className = "renkei-suppressed";
      value.dataset.suppressed = "true";
      value.textContent = suppressedText(element);
      value.title = cell.reason || suppressedTooltip(element);
    } else if (cell.value === null || cell.value === undefined) {
      value.textContent = "—";
      value.title = cell.reason || t(element, "算出できません", "Not available");
      value.dataset.missing = "true";
    } else {
      value.textContent = formatValue(element, cell.value, table.unit);
      value.dataset.value = String(cell.value);
    }
    tr.append(value);
    if (showPupils) {
      const pupils = document.createElement("td");
      if (cell.suppressed) {
        pupils.className = "renkei-suppressed"; // data-suppressed only on the value cell
        pupils.textContent = suppressedText(element);
      } else if (cell.pupils !== null && cell.pupils !== undefined) {
        pupils.textContent = cell.pupils.toLocaleString(lang(element) === "en" ? "en-US" : "ja-JP");
      } else {
        pupils.textContent = "—";
      }
      tr.append(pupils);
    }
    tbody.append(tr);
  }
  el.append(thead, tbody);
  const scroll = document.createElement("div");
  scroll.className = "renkei-table-scroll";
  scroll.append(el);
  return scroll;
}

export function suppressedCount(table) {
  return table.cells.filter((c) => c.suppressed).length;
}

/**
 * Base class: observed attributes, loading → ready | error, a fresh load on every attribute
 * change (a load that a newer one overtook is dropped).
 */
export class MetricElement extends HTMLElement {
  static get observedAttributes() {
    return METRIC_ATTRIBUTES;
  }

  constructor() {
    super();
    this._generation = 0;
    this._scheduled = false;
  }

  connectedCallback() {
    ensureStyles();
    this._schedule();
  }

  disconnectedCallback() {
    this._generation += 1;
    this.teardown();
  }

  attributeChangedCallback(_name, oldValue, newValue) {
    if (oldValue !== newValue && this.isConnected) this._schedule();
  }

  _schedule() {
    // Several attributes set in a row load once.
    if (this._scheduled) return;
    this._scheduled = true;
    queueMicrotask(() => {
      this._scheduled = false;
      if (this.isConnected) this._load();
    });
  }

  async _load() {
    const generation = ++this._generation;
    this.dataset.state = "loading";
    this.classList.add("renkei-widget");
    this.setAttribute("aria-busy", "true");
    try {
      if (!this.querySelector(":scope > .renkei-body")) {
        const p = document.createElement("p");
        p.className = "renkei-loading";
        p.textContent = t(this, "読み込み中…", "Loading…");
        this.teardown();
        this.replaceChildren(p);
      }
      const table = await loadMetric(this);
      if (generation !== this._generation) return;
      this.teardown();
      this.render(table);
      this.dataset.suppressedCount = String(suppressedCount(table));
      this.dataset.state = "ready";
    } catch (error) {
      if (generation !== this._generation) return;
      this.teardown();
      delete this.dataset.suppressedCount;
      delete this.dataset.chartSuppressedCount;
      renderError(this, error);
    } finally {
      if (generation === this._generation) this.removeAttribute("aria-busy");
    }
  }

  /** Subclasses: build the content from a normalised table. */
  render(_table) {}

  /** Subclasses: release what render made (a chart). */
  teardown() {}
}
