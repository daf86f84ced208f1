/**
 * The lifecycle worker's settings (docs/control-plane.md): whether it runs, how it reaches the
 * tenant databases, where final backups go, the AWS adapters, and the workflow settings of
 * config.ts. automation/config.ts composes them with the rest.
 */
import { existsSync, readFileSync } from "node:fs";
import { SettingsReader, readSwitch, type SettingSource } from "../settings/read.ts";
import { DatabaseFileError, JsonFileDatabaseLocator } from "./adapters/databases.ts";
import { LIFECYCLE_CONFIG_DOCS, lifecycleConfigFrom, type LifecycleConfig } from "./config.ts";

/** How often the lifecycle worker looks for due workflows. */
export const DEFAULT_LIFECYCLE_INTERVAL_SECONDS = 30;

/** The lifecycle worker's settings; absent from ControlPlaneConfig when the worker is off. */
export interface LifecycleSettings {
  /**
   * JSON file mapping stack names to master-user connection strings (JsonFileDatabaseLocator).
   * Required with TENANCY_LIFECYCLE_AWS off; with it on, the connection documents come from
   * Secrets Manager (SecretsManagerDatabaseLocator) unless this file is given (it wins).
   */
  databasesFile?: string;
  /** PEM bundle of the RDS CAs the Secrets Manager connections verify the servers against. */
  dbCaFile?: string;
  /** Directory standing in for the cell buckets (DirectoryBucketStore); absent: dump steps fail naming the missing S3 adapter. */
  backupDir?: string;
  /** TENANCY_LIFECYCLE_AWS on: the S3, RDS and Secrets Manager adapters (absent: those steps fail naming what is missing). */
  aws?: LifecycleAwsSettings;
  intervalSeconds: number;
  workflows: LifecycleConfig;
}

/** The AWS adapters of the lifecycle ports (automation/lifecycle/adapters/{s3Backups,rdsSnapshots,secretsManager}.ts). */
export interface LifecycleAwsSettings {
  /** Platform KMS key the final RDS snapshots are copied under (ARN, alias or key id). */
  backupKmsKey: string;
  /** Seconds a snapshot request waits for the snapshot with the SDK waiter (0: the workflow polls). */
  snapshotWaitSeconds: number;
}

export const LIFECYCLE_SETTING_DOCS = [
  { name: "TENANCY_LIFECYCLE_WORKER", required: false, default: "on", meaning: "`on` runs the lifecycle workflows (upgrade, suspension, offboarding) in this process; `off` leaves recorded workflows pending." },
  { name: "TENANCY_LIFECYCLE_DATABASES", required: false, default: "none: with TENANCY_LIFECYCLE_AWS off, steps that connect to a tenant database fail naming this setting", meaning: "JSON file mapping stack names to master-user connection strings of the cell and dedicated databases; with TENANCY_LIFECYCLE_AWS on it overrides the connection documents in Secrets Manager." },
  { name: "TENANCY_LIFECYCLE_DB_CA_FILE", required: false, default: "-", meaning: "PEM bundle of the RDS certificate authorities (AWS's global-bundle.pem) the Secrets Manager connections verify the database servers against." },
  { name: "TENANCY_LIFECYCLE_BACKUP_DIR", required: false, default: "-", meaning: "Directory standing in for the cell buckets (final dumps); without it, and without an S3 adapter, dump steps fail." },
  { name: "TENANCY_LIFECYCLE_AWS", required: false, default: "off", meaning: "`on`: the lifecycle steps use S3 (final dumps), RDS (final snapshots, deletion protection) and Secrets Manager (secret deletion) with the SDK's default credentials; `off`: those steps fail naming the missing adapter." },
  { name: "TENANCY_LIFECYCLE_BACKUP_KMS_KEY", required: "with TENANCY_LIFECYCLE_AWS on", default: "-", meaning: "Platform KMS key (alias present in every region, or key ARN) the final RDS snapshots are copied under." },
  { name: "TENANCY_LIFECYCLE_SNAPSHOT_WAIT_SECONDS", required: false, default: "0", meaning: "How long a snapshot request waits for the snapshot with the SDK waiter (0: the workflow polls)." },
  { name: "TENANCY_LIFECYCLE_INTERVAL_SECONDS", required: false, default: String(DEFAULT_LIFECYCLE_INTERVAL_SECONDS), meaning: "How often the lifecycle worker runs due workflows." },
  ...LIFECYCLE_CONFIG_DOCS,
] as const;

export interface LifecycleSettingsRead {
  /** Absent when the worker is off (or its switch is malformed: that line is reported). */
  settings?: LifecycleSettings;
  /** The workflow settings, read either way (the HTTP API's default grace is theirs). */
  workflows: LifecycleConfig;
}

/**
 * Reads the settings above; each problem is pushed to `lines` naming the setting. `path` resolves
 * a file setting against the working directory; `required` reads a setting that must be there
 * (and records the line saying where to set it).
 */
export function lifecycleSettingsFrom(
  get: SettingSource,
  lines: string[],
  path: (value: string) => string,
  required: (name: string, why: string) => string,
): LifecycleSettingsRead {
  const read = new SettingsReader(get, lines);
  // A malformed switch reads as neither: its line is reported, and nothing that depends on it.
  const lifecycleWorker = read.or((g) => readSwitch(g, "TENANCY_LIFECYCLE_WORKER", true), undefined);
  if (lifecycleWorker === true) {
    const awsOn = read.or((g) => readSwitch(g, "TENANCY_LIFECYCLE_AWS", false), undefined);
    // With the AWS adapters on, the connection documents come from Secrets Manager; the file, when
    // given, still wins (an operator's override). With neither the worker still starts (the quick
    // start's defaults): steps that connect to a tenant database fail naming both settings.
    const databasesRaw = get("TENANCY_LIFECYCLE_DATABASES");
    const databasesFile = databasesRaw ? path(databasesRaw) : "";
    if (databasesFile) {
      try {
        new JsonFileDatabaseLocator(databasesFile);
      } catch (err) {
        if (!(err instanceof DatabaseFileError)) throw err;
        lines.push(`TENANCY_LIFECYCLE_DATABASES: ${err.message}`);
      }
    }
    const caRaw = get("TENANCY_LIFECYCLE_DB_CA_FILE");
    const dbCaFile = caRaw ? path(caRaw) : undefined;
    if (dbCaFile) {
      let pem = "";
      try {
        pem = readFileSync(dbCaFile, "utf8");
      } catch (err) {
        lines.push(`TENANCY_LIFECYCLE_DB_CA_FILE: ${dbCaFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); download the RDS CA bundle (global-bundle.pem) there or unset the setting`);
      }
      if (pem && !pem.includes("-----BEGIN CERTIFICATE-----")) lines.push(`TENANCY_LIFECYCLE_DB_CA_FILE: ${dbCaFile} holds no PEM certificate`);
    }
    const backupRaw = get("TENANCY_LIFECYCLE_BACKUP_DIR");
    const backupDir = backupRaw ? path(backupRaw) : undefined;
    if (backupDir && !existsSync(backupDir)) lines.push(`TENANCY_LIFECYCLE_BACKUP_DIR: ${backupDir} does not exist; create it or unset the setting`);
    let aws: LifecycleAwsSettings | undefined;
    if (awsOn === true) {
      if (backupDir) lines.push("TENANCY_LIFECYCLE_BACKUP_DIR: not with TENANCY_LIFECYCLE_AWS on (final dumps go to the cell buckets); unset one of them");
      const backupKmsKey = required("TENANCY_LIFECYCLE_BACKUP_KMS_KEY", " when TENANCY_LIFECYCLE_AWS is on (the platform KMS key final RDS snapshots are copied under: alias/... present in every region, or a key ARN)");
      if (backupKmsKey && !/^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:alias\/.+|alias\/.+|[0-9a-f-]{36}|mrk-[0-9a-f]{32})$/.test(backupKmsKey)) {
        lines.push(`TENANCY_LIFECYCLE_BACKUP_KMS_KEY: ${JSON.stringify(backupKmsKey)} is not a KMS key ARN, alias (alias/...) or key id`);
      }
      aws = { backupKmsKey, snapshotWaitSeconds: read.int("TENANCY_LIFECYCLE_SNAPSHOT_WAIT_SECONDS", 0, 0, 3600) };
    }
    const workflows = lifecycleConfigFrom(get, lines);
    const settings: LifecycleSettings = {
      ...(databasesFile ? { databasesFile } : {}),
      ...(dbCaFile ? { dbCaFile } : {}),
      ...(backupDir ? { backupDir } : {}),
      ...(aws ? { aws } : {}),
      intervalSeconds: read.number("TENANCY_LIFECYCLE_INTERVAL_SECONDS", DEFAULT_LIFECYCLE_INTERVAL_SECONDS, 0.05),
      workflows,
    };
    return { settings, workflows };
  }
  return { workflows: lifecycleConfigFrom(get, lines) };
}
