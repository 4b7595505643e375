// Teacher boards, rendered in the light DOM:
//
//   <renkei-class-board endpoint="/m/131130/graphql" homeroom-id="12" as-of="2026-03-18"
//                       student-href="/m/131130/boards/students/{id}/">
//   <renkei-student-board endpoint="/m/131130/graphql" student-id="345" as-of="2026-03-18"
//                         verify-href="/m/131130/accounts/verify/?next=...">
//
// Both read the tenant GraphQL API with the session (school staff only; every read is logged
// by the server). Pupil data goes only into the DOM: never to the console, never into a URL
// except the pupil id in student-href. Sensitive items (reasons, symptoms, nurse notes,
// surveys) are asked for in a second query only when `me { stepUp }` is true, because
// selecting them without step-up makes the server refuse the whole board.
//
// data-state on the element: loading → ready | error. The student board's sensitive section
// has its own data-state: locked | loading | ready | error; its 個人カルテ section (earlier
// school years, its own query) has loading | ready | error.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  RadarController,
  RadialLinearScale,
  Tooltip,
} from "chart.js";
import { ensureStyles, graphqlRequest, renderError, t, WidgetError } from "./graphql.js";
import {
  addDays,
  ASSESSMENT_KINDS,
  asOfAttribute,
  CONDITIONS,
  dayRange,
  ensureBoardStyles,
  FIVE_SUBJECTS,
  FONT_STACK,
  fullDay,
  h,
  hrefFrom,
  isoDay,
  label,
  longDay,
  markSymbol,
  maybeLink,
  monthLabel,
  NURSE_REASONS,
  parseDay,
  pupilName,
  requiredAttribute,
  ruleBadge,
  schoolDateTime,
  schoolYearMonths,
  schoolYearOf,
  scorePercent,
  section,
  SERIES,
  shortDay,
  shortMonth,
  statusLabel,
  statusLegend,
  subjectAverages,
  subjectKey,
  testSittings,
  todayBadge,
  vh,
  weekday,
} from "./boards-common.js";

Chart.register(
  LineController,
  LineElement,
  PointElement,
  BarController,
  BarElement,
  LinearScale,
  CategoryScale,
  RadarController,
  RadialLinearScale,
  Tooltip,
  Legend,
);

// -- queries (constant strings, so that their hashes can be allow-listed) -----------------------

export const CLASS_BOARD_QUERY = `query RenkeiClassBoard($homeroomId: ID!, $asOf: Date) {
  classBoard(homeroomId: $homeroomId, asOf: $asOf) {
    asOf
    homeroom { id name grade schoolYear school { name } }
    rules { rule threshold description }
    pupils {
      attendanceNumber
      pupil { id name nameKana optedOut }
      absenceSummary { thisMonth thisSchoolYear consecutive consecutiveFrom consecutiveTo }
      alerts { rule days threshold firstDate lastDate message }
      alertsExcludedReason
      recentAttendance(days: 14) { date status }
    }
    learningWeeks { weekStart pupils activePupils totalMinutes medianMinutes }
  }
}`;

export const STUDENT_BOARD_QUERY = `query RenkeiStudentBoard($studentId: ID!, $asOf: Date) {
  me { stepUp }
  studentBoard(studentId: $studentId, asOf: $asOf) {
    asOf
    pupil { id name nameKana grade optedOut school { name } }
    homeroom { name schoolYear }
    attendanceNumber
    absenceSummary { thisMonth thisSchoolYear consecutive consecutiveFrom consecutiveTo }
    alerts { rule days threshold firstDate lastDate message }
    alertsExcludedReason
    attendance { date status statusLabel }
    health { date condition }
    nurseVisits { visitedAt reasonCategory }
    assessments { name subject takenOn kind score maxScore }
    evaluations { term subject rating viewpoints { name grade } }
    m365Usage { date app active }
    learningWeeks { weekStart minutes activities subjects { subject minutes activities } }
  }
}`;

/** Only after step-up: selecting any of these without it makes the whole board fail. */
export const STUDENT_BOARD_SENSITIVE_QUERY = `query RenkeiStudentBoardSensitive($studentId: ID!, $asOf: Date) {
  studentBoard(studentId: $studentId, asOf: $asOf) {
    attendance { date reason }
    health { date symptoms }
    nurseVisits { visitedAt note }
    surveys { survey answeredOn answers freeCommentWithheld }
  }
}`;

/**
 * 個人カルテ: the pupil's school years (homeroom, 出欠の記録) and each year's tests and
 * evaluations, through the board's own fields with a school year: $year is the school year of
 * the board's as-of day, $lastYear and $yearBefore the two before.
 */
export const STUDENT_KARTE_QUERY = `query RenkeiStudentKarte($studentId: ID!, $asOf: Date, $year: Int!, $lastYear: Int!, $yearBefore: Int!) {
  studentBoard(studentId: $studentId, asOf: $asOf) {
    schoolYears(count: 3) {
      schoolYear
      attendanceNumber
      homeroom { name grade school { name } }
      attendance { schoolDays excusedDays requiredDays absenceDays attendedDays }
    }
    year: assessments(schoolYear: $year) { ...KarteTest }
    lastYear: assessments(schoolYear: $lastYear) { ...KarteTest }
    yearBefore: assessments(schoolYear: $yearBefore) { ...KarteTest }
    yearEvaluations: evaluations(schoolYear: $year) { ...KarteEvaluation }
    lastYearEvaluations: evaluations(schoolYear: $lastYear) { ...KarteEvaluation }
    yearBeforeEvaluations: evaluations(schoolYear: $yearBefore) { ...KarteEvaluation }
  }
}
fragment KarteTest on AssessmentResult { name subject takenOn kind score maxScore }
fragment KarteEvaluation on SubjectEvaluation { term subject rating viewpoints { name grade } }`;

// 心の天気 check-ins (the checkin connector's answers: weather, comment) on the calendar.
const CHECKIN_SURVEY = "心の天気";
const MOODS = {
  はれ: { text: "☀", en: "sunny" },
  晴れ: { text: "☀", en: "sunny" },
  くもり: { text: "☁", en: "cloudy" },
  曇り: { text: "☁", en: "cloudy" },
  あめ: { text: "☂", en: "rainy" },
  雨: { text: "☂", en: "rainy" },
  かみなり: { text: "⚡", en: "stormy" },
  雷: { text: "⚡", en: "stormy" },
};

const RECENT_DAYS = 14;

// -- the common element behaviour ---------------------------------------------------------------

class BoardElement extends HTMLElement {
  constructor() {
    super();
    this._generation = 0;
    this._charts = [];
    this._queued = false;
    this._pendingCharts = [];
  }

  connectedCallback() {
    ensureStyles();
    ensureBoardStyles();
    this.classList.add("renkei-widget");
    this._queue();
  }

  disconnectedCallback() {
    this._generation += 1; // answers still under way are dropped
    this._destroyCharts();
  }

  attributeChangedCallback(_name, oldValue, newValue) {
    if (oldValue !== newValue && this.isConnected) this._queue();
  }

  _queue() {
    this.dataset.state = "loading";
    if (this._queued) return;
    this._queued = true;
    queueMicrotask(() => {
      this._queued = false;
      if (this.isConnected) this._run();
    });
  }

  async _run() {
    const generation = ++this._generation;
    const current = () => generation === this._generation && this.isConnected;
    this._destroyCharts();
    this._pendingCharts = [];
    this.dataset.state = "loading";
    this.setAttribute("aria-busy", "true");
    this.replaceChildren(
      h("p", { class: "renkei-loading", role: "status" }, t(this, "読み込んでいます…", "Loading…")),
    );
    try {
      await this.load(current);
    } catch (error) {
      if (!current()) return;
      this._destroyCharts();
      renderError(this, error);
    } finally {
      if (current()) this.removeAttribute("aria-busy");
    }
  }

  _destroyCharts() {
    for (const chart of this._charts) chart.destroy();
    this._charts = [];
  }

  /**
   * A sized box with a canvas described for screen readers, appended now; the Chart.js chart
   * is drawn by renderCharts() once the board is in the document (Chart.js measures its box).
   */
  _chart(container, description, config) {
    const canvas = h("canvas", { role: "img", "aria-label": description }, description);
    container.append(h("div", { class: "renkei-board-chart" }, canvas));
    this._pendingCharts.push(() => this._draw(canvas, config));
  }

  _draw(canvas, config) {
    const axis = {
      ticks: { color: "#3d444d", font: { family: FONT_STACK } },
      grid: { color: "#e4e8ec" },
    };
    const extra = config.options || {};
    const plugins = extra.plugins || {};
    const scales = extra.scales || {};
    const options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        legend: { labels: { color: "#1f2328", usePointStyle: true, font: { family: FONT_STACK } } },
        tooltip: {
          titleFont: { family: FONT_STACK },
          bodyFont: { family: FONT_STACK },
          ...plugins.tooltip,
        },
      },
      scales:
        config.type === "radar"
          ? {
              r: {
                ...scales.r,
                grid: axis.grid,
                angleLines: { color: "#d0d7de" },
                pointLabels: { color: "#1f2328", font: { family: FONT_STACK, size: 13 } },
                ticks: {
                  color: "#3d444d",
                  backdropColor: "rgba(255,255,255,.8)",
                  ...(scales.r || {}).ticks,
                },
              },
            }
          : {
              x: { ...axis, ...scales.x },
              y: { ...axis, ...scales.y, ticks: { ...axis.ticks, ...(scales.y || {}).ticks } },
            },
    };
    this._charts.push(new Chart(canvas, { type: config.type, data: config.data, options }));
  }
}

function boardError(element, ja, en, code) {
  return new WidgetError(t(element, ja, en), code);
}

function header(element, title, kana, meta) {
  const node = h(
    "header",
    { class: "renkei-board-header" },
    h("h2", {}, title),
    kana ? h("p", { class: "renkei-kana" }, kana) : null,
  );
  const list = h("dl", { class: "renkei-board-meta" });
  for (const [term, value] of meta) {
    if (value === null || value === undefined || value === "") continue;
    list.append(h("div", {}, h("dt", {}, term), h("dd", {}, value)));
  }
  node.append(list);
  return node;
}

function emptyNote(text) {
  return h("p", { class: "renkei-muted" }, text);
}

/** An ISO week (Monday to Sunday) as "6/2〜6/8". */
function weekLabel(weekStart) {
  return dayRange(weekStart, isoDay(addDays(parseDay(weekStart), 6)));
}

function subjectLabel(element, subject) {
  return subject || t(element, "教科の記録なし", "No subject recorded");
}

function learningNote(element, weeks) {
  return h(
    "p",
    { class: "renkei-board-note" },
    t(
      element,
      `基準日までの ${weeks} 週間（月曜〜日曜）の学習ツール（学習記録・デジタルドリル）の利用です。時間の記録がない学習は 0 分として数えます。`,
      `Learning-tool use (learning records, digital drills) in the ${weeks} weeks (Monday to Sunday) up to the reference day. Activity without a recorded duration counts as 0 minutes.`,
    ),
  );
}

/**
 * A table whose first column heads its rows (the charts' text alternative); the columns from
 * `firstNumber` on are numbers, right-aligned.
 */
function headedTable(columns, rows, { firstNumber = 1, attrs = {} } = {}) {
  const numeric = (i) => (i >= firstNumber ? "num" : null);
  return h(
    "div",
    { class: "renkei-board-scroll" },
    h(
      "table",
      { class: "renkei-board-table", ...attrs },
      h("thead", {}, h("tr", {}, columns.map((c, i) => h("th", { scope: "col", class: numeric(i) }, c)))),
      h(
        "tbody",
        {},
        rows.map(([first, ...rest]) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, first),
            rest.map((value, i) => h("td", { class: numeric(i + 1) }, value)),
          ),
        ),
      ),
    ),
  );
}

// -- <renkei-class-board> -----------------------------------------------------------------------

export class RenkeiClassBoard extends BoardElement {
  static tagName = "renkei-class-board";

  static get observedAttributes() {
    return ["endpoint", "homeroom-id", "as-of", "student-href", "lang"];
  }

  async load(current) {
    const homeroomId = requiredAttribute(this, "homeroom-id");
    const asOf = asOfAttribute(this);
    const data = await graphqlRequest(this, CLASS_BOARD_QUERY, { homeroomId, asOf });
    if (!current()) return;
    const board = data.classBoard;
    if (!board) {
      throw boardError(
        this,
        "この学級の学級ボードを表示できません。",
        "This class board cannot be shown.",
        "NOT_FOUND",
      );
    }
    this.replaceChildren(this.render(board));
    this.dataset.state = "ready";
  }

  pupilLink(pupil) {
    return hrefFrom(this.getAttribute("student-href"), pupil.id);
  }

  render(board) {
    const root = h("div", { class: "renkei-board renkei-class-board" });
    const homeroom = board.homeroom;
    root.append(
      header(this, homeroom.name, null, [
        [t(this, "学校", "School"), homeroom.school && homeroom.school.name],
        [
          t(this, "年度", "School year"),
          t(this, `${homeroom.schoolYear}年度`, String(homeroom.schoolYear)),
        ],
        [
          t(this, "基準日", "As of"),
          h("time", { datetime: board.asOf }, fullDay(this, board.asOf)),
        ],
        [
          t(this, "人数", "Pupils"),
          t(this, `${board.pupils.length} 人`, String(board.pupils.length)),
        ],
      ]),
    );
    root.append(this.renderRules(board.rules));
    root.append(this.renderTimeline(board));
    root.append(this.renderPupils(board));
    root.append(this.renderLearning(board));
    return root;
  }

  renderLearning(board) {
    const node = section(t(this, "学習ツールの利用（学級）", "Learning tools (class)"), {
      class: "renkei-board-learning",
      "data-testid": "class-learning",
    });
    const weeks = board.learningWeeks || [];
    node.append(learningNote(this, weeks.length));
    const excluded = board.pupils.filter((row) => row.pupil.optedOut).length;
    if (excluded) {
      node.append(
        h(
          "p",
          { class: "renkei-board-note" },
          t(
            this,
            `分析除外の申出がある児童生徒（${excluded} 人）は学級の集計に含みません。`,
            `${excluded} pupil(s) who opted out of analysis are not counted in the class figures.`,
          ),
        ),
      );
    }
    if (!weeks.some((week) => week.activePupils)) {
      node.append(
        emptyNote(t(this, "この期間の学習の記録はありません。", "No learning recorded in this period.")),
      );
      return node;
    }
    node.append(
      headedTable(
        [
          t(this, "週", "Week"),
          t(this, "使った児童生徒", "Pupils who used a tool"),
          t(this, "合計（分）", "Total (min)"),
          t(this, "1人あたり中央値（分）", "Median per pupil (min)"),
        ],
        weeks
          .slice()
          .reverse()
          .map((week) => [
            h("time", { datetime: week.weekStart }, weekLabel(week.weekStart)),
            t(this, `${week.activePupils} / ${week.pupils} 人`, `${week.activePupils} of ${week.pupils}`),
            week.totalMinutes,
            week.medianMinutes,
          ]),
        {
          attrs: {
            "data-testid": "class-learning-weeks",
            "aria-label": t(this, "学級の週ごとの学習時間", "The class's learning time per week"),
          },
        },
      ),
    );
    return node;
  }

  renderRules(rules) {
    const node = section(t(this, "アラートの規則", "Alert rules"), { class: "renkei-board-rules" });
    node.append(
      h(
        "ul",
        {},
        rules.map((rule) => h("li", {}, ruleBadge(this, rule.rule), " ", rule.description)),
      ),
    );
    node.append(
      h(
        "p",
        { class: "renkei-board-note" },
        t(
          this,
          "アラートは、出欠の記録が自治体の決めた規則に当てはまったことを示すだけです。点数や予測ではありません。",
          "An alert only says that the attendance register matched a rule set by the municipality. It is not a score or a prediction.",
        ),
      ),
    );
    return node;
  }

  renderTimeline(board) {
    const items = [];
    for (const row of board.pupils) {
      for (const alert of row.alerts || []) items.push({ row, alert });
    }
    const node = section(t(this, `アラート（${items.length} 件）`, `Alerts (${items.length})`), {
      class: "renkei-board-timeline",
    });
    const list = h("ol", { class: "renkei-timeline", "data-testid": "alert-timeline" });
    node.append(list);
    if (!items.length) {
      list.classList.add("is-empty");
      list.append(
        h(
          "li",
          { class: "renkei-timeline-empty" },
          t(this, "アラートはありません", "There are no alerts"),
        ),
      );
      return node;
    }
    // Newest lastDate first; within a day by attendance number (the register's order).
    items.sort((a, b) => {
      const da = a.alert.lastDate || "";
      const db = b.alert.lastDate || "";
      if (da !== db) return da < db ? 1 : -1;
      return (a.row.attendanceNumber ?? 9999) - (b.row.attendanceNumber ?? 9999);
    });
    let group = null;
    let groupDate;
    for (const { row, alert } of items) {
      const day = alert.lastDate || "";
      const today = day === board.asOf;
      if (!group || day !== groupDate) {
        groupDate = day;
        group = h("ol", { class: "renkei-timeline-items" });
        list.append(
          h(
            "li",
            { class: today ? "is-today" : null },
            h(
              "h4",
              {},
              day
                ? h("time", { datetime: day }, longDay(this, day))
                : t(this, "日付なし", "No date"),
              today ? todayBadge(this) : null,
            ),
            group,
          ),
        );
      }
      const name = pupilName(this, row.pupil);
      group.append(
        h(
          "li",
          {
            class: "renkei-alert",
            "data-testid": "alert",
            dataset: { rule: alert.rule, today: today ? "true" : "false" },
          },
          h(
            "div",
            { class: "renkei-alert-head" },
            h(
              "span",
              { class: "renkei-alert-range" },
              vh(t(this, "期間 ", "Period ")),
              dayRange(alert.firstDate, alert.lastDate),
            ),
            h("span", { class: "renkei-alert-name" }, maybeLink(this.pupilLink(row.pupil), name)),
            ruleBadge(this, alert.rule),
            today ? todayBadge(this) : null,
          ),
          h("p", { class: "renkei-alert-message" }, alert.message),
        ),
      );
    }
    return node;
  }

  renderPupils(board) {
    const node = section(t(this, "児童生徒", "Pupils"), { class: "renkei-board-pupils" });
    const asOf = parseDay(board.asOf);
    const days = [];
    for (let i = RECENT_DAYS - 1; i >= 0; i -= 1) days.push(addDays(asOf, -i));
    node.append(
      h(
        "p",
        { class: "renkei-board-note" },
        t(
          this,
          `出欠は基準日までの ${RECENT_DAYS} 日間です。氏名を選ぶと児童生徒ボードを開きます。`,
          `Attendance for the ${RECENT_DAYS} days up to the reference day. Choose a name to open the pupil's board.`,
        ),
      ),
    );
    node.append(statusLegend(this));

    const headRow = h(
      "tr",
      {},
      h("th", { scope: "col", class: "c-no" }, t(this, "出席番号", "No.")),
      h("th", { scope: "col", class: "c-name" }, t(this, "氏名", "Name")),
    );
    for (const day of days) {
      const iso = isoDay(day);
      const weekend = day.getUTCDay() === 0 || day.getUTCDay() === 6;
      headRow.append(
        h(
          "th",
          {
            scope: "col",
            class: ["c-day", weekend ? "is-weekend" : "", iso === board.asOf ? "is-asof" : ""]
              .join(" ")
              .trim(),
            title: longDay(this, iso),
          },
          h("span", {}, shortDay(iso)),
          h("span", { class: "renkei-muted" }, weekday(this, day)),
        ),
      );
    }
    headRow.append(
      h("th", { scope: "col", class: "num" }, t(this, "今月の欠席", "Absent this month")),
      h("th", { scope: "col", class: "num" }, t(this, "年度の欠席", "Absent this year")),
      h("th", { scope: "col", class: "num" }, t(this, "連続欠席", "Consecutive")),
      h("th", { scope: "col", class: "c-alerts" }, t(this, "アラート", "Alerts")),
    );

    const body = h("tbody");
    for (const row of board.pupils) body.append(this.renderPupilRow(row, days, board.asOf));
    if (!board.pupils.length) {
      body.append(
        h(
          "tr",
          {},
          h(
            "td",
            { colspan: days.length + 6 },
            t(this, "この学級に表示できる児童生徒はいません。", "No pupils to show in this class."),
          ),
        ),
      );
    }
    const caption = h(
      "caption",
      { class: "renkei-vh" },
      t(
        this,
        `${board.homeroom.name} の児童生徒と直近 ${RECENT_DAYS} 日の出欠`,
        `Pupils of ${board.homeroom.name} and their attendance over the last ${RECENT_DAYS} days`,
      ),
    );
    const table = h(
      "table",
      { class: "renkei-board-table renkei-pupils", "data-testid": "class-pupils" },
      caption,
      h("thead", {}, headRow),
      body,
    );
    node.append(
      h(
        "div",
        {
          class: "renkei-board-scroll",
          role: "region",
          tabindex: "0",
          "aria-label": t(
            this,
            "児童生徒の一覧（横にスクロールできます）",
            "Pupils (scrolls sideways)",
          ),
        },
        table,
      ),
    );
    return node;
  }

  renderPupilRow(row, days, asOf) {
    const pupil = row.pupil;
    const marks = new Map((row.recentAttendance || []).map((mark) => [mark.date, mark.status]));
    const name = pupilName(this, pupil);
    const tr = h(
      "tr",
      { dataset: { pupilId: pupil.id } },
      h("td", { class: "c-no num" }, row.attendanceNumber ?? "—"),
      h(
        "th",
        { scope: "row", class: "c-name" },
        maybeLink(this.pupilLink(pupil), name),
        pupil.name && pupil.nameKana ? h("span", { class: "renkei-kana" }, pupil.nameKana) : null,
      ),
    );
    for (const day of days) {
      const iso = isoDay(day);
      const status = marks.get(iso);
      const text = `${longDay(this, iso)} ${status ? statusLabel(this, status) : t(this, "記録なし", "no record")}`;
      const weekend = day.getUTCDay() === 0 || day.getUTCDay() === 6;
      tr.append(
        h(
          "td",
          {
            class: `c-day${weekend ? " is-weekend" : ""}`,
            title: text,
            dataset: { date: iso, status: status || "" },
          },
          markSymbol(status),
          vh(text),
        ),
      );
    }
    const summary = row.absenceSummary;
    const consecutive =
      summary.consecutive && summary.consecutiveFrom
        ? h(
            "span",
            { title: dayRange(summary.consecutiveFrom, summary.consecutiveTo) },
            summary.consecutive,
          )
        : summary.consecutive;
    tr.append(
      h("td", { class: "num" }, summary.thisMonth),
      h("td", { class: "num" }, summary.thisSchoolYear),
      h("td", { class: "num" }, consecutive),
    );
    const cell = h("td", { class: "c-alerts" });
    if (row.alertsExcludedReason) {
      cell.append(h("span", { class: "renkei-excluded" }, row.alertsExcludedReason));
    } else if (row.alerts.length) {
      cell.append(
        h(
          "span",
          {
            class: "renkei-badge renkei-badge--count",
            title: row.alerts.map((alert) => alert.message).join("\n"),
          },
          row.alerts.length,
          vh(t(this, " 件のアラート", " alerts")),
        ),
      );
      const today = row.alerts.some((alert) => alert.lastDate === asOf);
      if (today) cell.append(" ", todayBadge(this));
    } else {
      cell.append(
        h("span", { class: "renkei-muted", "aria-hidden": "true" }, "—"),
        vh(t(this, "アラートなし", "no alerts")),
      );
    }
    tr.append(cell);
    return tr;
  }
}

// -- <renkei-student-board> ---------------------------------------------------------------------

const HEALTH_MARKER = {
  POOR: { text: "▲", class: "renkei-marker-poor" },
  FAIR: { text: "△", class: "renkei-marker-fair" },
};

export class RenkeiStudentBoard extends BoardElement {
  static tagName = "renkei-student-board";

  static get observedAttributes() {
    return ["endpoint", "student-id", "as-of", "verify-href", "lang"];
  }

  async load(current) {
    const studentId = requiredAttribute(this, "student-id");
    const asOf = asOfAttribute(this);
    const variables = { studentId, asOf };
    const data = await graphqlRequest(this, STUDENT_BOARD_QUERY, variables);
    if (!current()) return;
    const board = data.studentBoard;
    if (!board) {
      throw boardError(
        this,
        "この児童生徒のボードを表示できません。",
        "This pupil's board cannot be shown.",
        "NOT_FOUND",
      );
    }
    const stepUp = Boolean(data.me && data.me.stepUp);
    const sensitive = section(t(this, "要配慮情報", "Sensitive information"), {
      class: "renkei-board-sensitive",
      "data-testid": "sensitive",
    });
    const karte = section(t(this, "個人カルテ（年度ごとの記録）", "Pupil record by school year"), {
      class: "renkei-board-karte",
      "data-testid": "karte",
    });
    this.replaceChildren(this.render(board, sensitive, karte));
    this.renderCharts(board);
    const karteShown = this.loadKarte(current, karte, board);
    if (!stepUp) {
      this.renderLocked(sensitive);
      this.renderMoodsLocked();
      await karteShown;
      if (current()) this.dataset.state = "ready";
      return;
    }
    // The rest of the board is shown; the element is ready once the sensitive part is in.
    sensitive.dataset.state = "loading";
    sensitive.append(
      h(
        "p",
        { class: "renkei-loading", role: "status" },
        t(this, "要配慮情報を読み込んでいます…", "Loading sensitive information…"),
      ),
    );
    try {
      const more = await graphqlRequest(this, STUDENT_BOARD_SENSITIVE_QUERY, variables);
      if (!current()) return;
      this.renderSensitive(sensitive, board, more.studentBoard || {});
      this.renderMoods((more.studentBoard || {}).surveys || []);
    } catch (error) {
      if (!current()) return;
      if (error instanceof WidgetError && error.code === "STEP_UP_REQUIRED") {
        this.renderLocked(sensitive);
        this.renderMoodsLocked();
      } else {
        sensitive.querySelectorAll(".renkei-loading").forEach((node) => node.remove());
        sensitive.dataset.state = "error";
        sensitive.append(
          h(
            "p",
            { role: "alert", class: "renkei-error" },
            error instanceof WidgetError
              ? error.message
              : t(
                  this,
                  "要配慮情報を表示できませんでした。",
                  "The sensitive information could not be shown.",
                ),
          ),
        );
      }
    }
    await karteShown;
    if (current()) this.dataset.state = "ready";
  }

  render(board, sensitive, karte) {
    const root = h("div", { class: "renkei-board renkei-student-board" });
    root.append(this.renderHeader(board));
    root.append(this.renderCalendar(board));
    root.append(this.renderNurseVisits(board));
    root.append(this.renderAssessments(board));
    root.append(this.renderEvaluations(board));
    root.append(this.renderM365(board));
    root.append(this.renderLearning(board));
    root.append(karte);
    root.append(sensitive);
    return root;
  }

  renderHeader(board) {
    const pupil = board.pupil;
    const name = pupilName(this, pupil);
    const node = header(this, name, pupil.name ? pupil.nameKana : null, [
      [t(this, "学校", "School"), pupil.school && pupil.school.name],
      [
        t(this, "学級", "Class"),
        board.homeroom ? board.homeroom.name : t(this, "（学級の登録なし）", "(no class)"),
      ],
      [t(this, "出席番号", "No."), board.attendanceNumber],
      [t(this, "基準日", "As of"), h("time", { datetime: board.asOf }, fullDay(this, board.asOf))],
    ]);
    node.classList.add("renkei-student-header");
    if (board.alertsExcludedReason) {
      node.append(
        h(
          "p",
          {},
          h(
            "span",
            { class: "renkei-badge renkei-badge--excluded" },
            t(this, "分析除外", "Opted out"),
          ),
          " ",
          board.alertsExcludedReason,
        ),
      );
    } else if (board.alerts.length) {
      node.append(
        h(
          "ul",
          { class: "renkei-board-alerts", "aria-label": t(this, "アラート", "Alerts") },
          board.alerts.map((alert) =>
            h(
              "li",
              { "data-testid": "alert", dataset: { rule: alert.rule } },
              ruleBadge(this, alert.rule),
              h("span", { class: "renkei-badge renkei-badge--alert" }, alert.message),
              alert.lastDate === board.asOf ? todayBadge(this) : null,
            ),
          ),
        ),
      );
    } else {
      node.append(
        h("p", { class: "renkei-muted" }, t(this, "アラートはありません", "There are no alerts")),
      );
    }
    return node;
  }

  renderCalendar(board) {
    const node = section(t(this, "出欠カレンダー", "Attendance calendar"), {
      class: "renkei-board-calendar",
      "data-testid": "attendance-calendar",
    });
    const summary = board.absenceSummary;
    const run =
      summary.consecutive && summary.consecutiveFrom
        ? h("small", {}, `(${dayRange(summary.consecutiveFrom, summary.consecutiveTo)})`)
        : null;
    const days = (n) => t(this, `${n} 日`, `${n} d`);
    node.append(
      h(
        "dl",
        { class: "renkei-summary" },
        h(
          "div",
          {},
          h("dt", {}, t(this, "今月の欠席", "Absent this month")),
          h("dd", {}, days(summary.thisMonth)),
        ),
        h(
          "div",
          {},
          h("dt", {}, t(this, "年度の欠席", "Absent this school year")),
          h("dd", {}, days(summary.thisSchoolYear)),
        ),
        h(
          "div",
          {},
          h("dt", {}, t(this, "連続欠席", "Consecutive absence")),
          h("dd", {}, days(summary.consecutive), run),
        ),
      ),
    );

    const marker = (info, ja, en) => [
      h("span", { class: info.class, "aria-hidden": "true" }, info.text),
      t(this, ja, en),
    ];
    node.append(
      statusLegend(this, [
        marker(HEALTH_MARKER.POOR, "健康観察: よくない", "Health check: poor"),
        marker(HEALTH_MARKER.FAIR, "健康観察: ふつう", "Health check: fair"),
        marker(
          { class: "renkei-marker-nurse", text: "✚" },
          "保健室に来室",
          "Visited the school nurse",
        ),
      ]),
    );

    const attendance = new Map(board.attendance.map((day) => [day.date, day]));
    const health = new Map(board.health.map((row) => [row.date, row.condition]));
    const visits = new Map();
    for (const visit of board.nurseVisits) {
      const { day } = schoolDateTime(visit.visitedAt);
      visits.set(day, (visits.get(day) || 0) + 1);
    }
    const asOf = parseDay(board.asOf);
    const grid = h("div", { class: "renkei-cal-grid" });
    for (const { year, month } of schoolYearMonths(asOf)) {
      grid.append(this.renderMonth(year, month, board.asOf, attendance, health, visits));
    }
    node.append(grid);
    return node;
  }

  renderMonth(year, month, asOf, attendance, health, visits) {
    const weekdays = [1, 2, 3, 4, 5, 6, 0].map((d) =>
      weekday(this, new Date(Date.UTC(2024, 8, d + 1))),
    );
    // 2024-09-01 is a Sunday: day d+1 of that month has weekday d.
    const table = h(
      "table",
      { class: "renkei-cal", dataset: { month: `${year}-${String(month + 1).padStart(2, "0")}` } },
      h("caption", {}, monthLabel(this, year, month)),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          weekdays.map((w) => h("th", { scope: "col" }, w)),
        ),
      ),
    );
    const body = h("tbody");
    table.append(body);
    const first = new Date(Date.UTC(year, month, 1));
    const lead = (first.getUTCDay() + 6) % 7; // Monday first
    let tr = h("tr");
    for (let i = 0; i < lead; i += 1) tr.append(h("td", { class: "is-blank" }));
    for (let day = first; day.getUTCMonth() === month; day = addDays(day, 1)) {
      if (tr.children.length === 7) {
        body.append(tr);
        tr = h("tr");
      }
      tr.append(this.renderDay(isoDay(day), day, asOf, attendance, health, visits));
    }
    while (tr.children.length < 7) tr.append(h("td", { class: "is-blank" }));
    body.append(tr);
    return table;
  }

  renderDay(iso, day, asOf, attendance, health, visits) {
    const classes = [];
    if (day.getUTCDay() === 0 || day.getUTCDay() === 6) classes.push("is-weekend");
    if (iso > asOf) classes.push("is-future");
    if (iso === asOf) classes.push("is-asof");
    const cell = h("td", { class: classes.join(" ") || null, dataset: { date: iso } });
    cell.append(h("span", { class: "renkei-cal-day", "aria-hidden": "true" }, day.getUTCDate()));
    if (iso > asOf) {
      cell.append(vh(longDay(this, iso)));
      return cell;
    }
    const record = attendance.get(iso);
    const parts = [longDay(this, iso)];
    if (record) {
      cell.dataset.status = record.status;
      cell.append(markSymbol(record.status));
      parts.push(statusLabel(this, record.status));
    }
    const markers = h("span", { class: "renkei-cal-markers", "aria-hidden": "true" });
    const condition = health.get(iso);
    if (HEALTH_MARKER[condition]) {
      markers.append(
        h("span", { class: HEALTH_MARKER[condition].class }, HEALTH_MARKER[condition].text),
      );
      parts.push(
        t(
          this,
          `健康観察: ${label(this, CONDITIONS, condition)}`,
          `health check: ${label(this, CONDITIONS, condition)}`,
        ),
      );
      cell.dataset.condition = condition;
    }
    if (visits.get(iso)) {
      markers.append(h("span", { class: "renkei-marker-nurse" }, "✚"));
      parts.push(t(this, "保健室に来室", "visited the school nurse"));
      cell.dataset.nurse = "true";
    }
    if (markers.childNodes.length) cell.append(markers);
    if (parts.length === 1) parts.push(t(this, "記録なし", "no record"));
    const text = parts.join(t(this, "、", ", "));
    cell.title = text;
    cell.append(vh(text));
    return cell;
  }

  /** Before step-up the calendar says that the check-ins are there to be revealed. */
  renderMoodsLocked() {
    const calendar = this.querySelector("[data-testid='attendance-calendar']");
    if (!calendar || calendar.querySelector(".renkei-mood-note")) return;
    const verify = hrefFrom(this.getAttribute("verify-href"), "");
    calendar.append(
      h(
        "p",
        { class: "renkei-mood-note renkei-muted", "data-testid": "mood-locked" },
        t(
          this,
          "心の天気（毎日の気分の回答）は要配慮情報です。二要素認証で本人確認をすると、このカレンダーに表示されます。",
          "心の天気 (the daily mood check-in) is sensitive information. It is shown on this calendar after you confirm your identity with two-factor authentication.",
        ),
        verify
          ? [" ", h("a", { href: verify }, t(this, "二要素認証へ", "Go to two-factor authentication"))]
          : null,
      ),
    );
  }

  /** Each day's 心の天気 on the calendar (after step-up; the comment stays in the list). */
  renderMoods(surveys) {
    const calendar = this.querySelector("[data-testid='attendance-calendar']");
    if (!calendar) return;
    let shown = 0;
    for (const response of surveys) {
      const answers = response.answers;
      if (response.survey !== CHECKIN_SURVEY || !answers || typeof answers !== "object") continue;
      const cell = calendar.querySelector(`td[data-date="${response.answeredOn}"]`);
      const mood = String(answers.weather || "");
      if (!cell || !mood) continue;
      const known = MOODS[mood];
      let markers = cell.querySelector(".renkei-cal-markers");
      if (!markers) {
        markers = h("span", { class: "renkei-cal-markers", "aria-hidden": "true" });
        cell.insertBefore(markers, cell.querySelector(".renkei-vh"));
      }
      markers.append(h("span", { class: "renkei-marker-mood" }, known ? known.text : "●"));
      const text = t(this, `心の天気: ${mood}`, `mood: ${known ? known.en : mood}`);
      const hidden = cell.querySelector(".renkei-vh");
      const parts = [cell.title || (hidden && hidden.textContent) || "", text];
      cell.title = parts.filter(Boolean).join(t(this, "、", ", "));
      if (hidden) hidden.textContent = cell.title;
      cell.dataset.mood = mood;
      shown += 1;
    }
    calendar.append(
      h(
        "p",
        { class: "renkei-mood-note renkei-muted", "data-testid": "mood-legend" },
        shown
          ? t(
              this,
              "☀ はれ ☁ くもり ☂ あめ ⚡ かみなり: 心の天気（二要素認証済みのため表示。閲覧は記録されます）",
              "☀ sunny ☁ cloudy ☂ rainy ⚡ stormy: mood check-ins (shown after two-factor authentication; viewing is logged)",
            )
          : t(this, "この期間の心の天気の回答はありません。", "No mood check-ins in this period."),
      ),
    );
  }

  renderNurseVisits(board) {
    const node = section(t(this, "保健室の来室", "Visits to the school nurse"), {
      class: "renkei-board-nurse",
    });
    if (!board.nurseVisits.length) {
      node.append(
        emptyNote(t(this, "この年度の来室の記録はありません。", "No visits this school year.")),
      );
      return node;
    }
    node.append(
      h(
        "ul",
        { class: "renkei-board-list" },
        board.nurseVisits.map((visit) => {
          const { day, time } = schoolDateTime(visit.visitedAt);
          return h(
            "li",
            {},
            h("time", { datetime: visit.visitedAt }, `${longDay(this, day)} ${time}`),
            " — ",
            label(this, NURSE_REASONS, visit.reasonCategory),
          );
        }),
      ),
    );
    return node;
  }

  renderAssessments(board) {
    const node = section(t(this, "テストの推移", "Test results over time"), {
      class: "renkei-board-assessments",
    });
    const rows = board.assessments.filter((row) => row.maxScore > 0);
    if (!rows.length) {
      node.append(
        emptyNote(
          t(this, "この年度のテストの記録はありません。", "No test results this school year."),
        ),
      );
      return node;
    }
    const percent = (row) => Math.round((row.score / row.maxScore) * 1000) / 10;
    const dates = [...new Set(rows.map((row) => row.takenOn))].sort();
    const subjects = [...new Set(rows.map((row) => row.subject))];
    node.dataset.chart = "line";
    this._chart(
      node,
      t(
        this,
        `テストの得点率（%）の推移の折れ線グラフ。教科: ${subjects.join("、")}。値は下の表にあります。`,
        `Line chart of test scores (%) over time. Subjects: ${subjects.join(", ")}. The values are in the table below.`,
      ),
      {
        type: "line",
        data: {
          labels: dates.map((d) => shortDay(d)),
          datasets: subjects.map((subject, i) => {
            const style = SERIES[i % SERIES.length];
            return {
              label: subject,
              data: dates.map((d) => {
                const found = rows.filter((row) => row.subject === subject && row.takenOn === d);
                if (!found.length) return null;
                return (
                  Math.round((found.reduce((s, row) => s + percent(row), 0) / found.length) * 10) /
                  10
                );
              }),
              borderColor: style.color,
              backgroundColor: style.color,
              pointStyle: style.point,
              pointRadius: 4,
              pointHoverRadius: 6,
              borderWidth: 2,
              spanGaps: true,
            };
          }),
        },
        options: {
          scales: { y: { min: 0, max: 100, ticks: { callback: (value) => `${value}%` } } },
          plugins: {
            tooltip: {
              callbacks: { label: (item) => `${item.dataset.label}: ${item.formattedValue}%` },
            },
          },
        },
      },
    );
    const body = h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          {},
          h(
            "td",
            { class: "num" },
            h("time", { datetime: row.takenOn }, longDay(this, row.takenOn)),
          ),
          h("th", { scope: "row" }, row.name),
          h("td", {}, row.subject),
          h("td", {}, label(this, ASSESSMENT_KINDS, row.kind)),
          h("td", { class: "num" }, `${row.score} / ${row.maxScore}`),
          h("td", { class: "num" }, `${percent(row)}%`),
        ),
      ),
    );
    node.append(
      h(
        "details",
        {},
        h("summary", {}, t(this, "表で見る", "Show as a table")),
        h(
          "div",
          { class: "renkei-board-scroll" },
          h(
            "table",
            { class: "renkei-board-table" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, t(this, "実施日", "Date")),
                h("th", { scope: "col" }, t(this, "テスト", "Test")),
                h("th", { scope: "col" }, t(this, "教科", "Subject")),
                h("th", { scope: "col" }, t(this, "種別", "Kind")),
                h("th", { scope: "col", class: "num" }, t(this, "得点", "Score")),
                h("th", { scope: "col", class: "num" }, t(this, "得点率", "Percent")),
              ),
            ),
            body,
          ),
        ),
      ),
    );
    return node;
  }

  renderEvaluations(board) {
    const node = section(t(this, "評定・観点別評価", "Ratings and evaluation by viewpoint"), {
      class: "renkei-board-evaluations",
    });
    if (!board.evaluations.length) {
      node.append(
        emptyNote(
          t(this, "この年度の評価の記録はありません。", "No evaluations this school year."),
        ),
      );
      return node;
    }
    const viewpoints = [];
    for (const row of board.evaluations) {
      for (const v of row.viewpoints) if (!viewpoints.includes(v.name)) viewpoints.push(v.name);
    }
    const table = h(
      "table",
      { class: "renkei-board-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t(this, "学期", "Term")),
          h("th", { scope: "col" }, t(this, "教科", "Subject")),
          h("th", { scope: "col", class: "center" }, t(this, "評定", "Rating")),
          viewpoints.map((name) => h("th", { scope: "col", class: "center" }, name)),
        ),
      ),
      h(
        "tbody",
        {},
        board.evaluations.map((row) => {
          const grades = new Map(row.viewpoints.map((v) => [v.name, v.grade]));
          return h(
            "tr",
            {},
            h("td", {}, row.term),
            h("th", { scope: "row" }, row.subject),
            h("td", { class: "center" }, row.rating ?? "—"),
            viewpoints.map((name) => h("td", { class: "center" }, grades.get(name) || "—")),
          );
        }),
      ),
    );
    node.append(h("div", { class: "renkei-board-scroll" }, table));
    return node;
  }

  renderM365(board) {
    const node = section(t(this, "Microsoft 365 の利用", "Microsoft 365 use"), {
      class: "renkei-board-m365",
    });
    const active = board.m365Usage.filter((row) => row.active);
    if (!active.length) {
      node.append(
        emptyNote(
          t(this, "この年度の利用の記録はありません。", "No use recorded this school year."),
        ),
      );
      return node;
    }
    const months = schoolYearMonths(parseDay(board.asOf));
    const key = (y, m) => `${y}-${String(m + 1).padStart(2, "0")}`;
    const apps = [...new Set(active.map((row) => row.app))].sort();
    const counts = new Map(); // "YYYY-MM|app" → active days
    for (const row of active) {
      const k = `${row.date.slice(0, 7)}|${row.app}`;
      counts.set(k, (counts.get(k) || 0) + 1);
    }
    const count = (y, m, app) => counts.get(`${key(y, m)}|${app}`) || 0;
    node.append(
      h(
        "p",
        { class: "renkei-board-note" },
        t(
          this,
          "月ごと・アプリごとに、使った日数を数えています。",
          "Days with use, per month and app.",
        ),
      ),
    );
    this._chart(
      node,
      t(
        this,
        `Microsoft 365 のアプリごとの月別利用日数の棒グラフ。アプリ: ${apps.join("、")}。値は下の表にあります。`,
        `Bar chart of days using each Microsoft 365 app per month. Apps: ${apps.join(", ")}. The values are in the table below.`,
      ),
      {
        type: "bar",
        data: {
          labels: months.map(({ month }) => shortMonth(this, month)),
          datasets: apps.map((app, i) => ({
            label: app,
            data: months.map(({ year, month }) => count(year, month, app)),
            backgroundColor: SERIES[i % SERIES.length].color,
            borderColor: SERIES[i % SERIES.length].color,
            pointStyle: "rect",
          })),
        },
        options: {
          scales: {
            y: {
              beginAtZero: true,
              ticks: { precision: 0 },
              title: { display: true, text: t(this, "日数", "Days"), color: "#3d444d" },
            },
          },
        },
      },
    );
    const table = h(
      "table",
      { class: "renkei-board-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t(this, "月", "Month")),
          apps.map((app) => h("th", { scope: "col", class: "num" }, app)),
        ),
      ),
      h(
        "tbody",
        {},
        months.map(({ year, month }) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, monthLabel(this, year, month)),
            apps.map((app) => h("td", { class: "num" }, count(year, month, app))),
          ),
        ),
      ),
    );
    node.append(
      h(
        "details",
        {},
        h("summary", {}, t(this, "表で見る", "Show as a table")),
        h("div", { class: "renkei-board-scroll" }, table),
      ),
    );
    return node;
  }

  renderLearning(board) {
    const node = section(t(this, "学習ツールの利用（週ごと）", "Learning tools (per week)"), {
      class: "renkei-board-learning",
      "data-testid": "learning",
    });
    const weeks = board.learningWeeks || [];
    node.append(learningNote(this, weeks.length));
    if (!weeks.some((week) => week.activities)) {
      node.append(
        emptyNote(t(this, "この期間の学習の記録はありません。", "No learning recorded in this period.")),
      );
      return node;
    }
    // Subjects over the weeks, most minutes first.
    const totals = new Map();
    for (const week of weeks) {
      for (const part of week.subjects) {
        const sum = totals.get(part.subject) || { minutes: 0, activities: 0 };
        sum.minutes += part.minutes;
        sum.activities += part.activities;
        totals.set(part.subject, sum);
      }
    }
    const subjects = [...totals.keys()].sort(
      (a, b) => totals.get(b).minutes - totals.get(a).minutes || (a < b ? -1 : 1),
    );
    const minutesOf = (week, subject) =>
      (week.subjects.find((part) => part.subject === subject) || { minutes: 0 }).minutes;
    const names = subjects.map((subject) => subjectLabel(this, subject));
    this._chart(
      node,
      t(
        this,
        `週ごとの学習時間（分）の積み上げ棒グラフ。教科: ${names.join("、")}。値は下の表にあります。`,
        `Stacked bar chart of learning minutes per week. Subjects: ${names.join(", ")}. The values are in the table below.`,
      ),
      {
        type: "bar",
        data: {
          labels: weeks.map((week) => weekLabel(week.weekStart)),
          datasets: subjects.map((subject, i) => ({
            label: names[i],
            data: weeks.map((week) => minutesOf(week, subject)),
            backgroundColor: SERIES[i % SERIES.length].color,
            borderColor: SERIES[i % SERIES.length].color,
            pointStyle: "rect",
          })),
        },
        options: {
          scales: {
            x: { stacked: true },
            y: {
              stacked: true,
              beginAtZero: true,
              ticks: { precision: 0 },
              title: { display: true, text: t(this, "分", "Minutes"), color: "#3d444d" },
            },
          },
        },
      },
    );
    node.append(
      h(
        "details",
        {},
        h("summary", {}, t(this, "表で見る", "Show as a table")),
        headedTable(
          [
            t(this, "週", "Week"),
            t(this, "学習時間（分）", "Minutes"),
            t(this, "活動数", "Activities"),
            ...names,
          ],
          weeks.map((week) => [
            h("time", { datetime: week.weekStart }, weekLabel(week.weekStart)),
            week.minutes,
            week.activities,
            ...subjects.map((subject) => minutesOf(week, subject)),
          ]),
          { attrs: { "data-testid": "learning-weeks" } },
        ),
      ),
    );
    node.append(h("h4", {}, t(this, "教科別（この期間）", "By subject (this period)")));
    node.append(
      headedTable(
        [
          t(this, "教科", "Subject"),
          t(this, "学習時間（分）", "Minutes"),
          t(this, "活動数", "Activities"),
        ],
        subjects.map((subject, i) => [
          names[i],
          totals.get(subject).minutes,
          totals.get(subject).activities,
        ]),
        { attrs: { "data-testid": "learning-subjects" } },
      ),
    );
    return node;
  }

  // -- 個人カルテ ------------------------------------------------------------------------------

  /** Reads and shows the 個人カルテ; its own errors stay in its section. */
  async loadKarte(current, node, board) {
    node.dataset.state = "loading";
    node.append(
      h("p", { class: "renkei-loading", role: "status" }, t(this, "読み込んでいます…", "Loading…")),
    );
    const year = schoolYearOf(parseDay(board.asOf));
    try {
      const data = await graphqlRequest(this, STUDENT_KARTE_QUERY, {
        studentId: board.pupil.id,
        asOf: board.asOf,
        year,
        lastYear: year - 1,
        yearBefore: year - 2,
      });
      if (!current()) return;
      const karte = data.studentBoard || {};
      node.querySelectorAll(":scope > :not(h3)").forEach((child) => child.remove());
      this.renderKarte(node, year, karte);
      node.dataset.state = "ready";
      this.renderCharts();
    } catch (error) {
      if (!current()) return;
      node.querySelectorAll(":scope > :not(h3)").forEach((child) => child.remove());
      node.dataset.state = "error";
      node.append(
        h(
          "p",
          { role: "alert", class: "renkei-error" },
          error instanceof WidgetError
            ? error.message
            : t(this, "個人カルテを表示できませんでした。", "The pupil record could not be shown."),
        ),
      );
    }
  }

  renderKarte(node, year, karte) {
    const tests = new Map([
      [year, karte.year || []],
      [year - 1, karte.lastYear || []],
      [year - 2, karte.yearBefore || []],
    ]);
    const evaluations = new Map([
      [year, karte.yearEvaluations || []],
      [year - 1, karte.lastYearEvaluations || []],
      [year - 2, karte.yearBeforeEvaluations || []],
    ]);
    const years = (karte.schoolYears || []).map((y) => y.schoolYear);
    for (const [y, rows] of [...tests, ...evaluations]) {
      if (rows.length && !years.includes(y)) years.push(y);
    }
    years.sort((a, b) => b - a);
    if (!years.length) {
      node.append(emptyNote(t(this, "年度ごとの記録はありません。", "No records by school year.")));
      return;
    }
    node.append(
      h(
        "p",
        { class: "renkei-board-note" },
        t(
          this,
          "基準日の年度と、その前の 2 年度の記録です（前の学校のものを含みます）。",
          "The school year of the as-of day and the two before it (including a previous school).",
        ),
      ),
    );
    const byYear = new Map((karte.schoolYears || []).map((y) => [y.schoolYear, y]));
    node.append(this.renderKarteAttendance(years, byYear));
    node.append(this.renderKarteTrend([...years].reverse(), tests));
    node.append(this.renderKarteRadar(year, tests));
    node.append(h("h4", {}, t(this, "年度ごとのテストと評価", "Tests and evaluations by year")));
    for (const y of years) {
      node.append(this.renderKarteYear(y, byYear.get(y), tests.get(y) || [], evaluations.get(y) || []));
    }
  }

  yearLabel(year) {
    return t(this, `${year}年度`, `${year}–${String((year + 1) % 100).padStart(2, "0")}`);
  }

  classLabel(entry) {
    const homeroom = entry && entry.homeroom;
    if (!homeroom) return t(this, "（学級の登録なし）", "(no class)");
    return `${homeroom.school.name} ${homeroom.name}`;
  }

  renderKarteAttendance(years, byYear) {
    const part = h("div", { "data-testid": "karte-attendance" });
    part.append(h("h4", {}, t(this, "出欠の記録", "Attendance record")));
    const days = (n) => (n === null || n === undefined ? "—" : n);
    part.append(
      h(
        "div",
        { class: "renkei-board-scroll" },
        h(
          "table",
          { class: "renkei-board-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, t(this, "年度", "School year")),
              h("th", { scope: "col" }, t(this, "学校・学級", "School and class")),
              h("th", { scope: "col", class: "num" }, t(this, "授業日数", "School days")),
              h(
                "th",
                { scope: "col", class: "num" },
                t(this, "出席停止・忌引等", "Suspension, mourning"),
              ),
              h(
                "th",
                { scope: "col", class: "num" },
                t(this, "出席しなければならない日数", "Days required"),
              ),
              h("th", { scope: "col", class: "num" }, t(this, "欠席日数", "Days absent")),
              h("th", { scope: "col", class: "num" }, t(this, "出席日数", "Days attended")),
            ),
          ),
          h(
            "tbody",
            {},
            years.map((y) => {
              const entry = byYear.get(y);
              const record = (entry && entry.attendance) || {};
              return h(
                "tr",
                { dataset: { year: y } },
                h("th", { scope: "row" }, this.yearLabel(y)),
                h("td", {}, this.classLabel(entry)),
                h("td", { class: "num" }, days(record.schoolDays)),
                h("td", { class: "num" }, days(record.excusedDays)),
                h("td", { class: "num" }, days(record.requiredDays)),
                h("td", { class: "num" }, days(record.absenceDays)),
                h("td", { class: "num" }, days(record.attendedDays)),
              );
            }),
          ),
        ),
      ),
    );
    return part;
  }

  renderKarteTrend(years, tests) {
    const part = h("div", { "data-testid": "karte-trend" });
    part.append(h("h4", {}, t(this, "5 教科の平均得点率の推移", "Five subjects over the years")));
    const averages = new Map(years.map((y) => [y, subjectAverages(tests.get(y) || [])]));
    const subjects = FIVE_SUBJECTS.filter((s) => years.some((y) => averages.get(y).has(s.key)));
    if (!subjects.length) {
      part.append(emptyNote(t(this, "5 教科のテストの記録はありません。", "No tests in the five subjects.")));
      return part;
    }
    const name = (s) => t(this, s.ja, s.en);
    const value = (y, s) => averages.get(y).get(s.key) ?? null;
    part.dataset.chart = "line";
    part.append(
      h(
        "p",
        { class: "renkei-board-note" },
        t(
          this,
          "年度ごとに、その教科のすべてのテストの得点率（満点に対する %）を平均しています。",
          "Per school year, the average of every test's score as a percent of its maximum.",
        ),
      ),
    );
    this._chart(
      part,
      t(
        this,
        `5 教科の平均得点率（%）の年度ごとの折れ線グラフ。教科: ${subjects.map(name).join("、")}。値は下の表にあります。`,
        `Line chart of the five subjects' average test score (%) per school year. Subjects: ${subjects.map(name).join(", ")}. The values are in the table below.`,
      ),
      {
        type: "line",
        data: {
          labels: years.map((y) => this.yearLabel(y)),
          datasets: subjects.map((s, i) => {
            const style = SERIES[i % SERIES.length];
            return {
              label: name(s),
              data: years.map((y) => value(y, s)),
              borderColor: style.color,
              backgroundColor: style.color,
              pointStyle: style.point,
              pointRadius: 5,
              pointHoverRadius: 7,
              borderWidth: 2,
              spanGaps: true,
            };
          }),
        },
        options: {
          scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
          plugins: {
            tooltip: {
              callbacks: { label: (item) => `${item.dataset.label}: ${item.formattedValue}%` },
            },
          },
        },
      },
    );
    part.append(
      headedTable(
        [t(this, "年度", "School year"), ...subjects.map(name)],
        years.map((y) => [
          this.yearLabel(y),
          ...subjects.map((s) => (value(y, s) === null ? "—" : `${value(y, s)}%`)),
        ]),
      ),
    );
    return part;
  }

  sittingName(sitting) {
    const names = new Set(sitting.rows.map((row) => row.name));
    if (names.size === 1) return [...names][0];
    const month = Number(sitting.month.slice(5, 7));
    return t(
      this,
      `${label(this, ASSESSMENT_KINDS, sitting.kind)}（${month}月）`,
      `${label(this, ASSESSMENT_KINDS, sitting.kind)} (${shortMonth(this, month - 1)})`,
    );
  }

  renderKarteRadar(year, tests) {
    const part = h("div", { "data-testid": "karte-radar" });
    part.append(
      h("h4", {}, t(this, "最新のテストと昨年度の同じテスト", "Latest test beside last year's")),
    );
    // A radar needs three axes: the latest tests taken together in three subjects or more.
    const wide = (s) => s.scores.size >= 3;
    const latest = testSittings(tests.get(year) || []).find(wide);
    if (!latest) {
      part.append(
        emptyNote(
          t(
            this,
            "この年度に 3 教科以上そろったテストはありません。",
            "No test this school year covers three subjects or more.",
          ),
        ),
      );
      return part;
    }
    const before = testSittings(tests.get(year - 1) || []).filter(
      (s) => s.kind === latest.kind && wide(s),
    );
    const previous = before.find((s) => s.month.slice(5) === latest.month.slice(5)) || before[0];
    const subjects = [];
    for (const row of latest.rows) {
      if (!subjects.some((s) => s.key === subjectKey(row.subject))) {
        subjects.push({ key: subjectKey(row.subject), name: row.subject });
      }
    }
    const now = `${this.yearLabel(year)} ${this.sittingName(latest)}`;
    const then = previous ? `${this.yearLabel(year - 1)} ${this.sittingName(previous)}` : null;
    const pick = (sitting, s) => (sitting ? (sitting.scores.get(s.key) ?? null) : null);
    if (!previous) {
      part.append(
        h(
          "p",
          { class: "renkei-board-note" },
          t(
            this,
            "昨年度に同じ種類のテストの記録がないため、今年度の結果だけを示します。",
            "Last year has no test of the same kind: this year's result only.",
          ),
        ),
      );
    }
    part.dataset.chart = "radar";
    const datasets = [[now, latest, SERIES[0]], ...(previous ? [[then, previous, SERIES[1]]] : [])];
    this._chart(
      part,
      t(
        this,
        `レーダーチャート: ${now}${then ? ` と ${then}` : ""}の教科ごとの得点率（%）。値は下の表にあります。`,
        `Radar chart of the score (%) per subject: ${now}${then ? ` and ${then}` : ""}. The values are in the table below.`,
      ),
      {
        type: "radar",
        data: {
          labels: subjects.map((s) => s.name),
          datasets: datasets.map(([name, sitting, style], i) => ({
            label: name,
            data: subjects.map((s) => pick(sitting, s)),
            borderColor: style.color,
            backgroundColor: style.color,
            pointStyle: style.point,
            pointRadius: 4,
            borderWidth: 2,
            borderDash: i ? [6, 4] : [],
            fill: false,
            spanGaps: true,
          })),
        },
        options: {
          scales: { r: { min: 0, max: 100, ticks: { stepSize: 25, callback: (v) => `${v}%` } } },
          plugins: {
            tooltip: {
              callbacks: { label: (item) => `${item.dataset.label}: ${item.formattedValue}%` },
            },
          },
        },
      },
    );
    const cell = (v) => (v === null ? "—" : `${v}%`);
    part.append(
      headedTable(
        [t(this, "教科", "Subject"), now, ...(then ? [then] : [])],
        subjects.map((s) => [
          s.name,
          cell(pick(latest, s)),
          ...(previous ? [cell(pick(previous, s))] : []),
        ]),
      ),
    );
    return part;
  }

  renderKarteYear(year, entry, tests, evaluations) {
    const rows = tests.filter((row) => row.maxScore > 0);
    const details = h(
      "details",
      { class: "renkei-karte-year", "data-testid": "karte-year", dataset: { year } },
      h(
        "summary",
        {},
        `${this.yearLabel(year)} ${entry ? this.classLabel(entry) : ""} — `,
        t(
          this,
          `テスト ${rows.length} 件・評価 ${evaluations.length} 件`,
          `${rows.length} tests, ${evaluations.length} evaluations`,
        ),
      ),
    );
    if (rows.length) {
      details.append(
        headedTable(
          [
            t(this, "実施日", "Date"),
            t(this, "テスト", "Test"),
            t(this, "教科", "Subject"),
            t(this, "種別", "Kind"),
            t(this, "得点", "Score"),
            t(this, "得点率", "Percent"),
          ],
          rows.map((row) => [
            h("time", { datetime: row.takenOn }, longDay(this, row.takenOn)),
            row.name,
            row.subject,
            label(this, ASSESSMENT_KINDS, row.kind),
            `${row.score} / ${row.maxScore}`,
            `${scorePercent(row)}%`,
          ]),
          { firstNumber: 4 },
        ),
      );
    }
    if (evaluations.length) {
      const viewpoints = [];
      for (const row of evaluations) {
        for (const v of row.viewpoints) if (!viewpoints.includes(v.name)) viewpoints.push(v.name);
      }
      details.append(
        headedTable(
          [t(this, "学期", "Term"), t(this, "教科", "Subject"), t(this, "評定", "Rating"), ...viewpoints],
          evaluations.map((row) => {
            const grades = new Map(row.viewpoints.map((v) => [v.name, v.grade]));
            return [
              row.term,
              row.subject,
              row.rating ?? "—",
              ...viewpoints.map((name) => grades.get(name) || "—"),
            ];
          }),
          { firstNumber: Infinity }, // ratings and viewpoints are codes, not amounts
        ),
      );
    }
    if (!rows.length && !evaluations.length) {
      details.append(
        emptyNote(t(this, "テストと評価の記録はありません。", "No tests or evaluations.")),
      );
    }
    return details;
  }

  /** Charts are drawn after the board is in the document (Chart.js measures its box). */
  renderCharts() {
    const pending = this._pendingCharts;
    this._pendingCharts = [];
    for (const draw of pending) {
      try {
        draw();
      } catch (_error) {
        // The canvas keeps its text and the table below has the values; nothing to log.
      }
    }
  }

  renderLocked(node) {
    node.querySelectorAll(":scope > :not(h3)").forEach((child) => child.remove());
    node.dataset.state = "locked";
    const verify = hrefFrom(this.getAttribute("verify-href"), "");
    node.append(
      h(
        "div",
        { class: "renkei-locked" },
        h(
          "p",
          {},
          t(
            this,
            "欠席の理由・症状・保健室の記録・アンケートは要配慮情報です。二要素認証で本人確認をすると表示されます。",
            "Absence reasons, symptoms, the nurse's notes and surveys are sensitive information. They are shown after you confirm your identity with two-factor authentication.",
          ),
        ),
        verify
          ? h(
              "p",
              {},
              h("a", { href: verify }, t(this, "二要素認証へ", "Go to two-factor authentication")),
            )
          : null,
      ),
    );
  }

  renderSensitive(node, board, more) {
    node.querySelectorAll(":scope > :not(h3)").forEach((child) => child.remove());
    node.dataset.state = "ready";
    node.append(
      h(
        "p",
        { class: "renkei-board-note" },
        t(
          this,
          "二要素認証済みのため表示しています。閲覧は記録されます。画面の共有や印刷に注意してください。",
          "Shown because you passed two-factor authentication. Viewing is logged; take care when sharing the screen or printing.",
        ),
      ),
    );

    // Absence days (and other non-present days) with their reasons.
    const reasons = new Map((more.attendance || []).map((row) => [row.date, row.reason]));
    const notPresent = board.attendance.filter(
      (day) => day.status !== "PRESENT" || reasons.get(day.date),
    );
    node.append(h("h4", {}, t(this, "欠席等の理由", "Reasons for absence, lateness and leave")));
    if (notPresent.length) {
      node.append(
        this.simpleTable(
          [t(this, "日付", "Date"), t(this, "区分", "Status"), t(this, "理由", "Reason")],
          notPresent
            .slice()
            .reverse()
            .map((day) => [
              h("time", { datetime: day.date }, longDay(this, day.date)),
              [markSymbol(day.status), " ", statusLabel(this, day.status)],
              reasons.get(day.date) || "—",
            ]),
        ),
      );
    } else {
      node.append(
        emptyNote(
          t(
            this,
            "この年度の欠席・遅刻・早退等はありません。",
            "No absences, late arrivals or early leaves this school year.",
          ),
        ),
      );
    }

    const conditions = new Map(board.health.map((row) => [row.date, row.condition]));
    const symptoms = (more.health || []).filter((row) => row.symptoms);
    node.append(h("h4", {}, t(this, "健康観察の症状", "Symptoms in health checks")));
    if (symptoms.length) {
      node.append(
        this.simpleTable(
          [t(this, "日付", "Date"), t(this, "体調", "Condition"), t(this, "症状", "Symptoms")],
          symptoms
            .slice()
            .reverse()
            .map((row) => [
              h("time", { datetime: row.date }, longDay(this, row.date)),
              conditions.has(row.date) ? label(this, CONDITIONS, conditions.get(row.date)) : "—",
              row.symptoms,
            ]),
        ),
      );
    } else {
      node.append(emptyNote(t(this, "症状の記録はありません。", "No symptoms recorded.")));
    }

    const reasonsByVisit = new Map(
      board.nurseVisits.map((visit) => [visit.visitedAt, visit.reasonCategory]),
    );
    const notes = more.nurseVisits || [];
    node.append(h("h4", {}, t(this, "保健室の記録", "School nurse's notes")));
    if (notes.length) {
      node.append(
        this.simpleTable(
          [
            t(this, "日時", "Date and time"),
            t(this, "理由区分", "Reason"),
            t(this, "記録", "Note"),
          ],
          notes
            .slice()
            .reverse()
            .map((visit) => {
              const { day, time } = schoolDateTime(visit.visitedAt);
              return [
                h("time", { datetime: visit.visitedAt }, `${longDay(this, day)} ${time}`),
                reasonsByVisit.has(visit.visitedAt)
                  ? label(this, NURSE_REASONS, reasonsByVisit.get(visit.visitedAt))
                  : "—",
                visit.note || "—",
              ];
            }),
        ),
      );
    } else {
      node.append(emptyNote(t(this, "保健室の記録はありません。", "No nurse's notes.")));
    }

    const surveys = more.surveys || [];
    node.append(h("h4", {}, t(this, "アンケート", "Surveys")));
    if (!surveys.length) {
      node.append(emptyNote(t(this, "アンケートの回答はありません。", "No survey answers.")));
      return;
    }
    for (const response of surveys.slice().reverse()) {
      const answers = response.answers;
      const entries =
        answers && typeof answers === "object" && !Array.isArray(answers)
          ? Object.entries(answers)
          : [[t(this, "回答", "Answer"), answers]];
      node.append(
        h(
          "div",
          { class: "renkei-survey", "data-testid": "survey" },
          h(
            "p",
            {},
            h("strong", {}, response.survey),
            " ",
            h(
              "time",
              { class: "renkei-muted", datetime: response.answeredOn },
              longDay(this, response.answeredOn),
            ),
          ),
          h(
            "dl",
            {},
            entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, answerText(this, v))]),
          ),
          response.freeCommentWithheld
            ? h(
                "p",
                { class: "renkei-muted", "data-testid": "comment-withheld" },
                t(
                  this,
                  "ひとこと（自由記述）は担任と管理職だけが読めます。",
                  "The free comment can be read only by the homeroom teacher and the school's managers.",
                ),
              )
            : null,
        ),
      );
    }
  }

  simpleTable(columns, rows) {
    return h(
      "div",
      { class: "renkei-board-scroll" },
      h(
        "table",
        { class: "renkei-board-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            columns.map((c) => h("th", { scope: "col" }, c)),
          ),
        ),
        h(
          "tbody",
          {},
          rows.map(([first, ...rest]) =>
            h(
              "tr",
              {},
              h("th", { scope: "row", class: "num" }, first),
              rest.map((value, i) =>
                h("td", { class: i === rest.length - 1 ? "wrap" : null }, value),
              ),
            ),
          ),
        ),
      ),
    );
  }
}

function answerText(element, value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean")
    return t(element, value ? "はい" : "いいえ", value ? "yes" : "no");
  if (Array.isArray(value) && value.every((v) => v === null || typeof v !== "object")) {
    return value.map((v) => answerText(element, v)).join(t(element, "、", ", "));
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

if (typeof customElements !== "undefined") {
  if (!customElements.get("renkei-class-board"))
    customElements.define("renkei-class-board", RenkeiClassBoard);
  if (!customElements.get("renkei-student-board"))
    customElements.define("renkei-student-board", RenkeiStudentBoard);
}
