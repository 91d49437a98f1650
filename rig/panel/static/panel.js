// The operator panel: renders the state the rig sends (server-sent events) and posts answers back.
// Plain DOM calls and textContent only: nothing from the rig is ever parsed as HTML.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function hms(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  const pad = (n) => String(n).padStart(2, "0");
  return `${Math.floor(s / 3600)}:${pad(Math.floor(s % 3600 / 60))}:${pad(s % 60)}`;
}

function num(value) {
  return value === null || value === undefined ? "–" : String(Number(value.toPrecision(6)));
}

const drafts = {};  // prompt id -> what was typed, kept across re-renders

async function answer(prompt, text, box) {
  const error = box.querySelector(".error");
  error.textContent = "";
  let reply;
  try {
    reply = await fetch("/answer", {method: "POST", headers: {"Content-Type": "application/json"},
                                    body: JSON.stringify({prompt: prompt.id, text: text})});
  } catch (exc) {
    error.textContent = "the rig is not reachable: answer on its terminal";
    return;
  }
  if (!reply.ok) error.textContent = (await reply.json()).error;
}

function renderPrompt(prompt) {
  const where = prompt.position ? `${prompt.position}` + (prompt.address ? ` (meter ${prompt.address})` : "") : "bench";
  const box = el("div", {"class": "prompt", "data-prompt": prompt.id, "data-position": prompt.position || "",
                         "data-topic": prompt.topic},
                 el("div", {"class": "where"}, where), el("div", {"class": "text"}, prompt.text),
                 el("div", {"class": "hint"}, `answer ${prompt.hint}`));
  const actions = el("div", {"class": "actions"});
  if (prompt.kind === "confirm") {
    const yes = el("button", {"class": "yes", "type": "button"}, "Yes");
    const no = el("button", {"class": "no", "type": "button"}, "No");
    yes.addEventListener("click", () => answer(prompt, "yes", box));
    no.addEventListener("click", () => answer(prompt, "no", box));
    actions.append(yes, no);
  } else {
    const input = el("input", {"type": prompt.kind === "number" ? "text" : "text", "inputmode":
                               prompt.kind === "number" ? "decimal" : "text", "placeholder": prompt.unit || ""});
    input.value = drafts[prompt.id] || "";
    input.addEventListener("input", () => { drafts[prompt.id] = input.value; });
    const send = el("button", {"class": "send", "type": "button"}, "Answer");
    send.addEventListener("click", () => answer(prompt, input.value, box));
    input.addEventListener("keydown", (event) => { if (event.key === "Enter") answer(prompt, input.value, box); });
    actions.append(input, send);
  }
  box.append(actions, el("div", {"class": "error"}));
  return box;
}

let shownPrompts = "";

function render(state) {
  document.getElementById("title").textContent = state.title;
  document.getElementById("run").textContent =
    `run ${state.run_id}` + (state.live ? "" : " (following the journal)");
  document.getElementById("bench").textContent = hms(state.bench_s);
  document.getElementById("steps").textContent = `${state.done} / ${state.total || "?"}`;
  document.getElementById("eta").textContent = state.verdict ? "done" : hms(state.eta_wall_s);
  const verdict = document.getElementById("verdict");
  verdict.hidden = !state.verdict;
  verdict.textContent = state.verdict ? `run ended: ${state.verdict}` : "";
  verdict.className = state.verdict === "pass" ? "pass" : state.verdict === "fail" ? "fail" : "other";
  const notice = document.getElementById("notice");
  notice.hidden = !state.notice;
  notice.textContent = state.notice || "";

  const positions = document.getElementById("positions");
  positions.replaceChildren(...state.positions.map((p) =>
    el("div", {"class": "position", "data-position": p.name},
       el("div", {}, el("span", {"class": `lamp ${p.lamp}`, "data-lamp": p.lamp, "title": p.lamp}),
          el("span", {"class": "name"}, p.name)),
       el("div", {"class": "address"}, `meter ${p.address}`),
       el("div", {"class": "pstep"}, p.step || (p.lamp === "idle" ? "waiting" : "")))));
  document.getElementById("step").textContent = state.step ? `bench step: ${state.step}` : "";

  // Prompts are rebuilt only when the set changes, so a half-typed number survives other updates.
  const key = state.prompts.map((p) => p.id).join(",");
  if (key !== shownPrompts) {
    shownPrompts = key;
    const prompts = document.getElementById("prompts");
    prompts.replaceChildren(...(state.prompts.length ? state.prompts.map(renderPrompt)
                                                      : [el("p", {"class": "none"}, "none waiting")]));
  }

  const body = document.querySelector("#records tbody");
  body.replaceChildren(...state.records.map((r) =>
    el("tr", {"class": `record verdict-${r.verdict}`},
       el("td", {}, r.position || "bench"), el("td", {}, r.test), el("td", {}, r.by ? `${r.quantity}: answered by ${r.by}` : r.quantity),
       el("td", {}, `${num(r.value)} ${r.unit}`),
       el("td", {}, r.verdict === "info" ? "" : `${num(r.low)} .. ${num(r.high)}`),
       el("td", {"class": `verdict-${r.verdict}`}, r.verdict))));
}

let ended = false;  // the last state received said the run ended

function connect() {
  const events = new EventSource("/events");
  const link = document.getElementById("link");
  events.addEventListener("state", (event) => {
    link.hidden = true;
    const state = JSON.parse(event.data);
    ended = Boolean(state.verdict) && state.live;
    render(state);
  });
  events.onerror = () => {
    link.textContent = ended ? "the run has ended and its panel with it: this is how it ended"
                             : "panel server not reachable: showing the last state received";
    link.hidden = false;
  };
}

connect();
