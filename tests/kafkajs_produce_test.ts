/**
 * lib/kafkajs_produce.ts writes exactly the Produce request kafkajs' own
 * encoder writes, and kafkajs uses it for every Produce version from 3 on.
 * Pure: no broker.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import crc32C from "kafkajs/src/protocol/recordBatch/crc32C/index.js";
import "../lib/kafkajs_fast.ts";
import {
  crc32c,
  createRequest,
  encodeProduce,
  originalCreateRequest,
  originalProduceV3,
  type ProduceArgs,
  produceV3,
} from "../lib/kafkajs_produce.ts";
import { random } from "../services/bench/payload.ts";

const require = createRequire(import.meta.url);
const Long = require("kafkajs/src/utils/long.js");
const produce = require("kafkajs/src/protocol/requests/produce/index.js");

// deno-lint-ignore no-explicit-any
type Any = any;

const WORDS = [
  "a",
  "é",
  "日本",
  "🙂",
  '"',
  "\\",
  "x".repeat(200),
  '{"k":1}',
  "",
  "\ud800",
  "\udc00x",
];

function text(next: () => number, max: number): string {
  let s = "";
  const n = Math.floor(next() * max);
  for (let i = 0; i < n; i++) s += WORDS[Math.floor(next() * WORDS.length)];
  return s;
}

function field(next: () => number, max: number): unknown {
  const r = next();
  if (r < 0.05) return null;
  if (r < 0.08) return undefined;
  if (r < 0.2) return Buffer.from(text(next, max));
  return text(next, max);
}

function args(seed: number, overrides: Partial<ProduceArgs> = {}): ProduceArgs {
  const next = random(seed);
  const topics = 1 + Math.floor(next() * 3);
  return {
    acks: -1,
    timeout: 30000,
    topicData: Array.from({ length: topics }, (_, t) => ({
      topic: `ns.topic-${t}${t === 2 ? "é" : ""}`,
      partitions: Array.from({ length: 1 + Math.floor(next() * 4) }, (_, p) => ({
        partition: p * 2,
        firstSequence: Math.floor(next() * 1e6),
        messages: Array.from(
          { length: Math.floor(next() * 300) },
          () => ({ key: field(next, 3), value: field(next, 40) }),
        ),
      })),
    })),
    ...overrides,
  };
}

/** Both encoders' bytes, with the clock stopped (kafkajs stamps each batch with Date.now()). */
async function both(input: ProduceArgs): Promise<[Buffer | undefined, Buffer]> {
  const now = Date.now;
  Date.now = () => 1_764_400_000_123;
  try {
    const fast = encodeProduce(input);
    const slow = await originalProduceV3(input).encode() as Any;
    return [fast && Buffer.from((fast as Any).buffer), Buffer.from(slow.buffer)];
  } finally {
    Date.now = now;
  }
}

Deno.test("a Produce request is byte for byte kafkajs' own", async () => {
  for (let seed = 1; seed <= 40; seed++) {
    const variants: Partial<ProduceArgs>[] = [
      {},
      { producerId: Long.fromNumber(4711), producerEpoch: 3, acks: 1, timeout: 5 },
      { producerId: 12, transactionalId: "tx-é", producerEpoch: 0 },
    ];
    for (const v of variants) {
      const [fast, slow] = await both(args(seed, v));
      assert.ok(fast, `seed ${seed} takes the fast path`);
      assert.ok(fast.equals(slow), `seed ${seed} ${JSON.stringify(Object.keys(v))}`);
    }
  }
});

Deno.test("large records, many records and empty partitions encode the same", async () => {
  const big = "é".repeat(40_000);
  const many = Array.from({ length: 20_000 }, (_, i) => ({ key: String(i % 97), value: `v${i}` }));
  const input: ProduceArgs = {
    acks: -1,
    timeout: 30000,
    topicData: [
      { topic: "t", partitions: [{ partition: 0, messages: [{ key: "k", value: big }] }] },
      {
        topic: "u",
        partitions: [{ partition: 1, messages: many }, { partition: 2, messages: [] }],
      },
    ],
  };
  const [fast, slow] = await both(input);
  assert.ok(fast?.equals(slow));
});

Deno.test("timestamps, headers and compression go to kafkajs' own encoder", async () => {
  const base = args(7);
  const first = base.topicData[0]!.partitions[0]!;
  const cases: ProduceArgs[] = [
    { ...base, compression: 1 },
    withMessage(base, { key: "k", value: "v", timestamp: 1000 }),
    withMessage(base, { key: "k", value: "v", timestamp: 0 }),
    withMessage(base, { key: "k", value: "v", headers: { h: "x" } }),
    withMessage(base, { key: 5, value: "v" }),
  ];
  for (const c of cases) assert.equal(encodeProduce(c), undefined);
  // An empty headers object is no header at all, as in kafkajs.
  const [fast, slow] = await both(withMessage(base, { key: "k", value: "v", headers: {} }));
  assert.ok(fast?.equals(slow));
  assert.ok(first.messages.length > 0);
});

Deno.test("a plain Uint8Array key or value is written as the Buffer of its bytes", async () => {
  const base = args(11);
  const bytes = new TextEncoder().encode('{"v":"é"}');
  const plain = { key: new Uint8Array([0x37, 0x31]), value: bytes };
  const buffers = { key: Buffer.from([0x37, 0x31]), value: Buffer.from(bytes) };
  const [fast] = await both(withMessage(base, plain));
  const [, slow] = await both(withMessage(base, buffers));
  assert.ok(fast?.equals(slow));
  // Where kafkajs' own encoder writes (here: compressed), it is handed Buffers.
  const now = Date.now;
  Date.now = () => 1_764_400_000_123;
  try {
    const gzip = { ...base, compression: 1 };
    const wrapped = await produceV3(withMessage(gzip, { ...plain })).encode() as Any;
    const own = await originalProduceV3(withMessage(gzip, buffers)).encode() as Any;
    assert.ok(Buffer.from(wrapped.buffer).equals(Buffer.from(own.buffer)));
  } finally {
    Date.now = now;
  }
});

function withMessage(base: ProduceArgs, message: Record<string, unknown>): ProduceArgs {
  const [head, ...rest] = base.topicData;
  return {
    ...base,
    topicData: [{
      ...head!,
      partitions: [{
        ...head!.partitions[0]!,
        messages: [...head!.partitions[0]!.messages, message],
      }],
    }, ...rest],
  };
}

Deno.test("kafkajs builds every Produce version from 3 on with the fast encoder", async () => {
  for (const version of [3, 4, 5, 6, 7]) {
    const input = args(version);
    const { request } = produce.protocol({ version })(input);
    assert.equal(request.apiVersion, version);
    const now = Date.now;
    Date.now = () => 1_764_400_000_123;
    try {
      const encoded = await request.encode();
      assert.ok(
        Buffer.from(encoded.buffer).equals(Buffer.from((encodeProduce(input) as Any).buffer)),
      );
    } finally {
      Date.now = now;
    }
  }
  assert.equal(require("kafkajs/src/protocol/requests/produce/v3/request.js"), produceV3);
});

Deno.test("a framed Produce request is byte for byte what kafkajs sends", async () => {
  const now = Date.now;
  Date.now = () => 1_764_400_000_123;
  try {
    for (const [version, clientId] of [[3, "c"], [5, null], [7, "instashop-produce-é"]] as const) {
      const input = args(version + 100);
      const { request } = produce.protocol({ version })(input);
      const frame = { correlationId: 4242 + version, clientId, request };
      const fast = await createRequest(frame as Any);
      const slow = await originalCreateRequest({ ...frame, request: { ...request } } as Any);
      assert.ok(Buffer.from(fast.buffer).equals(Buffer.from(slow.buffer)), `v${version}`);
      assert.equal(fast.size(), slow.size());
    }
    // A request the fast path does not take is framed by kafkajs.
    const input = withMessage(args(3), { key: "k", value: "v", headers: { h: "x" } });
    const { request } = produce.protocol({ version: 7 })(input);
    const frame = { correlationId: 1, clientId: "c", request };
    const fast = await createRequest(frame as Any);
    const slow = await originalCreateRequest(frame as Any);
    assert.ok(Buffer.from(fast.buffer).equals(Buffer.from(slow.buffer)));
  } finally {
    Date.now = now;
  }
  assert.equal(require("kafkajs/src/protocol/request.js"), createRequest);
});

Deno.test("CRC-32C matches kafkajs' over any length and alignment", () => {
  const next = random(99);
  const buf = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(next() * 256)));
  for (const [from, to] of [[0, 0], [0, 1], [3, 10], [1, 4096], [0, 4096], [7, 1000], [5, 13]]) {
    assert.equal(crc32c(buf, from!, to!), (crc32C as Any)(buf.subarray(from, to)), `${from}-${to}`);
  }
});
