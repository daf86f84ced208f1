/**
 * Which input changes replace a resource, and what is lost when it goes. The single table
 * `plan --base` consults; keep every entry's source next to it.
 *
 * Where the rules come from. @pulumi/aws 7.x, @pulumi/postgresql 3.x and @pulumi/random 4.x are
 * bridged Terraform providers: an input whose Terraform schema field is `ForceNew: true` (or a
 * Plugin Framework attribute with `RequiresReplace`) is a replacement in `pulumi preview`
 * ("replace" with `[diff: ~field]`). Sources, read on 2026-11-22:
 * - AWS: hashicorp/terraform-provider-aws, internal/service/<service>/<resource>.go, e.g.
 *   https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service/rds/instance.go
 *   (availability_zone, character_set_name, db_name, engine, kms_key_id, storage_encrypted,
 *   username, timezone, snapshot_identifier ... are ForceNew).
 *   `identifier` of aws_db_instance is NOT ForceNew since provider 5.0: an in-place rename
 *   (hashicorp/terraform-provider-aws#31232, docs fixed in #32687); the endpoint changes.
 * - PostgreSQL: cyrilgdn/terraform-provider-postgresql, postgresql/resource_postgresql_schema.go
 *   (`database` ForceNew; `name` renamed in place by ALTER SCHEMA ... RENAME) and
 *   resource_postgresql_role.go (`name` renamed in place by ALTER ROLE ... RENAME, which clears an
 *   MD5 password); postgresql_grant and postgresql_default_privileges have no Update: every
 *   argument is ForceNew.
 * - random: every argument of random_password / random_id is ForceNew (the provider only creates).
 * Entries marked `unverified` were not checked against the provider source; they follow the
 * AWS API (the field cannot be modified after creation).
 */

export interface ResourceRules {
  /** Top-level inputs whose change replaces the resource; "*" means every input but `except`. */
  replaceOn: readonly string[];
  /** With replaceOn ["*"]: inputs that update in place. */
  except?: readonly string[];
  /** Inputs that update in place but disrupt something; the note says what. */
  caution?: Readonly<Record<string, string>>;
  /** What is lost when the resource is deleted or replaced; undefined: nothing that cannot be recreated. */
  dataLoss?: string;
  /** A deletion or replacement that is not data loss but is felt (an outage, a credential change). */
  disruption?: string;
  /** Like disruption, for a replacement only (deleting it with its tenant is expected). */
  onReplace?: string;
  source: string;
}

const TF_AWS = "https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service";
const TF_PG = "https://github.com/cyrilgdn/terraform-provider-postgresql/blob/main/postgresql";
const TF_RANDOM = "https://github.com/hashicorp/terraform-provider-random/tree/main/internal/provider";

export const RESOURCE_RULES: Readonly<Record<string, ResourceRules>> = {
  "aws:rds/instance:Instance": {
    replaceOn: [
      "availabilityZone", "characterSetName", "customIamInstanceProfile", "dbName", "engine", "kmsKeyId",
      "ncharCharacterSetName", "restoreToPointInTime", "s3Import", "snapshotIdentifier", "storageEncrypted",
      "timezone", "username",
    ],
    caution: {
      identifier: "renamed in place (ModifyDBInstance NewDBInstanceIdentifier): the endpoint changes and the instance reboots",
      identifierPrefix: "renamed in place: the endpoint changes and the instance reboots",
      instanceClass: "resized in place: minutes of downtime (a Multi-AZ instance fails over)",
      engineVersion: "upgraded in place: downtime; a major version needs allowMajorVersionUpgrade",
      allocatedStorage: "storage can only grow; a smaller value fails",
      dbSubnetGroupName: "moving an instance to another subnet group is a long, disruptive modification",
    },
    dataLoss: "the database and all its data (only a final snapshot survives, and only when skipFinalSnapshot is false)",
    source: `${TF_AWS}/rds/instance.go; identifier in place: hashicorp/terraform-provider-aws#31232`,
  },
  "aws:rds/subnetGroup:SubnetGroup": { replaceOn: ["name", "namePrefix"], source: `${TF_AWS}/rds/subnet_group.go` },
  "aws:rds/parameterGroup:ParameterGroup": {
    replaceOn: ["name", "namePrefix", "family", "description"],
    source: `${TF_AWS}/rds/parameter_group.go`,
  },
  "aws:kms/key:Key": {
    replaceOn: ["customKeyStoreId", "customerMasterKeySpec", "keyUsage", "multiRegion", "xksKeyId"],
    dataLoss:
      "the KMS key: deletion is scheduled (7-30 days), after which everything encrypted with it is unreadable; " +
      "everything that names its ARN is replaced too",
    source: `${TF_AWS}/kms/key.go`,
  },
  "aws:kms/alias:Alias": { replaceOn: ["name", "namePrefix"], source: `${TF_AWS}/kms/alias.go` },
  "aws:s3/bucket:Bucket": {
    replaceOn: ["bucket", "bucketPrefix", "objectLockEnabled"],
    dataLoss: "the bucket and every object in it (deletion fails on a non-empty bucket unless forceDestroy)",
    source: `${TF_AWS}/s3/bucket.go (aws.s3.Bucket is the former BucketV2 in @pulumi/aws 7)`,
  },
  "aws:s3/bucketV2:BucketV2": {
    replaceOn: ["bucket", "bucketPrefix", "objectLockEnabled"],
    dataLoss: "the bucket and every object in it (deletion fails on a non-empty bucket unless forceDestroy)",
    source: `${TF_AWS}/s3/bucket.go`,
  },
  "aws:ec2/vpc:Vpc": {
    replaceOn: ["cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength"],
    disruption: "every subnet, database and endpoint inside the VPC goes with it",
    source: `${TF_AWS}/ec2/vpc_.go`,
  },
  "aws:ec2/subnet:Subnet": {
    replaceOn: ["availabilityZone", "availabilityZoneId", "cidrBlock", "outpostArn", "vpcId"],
    source: `${TF_AWS}/ec2/vpc_subnet.go`,
  },
  "aws:ec2/securityGroup:SecurityGroup": {
    replaceOn: ["description", "name", "namePrefix", "vpcId"],
    source: `${TF_AWS}/ec2/vpc_security_group.go`,
  },
  "aws:ec2/securityGroupRule:SecurityGroupRule": {
    replaceOn: ["*"],
    except: ["description"],
    source: `${TF_AWS}/ec2/vpc_security_group_rule.go (no Update but description)`,
  },
  "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {
    replaceOn: ["securityGroupId"],
    source: `${TF_AWS}/vpc/security_group_ingress_rule.go (RequiresReplace) — unverified`,
  },
  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {
    replaceOn: ["securityGroupId"],
    source: `${TF_AWS}/vpc/security_group_egress_rule.go (RequiresReplace) — unverified`,
  },
  "aws:ec2/natGateway:NatGateway": {
    replaceOn: ["allocationId", "connectivityType", "privateIp", "subnetId"],
    onReplace: "outbound connections through the NAT gateway drop while it is recreated",
    source: `${TF_AWS}/ec2/vpc_nat_gateway.go`,
  },
  "aws:ec2/eip:Eip": {
    replaceOn: ["domain", "networkBorderGroup", "publicIpv4Pool"],
    disruption: "the public IP address changes; allow-lists naming it break",
    source: `${TF_AWS}/ec2/ec2_eip.go`,
  },
  "aws:ec2/routeTable:RouteTable": { replaceOn: ["vpcId"], source: `${TF_AWS}/ec2/vpc_route_table.go` },
  "aws:ec2/route:Route": {
    replaceOn: ["destinationCidrBlock", "destinationIpv6CidrBlock", "destinationPrefixListId", "routeTableId"],
    source: `${TF_AWS}/ec2/vpc_route.go`,
  },
  "aws:ec2/routeTableAssociation:RouteTableAssociation": {
    replaceOn: ["gatewayId", "subnetId"],
    source: `${TF_AWS}/ec2/vpc_route_table_association.go`,
  },
  "aws:ec2/vpcPeeringConnection:VpcPeeringConnection": {
    replaceOn: ["peerOwnerId", "peerRegion", "peerVpcId", "vpcId"],
    source: `${TF_AWS}/ec2/vpc_peering_connection.go`,
  },
  "aws:ec2/vpcEndpoint:VpcEndpoint": {
    replaceOn: ["serviceName", "vpcEndpointType", "vpcId"],
    source: `${TF_AWS}/ec2/vpc_endpoint.go`,
  },
  "aws:ec2/flowLog:FlowLog": {
    replaceOn: ["*"],
    except: ["tags"],
    source: `${TF_AWS}/ec2/vpc_flow_log.go (no Update but tags)`,
  },
  "aws:cloudwatch/logGroup:LogGroup": {
    replaceOn: ["logGroupClass", "name", "namePrefix"],
    dataLoss: "the log group and the logs it retains (audit and flow logs)",
    source: `${TF_AWS}/logs/group.go`,
  },
  "aws:cloudwatch/metricAlarm:MetricAlarm": {
    replaceOn: ["name"],
    source: `${TF_AWS}/cloudwatch/metric_alarm.go (alarm_name ForceNew; everything else one PutMetricAlarm)`,
  },
  "aws:sns/topic:Topic": {
    replaceOn: ["fifoTopic", "name", "namePrefix"],
    onReplace: "a new topic has no subscriptions: the ones operators added out of band must be made again",
    source: `${TF_AWS}/sns/topic.go (name, name_prefix, fifo_topic ForceNew)`,
  },
  "aws:secretsmanager/secret:Secret": {
    replaceOn: ["name", "namePrefix"],
    dataLoss:
      "the secret and its value (recoverable only within the recovery window; values set out of band must be set again)",
    source: `${TF_AWS}/secretsmanager/secret.go`,
  },
  "aws:secretsmanager/secretVersion:SecretVersion": {
    replaceOn: ["secretBinary", "secretId", "secretString"],
    source: `${TF_AWS}/secretsmanager/secret_version.go (a new value is a new version)`,
  },
  "aws:secretsmanager/secretPolicy:SecretPolicy": { replaceOn: ["secretArn"], source: `${TF_AWS}/secretsmanager/secret_policy.go` },
  "aws:iam/role:Role": {
    replaceOn: ["name", "namePrefix", "path"],
    disruption: "sessions of the old role end; trust policies and allow-lists naming its ARN break",
    source: `${TF_AWS}/iam/role.go`,
  },
  "aws:iam/rolePolicy:RolePolicy": { replaceOn: ["name", "namePrefix", "role"], source: `${TF_AWS}/iam/role_policy.go` },
  "aws:iam/rolePolicyAttachment:RolePolicyAttachment": {
    replaceOn: ["policyArn", "role"],
    source: `${TF_AWS}/iam/role_policy_attachment.go`,
  },
  "aws:iam/policy:Policy": { replaceOn: ["description", "name", "namePrefix", "path"], source: `${TF_AWS}/iam/policy.go` },
  "aws:route53/zone:Zone": {
    replaceOn: ["delegationSetId", "name"],
    dataLoss:
      "the hosted zone and every record in it; a new zone gets new name servers, so the tenant's DNS is down until the NS delegation is updated",
    source: `${TF_AWS}/route53/zone.go`,
  },
  "aws:route53/record:Record": { replaceOn: ["name", "zoneId"], source: `${TF_AWS}/route53/record.go` },
  "aws:route53/zoneAssociation:ZoneAssociation": {
    replaceOn: ["vpcId", "vpcRegion", "zoneId"],
    source: `${TF_AWS}/route53/zone_association.go`,
  },
  "postgresql:index/role:Role": {
    replaceOn: [],
    caution: { name: "renamed in place (ALTER ROLE ... RENAME): PostgreSQL clears an MD5 password, the app must log in with a new one" },
    disruption: "the tenant's database login stops working (DROP ROLE fails while the role owns objects)",
    source: `${TF_PG}/resource_postgresql_role.go`,
  },
  "postgresql:index/schema:Schema": {
    replaceOn: ["database"],
    caution: { name: "renamed in place (ALTER SCHEMA ... RENAME): grants, default privileges and search_path naming the old schema break" },
    dataLoss: "the schema and every table in it (DROP SCHEMA; with dropCascade every object inside)",
    source: `${TF_PG}/resource_postgresql_schema.go`,
  },
  "postgresql:index/database:Database": {
    replaceOn: ["encoding", "lcCollate", "lcCtype", "template"],
    dataLoss: "the database and everything in it",
    source: `${TF_PG}/resource_postgresql_database.go`,
  },
  "postgresql:index/grant:Grant": {
    replaceOn: ["*"],
    onReplace: "a replaced grant is a REVOKE then a GRANT: the role briefly lacks the privilege",
    source: `${TF_PG}/resource_postgresql_grant.go (no Update: every argument is ForceNew)`,
  },
  "postgresql:index/defaultPrivileges:DefaultPrivileges": {
    replaceOn: ["*"],
    source: `${TF_PG}/resource_postgresql_default_privileges.go (every argument is ForceNew)`,
  },
  "postgresql:index/grantRole:GrantRole": { replaceOn: ["*"], source: `${TF_PG}/resource_postgresql_grant_role.go` },
  "random:index/randomPassword:RandomPassword": {
    replaceOn: ["*"],
    onReplace: "a new password is generated: the secret and the database password change, clients must reload it",
    source: `${TF_RANDOM}/resource_password.go (every argument is ForceNew)`,
  },
  "random:index/randomId:RandomId": { replaceOn: ["*"], source: `${TF_RANDOM}/resource_id.go` },
  "random:index/randomString:RandomString": { replaceOn: ["*"], source: `${TF_RANDOM}/resource_string.go` },
};

export type InputEffect = { effect: "replace" } | { effect: "caution"; note: string } | { effect: "update" };

/** The top-level input name of a change path: `tags.tenant` -> tags, `ingress[0].cidr` -> ingress. */
export function topLevelKey(path: string): string {
  return /^[^.[(]*/.exec(path)![0];
}

/** What changing the input at `path` does to a resource of `type`. Unknown types update in place. */
export function effectOf(type: string, path: string): InputEffect {
  const rules = RESOURCE_RULES[type];
  if (!rules) return { effect: "update" };
  const key = topLevelKey(path);
  if (rules.replaceOn.includes("*") ? !(rules.except ?? []).includes(key) : rules.replaceOn.includes(key)) return { effect: "replace" };
  const note = rules.caution?.[key];
  return note ? { effect: "caution", note } : { effect: "update" };
}
