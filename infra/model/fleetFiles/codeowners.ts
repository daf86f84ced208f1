/**
 * CODEOWNERS cannot read a tenant's tier, so every dedicated tenant file is listed by name to
 * require the platform team's review (.github/CODEOWNERS; test/github/codeowners.test.ts fails
 * when one is missing). `tenantctl new` and the upgrade workflow keep that list current for the
 * dedicated tenants they create (./edits.ts).
 */
const TENANT_LINE = /^\/tenants\/([a-z0-9-]+)\.yaml(\s+)(.+)$/;
const DEDICATED_STACKS_LINE = /^\/stacks\/Pulumi\.dedicated-\*\s+(.+)$/;

/** The CODEOWNERS text with `/tenants/<id>.yaml` listed among the dedicated tenants, or undefined if it already is. */
export function withDedicatedTenant(text: string, id: string): string | undefined {
  const lines = text.split("\n");
  const listed = lines.map((l, i) => ({ i, m: TENANT_LINE.exec(l) })).filter((x): x is { i: number; m: RegExpExecArray } => x.m !== null);
  if (listed.some((x) => x.m[1] === id)) return undefined;
  if (listed.length > 0) {
    // Same owners and alignment as its neighbours; keep the block sorted by id.
    const after = listed.filter((x) => x.m[1]! < id).at(-1);
    const like = after ?? listed[0]!;
    const width = `/tenants/${like.m[1]}.yaml${like.m[2]}`.length;
    const line = `/tenants/${id}.yaml`.padEnd(width - 1) + ` ${like.m[3]}`;
    lines.splice(after ? after.i + 1 : listed[0]!.i, 0, line);
    return lines.join("\n");
  }
  const owners = lines.map((l) => DEDICATED_STACKS_LINE.exec(l)?.[1]).find((o) => o !== undefined) ?? "@org/platform-team";
  return `${text.replace(/\n*$/, "\n")}/tenants/${id}.yaml  ${owners}\n`;
}
