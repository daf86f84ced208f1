/**
 * Opening a server-sent-event stream on a Fastify reply, as every streaming route does it (run
 * events, the run queue's changes, a rollout's snapshots): the reply taken over from Fastify, the
 * SSE headers flushed at once (the client knows the stream is open before the first event), a
 * keep-alive comment every 15 s (proxies and load balancers close idle connections), and one
 * idempotent close, run when the client goes or when the route ends the stream.
 */
import type { FastifyReply, FastifyRequest } from "fastify";

const SSE_KEEPALIVE_MS = 15_000;

export interface EventStream {
  /** Writes raw SSE text (`event: ...\ndata: ...\n\n`); nothing once closed. */
  write(text: string): void;
  /** Ends the response and runs the route's `onClose` once, whoever calls it first. */
  close(): void;
  readonly closed: boolean;
}

/** Opens the stream; `onClose` releases what the route holds for it (its stream slot, its subscriptions, its timers). */
export function openEventStream(request: FastifyRequest, reply: FastifyReply, onClose: () => void): EventStream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.flushHeaders();
  let closed = false;
  const keepalive = setInterval(() => res.write(": keepalive\n\n"), SSE_KEEPALIVE_MS);
  const stream: EventStream = {
    write(text) {
      if (!closed) res.write(text);
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(keepalive);
      onClose();
      res.end();
    },
    get closed() {
      return closed;
    },
  };
  request.raw.on("close", () => stream.close());
  return stream;
}
