// <renkei-chart>: a metric as a bar or line chart (Chart.js), with the same data as a table
// under it. Suppressed cells are never drawn as a value: bars get a cross-hatched placeholder
// over the whole axis, lines a gap and a × marker at the bottom of the axis.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LineController, LineElement,
  LinearScale, PointElement, Tooltip,
} from "chart.js";

import { lang, t } from "./graphql.js";
import {
  MetricElement, buildTable, formatValue, isTotal, legend, metricDescription, metricTitle,
  missingNote, suppressedText, suppressedTooltip,
} from "./metric-data.js";

Chart.register(BarController, BarElement, LineController, LineElement, PointElement,
  CategoryScale, LinearScale, Tooltip, Legend);

// Okabe-Ito: tells series apart with colour vision deficiencies too.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
  "#F0E442", "#8C6D31", "#7F7F7F"];
const MAX_SERIES = 10;
const SCORE_LEAVES = ["0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79",
  "80-89", "90-100"];
// Codes left out of the chart (still in the table): complements and the fine bins that would
// drown the interesting series.
const HIDDEN_IN_CHART = {
  absence_category: new Set(["not_long_term"]),
  monthly_absence: new Set(["lt10"]),
  score_bin: new Set(SCORE_LEAVES),
};

function orderedCodes(table, dimension) {
  const seen = new Map();
  for (const cell of table.cells) {
    const code = cell.key[dimension];
    if (!seen.has(code)) seen.set(code, cell.labels[dimension]);
  }
  return [...seen].map(([code, label]) => ({ dimension, code, label }));
}

function pick(table, dimension, preferTotal) {
  const codes = orderedCodes(table, dimension);
  const totals = codes.filter((c) => isTotal(c.code));
  const parts = codes.filter((c) => !isTotal(c.code));
  if (preferTotal && totals.length) return totals;
  const hidden = HIDDEN_IN_CHART[dimension] || new Set();
  const useful = parts.filter((c) => !hidden.has(c.code));
  if (useful.length) return useful;
  if (parts.length) return parts;
  return codes;
}

function cartesian(lists) {
  return lists.reduce((acc, list) => acc.flatMap((prefix) => list.map((x) => [...prefix, x])),
    [[]]);
}

/**
 * What to draw: x = the first dimension that is not a category of the metric (month, grade,
 * municipality), one series per combination of the other dimensions' codes (totals left out
 * unless they are all there is).
 */
export function chartModel(table, fallbackLabel) {
  const categories = new Set(table.categories);
  const dims = table.dimensions;
  const xDim = (table.breakdown || []).find((d) => dims.includes(d))
    || dims.find((d) => !categories.has(d)) || dims[0] || null;
  const rest = dims.filter((d) => d !== xDim);
  let xCodes = xDim ? orderedCodes(table, xDim) : [{ dimension: null, code: null, label: fallbackLabel }];
  if (xDim) {
    const parts = xCodes.filter((c) => !isTotal(c.code));
    if (parts.length) xCodes = parts;
    const hidden = HIDDEN_IN_CHART[xDim] || new Set();
    const shown = xCodes.filter((c) => !hidden.has(c.code));
    if (shown.length) xCodes = shown;
    if (xDim === "month") {
      const months = xCodes.filter((c) => c.code.includes("-")); // not the year's value
      if (months.length) xCodes = months;
    }
  }
  let picks = rest.map((d) => pick(table, d, false));
  const count = (lists) => lists.reduce((n, list) => n * list.length, 1);
  if (count(picks) > MAX_SERIES) {
    picks = rest.map((d) => pick(table, d, !categories.has(d)));
  }
  const combos = cartesian(picks);
  const truncated = combos.length > MAX_SERIES;
  const index = new Map(table.cells.map((cell) => [dims.map((d) => cell.key[d]).join("\u0001"), cell]));
  const series = combos.slice(0, MAX_SERIES).map((combo) => {
    const varying = combo.filter((part) => picks[rest.indexOf(part.dimension)].length > 1 || !isTotal(part.code));
    const label = varying.map((part) => part.label).join(" / ") || fallbackLabel;
    const cells = xCodes.map((x) => {
      const key = {};
      if (xDim) key[xDim] = x.code;
      for (const part of combo) key[part.dimension] = part.code;
      return index.get(dims.map((d) => key[d]).join("\u0001")) || null;
    });
    return { label, cells };
  });
  return { xDim, labels: xCodes.map((x) => x.label), series, truncated };
}

/** As many decimals as the step between ticks has (at most 3), so that neighbouring ticks
 * never read the same: 0.05 steps show "1.65%", not "1.7%" twice. */
function tickDigits(ticks) {
  if (ticks.length < 2) return 1;
  const step = Math.abs(ticks[1].value - ticks[0].value);
  const decimals = (String(Number(step.toFixed(3))).split(".")[1] || "").length;
  return Math.min(3, decimals);
}

function niceStep(range) {
  const raw = range / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

/** The y range: bars from 0, lines around the values; explicit so placeholders can fill it. */
function axisRange(model, unit, kind) {
  const values = model.series.flatMap((s) => s.cells)
    .filter((c) => c && !c.suppressed && typeof c.value === "number").map((c) => c.value);
  if (!values.length) return { min: 0, max: unit === "%" ? 100 : 10 };
  const hi = Math.max(...values);
  const lo = Math.min(...values);
  if (kind === "bar") {
    const top = hi > 0 ? hi : 1;
    if (unit === "%" && top > 50 && top <= 100) return { min: 0, max: 100 };
    const step = niceStep(top);
    return { min: 0, max: Math.ceil(top / step) * step || step };
  }
  const span = hi - lo || Math.abs(hi) * 0.1 || 1;
  const step = niceStep(span);
  let min = Math.max(0, Math.floor((lo - step) / step) * step);
  let max = Math.ceil((hi + step) / step) * step;
  if (unit === "%") {
    max = Math.min(max, 100);
    min = Math.min(min, max - step);
  }
  return { min, max };
}

function hatchPattern() {
  const size = 8;
  const canvas = document.createElement("canvas");
  canvas.width = size;
  canvas.height = size;
  const g = canvas.getContext("2d");
  if (!g) return "rgba(120, 120, 120, 0.35)";
  g.fillStyle = "#ececec";
  g.fillRect(0, 0, size, size);
  g.strokeStyle = "#6b6b6b";
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(0, 0);
  g.lineTo(size, size);
  g.moveTo(size, 0);
  g.lineTo(0, size);
  g.stroke();
  return g.createPattern(canvas, "repeat") || "rgba(120, 120, 120, 0.35)";
}

export class RenkeiChart extends MetricElement {
  render(table) {
    const kind = (this.getAttribute("kind") || "bar").trim().toLowerCase() === "line" ? "line" : "bar";
    const title = metricTitle(this, table);
    const metricName = table.definition
      ? (lang(this) === "en" ? table.definition.labelEn : table.definition.labelJa)
      : t(this, "値", "Value");
    const model = chartModel(table, metricName);
    const range = axisRange(model, table.unit, kind);

    const body = document.createElement("div");
    body.className = "renkei-body";
    const heading = document.createElement("h3");
    heading.className = "renkei-title";
    heading.textContent = title;
    body.append(heading);
    const description = metricDescription(this, table);
    if (description) {
      const p = document.createElement("p");
      p.className = "renkei-description";
      p.textContent = description;
      body.append(p);
    }
    const box = document.createElement("div");
    box.className = "renkei-chart-box";
    const canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", title);
    canvas.textContent = title;
    box.append(canvas);
    body.append(box);
    body.append(legend(this, table.k));
    if (model.truncated) {
      const p = document.createElement("p");
      p.className = "renkei-description";
      p.textContent = t(this, `系列が多いため最初の ${MAX_SERIES} 件だけを描いています。すべての値は下の表にあります。`,
        `Only the first ${MAX_SERIES} series are drawn; the table below has every value.`);
      body.append(p);
    }
    const note = missingNote(this, table);
    if (note) body.append(note);
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = t(this, "表で見る", "Show as a table");
    details.append(summary, buildTable(this, table, title));
    body.append(details);
    this.replaceChildren(body);

    const shown = model.series.reduce((n, s) => n + s.cells.filter((c) => c && c.suppressed).length, 0);
    this.dataset.chartSuppressedCount = String(shown);
    this._chart = new Chart(canvas, this.config(kind, model, table, range));
  }

  config(kind, model, table, range) {
    const pattern = hatchPattern();
    const unit = table.unit;
    const hidden = suppressedText(this);
    const tooltipSuppressed = suppressedTooltip(this);
    const datasets = model.series.map((s, i) => {
      const colour = PALETTE[i % PALETTE.length];
      const suppressed = s.cells.map((c) => Boolean(c && c.suppressed));
      const base = { label: s.label, renkeiCells: s.cells, renkeiSuppressed: suppressed };
      if (kind === "bar") {
        return {
          ...base,
          type: "bar",
          data: s.cells.map((c) => (!c ? null : c.suppressed ? range.max : c.value)),
          backgroundColor: (ctx) => (suppressed[ctx.dataIndex] ? pattern : colour),
          borderColor: (ctx) => (suppressed[ctx.dataIndex] ? "#6b6b6b" : colour),
          borderWidth: 1,
        };
      }
      return {
        ...base,
        type: "line",
        data: s.cells.map((c) => (!c || c.suppressed ? null : c.value)),
        borderColor: colour,
        backgroundColor: colour,
        spanGaps: false,
        pointRadius: 3,
        pointStyle: "circle",
        tension: 0,
      };
    });
    if (kind === "line") {
      const names = model.labels.map((_, x) => model.series
        .filter((s) => s.cells[x] && s.cells[x].suppressed).map((s) => s.label));
      if (names.some((list) => list.length)) {
        datasets.push({
          label: hidden,
          type: "line",
          renkeiMarker: true,
          renkeiNames: names,
          data: names.map((list) => (list.length ? range.min : null)),
          showLine: false,
          pointStyle: "crossRot",
          pointRadius: 8,
          pointHoverRadius: 9,
          borderColor: "#333333",
          backgroundColor: "#333333",
          borderWidth: 2,
          clip: false,
        });
      }
    }
    const anySuppressed = datasets.some((d) => d.renkeiSuppressed && d.renkeiSuppressed.some(Boolean));
    const element = this;
    return {
      type: kind,
      data: { labels: model.labels, datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: kind === "line" ? { mode: "index", intersect: false } : { mode: "nearest", intersect: true },
        scales: {
          x: { ticks: { autoSkip: true, maxRotation: 45 } },
          y: {
            min: range.min,
            max: range.max,
            title: { display: Boolean(unit), text: unit },
            ticks: {
              callback: (value, _index, ticks) =>
                formatValue(element, Number(value), unit, tickDigits(ticks)),
            },
          },
        },
        plugins: {
          legend: {
            position: "bottom",
            labels: {
              usePointStyle: kind === "line",
              generateLabels(chart) {
                const items = Chart.defaults.plugins.legend.labels.generateLabels(chart);
                if (kind === "bar" && anySuppressed) {
                  items.push({
                    text: hidden, fillStyle: pattern, strokeStyle: "#6b6b6b", lineWidth: 1,
                    hidden: false, datasetIndex: undefined, renkeiSuppressed: true,
                  });
                }
                return items;
              },
            },
            onClick(event, item, legendItem) {
              if (item.datasetIndex === undefined) return;
              Chart.defaults.plugins.legend.onClick.call(this, event, item, legendItem);
            },
          },
          tooltip: {
            filter: (item) => item.raw !== null && item.raw !== undefined,
            callbacks: {
              label(ctx) {
                const dataset = ctx.dataset;
                if (dataset.renkeiMarker) {
                  const names = dataset.renkeiNames[ctx.dataIndex] || [];
                  return `${tooltipSuppressed}: ${names.join(lang(element) === "en" ? ", " : "、")}`;
                }
                const cell = dataset.renkeiCells[ctx.dataIndex];
                if (!cell) return "";
                if (cell.suppressed) return `${dataset.label}: ${tooltipSuppressed}`;
                if (cell.value === null || cell.value === undefined) {
                  return `${dataset.label}: ${cell.reason || t(element, "算出できません", "Not available")}`;
                }
                const pupils = typeof cell.pupils === "number"
                  ? t(element, `（${cell.pupils}人）`, ` (${cell.pupils} pupils)`) : "";
                return `${dataset.label}: ${formatValue(element, cell.value, unit)}${pupils}`;
              },
            },
          },
        },
      },
    };
  }

  teardown() {
    if (this._chart) {
      this._chart.destroy();
      this._chart = null;
    }
  }
}
