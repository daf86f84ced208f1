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
 * not data), RDS deletion protection off (the final snapshot stays), and the bucket kept out of
 * the destroy (`retainOnDelete`, with its data): the final backup is an RDS snapshot and does not
 * copy the bucket's objects, so emptying the bucket would delete data no backup holds.
 */
import type { Tenant } from "./schema.ts";

/**
 * True once the tenant is offboarding and the offboarding workflow has recorded the final backup
 * of every env in the file (`offboarding.finalBackupAt`).
 */
export function destroyReleased(t: Pick<Tenant, "lifecycle" | "offboarding">): boolean {
  return t.lifecycle === "offboarding" && t.offboarding?.finalBackupAt !== undefined;
}
