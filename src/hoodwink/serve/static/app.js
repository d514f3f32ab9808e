// The page's only script: no framework, nothing from the network.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;

function show(el, on) { el.hidden = !on; }

function setError(message) {
  const box = $("error");
  box.textContent = message || "";
  show(box, Boolean(message));
}

function setStatus(text) { $("status").textContent = text; }

function ordinal(n) {
  const s = ["th", "st", "nd", "rd"], v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

async function loadInfo() {
  const r = await fetch("/api/info");
  info = await r.json();
  $("model-name").textContent = info.model;
  const list = $("classes");
  for (const name of info.classes || []) {
    const o = document.createElement("option");
    o.value = name;
    list.appendChild(o);
  }
  const eps = $("eps");
  for (const k of info.budgets_255) {
    const o = document.createElement("option");
    o.value = String(k);
    o.textContent = k + "/255";
    if (k === 2) o.selected = true;
    eps.appendChild(o);
  }
  const mib = (info.max_upload_bytes / 1048576).toFixed(0);
  $("limits").textContent = "PNG, JPEG, BMP, GIF, TIFF or WebP; at most " + mib + " MiB and "
    + info.max_pixels.toLocaleString("en") + " pixels.";
  if (!info.robust_available) {
    $("robust").disabled = true;
    $("robust-note").textContent = "The robust mode is not available in this version of hoodwink.";
  }
}

function fillTop(table, rows, target) {
  const body = table.querySelector("tbody");
  body.replaceChildren();
  rows.forEach((p, i) => {
    const tr = document.createElement("tr");
    if (p.index === target) tr.className = "target";
    for (const [text, cls] of [[String(i + 1), ""], [p.name + " (" + p.index + ")", ""],
                               [(100 * p.probability).toFixed(1) + "%", "num"]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  });
}

function fillSurvival(res) {
  const box = $("survival");
  box.replaceChildren();
  const s = res.survival;
  if (!s) {
    const p = document.createElement("p");
    p.id = "survival-note";
    p.textContent = res.survival_note || "survival: not measured";
    box.appendChild(p);
    return;
  }
  const table = document.createElement("table");
  table.id = "survival-table";
  const cap = document.createElement("caption");
  cap.textContent = "Does the target survive real re-encoding? (Pillow's codecs, fresh random draws)";
  table.appendChild(cap);
  const head = document.createElement("tr");
  for (const h of ["transformation", "target kept", "rate", "95% interval"]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  table.appendChild(head);
  for (const row of s.table || []) {
    const tr = document.createElement("tr");
    const ci = row.ci95 ? (100 * row.ci95[0]).toFixed(0) + "–" + (100 * row.ci95[1]).toFixed(0) + "%" : "";
    for (const [text, cls] of [[row.family, ""], [row.kept + " of " + row.n, "num"],
                               [(100 * row.rate).toFixed(0) + "%", "num"], [ci, "num"]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    table.appendChild(tr);
  }
  box.appendChild(table);
}

function render(res) {
  const ok = res.success;
  const summary = $("summary");
  summary.textContent = ok
    ? info.model + " now sees " + res.after[0].name + " (" + (100 * res.after[0].probability).toFixed(1) + "%)"
    : "Not fooled: " + info.model + " still sees " + res.after[0].name;
  summary.className = ok ? "ok" : "bad";
  $("details").textContent = res.source_name + ", " + res.size[0] + "×" + res.size[1]
    + "; budget " + res.eps_255 + "/255" + (res.robust ? " (robust)" : "")
    + "; largest change on disk " + res.max_change_255 + "/255; "
    + (res.timings_s.total !== undefined ? res.timings_s.total.toFixed(1) + " s." : "");
  if (res.files.figure) {
    $("triptych").src = res.files.figure;
    show($("triptych"), true);
  } else {
    show($("triptych"), false);
  }
  fillTop($("before"), res.before, res.target.index);
  fillTop($("after"), res.after, res.target.index);
  fillSurvival(res);
  const png = $("download-png"), json = $("download-json");
  png.href = res.files.png + "?download=1";
  png.setAttribute("download", res.download_names.png);
  json.href = res.files.json + "?download=1";
  json.setAttribute("download", res.download_names.json);
  show($("result"), true);
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

async function follow(id) {
  for (;;) {
    const r = await fetch("/api/jobs/" + id);
    const st = await r.json();
    if (!r.ok) throw new Error(st.error || ("HTTP " + r.status));
    if (st.state === "queued") {
      setStatus("Waiting: " + ordinal(st.position) + " in line.");
    } else if (st.state === "running") {
      setStatus("Fooling the model toward " + st.target.name + ": "
        + Math.round(100 * st.progress) + "% of the steps.");
      $("progress").value = st.progress;
    } else if (st.state === "done") {
      setStatus("Done.");
      return st.result;
    } else {
      throw new Error(st.error || "The attack failed.");
    }
    await sleep(150);
  }
}

async function submit(ev) {
  ev.preventDefault();
  setError("");
  const file = $("photo").files[0];
  if (!file) { setError("Choose a photo first."); return; }
  if (!$("target").value.trim()) { setError("Choose a target class, e.g. goldfish."); return; }
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("target", $("target").value);
  form.append("eps", $("eps").value);
  form.append("robust", $("robust").checked ? "true" : "false");
  $("go").disabled = true;
  show($("result"), false);
  show($("progress"), true);
  $("progress").value = 0;
  setStatus("Uploading…");
  try {
    const r = await fetch("/api/jobs", { method: "POST", body: form });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
    render(await follow(body.id));
  } catch (e) {
    setStatus("");
    setError(e.message);
  } finally {
    $("go").disabled = false;
    show($("progress"), false);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("fool-form").addEventListener("submit", submit);
  loadInfo().catch((e) => setError("Cannot reach the server: " + e.message));
});
