// impasto web page: plain JS, no build step. Talks to the REST API; progress comes as server-sent events.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { content: null, styleFile: null, styleName: null, methods: [], job: null, source: null };

function token() { return localStorage.getItem("impasto-token") || ""; }
function withToken(url) {
  const t = token();
  return t ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(t) : url;
}
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    const entered = prompt("This server needs a token:");
    if (entered) { localStorage.setItem("impasto-token", entered); return api(path, options); }
  }
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error((body && body.detail) || response.statusText);
  return body;
}

// --- inputs: drop zones, gallery, method -------------------------------------------------------------
function dropZone(zone, input, preview, onFile, videoPreview = null) {
  const show = (file) => {
    if (!file) return;
    onFile(file);
    const isVideo = videoPreview !== null && file.type.startsWith("video/");
    preview.hidden = isVideo;
    if (videoPreview) videoPreview.hidden = !isVideo;
    (isVideo ? videoPreview : preview).src = URL.createObjectURL(file);
  };
  input.addEventListener("change", () => show(input.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    show(e.dataTransfer.files[0]);
  });
}

function selectGallery(name) {
  state.styleName = name;
  for (const b of $("gallery").children) b.setAttribute("aria-checked", String(b.dataset.name === name));
  if (name) { state.styleFile = null; $("style-preview").hidden = true; $("style").value = ""; }
}

async function loadGallery() {
  const paintings = await api("/api/gallery");
  for (const p of paintings) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.name = p.name;
    b.setAttribute("role", "radio");
    b.setAttribute("aria-checked", "false");
    b.title = p.name;
    const img = document.createElement("img");
    img.src = withToken(p.url);
    img.alt = p.name;
    const label = document.createElement("span");
    label.textContent = p.name.replaceAll("_", " ");
    b.append(img, label);
    b.addEventListener("click", () => selectGallery(p.name));
    $("gallery").append(b);
  }
}

async function loadMethods() {
  state.methods = await api("/api/methods");
  const select = $("method");
  for (const m of state.methods.filter((m) => m.name !== "optimize")) {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = m.styles ? `${m.name}: ${m.summary}; ${m.styles.length} gallery styles` : `${m.name}: ${m.summary}`;
    select.append(o);
  }
  select.addEventListener("change", methodChanged);
}

function currentMethod() {
  return state.methods.find((m) => m.name === $("method").value);
}

function methodFields(m) {
  // the method's own options (its page_fields): a select where it lists choices, else a text field
  const box = $("method-fields");
  box.replaceChildren();
  for (const [name, f] of Object.entries(m.fields || {})) {
    const label = document.createElement("label");
    label.title = f.help || "";
    let input;
    if (f.choices) {
      input = document.createElement("select");
      for (const c of f.choices) {
        const o = document.createElement("option");
        o.value = o.textContent = c;
        input.append(o);
      }
    } else {
      input = document.createElement("input");
      input.type = "text";
    }
    input.value = f.default;
    input.name = name;
    input.id = `field-${name}`;
    label.append(`${name.replaceAll("_", " ")} `, input);
    box.append(label);
  }
}

function methodChanged() {
  const m = currentMethod();
  methodFields(m);
  $("strength-row").hidden = !m.options.includes("strength");
  // the slider starts at the method's own default (0.4 is the optimization's default style weight)
  $("strength").value = m.default_strength ?? 0.4;
  $("strength-value").textContent = Number($("strength").value).toFixed(2);
  $("style-drop").hidden = !m.takes_styles;
  if (m.takes_styles) {
    for (const b of $("gallery").children) b.disabled = false;
  } else {
    const styles = m.styles || [];
    for (const b of $("gallery").children) b.disabled = !styles.includes(b.dataset.name);
    if (styles.length && !styles.includes(state.styleName)) selectGallery(styles[0]);
  }
}

// --- a job: submit, follow its events, cancel ---------------------------------------------------------
async function submit(event) {
  event.preventDefault();
  $("form-error").textContent = "";
  if (!state.content) { $("form-error").textContent = "Choose a photo first."; return; }
  const m = currentMethod();
  const needsStyle = m.takes_styles || (m.styles && m.styles.length);
  if (needsStyle && !state.styleFile && !state.styleName) {
    $("form-error").textContent = "Choose a painting."; return;
  }
  const form = new FormData();
  form.append("content", state.content);
  if (m.takes_styles && state.styleFile) form.append("style", state.styleFile);
  else if (needsStyle) form.append("style", state.styleName);
  form.append("method", m.name);
  if (m.options.includes("size")) form.append("size", $("size").value);
  if (m.options.includes("strength")) form.append("strength", $("strength").value);
  for (const input of $("method-fields").querySelectorAll("input, select")) {
    if (input.value.trim()) form.append(input.name, input.value.trim());
  }
  if ($("preserve-color").checked && m.options.includes("preserve_color")) form.append("preserve_color", "luminance");
  if ($("deep").checked) form.append("bit_depth", "16");
  $("start").disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", body: form });
    follow(job.id);
  } catch (e) {
    $("form-error").textContent = e.message;
  } finally {
    $("start").disabled = false;
  }
}

function follow(id) {
  if (state.source) state.source.close();
  state.job = id;
  $("job").hidden = false;
  $("job").scrollIntoView({ block: "nearest" });
  $("download").hidden = true;
  $("cancel").disabled = false;
  $("live").removeAttribute("src");
  $("live").hidden = false;
  $("live-video").hidden = true;
  $("live-video").removeAttribute("src");
  $("progress").value = 0;
  $("job-title").textContent = "Painting…";
  $("status").dataset.events = "0";
  delete $("status").dataset.final;
  let preview = 0;
  const source = new EventSource(withToken(`/api/jobs/${id}/events`));
  state.source = source;
  source.addEventListener("progress", (e) => {
    const job = JSON.parse(e.data);
    $("status").dataset.events = String(Number($("status").dataset.events) + 1);
    $("progress").value = job.progress;
    $("status").textContent = `${job.status}: ${job.message} (${Math.round(job.progress * 100)}%)`;
    if (job.preview > preview) {
      preview = job.preview;
      $("live").src = withToken(`/api/jobs/${id}/preview?v=${preview}`);
    }
  });
  source.addEventListener("end", (e) => {
    source.close();
    const job = JSON.parse(e.data);
    $("cancel").disabled = true;
    $("status").textContent = job.status === "failed" ? `failed: ${job.error}` : job.status;
    $("status").dataset.final = job.status;
    $("job-title").textContent = { done: "Done", failed: "Failed", cancelled: "Cancelled" }[job.status];
    if (job.status === "done") {
      const url = withToken(`/api/jobs/${id}/result`);
      if (job.kind === "video") {
        $("live").hidden = true;
        $("live-video").hidden = false;
        $("live-video").src = url;
      } else {
        $("live").src = url;
      }
      $("download").href = url;
      $("download").hidden = false;
    }
    loadJobs();
  });
  loadJobs();
}

async function cancel() {
  if (state.job) await api(`/api/jobs/${state.job}`, { method: "DELETE" });
}

async function loadJobs() {
  const jobs = await api("/api/jobs?limit=24");
  const list = $("jobs");
  list.replaceChildren();
  for (const job of jobs) {
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.alt = "";
    if (job.status === "done") img.src = withToken(`/api/jobs/${job.id}/thumbnail`);
    const text = document.createElement("div");
    text.textContent = `${job.method}, ${job.status}`;
    li.append(img, text);
    li.addEventListener("click", () => follow(job.id));
    list.append(li);
  }
}

window.addEventListener("DOMContentLoaded", async () => {
  dropZone($("content-drop"), $("content"), $("content-preview"), (f) => { state.content = f; }, $("content-video"));
  dropZone($("style-drop"), $("style"), $("style-preview"), (f) => { state.styleFile = f; selectGallery(null); });
  $("strength").addEventListener("input", () => { $("strength-value").textContent = Number($("strength").value).toFixed(2); });
  $("form").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancel);
  try {
    await Promise.all([loadGallery(), loadMethods()]);
    const limits = await api("/api/limits");
    $("size").max = limits.max_size;
    await loadJobs();
  } catch (e) {
    $("form-error").textContent = e.message;
  }
});
