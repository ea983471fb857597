// The csm-batch page: plain JavaScript over the /v1 API. The API key lives in sessionStorage
// only (this tab), and every request sends it as a bearer header. Audio elements get short-lived
// URLs from the .../audio-url routes, since an <audio> element cannot send that header.
"use strict";

const KEY_STORAGE = "csm-batch.api-key";
const POLL_MS = 600;
const TERMINAL_JOB = new Set(["succeeded", "partially_succeeded", "failed", "canceled"]);

const $ = (selector, root = document) => root.querySelector(selector);

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    const problems = error.problems || [];
    // Every bad field of a request, one a line (a CSV's problems name their line: see showProblems).
    const fields = problems.filter((problem) => problem.line === undefined);
    const field = error.field ? ` (${error.field})` : "";
    super(fields.length
      ? fields.map((problem) => `${problem.field}: ${problem.message}`).join("\n")
      : `${error.message || `HTTP ${status}`}${field}`);
    this.status = status;
    this.code = error.code;
    this.problems = problems;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

async function api(path, { method = "GET", body, contentType } = {}) {
  const headers = { Authorization: `Bearer ${apiKey()}` };
  if (contentType) headers["Content-Type"] = contentType;
  const response = await fetch(path, { method, headers, body });
  const isJson = (response.headers.get("Content-Type") || "").includes("json");
  const data = isJson ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const postJson = (path, value) => api(path, { method: "POST", body: JSON.stringify(value), contentType: "application/json" });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function say(element, message, kind = "") {
  element.textContent = message;
  element.className = `status ${kind}`;
}

// Runs an async action from a click, reporting a failure in `status` (the recent list's by default).
function guarded(action, status = () => $("#recent-status")) {
  return () => action().catch((error) => say(status(), error.message, "error"));
}

function badge(status) {
  const span = document.createElement("span");
  span.className = `badge ${status}`;
  span.textContent = status.replace("_", " ");
  return span;
}

function button(label, onClick, className = "secondary small") {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}

function cell(row, content, className) {
  const td = row.insertCell();
  if (className) td.className = className;
  if (content instanceof Node) td.append(content);
  else td.textContent = content ?? "";
  return td;
}

function seconds(ms) {
  return ms == null ? "" : `${(ms / 1000).toFixed(1)} s`;
}

function duration(totalSeconds) {
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function localTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// Downloads that need the bearer header (manifest, zip): fetched, then saved from a blob.
async function saveAuthorized(path, filename) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${apiKey()}` } });
  if (!response.ok) {
    const isJson = (response.headers.get("Content-Type") || "").includes("json");
    throw new ApiError(response.status, isJson ? await response.json() : null);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function playableUrl(path) {
  return (await api(path)).url;
}

// Resolves when the element knows its duration (or rejects when the media cannot load).
function loadAudio(audio, url) {
  return new Promise((resolve, reject) => {
    const done = () => { cleanup(); resolve(audio.duration); };
    const failed = () => { cleanup(); reject(new Error("the audio could not be loaded")); };
    const cleanup = () => {
      audio.removeEventListener("loadedmetadata", done);
      audio.removeEventListener("error", failed);
    };
    audio.addEventListener("loadedmetadata", done);
    audio.addEventListener("error", failed);
    audio.hidden = false;
    audio.src = url;
    audio.load();
  });
}

function tryPlay(audio) {
  // Browsers may refuse to start audio on their own; the controls stay there either way.
  audio.play().catch(() => {});
}

async function waitForJob(id, onUpdate) {
  for (;;) {
    const job = await api(`/v1/jobs/${id}`);
    await onUpdate(job);
    if (TERMINAL_JOB.has(job.status)) return job;
    await sleep(POLL_MS);
  }
}

function jobOutcome(job) {
  if (job.error) return `${job.status}: ${job.error.message}`;
  return job.status;
}

// --- the key -------------------------------------------------------------------------------

function showKeyState() {
  const status = $("#key-status");
  status.textContent = apiKey() ? "key set for this tab" : "kept in this tab only (sessionStorage)";
}

function setUpKey() {
  $("#api-key").value = apiKey();
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, $("#api-key").value.trim());
    showKeyState();
    refreshAll();
  });
  $("#forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    $("#api-key").value = "";
    showKeyState();
  });
  showKeyState();
}

// --- voices --------------------------------------------------------------------------------

let voiceNames = [];

function fillVoiceSelect(select) {
  const chosen = select.value;
  select.replaceChildren(new Option("(none)", ""));
  for (const name of voiceNames) select.add(new Option(name, name));
  select.value = voiceNames.includes(chosen) ? chosen : "";
}

async function refreshVoices() {
  const list = $("#voice-list");
  const { voices } = await api("/v1/voices");
  voiceNames = voices.map((voice) => voice.name);
  document.querySelectorAll(".voice-select").forEach(fillVoiceSelect);
  list.replaceChildren();
  for (const voice of voices) {
    const item = document.createElement("li");
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: voice.name });
    const info = Object.assign(document.createElement("span"), {
      className: "muted",
      textContent: `${seconds(voice.duration_ms)} · “${voice.transcript}”`,
    });
    item.append(name, info, button("Delete", guarded(() => deleteVoice(voice.name), () => $("#voice-status"))));
    list.append(item);
  }
  if (!voices.length) list.append(Object.assign(document.createElement("li"), { className: "muted", textContent: "No voices yet." }));
}

async function deleteVoice(name) {
  await api(`/v1/voices/${encodeURIComponent(name)}`, { method: "DELETE" });
  say($("#voice-status"), `Deleted ${name}.`, "ok");
  await refreshVoices();
}

async function uploadVoice(form) {
  const status = $("#voice-status");
  const body = new FormData();
  body.append("name", $("#voice-name").value.trim());
  body.append("transcript", $("#voice-transcript").value.trim());
  body.append("audio", $("#voice-audio").files[0]);
  say(status, "Uploading…");
  const voice = await api("/v1/voices", { method: "POST", body });
  say(status, `Voice ${voice.name} stored (${seconds(voice.duration_ms)}).`, "ok");
  form.reset();
  await refreshVoices();
}

function setUpVoices() {
  $("#voice-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(() => uploadVoice(event.target), () => $("#voice-status"))();
  });
}

// --- a text --------------------------------------------------------------------------------

function setUpText() {
  $("#text-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#text-status");
    const audio = $("#text-audio");
    const body = { text: $("#text-input").value, speaker: Number($("#text-speaker").value || 0) };
    if ($("#text-voice").value) body.voice = $("#text-voice").value;
    if ($("#text-max-ms").value) body.max_audio_length_ms = Number($("#text-max-ms").value);
    audio.hidden = true;
    audio.removeAttribute("src");
    say(status, "Submitting…");
    try {
      const submitted = await postJson("/v1/jobs", body);
      const job = await waitForJob(submitted.id, (current) => say(status, `Job ${current.id.slice(0, 8)}: ${current.status}…`));
      refreshRecent();
      if (!job.result) {
        say(status, jobOutcome(job), "error");
        return;
      }
      await loadAudio(audio, await playableUrl(`/v1/jobs/${job.id}/audio-url`));
      say(status, `Done: ${seconds(job.result.duration_ms)} of audio.`, "ok");
    } catch (error) {
      say(status, error.message, "error");
    }
  });
}

// --- a script ------------------------------------------------------------------------------

function addScriptRow(speaker = 0, text = "") {
  const row = $("#script-row").content.firstElementChild.cloneNode(true);
  $(".line-speaker", row).value = speaker;
  $(".line-text", row).value = text;
  fillVoiceSelect($(".line-voice", row));
  $(".remove-line", row).addEventListener("click", () => {
    if ($("#script-rows").children.length > 1) row.remove();
  });
  $("#script-rows").append(row);
}

function scriptBody() {
  const script = [];
  for (const row of $("#script-rows").children) {
    const line = {
      speaker: Number($(".line-speaker", row).value || 0),
      text: $(".line-text", row).value,
      pause_ms: Number($(".line-pause", row).value || 0),
    };
    if ($(".line-voice", row).value) line.voice = $(".line-voice", row).value;
    script.push(line);
  }
  const body = { script };
  if ($("#script-max-ms").value) body.max_audio_length_ms = Number($("#script-max-ms").value);
  return body;
}

// Plays finished lines one after another, in order, while the box is ticked.
class LinePlayer {
  constructor() {
    this.queue = [];
    this.playing = false;
  }

  add(audio) {
    audio.addEventListener("ended", () => { this.playing = false; this.next(); });
    this.queue.push(audio);
    this.next();
  }

  next() {
    if (this.playing || !$("#autoplay-lines").checked) return;
    const audio = this.queue.shift();
    if (!audio) return;
    this.playing = true;
    audio.play().catch(() => { this.playing = false; });
  }
}

function setUpScript() {
  addScriptRow(0, "Hey, did the render finish?");
  addScriptRow(1, "It did. Every line, and the master too.");
  $("#add-line").addEventListener("click", () => addScriptRow());
  $("#script-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#script-status");
    const lines = $("#script-lines");
    const texts = scriptBody().script.map((line) => line.text);
    lines.replaceChildren();
    $("#script-master").hidden = true;
    say(status, "Submitting…");
    const player = new LinePlayer();
    const shown = new Set();
    const showLines = async (job) => {
      // Lines finish in order: each of the first lines_done has its audio, or failed.
      for (let index = 0; index < job.lines_done; index++) {
        if (shown.has(index)) continue;
        shown.add(index);
        const item = document.createElement("li");
        item.append(Object.assign(document.createElement("div"), { className: "line-text", textContent: texts[index] }));
        lines.append(item);
        try {
          const audio = Object.assign(document.createElement("audio"), { controls: true, preload: "auto" });
          item.append(audio);
          await loadAudio(audio, await playableUrl(`/v1/jobs/${job.id}/lines/${index}/audio-url`));
          player.add(audio);
        } catch (error) {
          item.append(Object.assign(document.createElement("div"), { className: "status error", textContent: error.message }));
        }
      }
    };
    try {
      const submitted = await postJson("/v1/jobs", scriptBody());
      const job = await waitForJob(submitted.id, async (current) => {
        say(status, `Job ${current.id.slice(0, 8)}: ${current.status}, line ${current.lines_done} of ${current.lines_total}…`);
        await showLines(current);
      });
      refreshRecent();
      if (!job.result) {
        say(status, jobOutcome(job), "error");
        return;
      }
      $("#script-master").hidden = false;
      await loadAudio($("#script-master-audio"), await playableUrl(`/v1/jobs/${job.id}/audio-url`));
      say(status, `${jobOutcome(job)}: ${seconds(job.result.duration_ms)} in the master.`, job.error ? "error" : "ok");
    } catch (error) {
      say(status, error.message, "error");
    }
  });
}

// --- a CSV batch ---------------------------------------------------------------------------

function showProblems(problems) {
  const table = $("#batch-problems");
  const body = $("tbody", table);
  body.replaceChildren();
  for (const problem of problems) {
    const row = body.insertRow();
    cell(row, String(problem.line));
    cell(row, problem.field || "");
    cell(row, problem.message);
  }
  table.hidden = problems.length === 0;
}

// Multipart, so that the batch keeps the file's name.
function csvForm(file) {
  const form = new FormData();
  form.append("file", file);
  return form;
}

async function checkCsv(file) {
  const status = $("#batch-status");
  showProblems([]);
  say(status, `Checking ${file.name}…`);
  try {
    const summary = await api("/v1/batches?validate_only=true", { method: "POST", body: csvForm(file) });
    say(status, `${file.name} is valid: ${summary.rows} rows, ${summary.jobs} jobs (${summary.scripts} scripts).`, "ok");
    return true;
  } catch (error) {
    say(status, error.message, "error");
    showProblems(error.problems);
    return false;
  }
}

const saveManifest = (id) => saveAuthorized(`/v1/batches/${id}/manifest?format=csv`, `batch-${id}-manifest.csv`);
const saveArchive = (id) => saveAuthorized(`/v1/batches/${id}/archive`, `batch-${id}.zip`);

let followed = null; // the batch the progress box shows: a fresh token per follow, with its id

async function followBatch(batch) {
  const token = { id: batch.id };
  followed = token;
  const box = $("#batch-progress-box");
  const seen = { at: Date.now(), done: batch.jobs_done };
  box.hidden = false;
  $("#batch-manifest").onclick = guarded(() => saveManifest(batch.id), () => $("#batch-status"));
  $("#batch-archive").onclick = guarded(() => saveArchive(batch.id), () => $("#batch-status"));
  for (;;) {
    if (followed !== token) return; // another batch is shown now
    const percent = Math.floor(batch.progress * 100);
    $("#batch-progress").value = percent;
    $("#batch-percent").textContent = `${percent}% (${batch.jobs_done} of ${batch.jobs_total} jobs)`;
    const counts = Object.entries(batch.counts).map(([status, count]) => `${status.replace("_", " ")}: ${count}`);
    $("#batch-counts").textContent = counts.join(" · ");
    const rate = (batch.jobs_done - seen.done) / ((Date.now() - seen.at) / 1000);
    if (batch.status !== "running") {
      $("#batch-eta").textContent = `${batch.status.replace("_", " ")}`;
      say($("#batch-status"), `Batch ${batch.id.slice(0, 8)} ${batch.status.replace("_", " ")}.`, batch.status === "succeeded" ? "ok" : "error");
      refreshRecent();
      return;
    }
    $("#batch-eta").textContent = rate > 0 ? `about ${duration((batch.jobs_total - batch.jobs_done) / rate)} left` : "estimating…";
    await sleep(POLL_MS * 2);
    if (followed !== token) return; // shown no more (maybe deleted): do not poll it
    batch = await api(`/v1/batches/${batch.id}`);
  }
}

// Hides the progress box when it shows this deleted batch: its numbers are gone, its buttons would fail.
function unfollow(batchId) {
  if (followed?.id !== batchId) return;
  followed = null; // stops its follow loop
  $("#batch-progress-box").hidden = true;
}

function setUpBatch() {
  $("#batch-check").addEventListener("click", () => {
    const file = $("#batch-file").files[0];
    if (file) checkCsv(file);
  });
  $("#batch-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("#batch-file").files[0];
    if (!file || !(await checkCsv(file))) return;
    try {
      const batch = await api("/v1/batches", { method: "POST", body: csvForm(file) });
      say($("#batch-status"), `Batch ${batch.id.slice(0, 8)} started: ${batch.jobs_total} jobs.`, "ok");
      refreshRecent();
      await followBatch(batch);
    } catch (error) {
      say($("#batch-status"), error.message, "error");
    }
  });
}

// --- recent jobs and batches ----------------------------------------------------------------

let played = null; // the job whose audio the player holds

async function play(job) {
  const player = $("#player");
  const url = await playableUrl(`/v1/jobs/${job.id}/audio-url`);
  played = job;
  await loadAudio(player, url);
  tryPlay(player);
}

// Empties the player when it holds audio of what was deleted (the job, or its batch): its URL now answers 404.
function unplay(deleted) {
  if (!played || !deleted(played)) return;
  played = null;
  const player = $("#player");
  player.hidden = true;
  player.removeAttribute("src");
  player.load(); // stops what was playing
}

async function download(path) {
  const link = Object.assign(document.createElement("a"), { href: await playableUrl(path), download: "" });
  document.body.append(link);
  link.click();
  link.remove();
}

// Deletes `path`; true when it was already gone (another tab or the CLI deleted it first).
async function deleteOnce(path) {
  try {
    await api(path, { method: "DELETE" });
    return false;
  } catch (error) {
    if (error.status === 404) return true;
    throw error;
  }
}

// Deletes a finished job or batch once the user confirms, then lets `forget` drop what the page
// still shows of it. A refusal (409: running, or a batch's job; 503: the store is down) throws
// before the row is touched, so guarded() shows the API's message.
async function deleteRecent(row, what, path, forget) {
  if (!confirm(`Delete ${what} and its audio? This cannot be undone.`)) return;
  const already = await deleteOnce(path);
  forget();
  row.remove();
  say($("#recent-status"), already ? `Nothing to do: ${what} was already deleted.` : `Deleted ${what}.`, "ok");
  await loadRecent(); // a batch's jobs went with it, and older rows move up
}

function refreshRecent() {
  return guarded(loadRecent)();
}

async function loadRecent() {
  if (!apiKey()) return;
  const [{ jobs }, { batches }] = await Promise.all([api("/v1/jobs?limit=15"), api("/v1/batches?limit=10")]);
  const jobRows = $("#recent-jobs");
  jobRows.replaceChildren();
  for (const job of jobs) {
    const row = jobRows.insertRow();
    cell(row, localTime(job.created_at));
    cell(row, job.batch_id ? `${job.type} (batch)` : job.type);
    cell(row, badge(job.status));
    cell(row, job.result ? seconds(job.result.duration_ms) : "");
    cell(row, job.id.slice(0, 8), "id");
    const actions = cell(row, "");
    if (job.result) {
      actions.append(
        button("Play", guarded(() => play(job))),
        button("Download", guarded(() => download(`/v1/jobs/${job.id}/audio-url`))),
      );
    }
    if (TERMINAL_JOB.has(job.status)) {
      const what = `job ${job.id.slice(0, 8)}`;
      actions.append(button("Delete", guarded(() => deleteRecent(row, what, `/v1/jobs/${job.id}`, () => unplay((held) => held.id === job.id)))));
    }
  }
  const batchRows = $("#recent-batches");
  batchRows.replaceChildren();
  for (const batch of batches) {
    const row = batchRows.insertRow();
    cell(row, localTime(batch.created_at));
    cell(row, batch.filename || "(CSV body)");
    cell(row, badge(batch.status));
    cell(row, `${Math.floor(batch.progress * 100)}% of ${batch.jobs_total}`);
    const actions = cell(row, "");
    actions.append(
      button("Follow", guarded(() => followBatch(batch), () => $("#batch-status"))),
      button("Manifest", guarded(() => saveManifest(batch.id))),
      button("Zip", guarded(() => saveArchive(batch.id))),
    );
    if (batch.status !== "running") {
      const what = `batch ${batch.filename || batch.id.slice(0, 8)} (${batch.jobs_total} job(s))`;
      const forget = () => {
        unfollow(batch.id);
        unplay((held) => held.batch_id === batch.id); // a batch's jobs go with it
      };
      actions.append(button("Delete", guarded(() => deleteRecent(row, what, `/v1/batches/${batch.id}`, forget))));
    }
  }
}

function refreshAll() {
  if (!apiKey()) return;
  guarded(refreshVoices, () => $("#voice-status"))();
  refreshRecent();
}

document.addEventListener("DOMContentLoaded", () => {
  setUpKey();
  setUpText();
  setUpScript();
  setUpVoices();
  setUpBatch();
  $("#refresh-recent").addEventListener("click", refreshRecent);
  refreshAll();
});
