/**
 * A TCP proxy in front of a PostgreSQL server that can stop one COPY in the middle of its data:
 * the session whose query text matches `trigger` gets `allowBytes` of the server's answer, then
 * nothing more until `release()` (the server blocks sending, the reader waits for data). Tests use
 * it to hold a bulk copy mid-stream deterministically, with no sleep and no hook in the code under
 * test. Connections are plain TCP (the test servers run without TLS), so the query text is visible.
 */
import net from "node:net";

export interface PgGate {
  host: string;
  port: number;
  /** Resolves once a matching query's answer has been cut after `allowBytes`. */
  readonly gated: Promise<void>;
  /** Server bytes forwarded so far on the gated session (after the trigger). */
  forwardedAfterTrigger(): number;
  /** Forwards everything held back and stops gating. */
  release(): void;
  /** Connections through the proxy still open. */
  openConnections(): number;
  close(): Promise<void>;
}

export async function startPgGate(upstream: { host: string; port: number }, trigger: RegExp, allowBytes: number): Promise<PgGate> {
  const sockets = new Set<net.Socket>();
  let released = false;
  let armed = true;
  let forwarded = 0;
  const holds: (() => void)[] = [];
  let markGated!: () => void;
  const gated = new Promise<void>((resolve) => (markGated = resolve));

  const server = net.createServer((client) => {
    const up = net.connect(upstream.port, upstream.host);
    sockets.add(client);
    sockets.add(up);
    let watching = false;
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on("close", () => (sockets.delete(client), up.destroy()));
    up.on("close", () => (sockets.delete(up), client.destroy()));
    client.on("error", end);
    up.on("error", end);
    client.on("data", (chunk: Buffer) => {
      if (armed && trigger.test(chunk.toString("latin1"))) {
        armed = false;
        watching = true;
      }
      up.write(chunk);
    });
    up.on("data", (chunk: Buffer) => {
      if (!watching || released) {
        client.write(chunk);
        return;
      }
      const room = allowBytes - forwarded;
      if (room > 0) {
        client.write(chunk.subarray(0, room));
        forwarded += Math.min(room, chunk.length);
      }
      if (chunk.length > room) {
        const rest = chunk.subarray(Math.max(0, room));
        up.pause();
        holds.push(() => {
          client.write(rest);
          up.resume();
        });
        watching = false;
        markGated();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: "127.0.0.1",
    port,
    gated,
    forwardedAfterTrigger: () => forwarded,
    release() {
      released = true;
      for (const h of holds.splice(0)) h();
    },
    openConnections: () => [...sockets].filter((s) => !s.destroyed).length / 2,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
