import { createHash } from "node:crypto";

/**
 * What the mock runtime answers for each resource: its inputs plus the computed outputs a
 * program reads (ARNs, ids, endpoints). Values are derived from the resource's type and name,
 * so two renders of the same stack are identical and a diff shows only real changes. They are
 * shaped like AWS's (ARN formats, id prefixes) because the policies parse them.
 *
 * Ids also derive from the stack: two stacks that name a resource alike (a dedicated tenant's
 * prod and staging VPCs are both `tenant-<id>-network-vpc`) get different ids, as AWS would give
 * them, so the reachability analysis (plan/network), which joins resources by id, cannot take
 * one stack's VPC, subnet or route table for another's.
 */
export interface MockContext {
  region: string;
  accountId: string;
  /** The stack the resource belongs to (its ids derive from it). */
  stack: string;
}

function hex(seed: string, n: number): string {
  return createHash("sha256").update(seed).digest("hex").slice(0, n);
}

function uuid(seed: string): string {
  const h = hex(seed, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** EC2-style ids by type token (module/resource), e.g. aws:ec2/vpc:Vpc -> vpc-0123... */
const EC2_PREFIX: Readonly<Record<string, string>> = {
  "aws:ec2/vpc:Vpc": "vpc",
  "aws:ec2/subnet:Subnet": "subnet",
  "aws:ec2/securityGroup:SecurityGroup": "sg",
  "aws:ec2/routeTable:RouteTable": "rtb",
  "aws:ec2/internetGateway:InternetGateway": "igw",
  "aws:ec2/natGateway:NatGateway": "nat",
  "aws:ec2/eip:Eip": "eipalloc",
  "aws:ec2/vpcPeeringConnection:VpcPeeringConnection": "pcx",
  "aws:ec2/flowLog:FlowLog": "fl",
  "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
  "aws:ec2transitgateway/transitGateway:TransitGateway": "tgw",
  "aws:ec2transitgateway/routeTable:RouteTable": "tgw-rtb",
  "aws:ec2transitgateway/vpcAttachment:VpcAttachment": "tgw-attach",
  "aws:ec2transitgateway/peeringAttachment:PeeringAttachment": "tgw-attach",
  "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
};

/** The id the mock runtime gives resource `name` of `type` in `stack`. */
export function mockId(type: string, name: string, stack: string): string {
  const seed = `${stack}::${type}::${name}`;
  const prefix = EC2_PREFIX[type];
  if (prefix) return `${prefix}-0${hex(seed, 16)}`;
  return `${name}-${hex(seed, 8)}`;
}

/** Computed outputs by type. Inputs are echoed back as outputs first (as most providers do). */
export function mockOutputs(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  ctx: MockContext,
): { id: string; state: Record<string, unknown> } {
  const seed = `${type}::${name}`;
  const id = mockId(type, name, ctx.stack);
  // Values AWS derives from a resource's id differ between stacks like the id does.
  const idSeed = `${ctx.stack}::${seed}`;
  const { region, accountId } = ctx;
  const str = (k: string) => (typeof inputs[k] === "string" ? inputs[k] : undefined);
  const extra: Record<string, unknown> = {};
  switch (type) {
    case "aws:kms/key:Key": {
      const keyId = uuid(seed);
      return { id: keyId, state: { ...inputs, keyId, arn: `arn:aws:kms:${region}:${accountId}:key/${keyId}` } };
    }
    case "aws:kms/alias:Alias":
      extra.arn = `arn:aws:kms:${region}:${accountId}:${str("name") ?? name}`;
      break;
    case "aws:secretsmanager/secret:Secret": {
      // Secrets Manager appends a dash and six random characters to the name in the ARN.
      const arn = `arn:aws:secretsmanager:${region}:${accountId}:secret:${str("name") ?? name}-${hex(seed, 6)}`;
      return { id: arn, state: { ...inputs, arn } };
    }
    case "aws:rds/instance:Instance": {
      const identifier = str("identifier") ?? name;
      const address = `${identifier}.c${hex(seed, 12)}.${region}.rds.amazonaws.com`;
      const port = typeof inputs.port === "number" ? inputs.port : 5432;
      return {
        id: identifier,
        state: { ...inputs, identifier, address, port, endpoint: `${address}:${port}`, arn: `arn:aws:rds:${region}:${accountId}:db:${identifier}`, resourceId: `db-${hex(seed, 26).toUpperCase()}` },
      };
    }
    case "aws:s3/bucket:Bucket": {
      const bucket = str("bucket") ?? `${name}-${hex(seed, 7)}`;
      return { id: bucket, state: { ...inputs, bucket, arn: `arn:aws:s3:::${bucket}`, bucketRegionalDomainName: `${bucket}.s3.${region}.amazonaws.com` } };
    }
    case "aws:iam/role:Role": {
      const roleName = str("name") ?? `${name}-${hex(seed, 7)}`;
      return { id: roleName, state: { ...inputs, name: roleName, arn: `arn:aws:iam::${accountId}:role/${roleName}`, uniqueId: `AROA${hex(seed, 17).toUpperCase()}` } };
    }
    case "aws:iam/policy:Policy":
      extra.arn = `arn:aws:iam::${accountId}:policy/${str("name") ?? name}`;
      break;
    case "aws:route53/zone:Zone": {
      const zoneId = `Z${hex(seed, 20).toUpperCase()}`;
      const n = Number.parseInt(hex(seed, 4), 16);
      const nameServers = [
        `ns-${n % 2048}.awsdns-${n % 64}.com`,
        `ns-${(n + 1) % 2048}.awsdns-${(n + 1) % 64}.net`,
        `ns-${(n + 2) % 2048}.awsdns-${(n + 2) % 64}.org`,
        `ns-${(n + 3) % 2048}.awsdns-${(n + 3) % 64}.co.uk`,
      ];
      return { id: zoneId, state: { ...inputs, zoneId, nameServers, arn: `arn:aws:route53:::hostedzone/${zoneId}` } };
    }
    case "aws:ssm/parameter:Parameter":
      // AWS's ARN of a parameter: "parameter" then the name, its leading "/" not doubled.
      extra.arn = `arn:aws:ssm:${region}:${accountId}:parameter/${(str("name") ?? name).replace(/^\//, "")}`;
      break;
    case "aws:cloudwatch/logGroup:LogGroup":
      extra.arn = `arn:aws:logs:${region}:${accountId}:log-group:${str("name") ?? name}`;
      break;
    case "aws:ec2/vpc:Vpc":
      extra.arn = `arn:aws:ec2:${region}:${accountId}:vpc/${id}`;
      extra.defaultSecurityGroupId = `sg-0${hex(`${idSeed}:default-sg`, 16)}`;
      extra.mainRouteTableId = `rtb-0${hex(`${idSeed}:main-rtb`, 16)}`;
      break;
    case "aws:ec2/vpcEndpoint:VpcEndpoint":
      extra.arn = `arn:aws:ec2:${region}:${accountId}:vpc-endpoint/${id}`;
      // A gateway endpoint's route targets the service's prefix list: one per service and region
      // in AWS (the same for every VPC), so derived from the service name only.
      if (str("vpcEndpointType") === "Gateway") extra.prefixListId = `pl-${hex(`${region}:${str("serviceName") ?? name}`, 8)}`;
      break;
    case "aws:ec2/securityGroup:SecurityGroup":
      extra.arn = `arn:aws:ec2:${region}:${accountId}:security-group/${id}`;
      break;
    case "aws:ec2/subnet:Subnet":
      extra.arn = `arn:aws:ec2:${region}:${accountId}:subnet/${id}`;
      break;
    case "aws:rds/subnetGroup:SubnetGroup":
    case "aws:rds/parameterGroup:ParameterGroup":
      return { id: str("name") ?? id, state: { ...inputs, name: str("name") ?? id, arn: `arn:aws:rds:${region}:${accountId}:${type.includes("subnet") ? "subgrp" : "pg"}:${str("name") ?? id}` } };
    case "random:index/randomPassword:RandomPassword": {
      // A deterministic stand-in: never a real credential (the mock runtime deploys nothing).
      const length = typeof inputs.length === "number" ? inputs.length : 32;
      const result = hex(`${seed}:password`, 64).repeat(2).slice(0, length);
      return { id: "none", state: { ...inputs, result, bcryptHash: `$2a$10$${hex(`${seed}:bcrypt`, 53)}` } };
    }
    case "random:index/randomId:RandomId":
      extra.hex = hex(seed, (typeof inputs.byteLength === "number" ? inputs.byteLength : 4) * 2);
      break;
    default:
      break;
  }
  return { id, state: { ...inputs, ...extra } };
}

/**
 * The invokes a program makes (data source reads at deployment time), answered offline:
 * `aws.kms.getAlias` for a tenant key the cell stack still manages during an upgrade (the key
 * behind the alias is unknown offline, so its id is derived from the alias name), and
 * `aws.secretsmanager.getSecretVersion` for the connection document of a tenant whose
 * credentials were rotated (a document whose password is derived from the secret's name,
 * `rotated-<hex>`: the real one is in AWS only).
 */
export function mockInvoke(tok: string, args: Record<string, unknown>, ctx: MockContext): Record<string, unknown> | undefined {
  if (tok === "aws:secretsmanager/getSecretVersion:getSecretVersion" && typeof args.secretId === "string") {
    const password = mockRotatedPassword(args.secretId);
    return {
      id: `${args.secretId}|AWSCURRENT`,
      arn: `arn:aws:secretsmanager:${ctx.region}:${ctx.accountId}:secret:${args.secretId}`,
      secretId: args.secretId,
      versionId: uuid(`secret-version::${args.secretId}`),
      versionStage: "AWSCURRENT",
      versionStages: ["AWSCURRENT"],
      secretString: JSON.stringify({ password }),
    };
  }
  if (tok === "aws:kms/getAlias:getAlias" && typeof args.name === "string") {
    // A tenant alias names the key both stack builders call `tenant-<id>-key`: answer with the id
    // the mock gives that key, so a render that switches from the lookup to the key shows no change.
    const tenant = /^alias\/[^/]+\/[^/]+\/tenants\/([^/]+)$/.exec(args.name)?.[1];
    const keyId = tenant ? uuid(`aws:kms/key:Key::tenant-${tenant}-key`) : uuid(`alias-target::${args.name}`);
    return {
      id: args.name,
      name: args.name,
      arn: `arn:aws:kms:${ctx.region}:${ctx.accountId}:${args.name}`,
      targetKeyId: keyId,
      targetKeyArn: `arn:aws:kms:${ctx.region}:${ctx.accountId}:key/${keyId}`,
    };
  }
  return undefined;
}

/** The password mockInvoke's connection document of `secretId` holds. */
export function mockRotatedPassword(secretId: string): string {
  return `rotated-${hex(`rotated::${secretId}`, 16)}`;
}
