/** The rows of lifecycle_workflows and lifecycle_backups as the engine reads them, and their records. */
import type { BackupInput, BackupRecord, JsonObject, WorkflowKind, WorkflowRecord, WorkflowState } from "./definitions.ts";

export interface WorkflowRow {
  id: string;
  kind: WorkflowKind;
  tenant_id: string;
  params: JsonObject;
  state: WorkflowState;
  current_step: string | null;
  wake_at: Date | null;
  attempts: number;
  last_error: string | null;
  note: string | null;
  requested_by: string | null;
  retried_by_api_key: string | null;
  cancel_requested_at: Date | null;
  cancel_note: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

export function toRecord(r: WorkflowRow): WorkflowRecord {
  return {
    id: r.id, kind: r.kind, tenantId: r.tenant_id, params: r.params, state: r.state, currentStep: r.current_step,
    wakeAt: r.wake_at, attempts: r.attempts, lastError: r.last_error, note: r.note, requestedBy: r.requested_by,
    retriedByApiKey: r.retried_by_api_key, cancelRequestedAt: r.cancel_requested_at ?? null,
    createdAt: r.created_at, updatedAt: r.updated_at, finishedAt: r.finished_at,
  };
}

export interface BackupRow {
  id: string; workflow_id: string; tenant_id: string; env: string; kind: BackupInput["kind"]; location: string;
  bytes: string | null; sha256: string | null; detail: JsonObject; recorded_at: Date;
}

export function toBackup(r: BackupRow): BackupRecord {
  return {
    id: r.id, workflowId: r.workflow_id, tenantId: r.tenant_id, env: r.env, kind: r.kind, location: r.location,
    bytes: r.bytes === null ? null : Number(r.bytes), sha256: r.sha256, detail: r.detail, recordedAt: r.recorded_at,
  };
}
