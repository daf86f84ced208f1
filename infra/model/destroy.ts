/**
 * When a dedicated stack may be destroyed with its data (docs/lifecycle.md, "Destroying a dedicated
 * stack"). Pure: the stack builder reads it from the tenant file.
 *
 * AWS refuses to delete a bucket holding object versions (DeleteBucket: BucketNotEmpty) and a
 * hosted zone holding records other than its apex SOA and NS (DeleteHostedZone:
 * HostedZoneNotEmpty); RDS refuses to delete an instance with deletion protection on. The AWS
 * provider empties a bucket or zone only when `forceDestroy` is true in the stack's state at the
 * time of the delete (it reads the state, not the program), so the value must reach the state
 * through an `up` before the destroy. Once the tenant file records that the final backup of every
 * env exists, and never earlier, a dedicated stack says: `forceDestroy` on its zones (records are
 * not data) and RDS deletion protection off (the final snapshot stays).
 *
 * The bucket is emptied only when the file also records that its objects were copied to the final
 * backup (`offboarding.objectBackupAt`: every current version, recorded by the workflow before it
 * writes the field). Then it renders `forceDestroy`, and the provider's delete removes every object
 * version and delete marker before DeleteBucket (terraform-provider-aws
 * internal/service/s3/bucket.go resourceBucketDelete: on BucketNotEmpty with force_destroy it calls
 * EmptyBucket, internal/service/s3/delete.go, "deleting all object versions and delete markers").
 * Without that record the bucket is kept out of the destroy (`retainOnDelete`, with its data and
 * settings): a file whose final backup was recorded before object copies existed (an RDS snapshot
 * only) never empties a bucket no backup holds.
 */
import type { Tenant } from "./schema.ts";

/**
 * True once the tenant is offboarding and the offboarding workflow has recorded the final backup
 * of every env in the file (`offboarding.finalBackupAt`).
 */
export function destroyReleased(t: Pick<Tenant, "lifecycle" | "offboarding">): boolean {
  return t.lifecycle === "offboarding" && t.offboarding?.finalBackupAt !== undefined;
}

/**
 * What a destroy of a released dedicated stack does with the tenant bucket: `keep` (retainOnDelete,
 * no object copy recorded), `empty` (forceDestroy: the copy is recorded), `refuse` before the
 * release (AWS's BucketNotEmpty stops a destroy of a bucket holding data).
 */
export type BucketOnDestroy = "refuse" | "keep" | "empty";

export function bucketOnDestroy(t: Pick<Tenant, "lifecycle" | "offboarding">): BucketOnDestroy {
  if (!destroyReleased(t)) return "refuse";
  return t.offboarding?.objectBackupAt !== undefined ? "empty" : "keep";
}
