/**
 * Entry point for `pulumi up` / `pulumi preview` (Pulumi.yaml `main`). The Pulumi CLI runs it
 * with the project directory as the working directory; tenant and stack files are read from
 * there and validated before any resource is registered.
 */
import * as pulumi from "@pulumi/pulumi";
import { requireFleet } from "./model/fleet.ts";
import { defineStack } from "./program.ts";

const fleet = requireFleet({ projectDir: process.cwd() });
const outputs = await defineStack(fleet, pulumi.getStack());

// ESM programs export their stack outputs; one object keeps the names stable. Other stacks read
// it by this name (STACK_EXPORT in infra/model/hub.ts: a platform stack's ids for its spokes).
export const stack = outputs;
