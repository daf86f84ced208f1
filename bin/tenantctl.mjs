#!/usr/bin/env node
// tenantctl entry point: the CLI is TypeScript run through tsx (a dependency), so `npx tenantctl`
// works from a fresh `npm ci` without a build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
