/**
 * Console pages: a tenant (its file as committed with the commit, routes, stacks with a run
 * action, cost per month, runtime config document per env, database schemas with their migration
 * versions, recent runs and changes, lifecycle workflows with their steps, recorded backups, drift)
 * and a lifecycle workflow (steps, backups, retry). Secret names appear; secret values are never in any answer.
 */
import { formatUsd } from "../../../plan/cost/cost.ts";
import type { TenantMonthlyCost } from "../../../plan/cost/tenant.ts";
import { errorMessage, refusedPage, type ApiAnswer, type DriftJson, type RunJson, type WorkflowJson, type Signed } from "../api.ts";
import { badge, html, layout, when, type Html } from "../html.ts";
import { driftTable } from "./fleet.ts";
import { runsTable } from "./runs.ts";
import { backupsSection, formatBytes, schemasSection, tenantSchemas, type BackupJson } from "./tenantStorage.ts";

const enc = encodeURIComponent;

interface TenantJson {
  tenant: { id: string; displayName: string; tier: string; deployment: string; region: string; lifecycle: string };
  file: { path: string; branch: string; commit: string | null; subject: string | null; committedAt: string | null; text: string | null };
  routes: { env: string; url: string; deployment: string; stack: string; region: string; databaseSecretName: string }[];
  stacks: string[];
  runs: RunJson[];
  changes: { id: string; summary: string; state: string; commit: string | null; createdAt: string }[];
  subscription: { id: string; status: string; priceId: string | null } | null;
  runtimeConfig: RuntimeConfigJson[];
  workflows?: WorkflowJson[];
  backups?: BackupJson[];
}

/** One env's runtime config parameter (its SSM name and published value), or why it cannot be published. */
export type RuntimeConfigJson = { env: string; parameter: string; value: string } | { env: string; error: string };

/**
 * The runtime config section: per env, the SSM parameter's name and its value (JSON, indented to
 * read) as the stack serving the tenant publishes it. The document holds names, never a secret value.
 */
export function runtimeConfigSection(docs: readonly RuntimeConfigJson[]): Html {
  return html`<section aria-labelledby="runtime-config"><h2 id="runtime-config">Runtime configuration</h2>
<p class="hint">What the application reads to serve the tenant: one SSM parameter per environment, published by the stack serving it (docs/runtime-config.md).</p>
${docs.map((d) =>
    "error" in d
      ? html`<h3>${d.env}</h3><p class="error">${d.error}</p>`
      : html`<h3>${d.env} <code class="sub">${d.parameter}</code></h3><pre class="spec" tabindex="0" data-env="${d.env}" aria-label="runtime config of ${d.env}">${JSON.stringify(JSON.parse(d.value), null, 2)}</pre>`,
  )}</section>`;
}

interface StepJson {
  step: string;
  ordinal: number;
  completedAt: string;
}

/** How often (seconds) a tenant page whose cost is being computed reloads itself when scripts are off. */
export const COST_REFRESH_WITHOUT_SCRIPTS_S = 5;

/** The cost section's content from GET /api/tenants/:id/cost (200 the figure, 202 still being priced). */
export function costSection(a: ApiAnswer): Html {
  if (a.status === 202) {
    const stacks = (a.json.stacks as string[] | undefined) ?? [];
    return html`<p>Being computed: ${stacks.map((st, i) => html`${i > 0 ? ", " : ""}<code>${st}</code>`)} ${stacks.length === 1 ? "is" : "are"} rendered offline and priced. The figure appears here by itself when it is ready (with scripts off, the page reloads itself every ${COST_REFRESH_WITHOUT_SCRIPTS_S} s).</p>`;
  }
  if (a.status !== 200) return html`<p class="error">${errorMessage(a)}</p>`;
  const c = a.json as unknown as TenantMonthlyCost;
  return html`<p class="cost"><strong>${formatUsd(c.monthlyUsd)}</strong> a month${c.unverified ? " *" : ""}${c.unpriced.length > 0 ? " (understated: some resources have no price)" : ""}</p>
<table><caption>Its part of each stack it lives in</caption>
<thead><tr><th scope="col">Stack</th><th scope="col">Own resources</th><th scope="col">Share of the cell's shared infrastructure</th><th scope="col">Total</th></tr></thead>
<tbody>${c.stacks.map((st) => html`<tr><td><code>${st.stack}</code></td><td>${formatUsd(st.ownUsd)}</td><td>${st.residents > 1 || st.shareUsd > 0 ? html`${formatUsd(st.shareUsd)} (1 of ${st.residents} residents)` : "none (the whole stack is its own)"}</td><td>${formatUsd(st.ownUsd + st.shareUsd)}</td></tr>`)}</tbody></table>
${c.unpriced.length > 0 ? html`<p>Not counted (no price in the table): ${c.unpriced.map((u, i) => html`${i > 0 ? "; " : ""}<code>${u.stack}</code> ${u.type} ${u.name}: ${u.reason}`)}</p>` : ""}
<p class="hint">An estimate, not an invoice: the stacks rendered offline and priced with the on-demand list prices taken on ${c.pricesAsOf} (the price table <code>plan/cost/prices.ts</code>, each figure with its AWS pricing page; docs/cost.md), as <code>tenantctl cost</code> does.${c.unverified ? " * includes figures marked unverified there." : ""} ${c.assumptions.join("; ")}.</p>`;
}

/** How many workflows the tenant page shows with their steps (the newest). */
const WORKFLOWS_SHOWN = 5;

function workflowBlock(w: WorkflowJson, steps: StepJson[] | undefined): Html {
  return html`<section class="workflow" aria-labelledby="wf-${w.id}" data-workflow="${w.id}">
<h3 id="wf-${w.id}"><a href="/console/workflows/${enc(w.id)}">${w.kind}</a> ${badge(w.state)} <span class="sub">${when(w.createdAt)}</span></h3>
${w.lastError ? html`<p class="error">${w.state === "failed" ? "Failed" : "Last error"}${w.currentStep ? html` at <code>${w.currentStep}</code>` : ""}: ${w.lastError}</p>` : ""}
${steps && steps.length > 0 ? html`<ol class="steps">${steps.map((st) => html`<li><code>${st.step}</code> done ${when(st.completedAt)}</li>`)}${w.currentStep && w.state !== "succeeded" ? html`<li><code>${w.currentStep}</code> ${badge(w.state)}</li>` : ""}</ol>` : ""}
${w.wakeAt && ["running", "waiting"].includes(w.state) && !w.cancelRequestedAt ? html`<p class="wakes">Wakes ${when(w.wakeAt)}${w.note ? html`: ${w.note}` : ""}</p>` : ""}
${w.state === "failed" ? html`<p><a class="button" href="/console/workflows/${enc(w.id)}/retry">Retry this workflow</a></p>` : ""}
${w.cancelRequestedAt && ["pending", "running", "waiting"].includes(w.state)
    ? html`<p class="cancelling">Cancelling: asked ${when(w.cancelRequestedAt)}; it ends cancelled once ${w.currentStep ? html`<code>${w.currentStep}</code> has stopped` : "its worker takes it up"}.</p>`
    : ["pending", "running", "waiting"].includes(w.state) ? html`<p><a class="button" href="/console/workflows/${enc(w.id)}/cancel">Cancel this workflow</a></p>` : ""}
</section>`;
}

export async function tenantPage(s: Signed, id: string): Promise<{ status?: number; body: string }> {
  const a = await s.api("GET", `/api/tenants/${enc(id)}`);
  if (a.status !== 200) return refusedPage(`Tenant ${id}`, s.user, a);
  const t = a.json as unknown as TenantJson;
  const [schemas, drift, cost, ...details] = await Promise.all([
    tenantSchemas(s, id),
    s.api("GET", `/api/drift?tenant=${enc(id)}`),
    s.api("GET", `/api/tenants/${enc(id)}/cost`),
    ...(t.workflows ?? []).slice(0, WORKFLOWS_SHOWN).map((w) => s.api("GET", `/api/workflows/${enc(w.id)}`)),
  ]);
  const spec = t.tenant;
  const body = html`<p>${spec.displayName} · ${badge(spec.lifecycle)} · tier <strong>${spec.tier}</strong> · ${spec.deployment} · ${spec.region}
${t.subscription ? html` · subscription <code>${t.subscription.id}</code> ${badge(t.subscription.status)}` : ""}</p>

<section aria-labelledby="stacks"><h2 id="stacks">Stacks</h2>
<ul>${t.stacks.map((st) => html`<li><code>${st}</code> <a href="/console/stacks/${enc(st)}/run">Run ${st}</a></li>`)}</ul></section>

${costBlock(id, cost)}

<section aria-labelledby="routes"><h2 id="routes">Routes</h2>
<table><thead><tr><th scope="col">Env</th><th scope="col">URL</th><th scope="col">Stack</th><th scope="col">Database secret (name)</th></tr></thead>
<tbody>${t.routes.map((r) => html`<tr><td>${r.env}</td><td>${r.url}</td><td><code>${r.stack}</code></td><td><code>${r.databaseSecretName}</code></td></tr>`)}</tbody></table></section>

${runtimeConfigSection(t.runtimeConfig ?? [])}

<section aria-labelledby="runs"><h2 id="runs">Recent runs</h2>${runsTable(t.runs)}</section>

${schemasSection(schemas)}

<section aria-labelledby="workflows"><h2 id="workflows">Lifecycle workflows</h2>
${t.workflows === undefined ? html`<p>The lifecycle worker is off in this control plane.</p>` : t.workflows.length === 0 ? html`<p>None.</p>` : ""}
${(t.workflows ?? []).slice(0, WORKFLOWS_SHOWN).map((w, i) => workflowBlock(w, details[i]?.status === 200 ? (details[i].json.steps as StepJson[]) : undefined))}
</section>

${backupsSection(t.backups, t.workflows ?? [])}

<section aria-labelledby="drift"><h2 id="drift">Drift</h2>
${drift.status === 200 ? driftTable(drift.json.stacks as DriftJson[]) : html`<p>${errorMessage(drift)}</p>`}</section>

<section aria-labelledby="changes"><h2 id="changes">Recent changes</h2>
${t.changes.length === 0 ? html`<p>None recorded by the control plane.</p>` : html`<ul>${t.changes.map((c) => html`<li>${when(c.createdAt)} ${badge(c.state)} ${c.summary}${c.commit ? html` <code>${c.commit.slice(0, 12)}</code>` : ""}</li>`)}</ul>`}</section>

<section aria-labelledby="spec"><h2 id="spec">Tenant file</h2>
<p><code>${t.file.path}</code> on <code>${t.file.branch}</code>${t.file.commit ? html`, last changed by commit <code title="${t.file.commit}">${t.file.commit.slice(0, 12)}</code> ${t.file.subject ? html`(“${t.file.subject}”)` : ""} ${when(t.file.committedAt)}` : html`, not committed yet`}</p>
${t.file.text !== null ? html`<pre class="spec" tabindex="0" aria-label="${t.file.path} as committed">${t.file.text}</pre>` : ""}</section>`;
  const computing = cost.status === 202;
  return { body: layout({ title: `Tenant ${spec.id}`, user: s.user, section: "fleet", body, ...(computing ? { scripts: ["cost.js"], refreshWithoutScripts: COST_REFRESH_WITHOUT_SCRIPTS_S } : {}) }) };
}

/**
 * The tenant page's cost section. While the figure is being computed (202) it is busy and names
 * the fragment URL that assets/cost.js asks again until the answer is final; it is a live region,
 * so a screen reader hears the figure when it arrives.
 */
export function costBlock(id: string, cost: ApiAnswer): Html {
  const computing = cost.status === 202;
  return html`<section aria-labelledby="cost" id="cost-section" aria-live="polite"${computing ? html` aria-busy="true" data-cost-url="/console/tenants/${enc(id)}/cost"` : ""} data-cost-state="${computing ? "computing" : cost.status === 200 ? "ready" : "failed"}"><h2 id="cost">Cost per month</h2>
${costSection(cost)}</section>`;
}

/** GET /console/tenants/:id/cost: the cost section's content alone, with the API's status (202 while computing). */
export async function costFragment(s: Signed, id: string): Promise<{ status: number; body: string }> {
  const cost = await s.api("GET", `/api/tenants/${enc(id)}/cost`);
  return { status: cost.status, body: costSection(cost).text };
}

export async function workflowPage(s: Signed, id: string): Promise<{ status?: number; body: string }> {
  const a = await s.api("GET", `/api/workflows/${enc(id)}`);
  if (a.status !== 200) return refusedPage("Workflow", s.user, a);
  const w = a.json.workflow as WorkflowJson;
  const steps = a.json.steps as StepJson[];
  const backups = a.json.backups as BackupJson[];
  const body = html`<p>Tenant <a href="/console/tenants/${enc(w.tenantId)}">${w.tenantId}</a> · ${badge(w.state)} · ${w.attempts} attempt(s) · requested by ${w.requestedBy ?? "unknown"}${w.retriedByApiKey ? html` · last retried by key ${w.retriedByApiKey}` : ""}</p>
${w.note ? html`<p>${w.note}</p>` : ""}
${workflowBlock(w, steps)}
<section aria-labelledby="backups"><h2 id="backups">Backups recorded</h2>
${backups.length === 0 ? html`<p>None.</p>` : html`<ul>${backups.map((b) => html`<li>${b.env}: ${b.kind} at <code>${b.location}</code>${b.bytes !== null ? ` (${formatBytes(b.bytes)})` : ""}, ${when(b.recordedAt)}</li>`)}</ul>`}</section>`;
  return { body: layout({ title: `Workflow ${w.kind} of ${w.tenantId}`, user: s.user, section: "fleet", body }) };
}
