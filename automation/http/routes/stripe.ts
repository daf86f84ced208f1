/** POST /webhooks/stripe: Stripe's signed deliveries, recorded and answered once (docs/control-plane.md). */
import type { FastifyInstance } from "fastify";
import Stripe from "stripe";
import { recordStripeEvent } from "../../billing/intake.ts";
import { crashPoint } from "../../crashPoints.ts";
import { withLogContext } from "../../log.ts";
import { HttpError } from "../errors.ts";
import type { RouteContext } from "./context.ts";

/** Stripe's recommended tolerance between the signature timestamp and now. */
export const STRIPE_TOLERANCE_SECONDS = 300;

export function stripeRoutes(ctx: RouteContext) {
  return async (scope: FastifyInstance) => {
    // The signature covers the exact bytes Stripe sent: keep the raw body, never re-serialize it.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
    scope.post("/webhooks/stripe", async (request, reply) => {
      const signature = request.headers["stripe-signature"];
      const raw = request.body;
      if (typeof signature !== "string" || signature === "") {
        ctx.metrics.eventsRejected.inc({ stage: "signature" });
        throw new HttpError(400, "missing Stripe-Signature header; only Stripe's signed deliveries are accepted");
      }
      if (!Buffer.isBuffer(raw) || raw.length === 0) throw new HttpError(400, "empty body; expected the Stripe event JSON");
      // constructEvent refuses old timestamps only; one from the future is as suspect (a clock or a forgery).
      const t = /(?:^|,)t=(\d{1,12})(?:,|$)/.exec(signature);
      const ahead = t ? Number(t[1]) - Math.floor(Date.now() / 1000) : 0;
      if (ahead > STRIPE_TOLERANCE_SECONDS) {
        ctx.metrics.eventsRejected.inc({ stage: "signature" });
        request.log.warn({ aheadSeconds: ahead }, "webhook signature timestamp in the future");
        throw new HttpError(400, `Stripe signature timestamp is ${ahead}s in the future (more than ${STRIPE_TOLERANCE_SECONDS}s are refused); check this host's clock`);
      }
      let event: Stripe.Event;
      try {
        event = Stripe.webhooks.constructEvent(raw, signature, ctx.stripeWebhookSecret, STRIPE_TOLERANCE_SECONDS);
      } catch (err) {
        // constructEvent parses the body after the signature verified: a signed body that is not
        // JSON is a payload problem, not a signature one.
        if (!(err instanceof Stripe.errors.StripeSignatureVerificationError)) {
          ctx.metrics.eventsRejected.inc({ stage: "payload" });
          request.log.warn({ reason: (err as Error).message.split("\n")[0] }, "webhook body signed correctly but not JSON");
          throw new HttpError(400, `the body is signed correctly but is not JSON (${(err as Error).message.split("\n")[0]}); expected the Stripe event JSON`);
        }
        ctx.metrics.eventsRejected.inc({ stage: "signature" });
        request.log.warn({ reason: (err as Error).message.split("\n")[0] }, "webhook signature rejected");
        throw new HttpError(
          400,
          `Stripe signature verification failed: ${(err as Error).message.split("\n")[0]} ` +
            `(signatures older than ${STRIPE_TOLERANCE_SECONDS}s are refused; check that STRIPE_WEBHOOK_SECRET is this endpoint's signing secret)`,
        );
      }
      ctx.metrics.eventsReceived.inc({ type: event.type });
      const result = await withLogContext({ eventId: event.id }, () =>
        recordStripeEvent(ctx.pool, ctx.boss, event, { graceHours: ctx.unpaidGraceHours }),
      );
      crashPoint("intake.committed");
      if (result.duplicate) {
        ctx.metrics.eventsDeduplicated.inc();
        withLogContext({ eventId: result.eventId }, () => request.log.info("duplicate Stripe event; already recorded, nothing enqueued"));
        return reply.send({ received: true, duplicate: true, eventId: result.eventId });
      }
      if (result.outcome === "rejected") ctx.metrics.eventsRejected.inc({ stage: "payload" });
      if (result.outcome === "stale") ctx.metrics.eventsRejected.inc({ stage: "stale" });
      withLogContext({ eventId: result.eventId }, () =>
        request.log.info({ outcome: result.outcome, reason: result.reason, subscriptionId: result.subscriptionId }, `Stripe event ${event.type} ${result.outcome}`),
      );
      if (result.outcome === "rejected" && result.eventId === "") throw new HttpError(400, result.reason ?? "unusable event");
      return reply.send({ received: true, duplicate: false, eventId: result.eventId, outcome: result.outcome, ...(result.reason ? { reason: result.reason } : {}) });
    });
  };
}
