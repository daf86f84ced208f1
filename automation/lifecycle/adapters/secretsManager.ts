/**
 * SecretsManager on AWS Secrets Manager (AWS SDK for JavaScript v3). Not run against AWS here:
 * the tests drive it through real SDK clients whose requests are answered in-process.
 *
 * `scheduleDeletion(name)` finds the secret by exact name with ListSecrets (name filter, which
 * matches prefixes, so every page is read; IncludePlannedDeletion so a secret already scheduled is
 * seen) and deletes it by ARN with DeleteSecret + RecoveryWindowInDays. By ARN because a name
 * ending in `-xxxxxx` would otherwise be taken for a partial ARN. Never ForceDeleteWithoutRecovery.
 * Idempotent: already scheduled (also by Pulumi deleting the resource) or absent is reported.
 * `check` (a workflow's preflight) lists one secret of the region: credentials and
 * secretsmanager:ListSecrets work there. It reads no secret value and deletes nothing.
 *
 * Versions (credential rotation): `current`/`version` are GetSecretValue by stage or version id,
 * `putPending` is PutSecretValue with the version id as ClientRequestToken and only the AWSPENDING
 * stage, `promote` is DescribeSecret (which version holds AWSCURRENT) then UpdateSecretVersionStage
 * moving AWSCURRENT (AWS itself then labels the former version AWSPREVIOUS) and removing
 * AWSPENDING. https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_how.html
 * These address the secret by name: connection documents end in `/database`, never in the
 * `-xxxxxx` that would make a name read as a partial ARN.
 */
import {
  DeleteSecretCommand, DescribeSecretCommand, GetSecretValueCommand, ListSecretsCommand, paginateListSecrets, PutSecretValueCommand, SecretsManagerClient,
  UpdateSecretVersionStageCommand, type SecretListEntry,
} from "@aws-sdk/client-secrets-manager";
import { PermanentError } from "../engine/engine.ts";
import type { SecretDeletion, SecretsManager, SecretVersionText } from "../ports.ts";
import { awsErrorName, translateAwsError } from "./awsErrors.ts";
import { RegionalClients } from "./regionalClients.ts";

export interface SecretsManagerOptions {
  /** The Secrets Manager client of a region (tests inject clients whose requests never leave the process). */
  client?: (region: string) => SecretsManagerClient;
  /** ListSecrets page size (1-100). */
  pageSize?: number;
}

export class AwsSecretsManager implements SecretsManager {
  private readonly clients = new RegionalClients<SecretsManagerClient>();
  constructor(private readonly opts: SecretsManagerOptions = {}) {}

  private client(region: string): SecretsManagerClient {
    return this.clients.get(region, (r) => (this.opts.client ? this.opts.client(r) : new SecretsManagerClient({ region: r })));
  }

  async check(region: string): Promise<string> {
    try {
      await this.client(region).send(new ListSecretsCommand({ MaxResults: 1 }));
    } catch (err) {
      throw translateAwsError(err, `ListSecrets (${region})`, "nothing was changed");
    }
    return `Secrets Manager ${region}: DeleteSecret with a recovery window`;
  }

  /** The secret named exactly `name` (scheduled for deletion or not), or undefined. */
  async find(name: string, region: string): Promise<SecretListEntry | undefined> {
    try {
      const pages = paginateListSecrets(
        { client: this.client(region), pageSize: this.opts.pageSize ?? 100 },
        { Filters: [{ Key: "name", Values: [name] }], IncludePlannedDeletion: true },
      );
      for await (const page of pages) {
        const hit = page.SecretList?.find((s) => s.Name === name);
        if (hit) return hit;
      }
      return undefined;
    } catch (err) {
      throw translateAwsError(err, `ListSecrets name=${name} (${region})`, "no secret was scheduled for deletion");
    }
  }

  async scheduleDeletion(name: string, region: string, recoveryWindowDays: number): Promise<SecretDeletion> {
    if (!Number.isInteger(recoveryWindowDays) || recoveryWindowDays < 7 || recoveryWindowDays > 30) {
      throw new PermanentError(`recovery window ${recoveryWindowDays} days: Secrets Manager allows 7 to 30; secret ${name} was not scheduled for deletion`);
    }
    const found = await this.find(name, region);
    if (!found?.ARN) return { name, state: "absent" };
    // DeletedDate is when the deletion was asked for, not when it happens: the latter is not reported.
    if (found.DeletedDate) return { name, state: "already-scheduled" };
    try {
      const out = await this.client(region).send(new DeleteSecretCommand({ SecretId: found.ARN, RecoveryWindowInDays: recoveryWindowDays }));
      return { name, state: "scheduled", ...scheduledFor(out.DeletionDate) };
    } catch (err) {
      const n = awsErrorName(err);
      if (n === "ResourceNotFoundException") return { name, state: "absent" };
      // Scheduled by someone else between the listing and the call.
      if (n === "InvalidRequestException" && /marked for deletion|scheduled for deletion/i.test((err as Error).message)) {
        const again = await this.find(name, region);
        if (again?.DeletedDate) return { name, state: "already-scheduled" };
      }
      throw translateAwsError(err, `DeleteSecret ${name} with a ${recoveryWindowDays}-day recovery window (${region})`, "the secret was not scheduled for deletion");
    }
  }

  async current(name: string, region: string): Promise<SecretVersionText> {
    const v = await this.get(name, region, { VersionStage: "AWSCURRENT" });
    if (!v) throw new PermanentError(`secret ${name} (${region}) does not exist or has no AWSCURRENT version; its stack creates it (pulumi up), nothing was rotated`);
    return v;
  }

  async version(name: string, region: string, versionId: string): Promise<SecretVersionText | undefined> {
    return this.get(name, region, { VersionId: versionId });
  }

  private async get(name: string, region: string, which: { VersionStage: string } | { VersionId: string }): Promise<SecretVersionText | undefined> {
    try {
      const out = await this.client(region).send(new GetSecretValueCommand({ SecretId: name, ...which }));
      if (out.SecretString === undefined || !out.VersionId) throw new PermanentError(`secret ${name} (${region}) holds no text (binary?); a connection document is JSON text`);
      return { versionId: out.VersionId, stages: out.VersionStages ?? [], secretString: out.SecretString };
    } catch (err) {
      if (awsErrorName(err) === "ResourceNotFoundException") return undefined;
      if (err instanceof PermanentError) throw err;
      throw translateAwsError(err, `GetSecretValue ${name} (${region})`, "nothing was changed");
    }
  }

  async putPending(name: string, region: string, versionId: string, secretString: string): Promise<void> {
    try {
      await this.client(region).send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: versionId, SecretString: secretString, VersionStages: ["AWSPENDING"] }));
    } catch (err) {
      throw translateAwsError(err, `PutSecretValue ${name} version ${versionId} as AWSPENDING (${region})`, "AWSCURRENT was not changed");
    }
  }

  async promote(name: string, region: string, versionId: string): Promise<{ previousVersionId: string | null }> {
    let stages: Record<string, string[]>;
    try {
      stages = (await this.client(region).send(new DescribeSecretCommand({ SecretId: name }))).VersionIdsToStages ?? {};
    } catch (err) {
      throw translateAwsError(err, `DescribeSecret ${name} (${region})`, "AWSCURRENT was not moved");
    }
    if (!stages[versionId]) throw new PermanentError(`secret ${name} (${region}) has no version ${versionId}; it cannot become AWSCURRENT`);
    const current = Object.entries(stages).find(([, s]) => s.includes("AWSCURRENT"))?.[0];
    try {
      if (current !== versionId) {
        await this.client(region).send(
          new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: "AWSCURRENT", MoveToVersionId: versionId, ...(current ? { RemoveFromVersionId: current } : {}) }),
        );
      }
      if (stages[versionId].includes("AWSPENDING")) {
        await this.client(region).send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: "AWSPENDING", RemoveFromVersionId: versionId }));
      }
    } catch (err) {
      throw translateAwsError(err, `UpdateSecretVersionStage ${name} AWSCURRENT -> ${versionId} (${region})`, "retrying the step finishes the move");
    }
    return { previousVersionId: current === versionId ? null : (current ?? null) };
  }
}

function scheduledFor(date: Date | undefined): { deletionDate?: string } {
  return date ? { deletionDate: date.toISOString() } : {};
}
