/**
 * Console pages: the fleet map (regions -> environments -> cells with residents and capacity, and
 * the dedicated stacks beside them; search by tenant id or name) and the drift overview.
 */
import type { FleetTenant, FleetView } from "../../http/routes/fleet.ts";
import { refusedPage, type DriftJson, type Signed } from "../api.ts";
import { badge, html, layout, when, type Html } from "../html.ts";

const enc = encodeURIComponent;

/** Tiers in the order the map lists them; a tier not named here follows them. */
const TIER_ORDER = ["enterprise", "standard", "free", "dedicated"];

/**
 * A group of tenants of one tier: the tier is written once in the group's heading (and colours its
 * chips' edge), each chip is its link (relative to /console/fleet) and its name when that differs
 * from its id, and a lifecycle other than active is written beside it and tints it. Two elements a
 * chip: the map of 1,100 tenants stays small enough for a browser to show in well under a second
 * (BENCHMARKS.md section 9).
 */
function tierGroups(tenants: readonly FleetTenant[], label: string): Html[] {
  const byTier = new Map<string, FleetTenant[]>();
  for (const t of tenants) byTier.set(t.tier, [...(byTier.get(t.tier) ?? []), t]);
  const order = (tier: string) => (TIER_ORDER.includes(tier) ? TIER_ORDER.indexOf(tier) : TIER_ORDER.length);
  return [...byTier.keys()]
    .sort((a, b) => order(a) - order(b) || a.localeCompare(b))
    .map((tier) => {
      const group = byTier.get(tier)!;
      return html`<h5 class="g">${tier} <span class="sub">${group.length}</span></h5><ul class="r t-${tier}" aria-label="${label}: ${tier}">${group.map(chip)}</ul>`;
    });
}

function chip(t: FleetTenant): Html {
  const state = t.migrating ? "migrating" : t.lifecycle;
  const name = t.displayName !== t.id ? ` ${t.displayName}` : "";
  return state === "active" ? html`<li><a href="tenants/${enc(t.id)}">${t.id}</a>${name}</li>` : html`<li class="${state}"><a href="tenants/${enc(t.id)}">${t.id}</a>${name} <b>${state}</b></li>`;
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
${tierGroups(residents, `Residents of ${c.stack}`)}
<p><a href="stacks/${enc(c.stack)}/run">Run ${c.stack}</a></p>
</section>`;
      });
      const dedicated = e.dedicated.filter((t) => matches(t, q));
      total += e.dedicated.length;
      shown += dedicated.length;
      if (q !== "" && dedicated.length === 0 && cells.every((c) => c === "")) return "";
      return html`<section class="env" aria-labelledby="env-${r.region}-${e.env}">
<h3 id="env-${r.region}-${e.env}">${e.env}</h3>
<div class="cells">${cells}</div>
${dedicated.length > 0 ? html`<section class="dedicated" aria-labelledby="ded-${r.region}-${e.env}" data-region="${r.region}" data-env="${e.env}"><h4 id="ded-${r.region}-${e.env}">Dedicated stacks <span class="sub">${r.region} ${e.env}</span></h4>${tierGroups(dedicated, `Dedicated stacks in ${r.region} ${e.env}`)}</section>` : ""}
</section>`;
    });
    return html`<section class="region" aria-labelledby="region-${r.region}"><h2 id="region-${r.region}">${r.region}</h2>${envs}</section>`;
  });
  return html`<form method="get" action="/console/fleet" role="search" class="search">
<label for="q">Find a tenant by id or name</label> <input id="q" name="q" type="search" value="${q}"> <button type="submit">Search</button>
${q !== "" ? html` <a href="/console/fleet">Show all</a>` : ""}
</form>
<p class="legend">Tenants are grouped by tier, each tier with its colour: <span class="tag t-enterprise">enterprise</span> <span class="tag t-standard">standard</span> <span class="tag t-free">free</span> <span class="tag t-dedicated">dedicated</span>.
A lifecycle other than active is written beside the tenant: <span class="tag suspended">suspended</span> <span class="tag offboarding">offboarding</span> <span class="tag migrating">migrating</span>.</p>
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
