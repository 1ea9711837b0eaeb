// The review page: sign in with an API key, walk the answers awaiting review, give feedback.
// Text from answers and sources is only ever set as textContent (never parsed as HTML).
"use strict";

const state = { key: sessionStorage.getItem("llmops-key") || "", items: [], index: -1, thumb: "", rating: 0, idem: "" };
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const resp = await fetch(path, {
    ...options,
    headers: { "authorization": `Bearer ${state.key}`, "content-type": "application/json" },
  });
  const body = await resp.json().catch(() => ({ error: resp.statusText }));
  if (!resp.ok) {
    const err = new Error(body.error?.message || resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function status(text) { $("status").textContent = text; }

async function signIn(key) {
  state.key = key;
  try {
    const me = await api("/api/me");
    sessionStorage.setItem("llmops-key", key);
    $("who").textContent = `Signed in as ${me.name} (${me.role})`;
    $("signin").hidden = true;
    $("review").hidden = false;
    $("sign-out").hidden = false;
    $("signin-error").textContent = "";
    await load();
  } catch (err) {
    state.key = "";
    sessionStorage.removeItem("llmops-key");
    $("signin-error").textContent = err.status === 401 ? "That key is not known." :
      err.status === 403 ? "That key may not review (it needs the reviewer role)." : `Sign-in failed: ${err.message}`;
  }
}

function signOut() {
  sessionStorage.removeItem("llmops-key");
  state.key = "";
  location.reload();
}

async function load() {
  const pipeline = new URLSearchParams(location.search).get("pipeline") || "";  // e.g. /?pipeline=docs-qa
  const data = await api(`/api/queue?limit=100&pipeline=${encodeURIComponent(pipeline)}`);
  state.items = data.inferences;
  const list = $("queue");
  list.replaceChildren();
  state.items.forEach((item, i) => {
    const li = document.createElement("li");
    li.dataset.requestId = item.request_id;
    li.textContent = item.question.slice(0, 120);
    li.addEventListener("click", () => show(i));
    list.appendChild(li);
  });
  $("count").textContent = `(${state.items.length})`;
  $("empty").hidden = state.items.length > 0;
  $("item").hidden = state.items.length === 0;
  if (state.items.length) show(0);
}

function show(i) {
  if (i < 0 || i >= state.items.length) return;
  state.index = i;
  const item = state.items[i];
  document.querySelectorAll("#queue li").forEach((li, j) => li.setAttribute("aria-current", String(j === i)));
  $("question").textContent = item.question;
  $("answer").textContent = item.answer;
  $("versions").textContent = `${item.pipeline_version} · ${item.model_version}`;
  $("request-id").textContent = item.request_id;
  const sources = $("sources");
  sources.replaceChildren();
  for (const s of item.sources) {
    const li = document.createElement("li");
    const head = document.createElement("strong");
    head.textContent = `${s.document_id} (score ${s.score})`;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = s.text;
    li.append(head, text);
    sources.appendChild(li);
  }
  state.thumb = ""; state.rating = 0;
  state.idem = `${item.request_id}:${crypto.randomUUID()}`;  // one submission per visit, however many clicks
  $("corrected").value = ""; $("comment").value = "";
  render();
}

function render() {
  $("thumb-up").setAttribute("aria-pressed", String(state.thumb === "up"));
  $("thumb-down").setAttribute("aria-pressed", String(state.thumb === "down"));
  document.querySelectorAll(".rating button").forEach((b) =>
    b.setAttribute("aria-pressed", String(Number(b.dataset.rating) === state.rating)));
}

async function submit() {
  const item = state.items[state.index];
  if (!item) return;
  const body = {
    request_id: item.request_id, thumb: state.thumb, rating: state.rating,
    corrected_answer: $("corrected").value, comment: $("comment").value, idempotency_key: state.idem,
  };
  try {
    const out = await api("/api/feedback", { method: "POST", body: JSON.stringify(body) });
    status(`Saved ${out.name} for ${out.request_id}`);
    document.querySelectorAll("#queue li")[state.index].classList.add("done");
    if (typing(document.activeElement)) document.activeElement.blur();  // shortcuts work on the next one
    show(state.index + 1);
  } catch (err) {
    status(`Not saved: ${err.message}`);
  }
}

function typing(target) { return target.tagName === "TEXTAREA" || target.tagName === "INPUT"; }

document.addEventListener("keydown", (e) => {
  if ($("review").hidden) return;
  if (e.key === "Enter" && e.ctrlKey) { e.preventDefault(); submit(); return; }
  if (typing(e.target)) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  const actions = {
    j: () => show(state.index + 1), k: () => show(state.index - 1),
    u: () => { state.thumb = state.thumb === "up" ? "" : "up"; render(); },
    d: () => { state.thumb = state.thumb === "down" ? "" : "down"; render(); },
    e: () => $("corrected").focus(), c: () => $("comment").focus(), r: () => load(),
    Enter: () => submit(),
  };
  if (/^[1-5]$/.test(e.key)) { state.rating = state.rating === Number(e.key) ? 0 : Number(e.key); render(); }
  else if (actions[e.key]) actions[e.key]();
  else return;
  e.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("api-key").value.trim()); });
  $("sign-out").addEventListener("click", signOut);
  $("reload").addEventListener("click", load);
  $("thumb-up").addEventListener("click", () => { state.thumb = state.thumb === "up" ? "" : "up"; render(); });
  $("thumb-down").addEventListener("click", () => { state.thumb = state.thumb === "down" ? "" : "down"; render(); });
  document.querySelectorAll(".rating button").forEach((b) => b.addEventListener("click", () => {
    const r = Number(b.dataset.rating);
    state.rating = state.rating === r ? 0 : r;
    render();
  }));
  $("copy-answer").addEventListener("click", () => { $("corrected").value = state.items[state.index]?.answer || ""; });
  $("feedback-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  if (state.key) signIn(state.key);
});
