/**
 * The control plane's public face: what code outside automation/ (tenantctl in cli/) may use.
 * Everything else in automation/ is internal; cli/ imports only this file (docs/architecture.md).
 */
export { connectControlPlane, type ControlPlaneConnection } from "./db/connect.ts";
export { LocalFleetRepo } from "./lifecycle/adapters/localRepo.ts";
export { addDays, DEFAULT_GRACE_DAYS } from "./lifecycle/config.ts";
export { isWorkflowId, WorkflowConflictError, WorkflowNotFoundError, type WorkflowRecord, type WorkflowState } from "./lifecycle/engine/engine.ts";
export { listWorkflows, type WorkflowFilter, type WorkflowSummary } from "./lifecycle/listWorkflows.ts";
export { InvalidChangeError, type FleetRepo } from "./lifecycle/ports.ts";
export { requestOnlyPorts } from "./lifecycle/requestPorts.ts";
export { LifecycleRequestError, LifecycleService, type RequestOptions } from "./lifecycle/service.ts";
export { CutoverTimeError, parseCutoverTime } from "./lifecycle/workflows/cutoverTime.ts";
