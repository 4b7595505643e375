// 管理 › 取り込み › ファイルを取り込む: files dropped on the zone join the file input, and the
// chosen files are listed with their sizes before anything is sent.
document.addEventListener("DOMContentLoaded", () => {
  const zone = document.querySelector("[data-drop-zone]");
  if (!zone) return;
  const input = zone.querySelector("input[type=file]");
  const list = zone.querySelector("[data-file-list]");
  const size = (n) => {
    for (const [unit, s] of [["GB", 2 ** 30], ["MB", 2 ** 20], ["KB", 2 ** 10]]) {
      if (n >= s) return `${(n / s).toFixed(1)} ${unit}`;
    }
    return `${n} B`;
  };
  const show = () => {
    list.replaceChildren(...Array.from(input.files, (f) => {
      const item = document.createElement("li");
      item.textContent = `${f.name} — ${size(f.size)}`;
      return item;
    }));
  };
  input.addEventListener("change", show);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    const all = new DataTransfer();
    for (const f of input.files) all.items.add(f);
    for (const f of e.dataTransfer.files) all.items.add(f);
    input.files = all.files;
    show();
  });
});
