/**
 * Unit tests of the consumer's pure parts with fakes: the producer that is
 * replaced after a failed send (issue 10: a broker death must not leave
 * consume retrying a poisoned idempotent producer forever).
 */

import assert from "node:assert/strict";
import type { Producer } from "../lib/kafka.ts";
import { createSender } from "../services/consume/sender.ts";

/** A producer whose sends fail while `failing` holds; it records its id per send. */
function fakeProducers(failing: (id: number) => boolean) {
  const log: string[] = [];
  let made = 0;
  let inFlight = 0;
  let overlapped = false;
  const make = () => {
    const id = ++made;
    return {
      connect: () => Promise.resolve(void log.push(`connect ${id}`)),
      disconnect: () => Promise.resolve(void log.push(`disconnect ${id}`)),
      send: async ({ topic }: { topic: string }) => {
        if (++inFlight > 1) overlapped = true;
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        if (failing(id)) {
          log.push(`fail ${id} ${topic}`);
          throw new Error("OUT_OF_ORDER_SEQUENCE_NUMBER");
        }
        log.push(`sent ${id} ${topic}`);
        return [];
      },
    } as unknown as Producer;
  };
  return { make, log, made: () => made, overlapped: () => overlapped };
}

Deno.test("consume sender: a failed send replaces the producer; sends never overlap", async () => {
  const fakes = fakeProducers((id) => id === 1);
  const sender = createSender(fakes.make);
  await sender.connect();
  const results = await Promise.allSettled([
    sender.send({ topic: "a", messages: [] }),
    sender.send({ topic: "b", messages: [] }),
    sender.send({ topic: "c", messages: [] }),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "fulfilled", "fulfilled"]);
  assert.deepEqual(fakes.log, [
    "connect 1",
    "fail 1 a",
    "disconnect 1",
    "connect 2",
    "sent 2 b",
    "sent 2 c",
  ]);
  assert.equal(fakes.overlapped(), false);
  await sender.close();
  assert.equal(fakes.log.at(-1), "disconnect 2");
});

Deno.test("consume sender: a producer that keeps failing is replaced on each failure", async () => {
  const fakes = fakeProducers((id) => id < 4);
  const sender = createSender(fakes.make);
  for (let i = 0; i < 3; i++) {
    await assert.rejects(sender.send({ topic: "t", messages: [] }), /OUT_OF_ORDER/);
  }
  await sender.send({ topic: "t", messages: [] });
  assert.equal(fakes.made(), 4);
  assert.equal(fakes.log.at(-1), "sent 4 t");
});
