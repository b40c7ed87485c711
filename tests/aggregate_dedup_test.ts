/**
 * The de-duplication of the metrics script on real Redis: the packed events
 * arrive as sent, and each bitmap ends with exactly the bits of the ids seen,
 * whether a section is dense (one byte range read and rewritten) or sparse
 * (BITFIELD), with repeats inside a chunk and across chunks.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { names } from "../lib/contracts.ts";
import { createRedis } from "../lib/redis.ts";
import { packUints } from "../services/aggregate/pack.ts";
import {
  behaviorShape,
  BITMAP_SEGMENT_BITS,
  type Contribution,
  encodeChunks,
} from "../services/aggregate/reduce.ts";
import { createMetricsScript, scriptKeys } from "../services/aggregate/script.ts";
import { createTestNamespace } from "./_support.ts";
import { services, T0 } from "./_aggregate_support.ts";
import { random } from "../services/bench/payload.ts";

Deno.test({
  name: "script: the packed events read back in Redis' cmsgpack as the same numbers",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggp");
    const redis = createRedis(ns.config);
    try {
      const values = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
      const packed = packUints(values);
      const reply = await redis.eval(
        "local t = cmsgpack.unpack(ARGV[1]); local out = {} " +
          "for i = 1, #t do out[i] = string.format('%d', t[i]) end return out",
        0,
        Buffer.from(packed.buffer, packed.byteOffset, packed.length),
      );
      assert.deepEqual(reply, values.map(String));
      assert.throws(() => packUints([-1]), RangeError);
      assert.throws(() => packUints([1.5]), RangeError);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});

Deno.test({
  name: "script: dense and sparse sections set exactly the bits of the ids, each counted once",
  ...services,
  async fn() {
    const ns = await createTestNamespace("aggd");
    const redis = createRedis(ns.config);
    try {
      const n = names(ns.namespace);
      const { seenPrefix } = scriptKeys(n);
      const script = createMetricsScript(redis, n, {
        windowMs: 30_000,
        allowedLatenessMs: 0,
        retentionMs: 3_600_000,
        staleMs: 30_000,
      });
      const rnd = random(7);
      const shape = behaviorShape("search");
      const seen = new Set<number>();
      const batches: number[][] = [
        // Dense, with repeats inside the chunk; ids at both ends of a byte.
        Array.from({ length: 3000 }, () => 1 + Math.floor(rnd() * 4000)).concat([8, 15, 16]),
        // Dense again over the same range and beyond: repeats across chunks.
        Array.from({ length: 3000 }, () => 2000 + Math.floor(rnd() * 6000)),
        // Sparse: across a whole segment and into the next two.
        Array.from({ length: 500 }, () => 1 + Math.floor(rnd() * 3 * BITMAP_SEGMENT_BITS)),
        // One id alone, and the last bit of a segment.
        [BITMAP_SEGMENT_BITS - 1, BITMAP_SEGMENT_BITS - 1, 5],
      ];
      for (const ids of batches) {
        const fresh = new Set(ids.filter((id) => !seen.has(id))).size;
        const contributions: Contribution[] = ids.map((id) => ({
          shape,
          id,
          eventMs: T0,
          amount: 0,
        }));
        const chunk = encodeChunks(contributions, {
          seenPrefix,
          maxEvents: 10_000,
          windowMs: 30_000,
        });
        const result = await script.apply({ instance: "a", chunk: chunk[0] });
        assert.deepEqual([result.added, result.duplicates], [fresh, ids.length - fresh]);
        for (const id of ids) seen.add(id);
      }
      // Every seen id's bit is set, and no other: the bit counts per segment match.
      const bySegment = new Map<number, number[]>();
      for (const id of seen) {
        const segment = Math.floor(id / BITMAP_SEGMENT_BITS);
        bySegment.set(segment, [...(bySegment.get(segment) ?? []), id % BITMAP_SEGMENT_BITS]);
      }
      for (const [segment, bits] of bySegment) {
        const key = `${seenPrefix}ub:${segment}`;
        assert.equal(await redis.bitcount(key), bits.length, key);
        const pipeline = redis.pipeline();
        for (const bit of bits) pipeline.getbit(key, bit);
        const replies = (await pipeline.exec())!;
        assert.ok(replies.every(([error, value]) => error === null && value === 1), key);
      }
      const total = await redis.hget(n.redis("metrics:totals"), "events");
      assert.equal(Number(total), seen.size);
    } finally {
      redis.disconnect();
      await ns.cleanup();
    }
  },
});
