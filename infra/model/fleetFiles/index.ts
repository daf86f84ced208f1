/**
 * Tenant and stack files have one home: this folder. Every writer (tenantctl, the HTTP API,
 * billing, the lifecycle workflows) takes paths, file text, edits, CODEOWNERS lines, atomic
 * writes and "validate with these changes" from here. Pure model code: no Pulumi, no AWS SDK.
 */
export * from "./atomic.ts";
export * from "./codeowners.ts";
export * from "./edits.ts";
export * from "./overlay.ts";
export * from "./paths.ts";
export * from "./text.ts";
export * from "./move.ts";
