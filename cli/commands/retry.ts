import { isWorkflowId } from "../../automation/index.ts";
import { runRetryRequest } from "../lifecycle/operatorWorkflows.ts";
import { UsageError, type Io } from "../io.ts";
import { dbUrl } from "./upgrade.ts";

/**
 * `tenantctl retry WORKFLOW_ID`: puts a failed lifecycle workflow back in the control plane's
 * queue at the step it failed in (after its cause is fixed). Needs DATABASE_URL; see
 * cli/lifecycle/operatorWorkflows.ts.
 */
export async function retryCommand(id: string, io: Io): Promise<number> {
  if (!isWorkflowId(id)) {
    throw new UsageError(`"${id}" is not a workflow id: expected a UUID such as 0b9f6c7e-2f4a-4c1e-9a57-3d1e8b2c4f10 (tenantctl workflows lists them)`);
  }
  return runRetryRequest(id.toLowerCase(), { ...dbUrl(), by: `tenantctl (${process.env.USER ?? "unknown user"})` }, io);
}
