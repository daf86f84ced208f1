/**
 * The tenant page's data sections (docs/console.md): the backups its lifecycle workflows recorded
 * (GET /api/tenants/:id `backups`), and its schemas' migration versions with any schema
 * migration running or failed for them (GET /api/db-schemas?tenant=, GET /api/db-migrations and
 * the active ones' GET /api/db-migrations/:id; docs/schema-migrations.md).
 */
import { pgTenantIdent } from "../../../infra/model/naming.ts";
import { errorMessage, type ApiAnswer, type Signed, type WorkflowJson } from "../api.ts";
import { badge, html, when, type Html } from "../html.ts";

const enc = encodeURIComponent;

export interface BackupJson {
  id: string;
  workflowId: string;
  env: string;
  kind: string;
  location: string;
  bytes: number | null;
  sha256: string | null;
  recordedAt: string;
}

/** `1536` -> `1.5 KiB (1,536 bytes)`; bytes under 1 KiB as they are. */
export function formatBytes(n: number): string {
  const exact = `${n.toLocaleString("en-US")} byte${n === 1 ? "" : "s"}`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let unit = "";
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return unit === "" ? exact : `${v.toFixed(1)} ${unit} (${exact})`;
}

/** What a backup kind is, in words (the location column says where). */
const BACKUP_KINDS: Record<string, string> = {
  "schema-dump": "schema dump",
  "rds-snapshot": "RDS snapshot",
  "object-copy": "object copy",
};

/**
 * The backups section: every backup the tenant's lifecycle workflows recorded, newest first, with
 * its kind, env, time, location (an object URL, or the snapshot's identifier), size when recorded,
 * and the workflow that recorded it. `backups` undefined: the lifecycle worker is off.
 */
export function backupsSection(backups: readonly BackupJson[] | undefined, workflows: readonly WorkflowJson[]): Html {
  const kindOf = new Map(workflows.map((w) => [w.id, w.kind]));
  const body =
    backups === undefined
      ? html`<p>The lifecycle worker is off in this control plane.</p>`
      : backups.length === 0
        ? html`<p>None recorded.</p>`
        : html`<table class="backups"><thead><tr><th scope="col">Kind</th><th scope="col">Env</th><th scope="col">Recorded</th><th scope="col">Location</th><th scope="col">Size</th><th scope="col">Workflow</th></tr></thead>
<tbody>${backups.map(
            (b) => html`<tr data-backup="${b.id}"><td>${BACKUP_KINDS[b.kind] ?? b.kind}</td><td>${b.env}</td><td>${when(b.recordedAt)}</td><td><code class="wrap">${b.location}</code></td><td>${b.bytes === null ? "not recorded" : formatBytes(b.bytes)}</td><td><a href="/console/workflows/${enc(b.workflowId)}">${kindOf.get(b.workflowId) ?? "workflow"} ${b.workflowId.slice(0, 8)}</a></td></tr>`,
          )}</tbody></table>`;
  return html`<section aria-labelledby="backups"><h2 id="backups">Backups recorded</h2>
<p class="hint">What the tenant's lifecycle workflows backed up before changing or deleting anything (docs/lifecycle.md).</p>
${body}</section>`;
}

interface SchemaStatusJson {
  stack: string;
  tenant: string;
  version: number | null;
  outdated: boolean;
  lastError: string | null;
  error?: string;
}

interface MigrationJson {
  id: string;
  action: string;
  targetVersion: number;
  state: string;
  haltReason: string | null;
}

interface SchemaRecordJson {
  stack: string;
  tenant: string;
  state: string;
  fromVersion: number | null;
  toVersion: number | null;
  error: string | null;
}

/** What the schemas section shows: the status answer, and the active migrations' records of this tenant's schemas. */
export interface TenantSchemas {
  status: ApiAnswer;
  /** Running or halted migrations with their records of the tenant's schemas (only those holding one). */
  active: { migration: MigrationJson; schemas: SchemaRecordJson[] }[];
}

const ACTIVE_MIGRATION_STATES = new Set(["running", "halted"]);

/** Reads the tenant's schema versions and the running or halted schema migrations that hold its schemas, through the API. */
export async function tenantSchemas(s: Signed, tenant: string): Promise<TenantSchemas> {
  const [status, list] = await Promise.all([s.api("GET", `/api/db-schemas?tenant=${enc(tenant)}`), s.api("GET", "/api/db-migrations")]);
  if (status.status !== 200 || list.status !== 200) return { status: status.status !== 200 ? status : list, active: [] };
  const open = (list.json.migrations as MigrationJson[]).filter((m) => ACTIVE_MIGRATION_STATES.has(m.state));
  const views = await Promise.all(open.map((m) => s.api("GET", `/api/db-migrations/${enc(m.id)}`)));
  const active = views.flatMap((v) => {
    if (v.status !== 200) return [];
    const view = v.json as unknown as { migration: MigrationJson; waves: { schemas: SchemaRecordJson[] }[] };
    const schemas = view.waves.flatMap((w) => w.schemas).filter((x) => x.tenant === tenant);
    return schemas.length > 0 ? [{ migration: view.migration, schemas }] : [];
  });
  return { status, active };
}

/**
 * The schemas section: per stack holding the tenant's schema, its migration version (read live)
 * against the template version, and whether a schema migration is running, halted or failed for it.
 */
export function schemasSection(data: TenantSchemas): Html {
  const { status } = data;
  const intro = html`<h2 id="schemas">Database schemas</h2>
<p class="hint">The tenant's schema in each database holding it, at the version of the last migration it applied (read live; docs/schema-migrations.md).</p>`;
  if (status.status !== 200) return html`<section aria-labelledby="schemas">${intro}<p class="error">${errorMessage(status)}</p></section>`;
  const templateVersion = status.json.templateVersion as number;
  const rows = status.json.schemas as SchemaStatusJson[];
  if (rows.length === 0) return html`<section aria-labelledby="schemas">${intro}<p>None: no stack holds a schema of this tenant.</p></section>`;
  return html`<section aria-labelledby="schemas">${intro}
<table class="schemas"><thead><tr><th scope="col">Stack</th><th scope="col">Schema</th><th scope="col">Version</th><th scope="col">Migration</th></tr></thead>
<tbody>${rows.map((r) => html`<tr data-schema-stack="${r.stack}"><td><code>${r.stack}</code></td><td><code>${pgTenantIdent(r.tenant)}</code></td><td>${versionCell(r, templateVersion)}</td><td>${migrationCell(r, data.active)}</td></tr>`)}</tbody></table></section>`;
}

function versionCell(r: SchemaStatusJson, templateVersion: number): Html {
  if (r.version === null) return html`<span class="error">not read: ${r.error ?? "unknown"}</span>`;
  if (r.outdated) return html`<strong>${r.version}</strong> <span class="badge state-outdated">behind</span> the template version ${templateVersion}`;
  return html`<strong>${r.version}</strong> <span class="badge state-current">current</span> (template version ${templateVersion})`;
}

function migrationCell(r: SchemaStatusJson, active: TenantSchemas["active"]): Html {
  const mine = active.flatMap((a) => a.schemas.filter((x) => x.stack === r.stack).map((x) => ({ migration: a.migration, schema: x })));
  const parts: Html[] = mine.map(
    ({ migration: m, schema: x }) =>
      html`<p>${m.action} to ${m.targetVersion} ${badge(m.state)} <code title="${m.id}">${m.id.slice(0, 8)}</code>: this schema ${badge(x.state)}${x.error ? html` <span class="error">${x.error}</span>` : ""}${m.state === "halted" && m.haltReason && !x.error ? html` (halted: ${m.haltReason})` : ""}</p>`,
  );
  if (mine.length === 0 && r.lastError) parts.push(html`<p>last migration ${badge("failed")}: <span class="error">${r.lastError}</span></p>`);
  return parts.length > 0 ? html`${parts}` : html`none running`;
}
