// The jobs page: GET /jobs, redrawn every 2 s while open.
"use strict";

async function refreshJobs() {
  let listed;
  try {
    listed = await crews.get("/jobs?limit=100", refreshJobs);
  } catch (error) {
    crews.live("API unreachable: " + error.message, "off");
    return;
  }
  if (listed === null) return;
  const rows = document.getElementById("rows");
  rows.replaceChildren(
    ...listed.jobs.map((job) =>
      crews.el(
        "tr",
        { "data-job": job.id },
        crews.el("td", {}, crews.el("a", { href: "/ui/jobs/" + job.id }, job.id)),
        crews.el("td", {}, job.crew),
        crews.el("td", {}, job.owner || ""),
        crews.el("td", {}, crews.el("span", { class: "state " + job.status, "data-testid": "state" }, job.status)),
        crews.el("td", {}, crews.duration(job)),
        crews.el("td", { class: "num", "data-testid": "tokens" }, job.tokens),
        crews.el("td", { class: "num", "data-testid": "cost" }, crews.usd(job.cost_usd)),
        crews.el("td", { class: "reason" }, job.reason || ""),
      ),
    ),
  );
  document.getElementById("empty").hidden = listed.jobs.length > 0;
  crews.live("live · " + new Date().toLocaleTimeString(), "on");
}

refreshJobs();
setInterval(refreshJobs, 2000);
