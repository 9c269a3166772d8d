// The crews page: GET /crews (roles) and GET /roles (queue depth, workers), redrawn every 2 s.
"use strict";

async function refreshCrews() {
  let listed, load;
  try {
    listed = await crews.get("/crews", refreshCrews);
    load = listed && (await crews.get("/roles", refreshCrews));
  } catch (error) {
    crews.live("API unreachable: " + error.message, "off");
    return;
  }
  if (!listed || !load) return;
  const byRole = new Map(load.roles.map((r) => [r.crew + "/" + r.role, r]));
  document.getElementById("crews").replaceChildren(
    ...listed.crews.map((crew) =>
      crews.el(
        "section",
        { class: "crew", "data-crew": crew.name },
        crews.el("h2", {}, crew.name, " ", crews.el("small", { class: "muted" }, crew.process)),
        crew.description ? crews.el("p", {}, crew.description) : null,
        crews.el(
          "table",
          { class: "grid" },
          crews.el("thead", {}, crews.el("tr", {}, ...["role", "queue depth", "workers"].map((h) => crews.el("th", {}, h)))),
          crews.el(
            "tbody",
            {},
            ...crew.roles.map((role) => {
              const found = byRole.get(crew.name + "/" + role) || {};
              return crews.el(
                "tr",
                { "data-role": role },
                crews.el("td", {}, role),
                crews.el("td", { class: "num", "data-testid": "queue-depth" }, found.queue_depth ?? 0),
                crews.el("td", { class: "num", "data-testid": "workers" }, found.workers ?? "—"),
              );
            }),
          ),
        ),
      ),
    ),
  );
  document.getElementById("empty").hidden = listed.crews.length > 0;
  crews.live("live · " + new Date().toLocaleTimeString(), "on");
}

refreshCrews();
setInterval(refreshCrews, 2000);
