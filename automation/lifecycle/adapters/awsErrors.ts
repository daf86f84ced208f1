/**
 * Translation of AWS SDK v3 errors into the lifecycle engine's terms: a PermanentError when
 * retrying cannot help (access denied, a missing bucket or key, an invalid parameter, no
 * credentials), a plain Error (retried with backoff by the engine) when it may (throttling, a
 * resource busy in another operation, a 5xx, the network). Either way the message says what was
 * being done, on which resource, and AWS's own error name and message.
 */
import { PermanentError } from "../engine/engine.ts";

/** Names AWS uses for conditions that pass by themselves. */
const TRANSIENT = new Set([
  "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown",
  "ServiceUnavailable", "InternalFailure", "InternalServiceError", "InternalError", "RequestTimeout", "RequestTimeoutException",
  "ExpiredToken", "ExpiredTokenException", "IDPCommunicationError",
  // RDS: the instance or snapshot is busy (backing up, modifying, another snapshot in progress).
  "InvalidDBInstanceState", "InvalidDBInstanceStateFault", "InvalidDBSnapshotState", "InvalidDBSnapshotStateFault",
  "TimeoutError", "AbortError",
]);

/** An AWS request failed in a way a retry can mend (the engine retries the step with backoff). */
export class AwsTransientError extends Error {}

/** An AWS request was refused in a way no retry mends: the workflow fails at once with the reason. */
export class AwsRefusedError extends PermanentError {
  constructor(message: string, readonly awsName: string) {
    super(message);
  }
}

interface SdkErrorShape {
  name?: string;
  message?: string;
  $fault?: "client" | "server";
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

export function awsErrorName(err: unknown): string {
  return (err as SdkErrorShape | null)?.name ?? "Error";
}

/**
 * `what`: what was being done ("CreateDBSnapshot of acme-prod"); `done`: what that means for the
 * workflow ("no snapshot was requested and nothing was deleted").
 */
export function translateAwsError(err: unknown, what: string, done: string): Error {
  if (err instanceof PermanentError || err instanceof AwsTransientError) return err;
  const e = (err ?? {}) as SdkErrorShape;
  const name = e.name ?? "Error";
  const status = e.$metadata?.httpStatusCode;
  const request = e.$metadata?.requestId ? ` (request ${e.$metadata.requestId})` : "";
  const said = `${name}${status ? ` ${status}` : ""}: ${e.message ?? String(err)}${request}`;
  if (name === "CredentialsProviderError") {
    return new AwsRefusedError(
      `${what}: no AWS credentials (${e.message}); give the control plane a role or the AWS_* environment (the SDK's default credential chain); ${done}`,
      name,
    );
  }
  const transient = TRANSIENT.has(name) || e.$fault === "server" || (status !== undefined && (status >= 500 || status === 429)) || (e.$fault === undefined && status === undefined);
  const message = `${what} failed: AWS said ${said}; ${done}`;
  const out = transient ? new AwsTransientError(message) : new AwsRefusedError(message, name);
  (out as Error & { cause?: unknown }).cause = err;
  return out;
}
