/**
 * The answer of the offline renderer to a StackReference to a platform stack: the outputs that
 * stack would export, as the mock runtime computes them for its resources (mockOutputs.ts, keyed
 * by stack, type and name). A spoke rendered offline thus carries exactly the Transit Gateway and route
 * table ids of the platform stack rendered offline, and the reachability analysis can join them.
 */
import type { Fleet } from "../../infra/model/fleet.ts";
import { hubVpcName, PLATFORM_OUTPUTS, STACK_EXPORT, transitNames } from "../../infra/model/hub.ts";
import { controlPlaneSecretName, platformStackName } from "../../infra/model/naming.ts";
import { platformEnv } from "../../infra/model/platform.ts";
import { DATABASE_URL_SECRET } from "../../infra/components/controlPlaneService.ts";
import { mockId, mockOutputs } from "./mockOutputs.ts";

const TGW = "aws:ec2transitgateway/transitGateway:TransitGateway";
const TGW_TABLE = "aws:ec2transitgateway/routeTable:RouteTable";
const SECRET = "aws:secretsmanager/secret:Secret";
const VPC = "aws:ec2/vpc:Vpc";

/**
 * Outputs of `organization/project/platform-<region>` for a platform region of the fleet, shaped
 * as infra/index.ts exports them (one object named STACK_EXPORT); undefined for another stack.
 */
export function platformReferenceOutputs(fleet: Fleet, qualifiedName: string): Record<string, unknown> | undefined {
  const stack = qualifiedName.split("/").at(-1) ?? "";
  const region = fleet.platform.regions.find((r) => platformStackName(r) === stack);
  if (!region) return undefined;
  const names = transitNames(region);
  const out: Record<string, unknown> = {
    [PLATFORM_OUTPUTS.transitGatewayId]: mockId(TGW, names.gateway, stack),
    [PLATFORM_OUTPUTS.hubRouteTableId]: mockId(TGW_TABLE, names.hubTable, stack),
    [PLATFORM_OUTPUTS.spokesRouteTableId]: mockId(TGW_TABLE, names.spokesTable, stack),
    [PLATFORM_OUTPUTS.hubVpcId]: mockId(VPC, hubVpcName(region), stack),
  };
  if (region === fleet.platform.controlPlane.region) {
    const app = fleet.platform.appName;
    const secretName = `${controlPlaneSecretName(app, platformEnv(fleet.platform), "database")}-url`;
    const { state } = mockOutputs(SECRET, DATABASE_URL_SECRET, { name: secretName }, { region, accountId: fleet.platform.awsAccountId, stack });
    out[PLATFORM_OUTPUTS.databaseUrlSecretArn] = state.arn;
  }
  return { [STACK_EXPORT]: out };
}
