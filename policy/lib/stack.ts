/**
 * Cross-resource lookups for stack policies: which Secret a SecretVersion writes, which Key an
 * ARN, id or alias names, which Role a RolePolicy attaches to. The engine gives stack policies the
 * resources' outputs (ARNs, key ids, zone ids) and property dependencies; a reference resolves
 * through either. The offline plan passes the mock outputs for the same reason.
 */
import { isRecord, str, type ResourceView } from "./resource.ts";

export const T = {
  secret: "aws:secretsmanager/secret:Secret",
  secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
  secretPolicy: "aws:secretsmanager/secretPolicy:SecretPolicy",
  key: "aws:kms/key:Key",
  alias: "aws:kms/alias:Alias",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  rolePolicyAttachment: "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  iamPolicy: "aws:iam/policy:Policy",
  rdsInstance: "aws:rds/instance:Instance",
  rdsCluster: "aws:rds/cluster:Cluster",
  securityGroup: "aws:ec2/securityGroup:SecurityGroup",
  ingressRule: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  securityGroupRule: "aws:ec2/securityGroupRule:SecurityGroupRule",
  record: "aws:route53/record:Record",
  zone: "aws:route53/zone:Zone",
  bucket: "aws:s3/bucket:Bucket",
  bucketSse: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  ssmParameter: "aws:ssm/parameter:Parameter",
  pgRole: "postgresql:index/role:Role",
  pgSchema: "postgresql:index/schema:Schema",
  pgGrant: "postgresql:index/grant:Grant",
  pgDefaultPrivileges: "postgresql:index/defaultPrivileges:DefaultPrivileges",
  randomPassword: "random:index/randomPassword:RandomPassword",
  stack: "pulumi:pulumi:Stack",
} as const;

/** A stack resource with the engine's property dependencies (input name -> URNs it depends on). */
export interface StackResourceView extends ResourceView {
  propertyDependencies?: Readonly<Record<string, readonly string[]>>;
}

/** Properties that identify a resource of a type when another resource refers to it. */
const IDENTIFIERS: Readonly<Record<string, readonly string[]>> = {
  [T.secret]: ["arn", "id", "name"],
  [T.key]: ["arn", "keyId", "id"],
  [T.alias]: ["name", "arn", "id"],
  [T.role]: ["name", "arn", "id"],
  [T.iamPolicy]: ["arn", "id"],
  [T.zone]: ["zoneId", "id"],
  [T.bucket]: ["bucket", "id", "arn"],
};

export class StackIndex {
  readonly resources: readonly StackResourceView[];
  private readonly byUrn = new Map<string, StackResourceView>();
  private readonly byType = new Map<string, StackResourceView[]>();
  /** type -> identifier value -> first resource of that type carrying it (built on first use). */
  private readonly byIdentifier = new Map<string, Map<string, StackResourceView>>();
  /** Secret name -> secret, for ARNs without outputs (built on first use). */
  private secretsByName: Map<string, StackResourceView> | undefined;

  // Lookups are indexed: stack policies resolve a reference per resource, and a cell of 1,000
  // tenants has ~17,000 resources, so a scan per lookup made the pack quadratic (BENCHMARKS.md).
  constructor(resources: readonly StackResourceView[]) {
    this.resources = resources;
    for (const r of resources) {
      this.byUrn.set(r.urn, r);
      const list = this.byType.get(r.type);
      if (list) list.push(r);
      else this.byType.set(r.type, [r]);
    }
  }

  ofType(type: string): StackResourceView[] {
    return this.byType.get(type) ?? [];
  }

  get(urn: string): StackResourceView | undefined {
    return this.byUrn.get(urn);
  }

  /**
   * The resource of one of `types` that `from.props[prop]` refers to: through the engine's
   * property dependencies first, else by matching the value against identifying properties.
   */
  resolve(from: StackResourceView, prop: string, types: readonly string[], value: unknown = from.props[prop]): StackResourceView | undefined {
    // The engine records dependencies per top-level input (`rules`, not `rules[0].kmsMasterKeyId`).
    const deps = from.propertyDependencies?.[prop.split(/[.[]/)[0]!] ?? [];
    const byDep = deps.map((u) => this.byUrn.get(u)).filter((r): r is StackResourceView => r !== undefined && types.includes(r.type));
    if (byDep.length === 1) return byDep[0];
    return this.find(value, types);
  }

  private identifierIndex(type: string): Map<string, StackResourceView> {
    let index = this.byIdentifier.get(type);
    if (!index) {
      index = new Map();
      const keys = IDENTIFIERS[type] ?? ["arn", "id"];
      for (const r of this.ofType(type)) {
        for (const key of keys) {
          const v = str(r.props[key]);
          // The first resource in stack order wins, as a scan would find it.
          if (v !== undefined && v !== "" && !index.has(v)) index.set(v, r);
        }
      }
      this.byIdentifier.set(type, index);
    }
    return index;
  }

  /** The resource of one of `types` whose identifier equals `value` (first type in `types` wins). */
  find(value: unknown, types: readonly string[]): StackResourceView | undefined {
    const v = str(value);
    if (v === undefined || v === "") return undefined;
    for (const type of types) {
      const hit = this.identifierIndex(type).get(v);
      if (hit) return hit;
    }
    // Without outputs, a secret ARN still names the secret: Secrets Manager appends "-" and six
    // random characters to the name. Only tried when no identifier matches exactly.
    if (!types.includes(T.secret)) return undefined;
    const m = /:secret:(.+)-[A-Za-z0-9]{6}$/.exec(v);
    if (!m) return undefined;
    if (!this.secretsByName) {
      this.secretsByName = new Map();
      for (const r of this.ofType(T.secret)) {
        const name = str(r.props.name);
        if (name !== undefined && !this.secretsByName.has(name)) this.secretsByName.set(name, r);
      }
    }
    return this.secretsByName.get(m[1]!);
  }

  /**
   * The KMS key a `kmsKeyId`-style value names: a key ARN or id, or an alias name or ARN whose
   * target is a key of the stack.
   */
  resolveKey(from: StackResourceView, prop: string, value: unknown = from.props[prop]): StackResourceView | undefined {
    const direct = this.resolve(from, prop, [T.key, T.alias], value);
    if (direct?.type === T.key) return direct;
    if (direct?.type === T.alias) return this.resolve(direct, "targetKeyId", [T.key]);
    return undefined;
  }
}

/** Nested record at a path (`serverSideEncryptionConfiguration.rule`), or undefined. */
export function at(v: unknown, ...path: string[]): unknown {
  let cur: unknown = v;
  for (const p of path) {
    if (!isRecord(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}
