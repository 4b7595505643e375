// Entry point of static/renkei/widgets.js: defines the custom elements.
import "./graphql.js";
import { RenkeiChart } from "./metric-chart.js";
import { RenkeiTable } from "./metric-table.js";
import * as boards from "./boards.js";

function define(tag, elementClass) {
  if (typeof customElements === "undefined" || customElements.get(tag)) return;
  try {
    customElements.define(tag, elementClass);
  } catch (error) {
    // Already defined under another name (a module defined it itself), or an invalid name.
    if (typeof console !== "undefined") console.warn(`renkei-widgets: ${tag}: ${error}`);
  }
}

define("renkei-chart", RenkeiChart);
define("renkei-table", RenkeiTable);

// boards.js may define its elements itself; any exported element class not yet defined is
// defined here under its static `tagName`, or the kebab-case of its name (RenkeiClassBoard
// → renkei-class-board).
for (const value of Object.values(boards)) {
  if (
    typeof value === "function" &&
    typeof HTMLElement !== "undefined" &&
    value.prototype instanceof HTMLElement
  ) {
    const tag =
      typeof value.tagName === "string"
        ? value.tagName
        : value.name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
    if (tag.includes("-")) define(tag, value);
  }
}
