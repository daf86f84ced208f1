/**
 * Console pages: the run queue (followed live by assets/runs.js from GET /api/runs/events), a run (its engine events streamed live by assets/run.js from
 * GET /api/runs/:id/events), and rollouts with their waves, halt reason and pause/resume/abort.
 */
import { errorMessage, refusedPage, type ApiAnswer, type RolloutJson, type RolloutViewJson, type RunJson, type Signed } from "../api.ts";
import { badge, html, layout, when, type Html } from "../html.ts";

const enc = encodeURIComponent;

export function runsTable(runs: RunJson[]): Html {
  if (runs.length === 0) return html`<p>None.</p>`;
  return html`<table class="runs"><thead><tr><th scope="col">Run</th><th scope="col">Stack</th><th scope="col">Operation</th><th scope="col">State</th><th scope="col">Queued</th><th scope="col">Why</th></tr></thead>
<tbody>${runs.map(
    (r) => html`<tr data-run="${r.id}"><td><a href="/console/runs/${enc(r.id)}">${r.id.slice(0, 8)}</a></td><td><code>${r.stack}</code></td><td>${r.operation}</td><td>${badge(r.state)}</td><td>${when(r.createdAt)}</td><td>${r.reasons.join("; ")}</td></tr>`,
  )}</tbody></table>`;
}

/** How often (seconds) the Runs page reloads itself when scripts are off (with scripts, it follows the queue's event stream). */
export const RUNS_REFRESH_WITHOUT_SCRIPTS_S = 10;

/** The Runs page's two tables (the queue, recently finished), from the API; or the API's refusal. */
async function runsTables(s: Signed): Promise<{ ok: true; body: Html } | { ok: false; refused: ApiAnswer }> {
  const [active, recent] = await Promise.all([s.api("GET", "/api/runs?state=queued,running&limit=200"), s.api("GET", "/api/runs?state=succeeded,failed&limit=30")]);
  if (active.status !== 200) return { ok: false, refused: active };
  if (recent.status !== 200) return { ok: false, refused: recent };
  return {
    ok: true,
    body: html`<section aria-labelledby="queue"><h2 id="queue">Queued and running</h2>${runsTable(active.json.runs as RunJson[])}</section>
<section aria-labelledby="recent"><h2 id="recent">Recently finished</h2>${runsTable(recent.json.runs as RunJson[])}</section>`,
  };
}

/**
 * The queue and recent runs. assets/runs.js follows GET /api/runs/events and, on each burst of
 * changes, puts GET /console/runs/tables in place of the tables (no reload); with scripts off the
 * page reloads itself every RUNS_REFRESH_WITHOUT_SCRIPTS_S seconds, and a Refresh link is there.
 */
export async function runsPage(s: Signed): Promise<{ status?: number; body: string }> {
  const tables = await runsTables(s);
  if (!tables.ok) return refusedPage("Runs", s.user, tables.refused);
  const body = html`<p class="live"><span id="runs-stream" role="status">As of ${when(new Date().toISOString())}.</span> <a href="/console/runs">Refresh</a></p>
<div id="runs-live" data-runs-url="/console/runs/tables">${tables.body}</div>`;
  return { body: layout({ title: "Runs", user: s.user, section: "runs", body, scripts: ["runs.js"], refreshWithoutScripts: RUNS_REFRESH_WITHOUT_SCRIPTS_S }) };
}

/** GET /console/runs/tables: the Runs page's tables alone (a fragment), with the API's status. */
export async function runsFragment(s: Signed): Promise<{ status: number; body: string }> {
  const tables = await runsTables(s);
  if (!tables.ok) return { status: tables.refused.status, body: html`<p role="alert" class="error">${errorMessage(tables.refused)}</p>`.text };
  return { status: 200, body: tables.body.text };
}

export async function runPage(s: Signed, id: string): Promise<{ status?: number; body: string }> {
  const a = await s.api("GET", `/api/runs/${enc(id)}`);
  if (a.status !== 200) return refusedPage("Run", s.user, a);
  const r = a.json.run as RunJson;
  const finished = r.state === "succeeded" || r.state === "failed";
  const body = html`<dl class="facts">
<dt>Stack</dt><dd><code>${r.stack}</code></dd>
<dt>Operation</dt><dd>${r.operation}</dd>
<dt>State</dt><dd id="run-state" aria-live="polite">${badge(r.state)}</dd>
<dt>Why</dt><dd>${r.reasons.join("; ")}</dd>
<dt>Requested by keys</dt><dd>${r.apiKeys.join(", ") || "none (a webhook or the control plane itself)"}</dd>
<dt>Commit</dt><dd>${r.commit ? html`<code>${r.commit.slice(0, 12)}</code>` : "not yet chosen"}</dd>
<dt>Queued</dt><dd>${when(r.createdAt)}</dd><dt>Started</dt><dd>${when(r.startedAt)}</dd><dt>Finished</dt><dd id="run-finished">${when(r.finishedAt)}</dd>
</dl>
<p id="run-error" class="error" role="status">${r.error ?? ""}</p>
${finished ? "" : html`<p id="cancel-run"><a class="button" href="/console/runs/${enc(r.id)}/cancel">Cancel this run</a></p>`}
<section aria-labelledby="progress"><h2 id="progress">Progress</h2>
<p id="stream-state" aria-live="polite">Waiting for engine events…</p>
<table class="resources" data-run-id="${r.id}"><caption>Resources, in the order the engine reached them</caption>
<thead><tr><th scope="col">Resource</th><th scope="col">Type</th><th scope="col">Operation</th><th scope="col">Status</th></tr></thead><tbody id="resources"></tbody></table>
<h3>Engine messages</h3><ul id="diagnostics"></ul>
</section>`;
  return { body: layout({ title: `Run of ${r.stack}`, user: s.user, section: "runs", body, scripts: ["run.js"] }) };
}

export async function rolloutsPage(s: Signed): Promise<{ status?: number; body: string }> {
  const a = await s.api("GET", "/api/rollouts");
  if (a.status !== 200) return refusedPage("Rollouts", s.user, a);
  const list = a.json.rollouts as RolloutJson[];
  const body =
    list.length === 0
      ? html`<p>No rollout yet. A rollout starts with <code>POST /api/rollouts</code> or <code>tenantctl rollout start</code>.</p>`
      : html`<table><thead><tr><th scope="col">Rollout</th><th scope="col">State</th><th scope="col">Wave</th><th scope="col">Commit</th><th scope="col">Started</th><th scope="col">Halted because</th></tr></thead>
<tbody>${list.map(
          (r) => html`<tr data-rollout="${r.id}"><td><a href="/console/rollouts/${enc(r.id)}">${r.name}</a></td><td>${badge(r.state)}</td><td>${Math.min(r.wave + 1, r.waves.length)} of ${r.waves.length}</td><td><code>${r.commit.slice(0, 12)}</code></td><td>${when(r.createdAt)}</td><td>${r.haltReason ?? ""}</td></tr>`,
        )}</tbody></table>`;
  return { body: layout({ title: "Rollouts", user: s.user, section: "rollouts", body }) };
}

export async function rolloutPage(s: Signed, id: string): Promise<{ status?: number; body: string }> {
  const a = await s.api("GET", `/api/rollouts/${enc(id)}`);
  if (a.status !== 200) return refusedPage("Rollout", s.user, a);
  const v = a.json as unknown as RolloutViewJson;
  const r = v.rollout;
  const actions: Html[] = [];
  if (r.state === "running") actions.push(html`<a class="button" href="/console/rollouts/${enc(r.id)}/pause">Pause</a>`);
  if (r.state === "paused" || r.state === "halted") actions.push(html`<a class="button" href="/console/rollouts/${enc(r.id)}/resume">Resume</a>`);
  if (r.state === "running" || r.state === "paused" || r.state === "halted") actions.push(html`<a class="button danger" href="/console/rollouts/${enc(r.id)}/abort">Abort</a>`);
  const body = html`<p>${badge(r.state)} · commit <code>${r.commit.slice(0, 12)}</code> · started ${when(r.createdAt)} by ${r.requestedBy ?? "unknown"}${r.finishedAt ? html` · ended ${when(r.finishedAt)}` : ""}</p>
${r.haltReason ? html`<section class="halted" aria-labelledby="halt"><h2 id="halt">Halted: why</h2><p role="status">${r.haltReason}</p><p>Nothing more runs until someone resumes or aborts it.</p></section>` : ""}
${actions.length > 0 ? html`<p class="actions">${actions.map((x, i) => html`${i > 0 ? " " : ""}${x}`)}</p>` : ""}
<section aria-labelledby="waves"><h2 id="waves">Waves</h2>
${v.waves.map(
    (w) => html`<section class="wave${w.index === r.wave ? " current" : ""}" aria-labelledby="wave-${w.index}">
<h3 id="wave-${w.index}">Wave ${w.index + 1}: ring ${w.ring}${w.index === r.wave && r.state !== "succeeded" ? " (current)" : ""}</h3>
<p>${w.counts.succeeded ?? 0} succeeded, ${w.counts.failed ?? 0} failed, ${w.counts.running ?? 0} running, ${w.counts.pending ?? 0} pending · parallelism ${w.parallelism} · bake ${Math.round(w.bakeMs / 60_000)} min · failure budget ${w.failureBudgetPercent}%</p>
<p><label for="wave-progress-${w.index}">Progress</label> <progress id="wave-progress-${w.index}" max="${Math.max(1, w.stacks.length)}" value="${(w.counts.succeeded ?? 0) + (w.counts.failed ?? 0)}"></progress></p>
<ul>${w.stacks.map((st) => html`<li><code>${st.stack}</code> ${badge(st.state)}${st.runId ? html` <a href="/console/runs/${enc(st.runId)}">run</a>` : ""}${st.error ? html` <span class="error">${st.error}</span>` : ""}</li>`)}</ul>
</section>`,
  )}</section>`;
  return { body: layout({ title: `Rollout ${r.name}`, user: s.user, section: "rollouts", body }) };
}
