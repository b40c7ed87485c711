/**
 * lib/tcp_nodelay.ts: the sockets postgres.js and kafkajs open through
 * lib/db.ts and lib/kafka.ts ask for TCP_NODELAY (no 40 ms delayed-ACK wait
 * on a request's last small segment), on the real PostgreSQL and Kafka.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { loadConfig } from "../lib/config.ts";
import { connect } from "../lib/db.ts";
import { createKafka } from "../lib/kafka.ts";
import { noDelayRequested } from "../lib/tcp_nodelay.ts";

/** Runs `fn`, recording every socket whose delay was turned off meanwhile. */
async function socketsDuring(fn: (seen: net.Socket[]) => Promise<void>): Promise<net.Socket[]> {
  const seen: net.Socket[] = [];
  const setNoDelay = net.Socket.prototype.setNoDelay;
  net.Socket.prototype.setNoDelay = function (this: net.Socket, noDelay?: boolean) {
    if (noDelay !== false) seen.push(this);
    return setNoDelay.call(this, noDelay);
  };
  try {
    await fn(seen);
  } finally {
    net.Socket.prototype.setNoDelay = setNoDelay;
  }
  return seen;
}

const config = loadConfig();

Deno.test("tcp nodelay: postgres.js connections through lib/db.ts ask for it", async () => {
  const url = new URL(config.databases.dwh);
  url.pathname = "/postgres";
  const sql = connect(url.href, { max: 1 });
  let ports: (number | undefined)[] = [];
  const sockets = await socketsDuring(async (seen) => {
    const [row] = await sql<{ one: number }[]>`select 1 as one`;
    assert.equal(row?.one, 1);
    ports = seen.map((s) => s.remotePort);
  });
  await sql.end();
  assert.ok(sockets.length > 0, "no socket asked for TCP_NODELAY");
  assert.ok(sockets.every(noDelayRequested));
  assert.ok(ports.includes(Number(url.port || 5432)), `ports: ${ports.join(", ")}`);
});

Deno.test("tcp nodelay: kafkajs connections through lib/kafka.ts ask for it", async () => {
  const admin = createKafka(config, { clientId: "nodelay-test" }).admin();
  let ports: (number | undefined)[] = [];
  const sockets = await socketsDuring(async (seen) => {
    await admin.connect();
    await admin.listTopics();
    ports = seen.map((s) => s.remotePort);
  });
  await admin.disconnect();
  const brokerPorts = config.kafka.brokers.map((b) => Number(b.split(":").at(-1)));
  assert.ok(sockets.length > 0, "no socket asked for TCP_NODELAY");
  assert.ok(ports.some((p) => p !== undefined && brokerPorts.includes(p)), `ports: ${ports}`);
});
