/**
 * lib/kafkajs_fast.ts writes exactly the bytes kafkajs' own encoder writes.
 * Pure: no broker.
 */

import assert from "node:assert/strict";
import Encoder from "kafkajs/src/protocol/encoder.js";
import Decoder from "kafkajs/src/protocol/decoder.js";
import Record from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
import RecordDecoder from "kafkajs/src/protocol/recordBatch/record/v0/decoder.js";
import {
  decodeRecord,
  FastBatch,
  groupMessagesPerPartition,
  original,
  OriginalBatch,
  originalDecodeRecord,
  originalGroup,
} from "../lib/kafkajs_fast.ts";

// deno-lint-ignore no-explicit-any
type Any = any;
const E = Encoder as Any;

/** Runs `fn` with kafkajs' original methods in place, then puts the fast ones back. */
function withOriginals<T>(fn: () => T): T {
  const fast = {
    writeUVarInt: E.prototype.writeUVarInt,
    writeVarLong: E.prototype.writeVarLong,
    sizeOfVarLong: E.sizeOfVarLong,
  };
  E.prototype.writeUVarInt = original.writeUVarInt;
  E.prototype.writeVarLong = original.writeVarLong;
  E.sizeOfVarLong = original.sizeOfVarLong;
  try {
    return fn();
  } finally {
    E.prototype.writeUVarInt = fast.writeUVarInt;
    E.prototype.writeVarLong = fast.writeVarLong;
    E.sizeOfVarLong = fast.sizeOfVarLong;
  }
}

const INTS = [
  0,
  1,
  -1,
  63,
  64,
  -64,
  -65,
  127,
  128,
  255,
  256,
  16383,
  16384,
  2 ** 21,
  2 ** 28 - 1,
  2 ** 28,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 32 + 5,
  1e9,
  -1e9,
];
const LONGS = [
  ...INTS,
  2 ** 40,
  -(2 ** 40),
  2 ** 52 - 1,
  -(2 ** 52) + 1,
  2 ** 53 - 1,
  -(2 ** 53) + 1,
  Date.now(),
  -Date.now(),
  "12345",
  7n,
];

function bytes(write: (e: Any) => void): number[] {
  const e = new E(1);
  write(e);
  return [...e.buffer];
}

Deno.test("varints and varlongs are byte for byte kafkajs' own", () => {
  for (const v of INTS) {
    const fast = bytes((e) => e.writeVarInt(v).writeUVarInt(v));
    assert.deepEqual(
      fast,
      withOriginals(() => bytes((e) => e.writeVarInt(v).writeUVarInt(v))),
      `${v}`,
    );
  }
  for (const v of LONGS) {
    assert.deepEqual(
      bytes((e) => e.writeVarLong(v)),
      withOriginals(() => bytes((e) => e.writeVarLong(v))),
      `${v}`,
    );
    assert.deepEqual(E.sizeOfVarLong(v), withOriginals(() => E.sizeOfVarLong(v)), `size ${v}`);
  }
});

Deno.test("a record encodes to the same bytes and decodes back", async () => {
  const { Buffer } = await import("node:buffer");
  const records = [
    { key: Buffer.from("42"), value: Buffer.from('{"a":"é"}'), timestampDelta: 0 },
    { key: "7", value: "x".repeat(300), offsetDelta: 200, timestampDelta: 123456 },
    { key: null, value: null, offsetDelta: 70000, timestampDelta: -5, headers: { h: "v" } },
  ];
  for (const r of records) {
    const fast = [...(Record as Any)(r).buffer];
    assert.deepEqual(fast, withOriginals(() => [...(Record as Any)(r).buffer]));
    const d = new (Decoder as Any)(Buffer.from(fast));
    const length = d.readVarInt();
    assert.equal(d.offset + length, fast.length);
    const back = (RecordDecoder as Any)(d, { firstOffset: "0", firstTimestamp: "1000" });
    assert.equal(back.offset, String(r.offsetDelta ?? 0));
    assert.equal(back.timestamp, String(1000 + r.timestampDelta));
    assert.deepEqual(back.value === null ? null : String(back.value), r.value && String(r.value));
  }
});

Deno.test("messages are grouped by partition as kafkajs groups them", () => {
  const messages = Array.from({ length: 500 }, (_, i) => ({ key: String(i % 37), value: `${i}` }));
  const input = {
    topic: "t",
    partitionMetadata: [{ partitionId: 0 }, { partitionId: 1 }, { partitionId: 2 }],
    messages,
    partitioner: ({ message }: { message: unknown }) =>
      Number((message as { key: string }).key) % 3,
  };
  const fast = groupMessagesPerPartition(input);
  assert.deepEqual(fast, originalGroup(input));
  assert.deepEqual(Object.keys(fast), ["0", "1", "2"]);
  assert.deepEqual(groupMessagesPerPartition({ ...input, partitionMetadata: [] }), {});
  assert.deepEqual(originalGroup({ ...input, partitionMetadata: [] }), {});
});

Deno.test("messages that name their partition are grouped as kafkajs' partitioners place them", async () => {
  const Partitioners = (await import("kafkajs/src/producer/partitioners/index.js") as Any).default;
  const partitionMetadata = [0, 1, 2, 3].map((partitionId) => ({ partitionId, leader: 0 }));
  const messages = Array.from({ length: 300 }, (_, i) => ({
    key: String(i % 41),
    value: `${i}`,
    ...(i % 3 === 0 ? {} : { partition: (i * 7) % 4 }),
  }));
  for (const make of [Partitioners.DefaultPartitioner, Partitioners.LegacyPartitioner]) {
    const input = { topic: "t", partitionMetadata, messages, partitioner: make() as Any };
    assert.deepEqual(groupMessagesPerPartition(input), originalGroup(input));
  }
});

Deno.test("records decode as kafkajs decodes them", async () => {
  const { Buffer } = await import("node:buffer");
  const records = [
    { key: "42", value: '{"a":1}', offsetDelta: 0, timestampDelta: 0 },
    { key: null, value: "x".repeat(300), offsetDelta: 70000, timestampDelta: 123456 },
    { key: "k", value: null, offsetDelta: 3, timestampDelta: -5 },
    { key: "k", value: "v", offsetDelta: 1, timestampDelta: 2 ** 50 },
    { key: "k", value: "v", offsetDelta: 1, timestampDelta: 7, headers: { h: ["a", "b"], g: "c" } },
    {
      key: "k",
      value: "v",
      offsetDelta: 1,
      timestampDelta: 7,
      headers: JSON.parse('{"__proto__":"p"}'),
    },
  ];
  const contexts = [
    { firstOffset: "12345", firstTimestamp: "1764400000000", magicByte: 2, timestampType: 0 },
    { firstOffset: "0", firstTimestamp: "-1", magicByte: 2 },
    { firstOffset: "9007199254740993", firstTimestamp: "1764400000000", magicByte: 2 },
    { firstOffset: "5", firstTimestamp: "1764400000000", timestampType: 1, maxTimestamp: "99" },
    { firstOffset: "5", firstTimestamp: "01" },
  ];
  for (const r of records) {
    const encoded = (Record as Any)(r).buffer;
    for (const context of contexts) {
      const read = (decode: typeof decodeRecord) => {
        const d = new (Decoder as Any)(Buffer.from(encoded));
        d.readVarInt();
        const out = decode(d, context) as Record<string, unknown>;
        return { ...out, end: d.offset };
      };
      assert.deepEqual(read(decodeRecord), read(originalDecodeRecord), JSON.stringify(r));
    }
  }
});
Deno.test("consumer batches filter as kafkajs' Batch does", () => {
  const message = (offset: string, isControlRecord = false) => ({ offset, isControlRecord });
  const inputs: [string, Any][] = [
    ["100", [message("98"), message("99"), message("100"), message("101", true), message("102")]],
    ["0", []],
    ["9", [message("10"), message("11")]],
    ["9007199254740993", [message("9007199254740992"), message("9007199254740994")]],
    ["5", [message("4"), message("1e1"), message("6")]],
  ];
  for (const [fetchedOffset, messages] of inputs) {
    const data = { partition: 3, highWatermark: "200", abortedTransactions: [], messages };
    // The same fields and answers, or the same error (a Long cannot parse "1e1").
    const outcome = (B: typeof OriginalBatch) => {
      try {
        const batch = new B("t", fetchedOffset, data) as Any;
        assert.equal(batch instanceof OriginalBatch, true);
        return { ...batch, empty: batch.isEmpty(), last: batch.lastOffset() };
      } catch (error) {
        return String(error);
      }
    };
    assert.deepEqual(outcome(FastBatch), outcome(OriginalBatch), fetchedOffset);
  }
});
