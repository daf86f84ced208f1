/**
 * Control-plane settings (docs/control-plane.md). Every setting is an environment variable and may also be
 * written in a YAML config file (TENANCY_CONFIG, default `control-plane.yaml` in the working
 * directory when it exists) under the same name; the environment wins. A missing or malformed
 * required setting stops start-up with a message naming it.
 */
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { WORKING_COPY_DIR } from "./git/workingCopy.ts";
import { parse } from "yaml";
import { loadApiKeys, type ApiKeyRecord } from "./http/apiKeys.ts";
import { HTTP_SETTING_DOCS, httpSettingsFrom, type HttpSettings } from "./http/settings.ts";
import { loadPriceTiers, type PriceTiers } from "./billing/priceTiers.ts";
import { DRIFT_SETTING_DOCS, driftSettingsFrom, type DriftSettings } from "./drift/settings.ts";
import { SettingsReader } from "./settings/read.ts";
import type { DeploymentsSettings } from "./runs/runner.ts";
import { parseWorkerRegions } from "./runs/regions.ts";
import { loadPlatform } from "../infra/model/platform.ts";
import { LIFECYCLE_SETTING_DOCS, lifecycleSettingsFrom, type LifecycleSettings } from "./lifecycle/settings.ts";

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = "0.0.0.0";
/** Runs of different stacks in parallel, per control-plane process. */
export const DEFAULT_MAX_PARALLEL_RUNS = 4;
/** How long a subscription may stay past_due/unpaid before its tenant is suspended: one week. */
export const DEFAULT_UNPAID_GRACE_HOURS = 168;
/**
 * pg-boss expiry of a stack-run job. Longer than the slowest update we expect (an RDS instance with
 * Multi-AZ takes 40-60 minutes to create; a dedicated stack creates one per env). pg-boss caps it at 24 h.
 */
export const DEFAULT_RUN_EXPIRE_HOURS = 3;
/** A running run writes a heartbeat this often ... */
export const DEFAULT_HEARTBEAT_SECONDS = 10;
/** ... and is taken over by another worker when none arrived for this long (the worker died). */
export const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 90;
/** `pulumi up` retries on ConcurrentUpdateError (another update holds the stack's lock). */
export const DEFAULT_UPDATE_RETRIES = 5;
export const DEFAULT_UPDATE_RETRY_BASE_MS = 5_000;
export const DEFAULT_GIT_AUTHOR = "saas-tenancy control plane <control-plane@saas-tenancy.invalid>";
export const DEFAULT_GITHUB_API_URL = "https://api.github.com";
export const DEFAULT_DATA_DIR = ".control-plane";
export const DEFAULT_CONFIG_FILE = "control-plane.yaml";
/** How long shutdown waits for running updates before interrupting them (SIGINT to the CLI). */
export const DEFAULT_SHUTDOWN_GRACE_SECONDS = 30;

export const RUNNER_KINDS = ["local", "deployments"] as const;
export type RunnerKind = (typeof RUNNER_KINDS)[number];

export interface GitHubSettings {
  token: string;
  /** owner/name */
  repo: string;
  apiUrl: string;
}

export interface ControlPlaneConfig {
  port: number;
  host: string;
  /** External PostgreSQL; when absent an embedded server runs under `<dataDir>/postgres`. */
  databaseUrl?: string;
  dataDir: string;
  /** Where runs' working directories are made (TENANCY_RUN_DIR); absent: chosen (automation/git/runRoot.ts). */
  runDir?: string;
  stripeWebhookSecret: string;
  /** The git working copy holding Pulumi.yaml, tenants/ and stacks/. */
  repoDir: string;
  /**
   * TENANCY_REPO_DIR unset: repoDir is the control plane's own clone (TENANCY_DATA_DIR/working-copy)
   * of this project, made on first start (automation/git/workingCopy.ts).
   */
  cloneWorkingCopyFrom?: string;
  priceTiers: PriceTiers;
  /** The keys in force at start-up; reloaded from apiKeysFile on SIGHUP and on change. */
  apiKeys: readonly ApiKeyRecord[];
  /** TENANCY_API_KEYS, absolute; absent: the keys are never reloaded (tests). */
  apiKeysFile?: string;
  /** The HTTP server's limits, the offboarding grace minimum, the metrics listener (automation/http/settings.ts). */
  http: HttpSettings;
  /** A directory holding bin/pulumi; default the `pulumi` on PATH. */
  pulumiRoot?: string;
  maxParallelRuns: number;
  /** The regions whose stack runs this process's workers take (TENANCY_WORKER_REGIONS); absent: every platform region. */
  workerRegions?: readonly string[];
  runner: RunnerKind;
  deployments?: DeploymentsSettings;
  git: {
    /** Remote pulled from and pushed to; absent (the default): the control plane never pushes. */
    remote?: string;
    /** Branch the working copy has checked out and pooled changes commit to; default: the checked-out branch. */
    branch?: string;
    author: { name: string; email: string };
  };
  github?: GitHubSettings;
  unpaidGraceHours: number;
  runExpireHours: number;
  heartbeatSeconds: number;
  heartbeatTimeoutSeconds: number;
  updateRetries: number;
  updateRetryBaseMs: number;
  shutdownGraceSeconds: number;
  logLevel: string;
  /** Scheduled drift detection; absent: off (TENANCY_DRIFT_PERIOD_HOURS=0). */
  drift?: DriftSettings;
  /** The lifecycle worker (TENANCY_LIFECYCLE_WORKER on); absent: not started. */
  lifecycle?: LifecycleSettings;
  /** The config file that was read, if any. */
  configFile?: string;
}

export interface SettingDoc {
  name: string;
  required: boolean | string;
  default: string;
  meaning: string;
}

/** The settings, in the order docs/control-plane.md documents them. */
export const SETTINGS: readonly SettingDoc[] = [
  { name: "PORT", required: false, default: String(DEFAULT_PORT), meaning: "HTTP port; 0: one the system chooses, given in the `listening` log line." },
  { name: "HOST", required: false, default: DEFAULT_HOST, meaning: "Address the HTTP server binds." },
  { name: "DATABASE_URL", required: false, default: "embedded PostgreSQL under TENANCY_DATA_DIR/postgres", meaning: "PostgreSQL connection string (events, subscriptions, changes, runs, pg-boss jobs)." },
  { name: "STRIPE_WEBHOOK_SECRET", required: true, default: "-", meaning: "Signing secret of the Stripe webhook endpoint (`whsec_...`)." },
  { name: "TENANCY_REPO_DIR", required: false, default: "a clone of the project under TENANCY_DATA_DIR/working-copy, made on first start", meaning: "Git working copy holding Pulumi.yaml, tenants/ and stacks/; the control plane commits to its checked-out branch." },
  { name: "TENANCY_PRICE_TIERS", required: true, default: "-", meaning: "YAML/JSON file mapping Stripe price ids to tiers." },
  { name: "TENANCY_API_KEYS", required: true, default: "-", meaning: "YAML/JSON file of hashed internal API keys (`npm run control-plane -- hash-api-key NAME` makes one)." },
  { name: "TENANCY_PULUMI_ROOT", required: false, default: "`pulumi` on PATH", meaning: "Directory holding `bin/pulumi`, used as the Automation API's CLI." },
  { name: "TENANCY_MAX_PARALLEL_RUNS", required: false, default: String(DEFAULT_MAX_PARALLEL_RUNS), meaning: "Stack updates running at once in this process per region served (never two of one stack)." },
  { name: "TENANCY_WORKER_REGIONS", required: false, default: "every platform region", meaning: "Comma-separated regions whose stack runs this process takes, or `none`. Production: one runner service per region with its own region (only it reaches that region's databases), the control plane's service `none`." },
  { name: "TENANCY_DATA_DIR", required: false, default: DEFAULT_DATA_DIR, meaning: "Embedded PostgreSQL data, the runs' exported git trees and each process's temporary directory (work/; removed at stop and after a crash) (gitignored)." },
  { name: "TENANCY_RUN_DIR", required: false, default: "a tmpfs: `$RUNTIME_DIRECTORY` (systemd), else /dev/shm; else TENANCY_DATA_DIR/trees", meaning: "Where each run's working directory is made (links into the run's shared export of its commit, and the stack config files the Pulumi CLI may write); made anew for every attempt, so a memory file system serves best." },
  { name: "TENANCY_CONFIG", required: false, default: DEFAULT_CONFIG_FILE, meaning: "Config file with any of these settings (`NAME: value`); the environment wins." },
  { name: "TENANCY_RUNNER", required: false, default: "local", meaning: "`local` (Automation API LocalWorkspace on this host) or `deployments` (Pulumi Deployments via RemoteWorkspace)." },
  { name: "TENANCY_DEPLOYMENTS_ORG", required: "with deployments", default: "-", meaning: "Pulumi Cloud organization of the stacks." },
  { name: "TENANCY_DEPLOYMENTS_PROJECT", required: false, default: "saas-tenancy", meaning: "Pulumi project name." },
  { name: "TENANCY_DEPLOYMENTS_REPO_URL", required: "with deployments", default: "-", meaning: "Git URL Deployments clones (the control plane pushes its commits there)." },
  { name: "TENANCY_DEPLOYMENTS_PROJECT_PATH", required: false, default: "repository root", meaning: "Directory of Pulumi.yaml inside that repository." },
  { name: "GITHUB_TOKEN", required: false, default: "-", meaning: "Token allowed to open pull requests; with TENANCY_GITHUB_REPO, dedicated changes open a PR." },
  { name: "TENANCY_GITHUB_REPO", required: "with GITHUB_TOKEN", default: "-", meaning: "`owner/name` of the repository for pull requests." },
  { name: "TENANCY_GITHUB_API_URL", required: false, default: DEFAULT_GITHUB_API_URL, meaning: "GitHub REST API base (GitHub Enterprise: `https://HOST/api/v3`)." },
  { name: "TENANCY_GIT_REMOTE", required: "with deployments", default: "none: nothing is pulled or pushed", meaning: "Remote pulled before and pushed after changes (when the working copy has it). Unset, the control plane never pushes." },
  { name: "TENANCY_GIT_BRANCH", required: false, default: "the checked-out branch", meaning: "Main branch: pooled changes commit here; the working copy must have it checked out." },
  { name: "TENANCY_GIT_AUTHOR", required: false, default: DEFAULT_GIT_AUTHOR, meaning: "Author and committer of the control plane's commits, `Name <email>`." },
  { name: "TENANCY_UNPAID_GRACE_HOURS", required: false, default: String(DEFAULT_UNPAID_GRACE_HOURS), meaning: "Hours a subscription may be past_due/unpaid before its tenant is suspended (decimals allowed)." },
  { name: "TENANCY_RUN_EXPIRE_HOURS", required: false, default: String(DEFAULT_RUN_EXPIRE_HOURS), meaning: "pg-boss expiry of a stack-run job (1-23); longer than an RDS creation." },
  { name: "TENANCY_HEARTBEAT_SECONDS", required: false, default: String(DEFAULT_HEARTBEAT_SECONDS), meaning: "Interval of a running run's heartbeat (also how often cancellation is noticed)." },
  { name: "TENANCY_HEARTBEAT_TIMEOUT_SECONDS", required: false, default: String(DEFAULT_HEARTBEAT_TIMEOUT_SECONDS), meaning: "A run without a heartbeat for this long is taken over by another worker." },
  { name: "TENANCY_UPDATE_RETRIES", required: false, default: String(DEFAULT_UPDATE_RETRIES), meaning: "Retries of `pulumi up` on ConcurrentUpdateError, with exponential backoff." },
  { name: "TENANCY_UPDATE_RETRY_BASE_MS", required: false, default: String(DEFAULT_UPDATE_RETRY_BASE_MS), meaning: "First backoff delay of those retries." },
  { name: "TENANCY_SHUTDOWN_GRACE_SECONDS", required: false, default: String(DEFAULT_SHUTDOWN_GRACE_SECONDS), meaning: "On SIGTERM, how long running updates may finish before they are interrupted." },
  { name: "LOG_LEVEL", required: false, default: "info", meaning: "pino log level." },
  ...LIFECYCLE_SETTING_DOCS,
  ...HTTP_SETTING_DOCS,
  ...DRIFT_SETTING_DOCS,
];

/** Every problem with the settings, one line each, naming the setting. */
export class ConfigError extends Error {
  constructor(readonly lines: readonly string[]) {
    super(lines.join("\n"));
  }
}

type Source = Readonly<Record<string, string | undefined>>;

export interface LoadConfigOptions {
  env?: Source;
  cwd?: string;
  /** Default of TENANCY_REPO_DIR: the project this file belongs to. */
  projectDir?: string;
}

function readConfigFile(path: string, lines: string[]): Record<string, string> {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, "utf8"));
  } catch (err) {
    lines.push(`TENANCY_CONFIG: cannot read ${path}: ${(err as Error).message.split("\n")[0]}`);
    return {};
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    lines.push(`TENANCY_CONFIG: ${path} must be a mapping of SETTING: value`);
    return {};
  }
  const known = new Set(SETTINGS.map((s) => s.name));
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (!known.has(key)) {
      lines.push(`TENANCY_CONFIG: ${path}: unknown setting ${key}; known settings: ${[...known].join(", ")}`);
      continue;
    }
    if (value === null || value === undefined) continue;
    if (typeof value === "object") {
      lines.push(`${key}: in ${path} must be a string or number`);
      continue;
    }
    out[key] = String(value);
  }
  return out;
}

/** Reads and checks every setting; throws ConfigError listing all problems at once. */
export function loadConfig(opts: LoadConfigOptions = {}): ControlPlaneConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const lines: string[] = [];
  const explicitFile = env.TENANCY_CONFIG;
  const configFile = explicitFile ? resolve(cwd, explicitFile) : resolve(cwd, DEFAULT_CONFIG_FILE);
  let file: Record<string, string> = {};
  let usedFile: string | undefined;
  if (existsSync(configFile)) {
    file = readConfigFile(configFile, lines);
    usedFile = configFile;
  } else if (explicitFile) {
    lines.push(`TENANCY_CONFIG: ${configFile} does not exist`);
  }
  const where = usedFile ? `the environment or ${usedFile}` : `the environment (or a config file, TENANCY_CONFIG)`;
  const get = (name: string): string | undefined => {
    const v = env[name] ?? file[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const required = (name: string, why = ""): string => {
    const v = get(name);
    if (v === undefined) lines.push(`${name}: missing required setting${why}; set it in ${where}`);
    return v ?? "";
  };
  const read = new SettingsReader(get, lines);
  const path = (v: string) => (isAbsolute(v) ? v : resolve(cwd, v));

  const port = read.int("PORT", DEFAULT_PORT, 0, 65535);
  const host = get("HOST") ?? DEFAULT_HOST;
  const databaseUrl = get("DATABASE_URL");
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    lines.push(`DATABASE_URL: must be a postgres:// or postgresql:// URL`);
  }
  const stripeWebhookSecret = required("STRIPE_WEBHOOK_SECRET", " (the endpoint's signing secret, whsec_...)");
  const dataDir = path(get("TENANCY_DATA_DIR") ?? DEFAULT_DATA_DIR);
  const runDirRaw = get("TENANCY_RUN_DIR");
  // Never the project's own checkout by default: commits would land on the branch a person has
  // checked out. Without TENANCY_REPO_DIR the control plane works in its own clone.
  const repoRaw = get("TENANCY_REPO_DIR");
  const cloneWorkingCopyFrom = repoRaw ? undefined : (opts.projectDir ?? cwd);
  const repoDir = repoRaw ? path(repoRaw) : join(dataDir, WORKING_COPY_DIR);
  const projectFiles = cloneWorkingCopyFrom ?? repoDir;
  if (!existsSync(resolve(projectFiles, "Pulumi.yaml"))) {
    lines.push(
      repoRaw
        ? `TENANCY_REPO_DIR: ${repoDir} has no Pulumi.yaml; point it at the git working copy holding Pulumi.yaml, tenants/ and stacks/`
        : `TENANCY_REPO_DIR: not set, and the project ${projectFiles} it would clone has no Pulumi.yaml; set it to the git working copy holding Pulumi.yaml, tenants/ and stacks/`,
    );
  }

  let priceTiers: PriceTiers = new Map();
  const priceFile = required("TENANCY_PRICE_TIERS", " (YAML/JSON map of Stripe price id to tier)");
  if (priceFile) {
    try {
      priceTiers = loadPriceTiers(path(priceFile));
    } catch (err) {
      lines.push(`TENANCY_PRICE_TIERS: ${(err as Error).message}`);
    }
  }
  let apiKeys: ApiKeyRecord[] = [];
  const keysFile = required("TENANCY_API_KEYS", " (YAML/JSON file of hashed API keys)");
  if (keysFile) {
    try {
      apiKeys = loadApiKeys(path(keysFile));
    } catch (err) {
      lines.push(`TENANCY_API_KEYS: ${(err as Error).message}`);
    }
  }

  const pulumiRootRaw = get("TENANCY_PULUMI_ROOT");
  const pulumiRoot = pulumiRootRaw ? path(pulumiRootRaw) : undefined;
  if (pulumiRoot && !existsSync(resolve(pulumiRoot, "bin", "pulumi"))) {
    lines.push(`TENANCY_PULUMI_ROOT: ${pulumiRoot}/bin/pulumi does not exist; point it at a Pulumi CLI installation root`);
  }

  const runner = read.choice<RunnerKind>("TENANCY_RUNNER", "local", RUNNER_KINDS);
  let deployments: DeploymentsSettings | undefined;
  if (runner === "deployments") {
    const org = required("TENANCY_DEPLOYMENTS_ORG", " when TENANCY_RUNNER=deployments");
    const repoUrl = required("TENANCY_DEPLOYMENTS_REPO_URL", " when TENANCY_RUNNER=deployments");
    const projectPath = get("TENANCY_DEPLOYMENTS_PROJECT_PATH");
    deployments = { org, repoUrl, project: get("TENANCY_DEPLOYMENTS_PROJECT") ?? "saas-tenancy", ...(projectPath ? { projectPath } : {}) };
  }

  const token = get("GITHUB_TOKEN");
  let github: GitHubSettings | undefined;
  if (token) {
    const repo = required("TENANCY_GITHUB_REPO", " when GITHUB_TOKEN is set");
    if (repo && !/^[\w.-]+\/[\w.-]+$/.test(repo)) lines.push(`TENANCY_GITHUB_REPO: must be owner/name, got ${JSON.stringify(repo)}`);
    github = { token, repo, apiUrl: (get("TENANCY_GITHUB_API_URL") ?? DEFAULT_GITHUB_API_URL).replace(/\/+$/, "") };
  }

  const authorRaw = get("TENANCY_GIT_AUTHOR") ?? DEFAULT_GIT_AUTHOR;
  const author = /^(.+?)\s*<([^<>\s]+@[^<>\s]+)>$/.exec(authorRaw);
  if (!author) lines.push(`TENANCY_GIT_AUTHOR: must look like "Name <email>", got ${JSON.stringify(authorRaw)}`);
  const branch = get("TENANCY_GIT_BRANCH");
  // Never push by default: a person trying the control plane on their own clone must not see
  // commits pushed to their remote. Deployments clones the repository, so it needs the push.
  const gitRemote = get("TENANCY_GIT_REMOTE");
  if (runner === "deployments" && !gitRemote) {
    lines.push("TENANCY_GIT_REMOTE: missing required setting when TENANCY_RUNNER=deployments (Deployments clones TENANCY_DEPLOYMENTS_REPO_URL, so commits must be pushed there); set it to the working copy's remote for that URL");
  }

  const heartbeatSeconds = read.number("TENANCY_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS, 0.05);
  const heartbeatTimeoutSeconds = read.number("TENANCY_HEARTBEAT_TIMEOUT_SECONDS", DEFAULT_HEARTBEAT_TIMEOUT_SECONDS, 0.1);
  if (heartbeatTimeoutSeconds <= heartbeatSeconds * 2) {
    lines.push(`TENANCY_HEARTBEAT_TIMEOUT_SECONDS: must be more than twice TENANCY_HEARTBEAT_SECONDS (${heartbeatSeconds}), got ${heartbeatTimeoutSeconds}`);
  }

  // The workflow settings are read once, also with the worker off: the API's default grace is theirs.
  const lifecycle = lifecycleSettingsFrom(get, lines, path, required);
  const workflows = lifecycle.settings?.workflows ?? lifecycle.workflows;

  const drift = driftSettingsFrom(get, lines);
  let workerRegions: string[] | undefined;
  const workerRegionsValue = get("TENANCY_WORKER_REGIONS");
  if (workerRegionsValue !== undefined && existsSync(resolve(projectFiles, "Pulumi.yaml"))) {
    try {
      workerRegions = parseWorkerRegions(workerRegionsValue, loadPlatform(projectFiles).regions);
    } catch (err) {
      lines.push((err as Error).message);
    }
  }
  const config: ControlPlaneConfig = {
    port,
    host,
    ...(databaseUrl ? { databaseUrl } : {}),
    dataDir,
    ...(runDirRaw ? { runDir: path(runDirRaw) } : {}),
    stripeWebhookSecret,
    repoDir,
    ...(cloneWorkingCopyFrom ? { cloneWorkingCopyFrom } : {}),
    priceTiers,
    apiKeys,
    ...(keysFile ? { apiKeysFile: path(keysFile) } : {}),
    http: httpSettingsFrom(get, lines, workflows.graceDays),
    ...(pulumiRoot ? { pulumiRoot } : {}),
    maxParallelRuns: read.int("TENANCY_MAX_PARALLEL_RUNS", DEFAULT_MAX_PARALLEL_RUNS, 1, 64),
    ...(workerRegions ? { workerRegions } : {}),
    runner,
    ...(deployments ? { deployments } : {}),
    git: {
      ...(gitRemote ? { remote: gitRemote } : {}),
      ...(branch ? { branch } : {}),
      author: { name: author?.[1] ?? "", email: author?.[2] ?? "" },
    },
    ...(github ? { github } : {}),
    unpaidGraceHours: read.number("TENANCY_UNPAID_GRACE_HOURS", DEFAULT_UNPAID_GRACE_HOURS, 0),
    runExpireHours: read.int("TENANCY_RUN_EXPIRE_HOURS", DEFAULT_RUN_EXPIRE_HOURS, 1, 23),
    heartbeatSeconds,
    heartbeatTimeoutSeconds,
    updateRetries: read.int("TENANCY_UPDATE_RETRIES", DEFAULT_UPDATE_RETRIES, 0, 100),
    updateRetryBaseMs: read.int("TENANCY_UPDATE_RETRY_BASE_MS", DEFAULT_UPDATE_RETRY_BASE_MS, 1, 3_600_000),
    shutdownGraceSeconds: read.int("TENANCY_SHUTDOWN_GRACE_SECONDS", DEFAULT_SHUTDOWN_GRACE_SECONDS, 0, 86_400),
    logLevel: get("LOG_LEVEL") ?? "info",
    ...(lifecycle.settings ? { lifecycle: lifecycle.settings } : {}),
    ...(drift ? { drift } : {}),
    ...(usedFile ? { configFile: usedFile } : {}),
  };
  if (lines.length > 0) throw new ConfigError(lines);
  return config;
}
