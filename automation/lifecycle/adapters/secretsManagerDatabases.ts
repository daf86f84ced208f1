/**
 * DatabaseLocator on the connection documents the stacks keep in Secrets Manager (AWS SDK for
 * JavaScript v3). Not run against AWS here: the tests drive it through real SDK clients whose
 * requests are answered in-process.
 *
 * - Secrets: a cell's `<app>/<env>/global/cells/<cell>/database` (cellDatabaseSecretName), a
 *   dedicated tenant's `<app>/<env>/tenants/<id>/database/master` (masterSecretName). Both are
 *   written by infra/components/postgresInstance.ts, not managed by RDS (an RDS-managed master
 *   secret holds only username and password, under a name RDS chooses):
 *   `{ engine: "postgres", host, port, dbname, username, password }`, the master user's
 *   credentials and the instance's endpoint.
 * - Region: the stack's own (`aws:region` of `stacks/Pulumi.<stack>.yaml`, read with the fleet
 *   model's stack-file parser), where the stack created the secret.
 * - GetSecretValue by name, on every call (nothing is cached: a rotated password is picked up at
 *   the next session). Reading needs secretsmanager:GetSecretValue on those names and
 *   kms:Decrypt on the key the secret is encrypted with (the cell key, the tenant key).
 * - The connection: TLS required and verified (`rejectUnauthorized: true`; pg checks the host
 *   name), against the RDS CA bundle when one is given (TENANCY_LIFECYCLE_DB_CA_FILE, e.g. AWS's
 *   global-bundle.pem; otherwise Node's CAs plus NODE_EXTRA_CA_CERTS, which do not include the
 *   RDS CAs), and a short connect timeout.
 *
 * Errors name the secret, the region and what is wrong; they never quote the secret's value.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type pg from "pg";
import { cellDatabaseSecretName, cellStackName, dedicatedStackName, masterSecretName } from "../../../infra/model/naming.ts";
import { loadPlatform } from "../../../infra/model/platform.ts";
import { formatProblem } from "../../../infra/model/problems.ts";
import { parseStackFile } from "../../../infra/model/stackFile.ts";
import { PermanentError } from "../engine/engine.ts";
import type { DatabaseLocator } from "../ports.ts";
import { awsErrorName, translateAwsError } from "./awsErrors.ts";
import { RegionalClients } from "./regionalClients.ts";

/** How long a connection attempt may take before the step fails (and is retried). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** The keys of a connection document this adapter needs (the stacks also write `engine`). */
export const CONNECTION_DOCUMENT_KEYS = ["host", "port", "dbname", "username", "password"] as const;

/** A connection document is missing, unreadable or incomplete: retrying cannot help. */
export class ConnectionDocumentError extends PermanentError {}

export interface SecretsManagerDatabasesOptions {
  /** Platform appName (Pulumi.yaml): the first segment of every secret name. */
  app: string;
  /** The region a stack deploys to, where its secrets are (see stackFileRegions). */
  regionOf: (stack: string) => string | Promise<string>;
  /** PEM bundle of the RDS certificate authorities the server certificates are verified against. */
  ca?: string;
  /** Default DEFAULT_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  /** The Secrets Manager client of a region (tests inject clients whose requests never leave the process). */
  client?: (region: string) => SecretsManagerClient;
}

/**
 * The region of a stack from its stack file (`aws:region`), checked against the platform regions
 * by the fleet model's parser. Read at each call: a stack file added by a workflow (an upgrade's
 * dedicated stack) is found without a restart.
 */
export function stackFileRegions(projectDir: string): (stack: string) => string {
  return (stack) => {
    const platform = loadPlatform(projectDir);
    const base = `Pulumi.${stack}.yaml`;
    const file = join(projectDir, "stacks", base);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConnectionDocumentError(`the region of stack ${stack} is unknown: ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); its secrets cannot be located`);
    }
    const parsed = parseStackFile(file, base, text, platform.environments, platform.regions);
    if (Array.isArray(parsed)) throw new ConnectionDocumentError(`the region of stack ${stack} is unknown: ${parsed.map(formatProblem).join("; ")}`);
    return parsed.region;
  };
}

export class SecretsManagerDatabaseLocator implements DatabaseLocator {
  private readonly clients = new RegionalClients<SecretsManagerClient>();
  constructor(private readonly opts: SecretsManagerDatabasesOptions) {
    if (!opts.app) throw new Error("SecretsManagerDatabaseLocator needs the platform app name");
  }

  private client(region: string): SecretsManagerClient {
    return this.clients.get(region, (r) => (this.opts.client ? this.opts.client(r) : new SecretsManagerClient({ region: r })));
  }

  async cell(env: string, cell: string): Promise<pg.ClientConfig> {
    return this.locate(cellStackName(env, cell), cellDatabaseSecretName(this.opts.app, env, cell));
  }

  async dedicated(tenant: string, env: string): Promise<pg.ClientConfig> {
    return this.locate(dedicatedStackName(tenant, env), masterSecretName(this.opts.app, env, tenant));
  }

  private async locate(stack: string, name: string): Promise<pg.ClientConfig> {
    const region = await this.opts.regionOf(stack);
    const where = `secret ${name} (${region})`;
    let text: string | undefined;
    let binary: boolean;
    try {
      const out = await this.client(region).send(new GetSecretValueCommand({ SecretId: name }));
      text = out.SecretString;
      binary = out.SecretBinary !== undefined;
    } catch (err) {
      if (awsErrorName(err) === "ResourceNotFoundException") {
        throw new ConnectionDocumentError(
          `${where} does not exist: stack ${stack} writes it when it is deployed (or it was deleted); no database was connected to. ` +
            `Deploy the stack, or give this database's connection string in TENANCY_LIFECYCLE_DATABASES`,
        );
      }
      throw translateAwsError(err, `GetSecretValue ${name} (${region})`, "no database was connected to");
    }
    if (text === undefined) {
      throw new ConnectionDocumentError(`${where} holds ${binary ? "a binary value (SecretBinary)" : "no value"}, not the JSON connection document stack ${stack} writes`);
    }
    return this.clientConfig(text, where, stack);
  }

  /** The pg settings of a connection document; the messages name keys, never values. */
  private clientConfig(text: string, where: string, stack: string): pg.ClientConfig {
    const expected = `expected the JSON object stack ${stack} writes: { ${CONNECTION_DOCUMENT_KEYS.map((k) => `"${k}"`).join(", ")} } (infra/components/postgresInstance.ts)`;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      // JSON.parse's message quotes the text: it would put the secret into logs.
      throw new ConnectionDocumentError(`${where} is not JSON; ${expected}`);
    }
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new ConnectionDocumentError(`${where} is JSON but not an object; ${expected}`);
    const d = doc as Record<string, unknown>;
    const missing = CONNECTION_DOCUMENT_KEYS.filter((k) => !(k in d));
    if (missing.length > 0) {
      const has = Object.keys(d).sort();
      const rdsManaged = has.length === 2 && has.includes("username") && has.includes("password");
      throw new ConnectionDocumentError(
        `${where} lacks ${missing.join(", ")} (it has ${has.length > 0 ? has.join(", ") : "no keys"}` +
          `${rdsManaged ? ": the shape of an RDS-managed master secret, which holds only the credentials" : ""}); ${expected}`,
      );
    }
    const wrong: string[] = CONNECTION_DOCUMENT_KEYS.filter((k) => d[k] === null || d[k] === "").map((k) => `${k} is empty`);
    for (const k of ["host", "dbname", "username", "password"] as const) if (typeof d[k] !== "string" && !wrong.includes(`${k} is empty`)) wrong.push(`${k} is not a string`);
    const port = typeof d.port === "string" && /^\d+$/.test(d.port) ? Number(d.port) : d.port;
    if ((typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) && !wrong.includes("port is empty")) wrong.push("port is not a port number");
    if (d.engine !== undefined && d.engine !== "postgres") wrong.push(`engine is not "postgres"`);
    if (wrong.length > 0) throw new ConnectionDocumentError(`${where}: ${wrong.join(", ")}; ${expected}`);
    return {
      host: d.host as string,
      port: port as number,
      database: d.dbname as string,
      user: d.username as string,
      password: d.password as string,
      ssl: { rejectUnauthorized: true, ...(this.opts.ca ? { ca: this.opts.ca } : {}) },
      connectionTimeoutMillis: this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    };
  }
}
