// One job, live: GET /jobs/{id} for the plan, outputs and usage; /jobs/{id}/events for the timeline;
// /jobs/{id}/approvals for tool calls waiting for a person.
"use strict";

const jobId = decodeURIComponent(location.pathname.split("/").pop());
const ENDED = new Set(["completed", "failed", "canceled", "cancelled"]);
const view = {
  job: null,
  approvals: [],
  steps: new Map(), // step id -> [{state, t, attempt, worker}]
  jobState: "",
  startedAt: null,
  lastId: null,
  ended: false,
};

function stateName(raw) {
  return String(raw || "").replace(/^TASK_STATE_/, "").toLowerCase().replace(/_/g, "-");
}

function onEvent(id, data) {
  view.lastId = id;
  const event = JSON.parse(data);
  const update = event.statusUpdate;
  if (!update) return; // artifacts: the output comes with the next GET /jobs/{id}
  const state = stateName(update.status && update.status.state);
  const t = Date.parse(update.status && update.status.timestamp) / 1000 || Date.now() / 1000;
  if (update.taskId === jobId) {
    view.jobState = state;
    if (state === "working" && view.startedAt === null) view.startedAt = t;
    if (ENDED.has(state)) view.ended = true;
  } else {
    const step = update.taskId.slice(jobId.length + 1);
    const meta = update.metadata || {};
    const events = view.steps.get(step) || [];
    events.push({ state, t, attempt: meta.attempt || null, worker: meta.worker || "" });
    view.steps.set(step, events);
    if (state === "input-required" || events.some((e) => e.state === "input-required")) refreshApprovals();
  }
  scheduleRefresh();
}

let refreshTimer = null;
function scheduleRefresh() {
  if (refreshTimer === null) refreshTimer = setTimeout(() => ((refreshTimer = null), refreshJob()), 150);
  render();
}

async function refreshJob() {
  const job = await crews.get("/jobs/" + jobId, start);
  if (job === null) return;
  view.job = job;
  render();
}

async function refreshApprovals() {
  const listed = await crews.get("/jobs/" + jobId + "/approvals", start);
  if (listed === null) return;
  view.approvals = listed.approvals;
  renderApprovals();
}

async function follow() {
  for (;;) {
    crews.live("live", "on");
    let status;
    try {
      status = await crews.stream("/jobs/" + jobId + "/events", view.lastId, onEvent);
    } catch (error) {
      status = 0;
    }
    if (status === 401) return crews.askForKey(start);
    if (view.ended || status === 204 || status === 404) break;
    crews.live("reconnecting…", "off");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await refreshJob();
  await refreshApprovals();
  crews.live("ended", "off");
}

// --- what each step went through --------------------------------------------------------------

function timing(stepId, now) {
  const events = (view.steps.get(stepId) || []).slice().sort((a, b) => a.t - b.t);
  const step = (view.job && view.job.steps.find((s) => s.id === stepId)) || { depends_on: [] };
  const jobStart = view.startedAt ?? (view.job && view.job.created_at) ?? now;
  const depEnds = step.depends_on.map((dep) => timing(dep, now).end).filter((t) => t !== null);
  const ready = depEnds.length ? Math.max(...depEnds) : jobStart;
  const working = events.find((e) => e.state === "working");
  const last = events.filter((e) => ENDED.has(e.state)).pop();
  const end = last ? last.t : null;
  const pauses = [];
  let pausedAt = null;
  for (const e of events) {
    if (e.state === "input-required" && pausedAt === null) pausedAt = e.t;
    else if (e.state !== "input-required" && pausedAt !== null) {
      pauses.push([pausedAt, e.t]);
      pausedAt = null;
    }
  }
  if (pausedAt !== null) pauses.push([pausedAt, end ?? now]);
  const paused = pauses.reduce((sum, [a, b]) => sum + (b - a), 0);
  const attempts = Math.max(1, ...events.map((e) => e.attempt || 1));
  const worker = (events.filter((e) => e.worker).pop() || {}).worker || (step.worker ?? "");
  const startRun = working ? working.t : null;
  return {
    ready,
    start: startRun,
    end,
    pauses,
    waited: startRun !== null ? Math.max(0, startRun - ready) : null,
    ran: startRun !== null ? Math.max(0, (end ?? now) - startRun - paused) : null,
    paused,
    retried: attempts - 1,
    worker,
    state: last ? last.state : events.length ? events[events.length - 1].state : step.state || "pending",
  };
}

// --- drawing ----------------------------------------------------------------------------------

function render() {
  const job = view.job;
  if (!job) return;
  const now = view.ended && job.finished_at ? job.finished_at : Date.now() / 1000;
  document.getElementById("job-id").textContent = job.id;
  const status = document.getElementById("status");
  status.textContent = job.status;
  status.className = "state " + job.status;
  document.getElementById("crew").textContent = job.crew;
  document.getElementById("duration").textContent = crews.duration(job);
  document.getElementById("tokens").textContent = job.tokens;
  document.getElementById("cost").textContent = crews.usd(job.cost_usd);
  document.getElementById("reason").textContent = job.reason ? "— " + job.reason : "";
  renderTimeline(job, now);
  renderUsage(job);
  renderSteps(job, now);
  renderDecisions(job);
  document.getElementById("output-box").hidden = !job.output;
  document.getElementById("output").textContent = job.output || "";
}

function renderTimeline(job, now) {
  const t0 = view.startedAt ?? job.created_at;
  const times = job.steps.map((s) => timing(s.id, now));
  const t1 = Math.max(now, ...times.map((t) => t.end || 0), t0 + 1);
  const pct = (t) => ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * 100 + "%";
  const width = (a, b) => ((Math.max(b, a) - a) / (t1 - t0)) * 100 + "%";
  const lanes = new Map();
  job.steps.forEach((step, i) => {
    const lane = step.role || "unassigned";
    if (!lanes.has(lane)) lanes.set(lane, []);
    lanes.get(lane).push([step, times[i]]);
  });
  const rows = [...lanes].map(([role, steps]) =>
    crews.el(
      "div",
      { class: "lane", "data-lane": role },
      crews.el("div", { class: "lane-name" }, role),
      crews.el(
        "div",
        { class: "track" },
        ...steps.map(([step, t]) => {
          const segs = [];
          if (t.start !== null) {
            segs.push(crews.el("span", { class: "seg waited", style: `left:${pct(t.ready)};width:${width(t.ready, t.start)}` }));
            const runEnd = t.end ?? now;
            const cls = t.state === "failed" ? "failed" : "ran";
            segs.push(crews.el("span", { class: "seg " + cls, style: `left:${pct(t.start)};width:${width(t.start, runEnd)}` }));
            for (const [a, b] of t.pauses)
              segs.push(crews.el("span", { class: "seg paused", style: `left:${pct(a)};width:${width(a, b)}` }));
          }
          const label = crews.el("span", { class: "seg-label", style: `left:${pct(t.start ?? t.ready)}` }, step.id);
          return crews.el("div", { class: "bar " + t.state, "data-step": step.id, title: describe(t) }, ...segs, label);
        }),
      ),
    ),
  );
  document.getElementById("timeline").replaceChildren(...rows);
}

function describe(t) {
  const parts = [];
  if (t.waited !== null) parts.push("waited " + crews.seconds(t.waited));
  if (t.ran !== null) parts.push("ran " + crews.seconds(t.ran));
  if (t.paused > 0) parts.push("paused for approval " + crews.seconds(t.paused));
  if (t.retried > 0) parts.push("retried " + t.retried + "×");
  if (t.worker) parts.push("worker " + t.worker);
  return parts.join(" · ");
}

function renderUsage(job) {
  const roles = Object.entries(job.usage).sort();
  const total = roles.reduce((sum, [, u]) => sum + u.cost_usd, 0);
  document.getElementById("usage").replaceChildren(
    ...roles.map(([role, u]) =>
      crews.el(
        "tr",
        { "data-role": role },
        crews.el("td", {}, role),
        crews.el("td", { class: "num" }, u.calls),
        crews.el("td", { class: "num", "data-testid": "input-tokens" }, u.input_tokens),
        crews.el("td", { class: "num", "data-testid": "output-tokens" }, u.output_tokens),
        crews.el("td", { class: "num", "data-testid": "cost" }, crews.usd(u.cost_usd)),
      ),
    ),
    crews.el("tr", { class: "total" }, crews.el("td", {}, "total"), crews.el("td"), crews.el("td"),
      crews.el("td", { class: "num" }, job.tokens + " tokens"), crews.el("td", { class: "num" }, crews.usd(total))),
  );
}

function renderSteps(job, now) {
  document.getElementById("steps").replaceChildren(
    ...job.steps.map((step) => {
      const t = timing(step.id, now);
      const state = ENDED.has(step.state) || step.state === "input-required" ? step.state : t.state;
      return crews.el(
        "article",
        { class: "step", "data-step": step.id },
        crews.el(
          "h3",
          {},
          step.id, " ",
          crews.el("small", { class: "muted" }, step.role || "unassigned"), " ",
          crews.el("span", { class: "state " + state, "data-testid": "state" }, state),
        ),
        crews.el("p", { class: "timing", "data-testid": "timing" }, describe(t)),
        crews.el(
          "p",
          { class: "muted" },
          crews.el("span", { "data-testid": "tokens" }, step.tokens), " tokens · ",
          crews.el("span", { "data-testid": "cost" }, crews.usd(step.cost_usd)),
        ),
        step.output !== null ? crews.el("pre", { "data-testid": "output" }, step.output) : null,
        (step.evals || []).length
          ? crews.el(
              "ul",
              { class: "evals", "data-testid": "evals" },
              ...step.evals.map((e) =>
                crews.el(
                  "li",
                  { class: e.passed ? "ok" : "failed", title: e.detail },
                  `${e.name}: ${e.score.toFixed(2)} ${e.passed ? "passed" : "failed"}`,
                ),
              ),
            )
          : null,
      );
    }),
  );
}

// A hierarchical manager's decision on each result (GET /jobs/{id} "decisions"; also job.decision events).
function renderDecisions(job) {
  const decisions = job.decisions || [];
  document.getElementById("decisions-box").hidden = decisions.length === 0;
  document.getElementById("decisions").replaceChildren(
    ...decisions.map((d) =>
      crews.el(
        "li",
        { class: "decision " + d.decision, "data-review": d.review },
        crews.el("b", {}, d.decision), " ", crews.el("code", {}, d.step),
        d.new_step ? [" → ", crews.el("code", {}, d.new_step)] : null,
        " (", d.member, ")",
        d.feedback ? crews.el("p", { class: "muted" }, d.feedback) : null,
      ),
    ),
  );
}

function renderApprovals() {
  const pending = view.approvals.filter((a) => a.status === "pending");
  document.getElementById("approvals-box").hidden = view.approvals.length === 0;
  document.getElementById("approvals").replaceChildren(
    ...view.approvals.map((a) => {
      const comment = crews.el("input", { type: "text", placeholder: "comment (sent with a denial)", "data-testid": "comment" });
      const decide = (approve) => async () => {
        try {
          await crews.post("/jobs/" + jobId + "/approvals/" + encodeURIComponent(a.id), { approve, comment: comment.value });
        } catch (error) {
          alert(error.message);
        }
        refreshApprovals();
      };
      return crews.el(
        "div",
        { class: "approval " + a.status, "data-approval": a.id },
        crews.el("p", {}, crews.el("b", {}, a.tool), " for step ", crews.el("code", {}, a.step), " (", a.role, ") — ",
          crews.el("span", { "data-testid": "approval-status" }, a.status)),
        crews.el("pre", {}, JSON.stringify(a.arguments, null, 2)),
        a.status === "pending"
          ? crews.el("div", { class: "actions" }, comment,
              crews.el("button", { class: "approve", onclick: decide(true), "data-testid": "approve" }, "Approve"),
              crews.el("button", { class: "deny", onclick: decide(false), "data-testid": "deny" }, "Deny"))
          : a.comment ? crews.el("p", { class: "muted" }, a.comment) : null,
      );
    }),
  );
  document.getElementById("approvals-box").dataset.pending = String(pending.length);
}

async function start() {
  await refreshJob();
  if (view.job === null) return;
  await refreshApprovals();
  follow();
}

start();
setInterval(() => view.job && !view.ended && render(), 1000); // running bars grow
