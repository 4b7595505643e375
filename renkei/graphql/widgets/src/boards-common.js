// Shared pieces of the teacher boards (<renkei-class-board>, <renkei-student-board>): a tiny
// DOM builder (text only, never innerHTML: pupil data goes into the DOM as text), dates,
// the attendance symbols, labels and the boards' stylesheet.

import { WidgetError, t } from "./graphql.js";

// -- DOM --------------------------------------------------------------------------------------

/** Append children (nodes, strings, numbers, nested arrays; null/false skipped) as text. */
export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** document.createElement with attributes ("class", "dataset" and plain attributes). */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return append(node, children);
}

/** Text for screen readers only. */
export function vh(text) {
  return h("span", { class: "renkei-vh" }, text);
}

let lastId = 0;
/** An id unique in the page (for aria-labelledby). */
export function uniqueId(part) {
  lastId += 1;
  return `renkei-board-${lastId}-${part}`;
}

/** A <section> labelled by its <h3>. */
export function section(title, attrs = {}) {
  const id = uniqueId("h");
  const node = h("section", { ...attrs, "aria-labelledby": id });
  node.append(h("h3", { id }, title));
  return node;
}

/** A link to a page of the host site, or null when the template is missing or unsafe. */
export function hrefFrom(template, id) {
  if (!template) return null;
  const href = template.split("{id}").join(encodeURIComponent(String(id)));
  return /^\s*(javascript|data|vbscript):/i.test(href) ? null : href;
}

/** A link when href is set, plain text otherwise. */
export function maybeLink(href, ...children) {
  return href ? h("a", { href }, ...children) : h("span", {}, ...children);
}

// -- attributes and dates ---------------------------------------------------------------------

const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The value of a required attribute, or a WidgetError naming it. */
export function requiredAttribute(element, name) {
  const value = (element.getAttribute(name) || "").trim();
  if (!value) {
    throw new WidgetError(
      t(element, `${name} 属性を指定してください。`, `Set the ${name} attribute.`),
      "BAD_ATTRIBUTE",
    );
  }
  return value;
}

/** The as-of attribute (YYYY-MM-DD) or null (the server then uses today). */
export function asOfAttribute(element) {
  const value = (element.getAttribute("as-of") || "").trim();
  if (!value) return null;
  if (!ISO_DAY.test(value)) {
    throw new WidgetError(
      t(
        element,
        "as-of 属性は 2026-03-18 の形式で指定してください。",
        "Write the as-of attribute as 2026-03-18.",
      ),
      "BAD_ATTRIBUTE",
    );
  }
  return value;
}

/** "2026-03-18" → a Date at UTC midnight (calendar arithmetic without time zones). */
export function parseDay(value) {
  const match = ISO_DAY.exec(String(value || "").slice(0, 10));
  return match ? new Date(Date.UTC(+match[1], +match[2] - 1, +match[3])) : null;
}

export function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

export function addDays(date, days) {
  return new Date(date.getTime() + days * 86400000);
}

/** 年度: April to March. */
export function schoolYearOf(date) {
  return date.getUTCMonth() >= 3 ? date.getUTCFullYear() : date.getUTCFullYear() - 1;
}

const WEEKDAYS_JA = ["日", "月", "火", "水", "木", "金", "土"];
const WEEKDAYS_EN = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS_EN = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];

export function weekday(element, date) {
  return t(element, WEEKDAYS_JA[date.getUTCDay()], WEEKDAYS_EN[date.getUTCDay()]);
}

/** "3/18" */
export function shortDay(value) {
  const date = parseDay(value);
  return date ? `${date.getUTCMonth() + 1}/${date.getUTCDate()}` : "";
}

/** "3月18日（水）" / "Wed, Mar 18" */
export function longDay(element, value) {
  const date = parseDay(value);
  if (!date) return "";
  const m = date.getUTCMonth();
  const d = date.getUTCDate();
  return t(
    element,
    `${m + 1}月${d}日（${weekday(element, date)}）`,
    `${weekday(element, date)}, ${MONTHS_EN[m]} ${d}`,
  );
}

/** "2026年3月18日" / "Mar 18, 2026" */
export function fullDay(element, value) {
  const date = parseDay(value);
  if (!date) return "";
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth();
  const d = date.getUTCDate();
  return t(
    element,
    `${y}年${m + 1}月${d}日（${weekday(element, date)}）`,
    `${weekday(element, date)}, ${MONTHS_EN[m]} ${d}, ${y}`,
  );
}

/** "2025年4月" / "April 2025" (month 0-based) */
export function monthLabel(element, year, month) {
  return t(element, `${year}年${month + 1}月`, `${MONTHS_EN[month]} ${year}`);
}

/** "4月" / "Apr" */
export function shortMonth(element, month) {
  return t(element, `${month + 1}月`, MONTHS_EN[month]);
}

/** "3/16〜3/18" (or one day) */
export function dayRange(first, last) {
  if (first && last && first !== last) return `${shortDay(first)}〜${shortDay(last)}`;
  return shortDay(last || first);
}

/** The months (year, month 0-based) from April of the school year of asOf up to asOf. */
export function schoolYearMonths(asOf) {
  const year = schoolYearOf(asOf);
  const months = [];
  let y = year;
  let m = 3;
  while (y < asOf.getUTCFullYear() || (y === asOf.getUTCFullYear() && m <= asOf.getUTCMonth())) {
    months.push({ year: y, month: m });
    m += 1;
    if (m === 12) {
      m = 0;
      y += 1;
    }
  }
  return months;
}

const TOKYO = (() => {
  try {
    return new Intl.DateTimeFormat("en-CA", {
      timeZone: "Asia/Tokyo",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
  } catch (_error) {
    return null;
  }
})();

/** A DateTime from the API as the school sees it (Japan time): { day: "YYYY-MM-DD", time: "HH:MM" }. */
export function schoolDateTime(value) {
  const instant = new Date(value);
  if (Number.isNaN(instant.getTime())) {
    return { day: String(value || "").slice(0, 10), time: String(value || "").slice(11, 16) };
  }
  if (!TOKYO) return { day: String(value).slice(0, 10), time: String(value).slice(11, 16) };
  const parts = Object.fromEntries(TOKYO.formatToParts(instant).map((p) => [p.type, p.value]));
  return {
    day: `${parts.year}-${parts.month}-${parts.day}`,
    time: `${parts.hour}:${parts.minute}`,
  };
}

// -- attendance symbols and labels -----------------------------------------------------------

/** Each status: a text symbol (never colour alone), a colour family and labels. */
export const STATUS = {
  PRESENT: { symbol: "○", kind: "present", ja: "出席", en: "Present" },
  ABSENT_ILLNESS: {
    symbol: "／",
    sub: "病",
    kind: "absent",
    ja: "欠席（病気）",
    en: "Absent (illness)",
  },
  ABSENT_ACCIDENT: {
    symbol: "／",
    sub: "事",
    kind: "absent",
    ja: "欠席（事故）",
    en: "Absent (accident)",
  },
  ABSENT_OTHER: {
    symbol: "／",
    sub: "他",
    kind: "absent",
    ja: "欠席（その他）",
    en: "Absent (other)",
  },
  LATE: { symbol: "遅", kind: "partial", ja: "遅刻", en: "Late" },
  EARLY_LEAVE: { symbol: "早", kind: "partial", ja: "早退", en: "Left early" },
  SUSPENSION: {
    symbol: "停",
    kind: "excused",
    ja: "出席停止",
    en: "Suspended attendance (出席停止)",
  },
  MOURNING: { symbol: "忌", kind: "excused", ja: "忌引", en: "Bereavement leave" },
};

export function statusLabel(element, status) {
  const info = STATUS[status];
  return info ? t(element, info.ja, info.en) : String(status || "");
}

/** The symbol of a status (or of "no record"), hidden from screen readers. */
export function markSymbol(status) {
  const info = STATUS[status];
  if (!info)
    return h("span", { class: "renkei-mark renkei-mark--none", "aria-hidden": "true" }, "·");
  return h(
    "span",
    { class: `renkei-mark renkei-mark--${info.kind}`, "aria-hidden": "true" },
    info.symbol,
    info.sub ? h("small", {}, info.sub) : null,
  );
}

/** A legend of the attendance symbols (plus extra [symbolNode, label] entries). */
export function statusLegend(element, extra = []) {
  const list = h("ul", {
    class: "renkei-board-legend",
    "aria-label": t(element, "記号の凡例", "Legend of the symbols"),
  });
  for (const status of Object.keys(STATUS)) {
    list.append(h("li", {}, markSymbol(status), " ", statusLabel(element, status)));
  }
  list.append(h("li", {}, markSymbol(null), " ", t(element, "記録なし", "No record")));
  for (const [symbol, label] of extra) list.append(h("li", {}, symbol, " ", label));
  return list;
}

export const RULES = {
  CONSECUTIVE_ABSENCE: { ja: "連続欠席", en: "Consecutive absence" },
  MONTHLY_ABSENCE: { ja: "月の欠席", en: "Absence this month" },
  YEARLY_ABSENCE: { ja: "年度の欠席", en: "Absence this school year" },
};

export function ruleBadge(element, rule) {
  const info = RULES[rule] || { ja: String(rule), en: String(rule) };
  return h(
    "span",
    { class: "renkei-badge renkei-badge--rule", dataset: { rule } },
    t(element, info.ja, info.en),
  );
}

export function todayBadge(element) {
  return h("span", { class: "renkei-badge renkei-badge--today" }, t(element, "今日", "today"));
}

export const CONDITIONS = {
  GOOD: { ja: "良い", en: "Good" },
  FAIR: { ja: "ふつう", en: "Fair", marker: "△" },
  POOR: { ja: "よくない", en: "Poor", marker: "▲" },
};

export const NURSE_REASONS = {
  INJURY: { ja: "けが", en: "Injury" },
  ILLNESS: { ja: "体調不良", en: "Feeling unwell" },
  MENTAL: { ja: "心の相談", en: "Emotional support" },
  OTHER: { ja: "その他", en: "Other" },
};

export const ASSESSMENT_KINDS = {
  PERIODIC: { ja: "定期考査", en: "Term exam" },
  UNIT: { ja: "単元テスト", en: "Unit test" },
  SURVEY: { ja: "学力調査", en: "Achievement survey" },
};

export function label(element, table, code) {
  const info = table[code];
  return info ? t(element, info.ja, info.en) : String(code ?? "");
}

/** A pupil's name for display (the name may be empty). */
export function pupilName(element, pupil) {
  return (
    (pupil && (pupil.name || pupil.nameKana)) ||
    t(element, "（氏名の登録なし）", "(no name on record)")
  );
}

// -- charts ----------------------------------------------------------------------------------

export const FONT_STACK =
  'system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Hiragino Kaku Gothic ProN", "Noto Sans JP", "Yu Gothic UI", Meiryo, sans-serif';

/** Line/bar colours with at least 3:1 against white, each with its own point shape. */
export const SERIES = [
  { color: "#0b62a4", point: "circle" },
  { color: "#b84a00", point: "rect" },
  { color: "#1b7f4c", point: "triangle" },
  { color: "#8e3b8a", point: "rectRot" },
  { color: "#7a6200", point: "crossRot" },
  { color: "#4a4fa8", point: "star" },
  { color: "#5c6670", point: "rectRounded" },
  { color: "#a3344e", point: "cross" },
];

// -- styles ----------------------------------------------------------------------------------

const STYLES = `
renkei-class-board, renkei-student-board {
  display: block; max-width: 100%; box-sizing: border-box; color: #1f2328; background: #fff;
  font-family: ${FONT_STACK}; font-size: 1rem; line-height: 1.6;
}
.renkei-board *, .renkei-board *::before, .renkei-board *::after { box-sizing: border-box; }
.renkei-board h2 { font-size: 1.375rem; line-height: 1.3; margin: 0 0 .25rem; }
.renkei-board h3 { font-size: 1.125rem; line-height: 1.4; margin: 0 0 .5rem; }
.renkei-board h4 { font-size: 1rem; line-height: 1.4; margin: 1rem 0 .375rem; }
.renkei-board p { margin: .25rem 0; }
.renkei-board section { margin: 1.25rem 0 0; padding-top: 1rem; border-top: 1px solid #d0d7de; }
.renkei-board a { color: #0b57d0; text-decoration: underline; text-underline-offset: .15em; }
.renkei-board a:hover { color: #083c94; }
.renkei-board a:focus-visible, .renkei-board summary:focus-visible,
.renkei-board [tabindex]:focus-visible {
  outline: 3px solid #1a5fb4; outline-offset: 2px; border-radius: 2px;
}
.renkei-board .renkei-vh {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
.renkei-board .renkei-muted { color: #57606a; }
.renkei-board .renkei-kana { display: block; font-size: .75rem; color: #57606a; font-weight: normal; }
.renkei-board-meta { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; margin: .25rem 0 0; color: #3d444d; font-size: .9375rem; }
.renkei-board-meta div { display: flex; gap: .375rem; }
.renkei-board-meta dt { color: #57606a; }
.renkei-board-meta dd { margin: 0; font-weight: 600; }
.renkei-board-note { font-size: .875rem; color: #57606a; }
.renkei-board-rules ul { margin: .25rem 0; padding-left: 1.25rem; font-size: .9375rem; }
.renkei-badge {
  display: inline-block; font-size: .8125rem; line-height: 1.4; padding: 0 .5em;
  border: 1px solid; border-radius: 999px; white-space: nowrap; font-weight: 600;
}
.renkei-badge--rule { background: #eef2f7; border-color: #8393a7; color: #243447; }
.renkei-badge--today { background: #a4262c; border-color: #a4262c; color: #fff; }
.renkei-badge--alert { background: #fff4e5; border-color: #b35c00; color: #5e2f00; white-space: normal; border-radius: 6px; }
.renkei-badge--count { background: #a4262c; border-color: #a4262c; color: #fff; min-width: 1.6em; text-align: center; }
.renkei-badge--excluded { background: #f6f8fa; border-color: #8c959f; color: #3d444d; }
.renkei-board-alerts { display: flex; flex-direction: column; align-items: flex-start; gap: .375rem; list-style: none; margin: .5rem 0 0; padding: 0; }
.renkei-board-alerts li { display: flex; flex-wrap: wrap; gap: .25rem .5rem; align-items: baseline; }

.renkei-timeline { list-style: none; margin: .5rem 0 0 .5rem; padding: 0 0 0 1rem; border-left: 2px solid #c9d1d9; }
.renkei-timeline > li { position: relative; margin: 0 0 1rem; }
.renkei-timeline > li::before {
  content: ""; position: absolute; left: calc(-1rem - 7px); top: .35em; width: 12px; height: 12px;
  border-radius: 50%; background: #fff; border: 2px solid #57606a;
}
.renkei-timeline.is-empty { border-left: 0; padding-left: 0; margin-left: 0; color: #57606a; }
.renkei-timeline.is-empty > li::before { content: none; }
.renkei-timeline > li.is-today::before { background: #a4262c; border-color: #a4262c; }
.renkei-board .renkei-timeline h4 { margin: 0 0 .375rem; display: flex; gap: .5rem; align-items: baseline; }
.renkei-timeline-items { list-style: none; margin: 0; padding: 0; display: grid; gap: .5rem; }
.renkei-alert { padding: .5rem .75rem; border: 1px solid #d0d7de; border-radius: 6px; background: #fbfcfd; }
.renkei-alert-head { display: flex; flex-wrap: wrap; gap: .25rem .75rem; align-items: baseline; }
.renkei-alert-range { font-variant-numeric: tabular-nums; color: #3d444d; font-size: .875rem; }
.renkei-alert-name { font-weight: 600; }
.renkei-alert-message { margin: .125rem 0 0; }

.renkei-board-legend { list-style: none; display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: .5rem 0; padding: 0; font-size: .8125rem; color: #3d444d; }
.renkei-board-legend li { display: inline-flex; align-items: center; gap: .25rem; }
.renkei-board-scroll { position: relative; overflow-x: auto; max-width: 100%; border: 1px solid #d0d7de; border-radius: 6px; }
.renkei-board-table { border-collapse: separate; border-spacing: 0; font-size: .875rem; width: 100%; }
.renkei-board-table caption { text-align: left; font-weight: 600; padding: .25rem .5rem; }
.renkei-board-table th, .renkei-board-table td {
  padding: .3rem .5rem; border-bottom: 1px solid #e4e8ec; text-align: left; vertical-align: middle; background: #fff;
}
.renkei-board-table thead th { background: #f6f8fa; font-weight: 600; border-bottom-color: #d0d7de; white-space: nowrap; }
.renkei-board-table tbody tr:last-child > * { border-bottom: 0; }
.renkei-board-table th[scope="row"] { font-weight: normal; }
.renkei-board-table .num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.renkei-board-table .center { text-align: center; }
.renkei-board-table .wrap { white-space: normal; min-width: 12rem; }
.renkei-pupils .c-no { position: sticky; left: 0; z-index: 1; width: 3.75rem; min-width: 3.75rem; text-align: right; }
.renkei-pupils .c-name { position: sticky; left: 3.75rem; z-index: 1; min-width: 8.5rem; box-shadow: inset -1px 0 0 #d0d7de; }
.renkei-pupils .c-day { padding: .2rem .1rem; text-align: center; min-width: 2rem; width: 2rem; }
.renkei-pupils thead .c-day { font-weight: normal; font-size: .75rem; line-height: 1.2; }
.renkei-pupils thead .c-day span { display: block; }
.renkei-pupils .is-weekend { background: #f3f5f7; }
.renkei-pupils thead .is-asof { box-shadow: inset 0 -3px 0 #1a5fb4; font-weight: 600; }
.renkei-pupils .c-alerts { min-width: 6rem; }
.renkei-pupils .c-alerts .renkei-excluded { display: block; min-width: 14rem; font-size: .8125rem; color: #3d444d; white-space: normal; }

.renkei-mark {
  display: inline-flex; align-items: center; justify-content: center; min-width: 1.625rem; height: 1.625rem;
  padding: 0 .125rem; border-radius: 4px; font-weight: 700; line-height: 1; font-size: .875rem;
}
.renkei-mark small { font-size: .625rem; font-weight: 700; margin-left: 1px; }
.renkei-mark--present { color: #1d6b3a; }
.renkei-mark--absent { background: #fbe3e1; color: #8c1d18; box-shadow: inset 0 0 0 1px #d99791; }
.renkei-mark--partial { background: #fff3c4; color: #5f4300; box-shadow: inset 0 0 0 1px #d6b656; }
.renkei-mark--excused { background: #e3ecf8; color: #1f4477; box-shadow: inset 0 0 0 1px #9fb6d6; }
.renkei-mark--none { color: #6e7781; font-weight: 400; }

.renkei-summary { display: flex; flex-wrap: wrap; gap: .5rem; margin: .25rem 0 .75rem; }
.renkei-summary div { border: 1px solid #d0d7de; border-radius: 6px; padding: .375rem .75rem; min-width: 8rem; background: #fbfcfd; }
.renkei-summary dt { font-size: .8125rem; color: #57606a; }
.renkei-summary dd { margin: 0; font-size: 1.125rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.renkei-summary dd small { font-size: .8125rem; font-weight: normal; color: #3d444d; margin-left: .25rem; }

.renkei-cal-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(15.5rem, 1fr)); gap: 1rem 1.25rem; }
.renkei-cal { border-collapse: collapse; width: 100%; table-layout: fixed; font-size: .8125rem; }
.renkei-cal caption { text-align: left; font-weight: 600; padding: 0 0 .25rem; }
.renkei-cal th { font-weight: 600; color: #57606a; padding: .125rem; text-align: center; font-size: .75rem; }
.renkei-cal td { border: 1px solid #e1e5e9; height: 2.75rem; padding: .125rem; vertical-align: bottom; text-align: center; position: relative; }
.renkei-cal td.is-blank { border: 0; }
.renkei-cal td.is-weekend { background: #f6f8fa; }
.renkei-cal td.is-future { background: #fafbfc; }
.renkei-cal td.is-asof { outline: 2px solid #1a5fb4; outline-offset: -2px; }
.renkei-cal-day { position: absolute; top: .125rem; left: .25rem; font-size: .6875rem; line-height: 1; color: #57606a; }
.renkei-cal .renkei-mark { min-width: 1.375rem; height: 1.375rem; font-size: .8125rem; margin-top: .625rem; }
.renkei-cal-markers { position: absolute; top: .125rem; right: .2rem; font-size: .6875rem; line-height: 1; letter-spacing: 1px; }
.renkei-marker-poor { color: #a4262c; }
.renkei-marker-fair { color: #7a5200; }
.renkei-marker-nurse { color: #1f4477; font-weight: 700; }
.renkei-marker-mood { color: #4a3b00; }

.renkei-board-chart { position: relative; width: 100%; height: 280px; margin: .5rem 0; }
.renkei-board-chart canvas { display: block; max-width: 100%; }
.renkei-board details { margin-top: .5rem; }
.renkei-board summary { cursor: pointer; color: #0b57d0; }
.renkei-board .renkei-board-list { margin: .25rem 0; padding-left: 1.25rem; }
.renkei-board .renkei-board-list li { margin: .125rem 0; }
.renkei-survey { border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem .75rem; margin: .5rem 0; }
.renkei-survey dl { display: grid; grid-template-columns: max-content 1fr; gap: .125rem 1rem; margin: .25rem 0 0; font-size: .9375rem; }
.renkei-survey dt { color: #57606a; }
.renkei-survey dd { margin: 0; }
.renkei-locked { border: 1px solid #d0d7de; border-left: 4px solid #1a5fb4; border-radius: 6px; padding: .5rem .75rem; background: #f6f9fd; }
@media (max-width: 900px) {
  .renkei-board h2 { font-size: 1.25rem; }
  .renkei-board-chart { height: 240px; }
}
`;

/** The boards' stylesheet, once per document (in addition to the shared widget styles). */
export function ensureBoardStyles() {
  if (typeof document === "undefined" || document.getElementById("renkei-board-styles")) return;
  const style = document.createElement("style");
  style.id = "renkei-board-styles";
  style.textContent = STYLES;
  (document.head || document.documentElement).appendChild(style);
}

// -- 個人カルテ: the five subjects and tests taken together ----------------------------------

/** The five subjects of the 個人カルテ's trend (算数 and 数学 are one line, as are 外国語 and 英語). */
export const FIVE_SUBJECTS = [
  { key: "japanese", ja: "国語", en: "Japanese", names: ["国語"] },
  { key: "math", ja: "算数・数学", en: "Mathematics", names: ["算数", "数学"] },
  { key: "science", ja: "理科", en: "Science", names: ["理科"] },
  { key: "social", ja: "社会", en: "Social studies", names: ["社会"] },
  { key: "english", ja: "英語", en: "English", names: ["英語", "外国語"] },
];

/** The key of one of the five subjects, or the subject's own name. */
export function subjectKey(subject) {
  const found = FIVE_SUBJECTS.find((s) => s.names.includes(subject));
  return found ? found.key : subject;
}

/** Score as a percent of the maximum, one decimal. */
export function scorePercent(row) {
  return Math.round((row.score / row.maxScore) * 1000) / 10;
}

function average(values) {
  return Math.round((values.reduce((s, v) => s + v, 0) / values.length) * 10) / 10;
}

/** Average percent per subject key over test rows with a maximum (subjects without tests left out). */
export function subjectAverages(rows) {
  const by = new Map();
  for (const row of rows) {
    if (!(row.maxScore > 0)) continue;
    const key = subjectKey(row.subject);
    if (!by.has(key)) by.set(key, []);
    by.get(key).push((row.score / row.maxScore) * 100);
  }
  return new Map([...by].map(([key, values]) => [key, average(values)]));
}

/**
 * Tests taken together: the same kind in the same month (a 定期考査 over three days, a
 * month's 単元テスト, a 学力調査), newest first, each with its subjects' percent.
 */
export function testSittings(rows) {
  const groups = new Map();
  for (const row of rows) {
    if (!(row.maxScore > 0)) continue;
    const month = row.takenOn.slice(0, 7);
    const id = `${row.kind}|${month}`;
    if (!groups.has(id)) groups.set(id, { kind: row.kind, month, last: "", rows: [] });
    const group = groups.get(id);
    group.rows.push(row);
    if (row.takenOn > group.last) group.last = row.takenOn;
  }
  return [...groups.values()]
    .map((group) => ({ ...group, scores: subjectAverages(group.rows) }))
    .sort((a, b) => (a.last < b.last ? 1 : a.last > b.last ? -1 : 0));
}
