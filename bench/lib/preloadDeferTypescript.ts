/**
 * Preload of every bench case (bench/lib/child.ts, `--import` after tsx): defers the SDK's
 * TypeScript compiler before the case's static imports load the SDK, as the tenantctl binary and
 * its renderer workers do (plan/render/deferTypescript.ts), so a case measures what they run.
 */
import { deferTypescript } from "../../plan/render/deferTypescript.ts";

deferTypescript();
