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
 */
import { DeleteSecretCommand, ListSecretsCommand, paginateListSecrets, SecretsManagerClient, type SecretListEntry } from "@aws-sdk/client-secrets-manager";
import { PermanentError } from "../engine.ts";
import type { SecretDeletion, SecretsManager } from "../ports.ts";
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
}

function scheduledFor(date: Date | undefined): { deletionDate?: string } {
  return date ? { deletionDate: date.toISOString() } : {};
}
