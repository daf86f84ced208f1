/**
 * Console pages: the fleet map (regions -> environments -> cells with residents and capacity, and
 * the dedicated stacks beside them; search by tenant id or name) and the drift overview.
 */
import type { FleetTenant, FleetView } from "../../http/routes/fleet.ts";
import { refusedPage, type DriftJson, type Signed } from "../api.ts";
import { badge, html, layout, when, type Html } from "../html.ts";

const enc = encodeURIComponent;

function tenantChip(t: FleetTenant): Html {
  const state = t.migrating ? "migrating" : t.lifecycle;
  return html`<li class="tenant tier-${t.tier} life-${state}" data-tenant="${t.id}"><a href="/console/tenants/${enc(t.id)}">${t.id}</a> <span class="sub">${t.displayName}</span> <span class="tag">${t.tier}</span>${state !== "active" ? html` <span class="tag life">${state}</span>` : ""}</li>`;
}

export function matches(t: FleetTenant, q: string): boolean {
  if (q === "") return true;
  const s = q.toLowerCase();
  return t.id.includes(s) || t.displayName.toLowerCase().includes(s);
}

/** The fleet map's markup from GET /api/fleet (pure: the bench renders it too). */
export function fleetMap(view: FleetView, q: string): Html {
  let shown = 0;
  let total = 0;
  const regions = view.regions.map((r) => {
    const envs = r.envs.map((e) => {
      const cells = e.cells.map((c) => {
        total += c.residents.length;
        const residents = c.residents.filter((t) => matches(t, q));
        shown += residents.length;
        if (q !== "" && residents.length === 0) return "";
        const used = c.residents.length;
        const pct = c.capacity > 0 ? Math.min(100, Math.round((used / c.capacity) * 100)) : 100;
        return html`<section class="cell" aria-labelledby="cell-${c.stack}" data-stack="${c.stack}">
<h4 id="cell-${c.stack}">Cell ${c.id} <span class="sub">${c.stack}</span>${c.opening ? html` <span class="tag life">opening</span>` : ""}</h4>
<p class="capacity"><label for="cap-${c.stack}">${used} of ${c.capacity} places used</label>
<meter id="cap-${c.stack}" min="0" max="${c.capacity}" low="${Math.floor(c.capacity * 0.7)}" high="${Math.floor(c.capacity * 0.9)}" optimum="0" value="${used}">${pct}%</meter></p>
<ul class="residents">${residents.map(tenantChip)}</ul>
<p><a href="/console/stacks/${enc(c.stack)}/run">Run ${c.stack}</a></p>
</section>`;
      });
      const dedicated = e.dedicated.filter((t) => matches(t, q));
      total += e.dedicated.length;
      shown += dedicated.length;
      if (q !== "" && dedicated.length === 0 && cells.every((c) => c === "")) return "";
      return html`<section class="env" aria-labelledby="env-${r.region}-${e.env}">
<h3 id="env-${r.region}-${e.env}">${e.env}</h3>
<div class="cells">${cells}</div>
${dedicated.length > 0 ? html`<section class="dedicated" aria-label="Dedicated stacks in ${r.region} ${e.env}"><h4>Dedicated stacks</h4><ul class="residents">${dedicated.map((d) => html`${tenantChip(d)}`)}</ul></section>` : ""}
</section>`;
    });
    return html`<section class="region" aria-labelledby="region-${r.region}"><h2 id="region-${r.region}">${r.region}</h2>${envs}</section>`;
  });
  return html`<form method="get" action="/console/fleet" role="search" class="search">
<label for="q">Find a tenant by id or name</label> <input id="q" name="q" type="search" value="${q}"> <button type="submit">Search</button>
${q !== "" ? html` <a href="/console/fleet">Show all</a>` : ""}
</form>
<p class="legend">Tiers: <span class="tag tier-free">free</span> <span class="tag tier-standard">standard</span> <span class="tag tier-enterprise">enterprise</span> <span class="tag tier-dedicated">dedicated</span>.
Lifecycle other than active is written beside the tenant (suspended, offboarding, migrating).</p>
<p aria-live="polite">${q === "" ? `${total} tenant placements on ${view.branch}` : `${shown} of ${total} tenant placements match “${q}”`}</p>
${regions}`;
}

export async function fleetPage(s: Signed, q: string): Promise<{ status?: number; body: string }> {
  const a = await s.api("GET", "/api/fleet");
  if (a.status !== 200) return refusedPage("Fleet", s.user, a);
  return { body: layout({ title: "Fleet", user: s.user, section: "fleet", body: fleetMap(a.json as unknown as FleetView, q.trim().slice(0, 100)) }) };
}

export async function driftPage(s: Signed): Promise<{ status?: number; body: string }> {
  const a = await s.api("GET", "/api/drift");
  if (a.status !== 200) return refusedPage("Drift", s.user, a);
  return { body: layout({ title: "Drift", user: s.user, section: "drift", body: driftTable(a.json.stacks as DriftJson[]) }) };
}

const DRIFT_ORDER = ["drifted", "failed", "checking", "unchecked", "clean"];

export function driftTable(rows: DriftJson[]): Html {
  if (rows.length === 0) return html`<p>No stack has a drift verdict yet.</p>`;
  const sorted = [...rows].sort((a, b) => DRIFT_ORDER.indexOf(a.state) - DRIFT_ORDER.indexOf(b.state) || a.stack.localeCompare(b.stack));
  return html`<table class="drift"><caption>Stacks by drift state (drifted first)</caption>
<thead><tr><th scope="col">Stack</th><th scope="col">State</th><th scope="col">Tenants</th><th scope="col">Checked</th><th scope="col">What differs</th></tr></thead>
<tbody>${sorted.map(
    (r) => html`<tr data-stack="${r.stack}"><th scope="row">${r.stack}</th><td>${badge(r.state)}${r.previous ? html` <span class="sub">(was ${r.previous})</span>` : ""}</td>
<td>${r.tenants.map((t, i) => html`${i > 0 ? ", " : ""}<a href="/console/tenants/${enc(t)}">${t}</a>`)}</td><td>${when(r.checkedAt)}</td>
<td>${r.error ? html`<p class="error">${r.error}</p>` : ""}${r.resources.length > 0 ? html`<ul>${r.resources.map((x) => html`<li><code>${x.op}</code> ${x.type} <code>${x.urn.split("::").pop() ?? x.urn}</code>${x.diffs && x.diffs.length > 0 ? html`: ${x.diffs.join(", ")}` : ""}</li>`)}</ul>` : ""}</td></tr>`,
  )}</tbody></table>`;
}
