/**
 * Turns Nagle's algorithm off on every `node:net` socket this process
 * connects, as a side effect of importing this module (lib/db.ts and
 * lib/kafka.ts do).
 *
 * Why: postgres.js 3.4.9 and kafkajs 2.2.4 leave it on (Node's default), and
 * a request whose last TCP segment is small then waits for the server's
 * delayed ACK: 40 ms. In the consumer, the dimension upsert after a COPY took
 * 42-46 ms where PostgreSQL spent 5 (an eighth of a flush's 300 ms warehouse
 * step); with the delay off, 2-5 ms. postgres.js has no
 * option for it (only a whole custom socket, which would bypass its connect
 * timeout and host list), so the one place every client's socket passes
 * through, `Socket#connect`, asks for it. ioredis asks for it itself.
 *
 * @example
 * ```ts
 * import "./tcp_nodelay.ts";
 * import net from "node:net";
 * import { noDelayRequested } from "./tcp_nodelay.ts";
 * const socket = new net.Socket();
 * socket.on("error", () => {});
 * socket.connect(1, "127.0.0.1");
 * noDelayRequested(socket); // true
 * socket.destroy();
 * ```
 *
 * @module
 */

import net from "node:net";

const requested = new WeakSet<net.Socket>();
const patched = Symbol.for("instashop.tcpNoDelay");

type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;
const proto = net.Socket.prototype as unknown as { connect: Connect; [patched]?: true };

if (!proto[patched]) {
  const connect = proto.connect;
  proto[patched] = true;
  proto.connect = function connectWithoutDelay(this: net.Socket, ...args: unknown[]) {
    // Set before connecting: the socket applies it once the connection is up.
    this.setNoDelay(true);
    requested.add(this);
    return connect.apply(this, args);
  };
}

/** Whether `socket` was connected through this module's `connect` (so without delay). */
export function noDelayRequested(socket: net.Socket): boolean {
  return requested.has(socket);
}
