// <renkei-table>: a metric's released cells as an accessible table (aggregates only).
import {
  MetricElement, buildTable, legend, metricDescription, metricTitle, missingNote,
} from "./metric-data.js";

export class RenkeiTable extends MetricElement {
  render(table) {
    const body = document.createElement("div");
    body.className = "renkei-body";
    const title = metricTitle(this, table);
    const description = metricDescription(this, table);
    const parts = [buildTable(this, table, title)];
    if (description) {
      const p = document.createElement("p");
      p.className = "renkei-description";
      p.textContent = description;
      parts.push(p);
    }
    const note = missingNote(this, table);
    if (note) parts.push(note);
    parts.push(legend(this, table.k));
    body.append(...parts);
    this.replaceChildren(body);
  }
}
