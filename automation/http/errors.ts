/** Errors a handler throws to answer with a status and a message a person can act on. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface ErrorBody {
  error: { message: string } & Record<string, unknown>;
}

export function errorBody(message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: { message, ...details } };
}
