/** A stack failed to render or analyze; kept apart from planStacks.ts so the CLI can catch it without loading Pulumi. */
export class PlanError extends Error {
  constructor(readonly stackName: string, message: string) {
    super(`${stackName}: ${message}`);
  }
}
