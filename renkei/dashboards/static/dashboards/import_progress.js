// 管理 › 取り込み #N: while the import waits or runs, ask for its state every second and show
// it (with the time left, estimated from the rate so far); when it ends, load the page again
// for the summary and the error report.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-import-status]");
  if (!box || box.dataset.live !== "true") return;
  const set = (name, value) => {
    const el = box.querySelector(`[data-field=${name}]`);
    if (el) el.textContent = value;
  };
  const number = (n) => (n === null || n === undefined ? "—" : n.toLocaleString());
  const tick = async () => {
    let state;
    try {
      const response = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(response.status);
      state = await response.json();
    } catch (e) {
      setTimeout(tick, 3000);  // the server restarts: the import goes on, ask again
      return;
    }
    if (!state.live) { window.location.reload(); return; }
    set("status", state.status_label);
    set("rows", number(state.rows_read));
    set("rate", number(state.rows_per_second));
    set("ahead", number(state.ahead));
    const left = box.querySelector("[data-time-left]");
    left.hidden = state.seconds_left === null;
    if (!left.hidden) {
      const s = state.seconds_left;
      set("left", s >= 90 ? `${Math.round(s / 60)} ${left.dataset.minutes}` : `${Math.max(s, 1)} ${left.dataset.seconds}`);
    }
    box.querySelector("[data-queued]").hidden = state.status !== "queued";
    for (const step of box.querySelectorAll("[data-phase]")) {
      if (step.dataset.phase === state.phase) step.setAttribute("aria-current", "step");
      else step.removeAttribute("aria-current");
    }
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
});
