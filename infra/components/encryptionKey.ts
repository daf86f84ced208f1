import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { componentType, tagsFor, type StackContext } from "./context.ts";

/** Days a scheduled key deletion waits: the maximum, since a deleted key makes its data unreadable. */
export const KEY_DELETION_WINDOW_DAYS = 30;

export interface EncryptionKeyArgs {
  ctx: StackContext;
  owner: string;
  description: string;
  /** cellKmsAlias() or tenantKmsAlias(). */
  alias: string;
  /** Key policy JSON (infra/model/accessPolicies.ts). */
  policy: pulumi.Input<string>;
  /** Pulumi `protect` (prod): deleting a key destroys every backup and snapshot encrypted with it. */
  protect: boolean;
  /** Keep the alias too when removed from the program (the key always is). */
  retainOnDelete?: boolean;
}

/**
 * A symmetric KMS key with yearly rotation and its alias.
 * Child names: `<name>` (key and alias).
 *
 * The key is never deleted by Pulumi (`retainOnDelete`): final RDS snapshots and schema dumps
 * kept after a stack is destroyed or a tenant offboarded are encrypted with it, and a deleted
 * key makes them unreadable for good. Scheduling its deletion is a human decision, taken after
 * the backups' retention ends.
 */
export class EncryptionKey extends pulumi.ComponentResource {
  readonly key: aws.kms.Key;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: EncryptionKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("EncryptionKey"), name, {}, opts);
    this.key = new aws.kms.Key(
      name,
      {
        description: args.description,
        enableKeyRotation: true,
        deletionWindowInDays: KEY_DELETION_WINDOW_DAYS,
        policy: args.policy,
        tags: tagsFor(args.ctx, args.owner),
      },
      { parent: this, protect: args.protect, retainOnDelete: true },
    );
    new aws.kms.Alias(name, { name: args.alias, targetKeyId: this.key.keyId }, { parent: this, ...(args.retainOnDelete ? { retainOnDelete: true } : {}) });
    this.arn = this.key.arn;
    this.registerOutputs({ arn: this.arn, alias: args.alias });
  }
}
