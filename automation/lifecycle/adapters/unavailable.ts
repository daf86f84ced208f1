/**
 * Ports used when the AWS adapters are off (TENANCY_LIFECYCLE_AWS not on; docs/lifecycle.md, "AWS
 * adapters": S3 for the final dumps, RDS snapshots and deletion protection, Secrets Manager
 * deletion). The control plane wires these instead, so a step that needs one fails at once (PermanentError: retrying cannot
 * help until the control plane is given the adapter) with a message naming what is missing and
 * what to set. They never pretend: nothing is recorded as done, no backup is claimed.
 */
import { PermanentError } from "../engine/engine.ts";
import type { BackupStore, DatabaseLocator, DatabaseSnapshots, SecretsManager } from "../ports.ts";

/** A lifecycle step needs an adapter this control plane does not have. */
export class MissingAdapterError extends PermanentError {
  constructor(readonly port: string, message: string) {
    super(message);
  }
}

export const BACKUP_DIR_SETTING = "TENANCY_LIFECYCLE_BACKUP_DIR";

/** BackupStore without the S3 adapter: a final dump has nowhere to go. */
export function unavailableBackupStore(): BackupStore {
  const error = () =>
    new MissingAdapterError(
      "BackupStore",
      `this step writes a final backup (schema dump or object copy) to the cell bucket, but the S3 BackupStore adapter is off (TENANCY_LIFECYCLE_AWS) and ${BACKUP_DIR_SETTING} is not set; ` +
        `set ${BACKUP_DIR_SETTING} to a directory standing in for the cell buckets (a local directory, not S3) and retry the workflow, or set TENANCY_LIFECYCLE_AWS: on`,
    );
  return {
    check: async (bucket) => {
      throw new MissingAdapterError(
        "BackupStore",
        `final schema dumps of cell ${bucket.cell} (${bucket.env}) have nowhere to go: the S3 BackupStore adapter is off (TENANCY_LIFECYCLE_AWS) and ${BACKUP_DIR_SETTING} is not set; ` +
          `set TENANCY_LIFECYCLE_AWS: on (the cell buckets), or ${BACKUP_DIR_SETTING} to a directory standing in for them (a local directory, not S3)`,
      );
    },
    put: async (_bucket, _key, body) => {
      const err = error();
      // Nobody will read the dump: end its stream so the writer stops too.
      body.destroy(err);
      throw err;
    },
    stat: async () => {
      throw error();
    },
    copyObjects: async () => {
      throw error();
    },
    purgeObjects: async () => {
      throw error();
    },
  };
}

export const DATABASES_SETTING = "TENANCY_LIFECYCLE_DATABASES";

/**
 * DatabaseLocator with neither the TENANCY_LIFECYCLE_DATABASES file nor the Secrets Manager
 * adapter: the worker still runs (the quick start's embedded defaults), and a step that must
 * connect to a cell or dedicated database fails at once naming what to set.
 */
export function unavailableDatabases(): DatabaseLocator {
  const refuse = (what: string) =>
    new MissingAdapterError(
      "DatabaseLocator",
      `this step connects to ${what} as its master user, but the control plane knows no connection for it: ${DATABASES_SETTING} is not set and TENANCY_LIFECYCLE_AWS is off; ` +
        `set ${DATABASES_SETTING} to a JSON file mapping stack names to postgres:// URLs, or TENANCY_LIFECYCLE_AWS: on (connection documents in Secrets Manager), and retry the workflow`,
    );
  return {
    cell: async (env, cell) => {
      throw refuse(`the database of cell ${cell} (${env})`);
    },
    dedicated: async (tenant, env) => {
      throw refuse(`the dedicated database of ${tenant} (${env})`);
    },
  };
}

/** DatabaseSnapshots without the RDS adapter: no final snapshot can be taken, so nothing may be destroyed. */
export function unavailableSnapshots(): DatabaseSnapshots {
  const refuse = (what: string) => async (): Promise<never> => {
    throw new MissingAdapterError(
      "DatabaseSnapshots",
      `this step needs RDS (${what}), but the DatabaseSnapshots adapter (CreateDBSnapshot + CopyDBSnapshot, ModifyDBInstance) is off (TENANCY_LIFECYCLE_AWS); ` +
        `no snapshot was requested and nothing was deleted; set TENANCY_LIFECYCLE_AWS: on (and TENANCY_LIFECYCLE_BACKUP_KMS_KEY) and retry the workflow`,
    );
  };
  return {
    check: async (instance: string, region: string): Promise<never> => {
      throw new MissingAdapterError(
        "DatabaseSnapshots",
        `no final RDS snapshot of ${instance} (${region}) can be taken: the DatabaseSnapshots adapter (CreateDBSnapshot + CopyDBSnapshot, ModifyDBInstance) is off (TENANCY_LIFECYCLE_AWS); ` +
          `set TENANCY_LIFECYCLE_AWS: on and TENANCY_LIFECYCLE_BACKUP_KMS_KEY`,
      );
    },
    request: refuse("a final snapshot"), state: refuse("a snapshot's state"), disableDeletionProtection: refuse("turning deletion protection off"),
  };
}

/** SecretsManager without the AWS adapter: no secret is scheduled for deletion. */
export function unavailableSecrets(): SecretsManager {
  return {
    check: async (region: string): Promise<never> => {
      throw new MissingAdapterError(
        "SecretsManager",
        `the tenant's secrets (${region}) cannot be scheduled for deletion: the SecretsManager adapter (DeleteSecret with a recovery window) is off (TENANCY_LIFECYCLE_AWS); ` +
          `set TENANCY_LIFECYCLE_AWS: on`,
      );
    },
    scheduleDeletion: async (name: string): Promise<never> => {
      throw new MissingAdapterError(
        "SecretsManager",
        `this step schedules the deletion of secret ${name}, but the SecretsManager adapter (DeleteSecret with a recovery window) is off (TENANCY_LIFECYCLE_AWS); ` +
          `no secret was scheduled for deletion; set TENANCY_LIFECYCLE_AWS: on and retry the workflow, or delete the secrets by hand`,
      );
    },
    current: async (name: string) => refuseRotation(name),
    version: async (name: string) => refuseRotation(name),
    putPending: async (name: string) => refuseRotation(name),
    promote: async (name: string) => refuseRotation(name),
  };
}

function refuseRotation(name: string): never {
  throw new MissingAdapterError(
    "SecretsManager",
    `this step reads or writes a version of secret ${name} (credential rotation), but the SecretsManager adapter is off (TENANCY_LIFECYCLE_AWS); ` +
      `no version was written and no password changed; set TENANCY_LIFECYCLE_AWS: on and retry the workflow`,
  );
}
