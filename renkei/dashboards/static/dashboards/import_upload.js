// 管理 › 取り込み › ファイルを取り込む: files dropped on the zone join the file input, and the
// chosen files are listed with their sizes before anything is sent. On submit each file is
// sent resumably (tus-js-client): a dropped connection picks up where it stopped, and so does
// the same file chosen again after a reload. Then the form is sent with the upload ids only.
// Without tus (an old browser) the form sends the files itself.
document.addEventListener("DOMContentLoaded", () => {
  const zone = document.querySelector("[data-drop-zone]");
  if (!zone) return;
  const form = zone.closest("form");
  const input = zone.querySelector("input[type=file]");
  const list = zone.querySelector("[data-file-list]");
  const problem = form.querySelector("[data-upload-problem]");
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

  if (!window.tus || !tus.isSupported) return;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const send = (file, item) => new Promise((resolve, reject) => {
    const upload = new tus.Upload(file, {
      endpoint: form.dataset.uploadUrl,
      chunkSize: 32 * 2 ** 20,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000],
      metadata: { filename: file.name },
      headers: { "X-CSRFToken": csrf },
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => {
        item.textContent = `${file.name} — ${size(total)} — ${form.dataset.sending} ${Math.floor((sent / total) * 100)}%`;
      },
      onSuccess: () => resolve(upload.url.split("/").pop()),
      onError: (error) => {
        const body = error.originalResponse && error.originalResponse.getBody();
        reject(new Error(body || form.dataset.failed));
      },
    });
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
    });
  });
  form.addEventListener("submit", async (e) => {
    if (!input.files.length || form.dataset.sent === "true") return;
    e.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    problem.hidden = true;
    try {
      const ids = [];
      const items = list.querySelectorAll("li");
      for (const [i, file] of Array.from(input.files).entries()) {
        ids.push(await send(file, items[i]));
      }
      form.querySelector("input[name=uploads]").value = ids.join(",");
      input.disabled = true;  // the files are on the server: send only their ids
      form.dataset.sent = "true";
      form.submit();
    } catch (error) {
      problem.textContent = error.message;
      problem.hidden = false;
      button.disabled = false;
    }
  });
});
