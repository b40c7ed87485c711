/**
 * kafkajs 2.2.4's Produce request (v3, which v4 to v7 reuse), encoded into one
 * buffer of the exact size, with the same bytes.
 *
 * kafkajs builds a Produce request bottom up: one `Encoder` (a zeroed 512-byte
 * `Buffer`) per record, copied into the batch body, which doubles and copies as
 * it grows, then copied again into the batch, the partition, the topic and the
 * request. On Deno's Node `Buffer` each allocation is expensive: in a CPU
 * profile of `produce --drain` (110,449 messages) the request encoding, its
 * buffer allocations and copies and the garbage they leave were about 40% of
 * the producer's CPU. Here every size is known before a byte is written (a
 * record's size is its key and value lengths plus a few varints), so the
 * request is written once, in place, and the CRC-32C of each batch is computed
 * over that buffer with a table-per-byte-position (slicing-by-8) loop
 * (./kafkajs_bytes.ts has those byte-level pieces).
 *
 * Only the common case takes this path: no compression, keys and values that
 * are strings, Buffers (or plain Uint8Arrays, written as they are) or null, no
 * message timestamps and no headers. Any other request goes to kafkajs' own
 * encoder (plain Uint8Arrays made Buffers first). `tests/kafkajs_produce_test.ts`
 * compares both byte for byte.
 *
 * Imported for its effect by ./kafkajs_fast.ts, before any producer exists.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import Encoder from "kafkajs/src/protocol/encoder.js";
import {
  crc32c,
  lengthOf,
  sizeOfString,
  sizeOfVarInt,
  writeBytes,
  writeVarInt,
} from "./kafkajs_bytes.ts";

export { crc32c };

const require = createRequire(import.meta.url);
const Long = require("kafkajs/src/utils/long.js");

/** A message as kafkajs hands it to the request. */
interface ProduceMessage {
  key?: unknown;
  value?: unknown;
  headers?: Record<string, unknown>;
  timestamp?: unknown;
}

interface PartitionData {
  partition: number;
  firstSequence?: number;
  messages: ProduceMessage[];
}

/** The arguments of kafkajs' Produce v3 request. */
export interface ProduceArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: { topic: string; partitions: PartitionData[] }[];
}

interface ProduceRequest {
  apiKey: number;
  apiVersion: number;
  apiName: string;
  expectResponse(): boolean;
  encode(): Promise<EncoderLike>;
  /** The whole request, size and header included, or undefined for kafkajs' own path. */
  encodeFramed?(frame: Frame): EncoderLike | undefined;
}

interface EncoderLike {
  buf: Buffer;
  offset: number;
  /** The bytes written (a view). */
  readonly buffer: Buffer;
  writeInt8(v: number): EncoderLike;
  writeInt16(v: number): EncoderLike;
  writeInt32(v: number): EncoderLike;
  writeUInt32(v: number): EncoderLike;
  writeInt64(v: unknown): EncoderLike;
  writeString(v: string | null): EncoderLike;
  size(): number;
}

type V3 = (args: ProduceArgs) => ProduceRequest;

const v3Path = require.resolve("kafkajs/src/protocol/requests/produce/v3/request.js");
require(v3Path);
const v3Module = require.cache[v3Path]!;

/** kafkajs' own Produce v3 request, for the fallback and the tests. */
export const originalProduceV3 = v3Module.exports as V3;

const NONE = 0;
const TRANSACTIONAL = 16;
const MAGIC = 2;
/** attributes 2, lastOffsetDelta 4, two timestamps 16, producer id 8, epoch 2, sequence 4, count 4 */
const BODY_FIXED = 40;
/** firstOffset 8, batch length 4, leader epoch 4, magic 1, crc 4 */
const BATCH_HEAD = 21;

/** No timestamp (kafkajs then stamps the batch with its clock) and no headers. */
function isPlain(m: ProduceMessage): boolean {
  if (m.timestamp !== undefined && m.timestamp !== null) return false;
  const headers = m.headers;
  if (headers === undefined || headers === null) return true;
  for (const key in headers) if (Object.hasOwn(headers, key)) return false;
  return true;
}

/** What kafkajs' `protocol/request.js` puts before a request's payload. */
export interface Frame {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

/**
 * The request's bytes, as kafkajs' v3 `encode` returns them, or undefined
 * when it holds something only kafkajs' own encoder handles. With `frame`,
 * the whole request as `protocol/request.js` sends it: size, header, payload.
 */
export function encodeProduce(args: ProduceArgs, frame?: Frame): EncoderLike | undefined {
  const {
    acks,
    timeout,
    transactionalId = null,
    producerId = Long.fromInt(-1),
    producerEpoch = 0,
    compression = NONE,
    topicData,
  } = args;
  if (compression !== NONE) return undefined;
  // Pass 1: every length, so that the buffer is allocated once at its final size.
  const lengths: number[] = [];
  const head = frame ? 4 + 2 + 2 + 4 + sizeOfString(frame.clientId) : 0;
  let total = head + sizeOfString(transactionalId) + 2 + 4 + 4;
  for (const { topic, partitions } of topicData) {
    total += sizeOfString(topic) + 4;
    for (const { messages } of partitions) {
      let records = 0;
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!;
        if (!isPlain(m)) return undefined;
        const k = lengthOf(m.key);
        const v = lengthOf(m.value);
        if (k === undefined || v === undefined) return undefined;
        // attributes, timestamp delta 0, offset delta, key, value, no headers
        const body = 1 + 1 + sizeOfVarInt(i) + sizeOfVarInt(k) + Math.max(k, 0) +
          sizeOfVarInt(v) + Math.max(v, 0) + 1;
        lengths.push(k, v, body);
        records += sizeOfVarInt(body) + body;
      }
      total += 4 + 4 + BATCH_HEAD + BODY_FIXED + records;
    }
  }

  const e = new (Encoder as unknown as new (size: number) => EncoderLike)(0);
  e.buf = Buffer.allocUnsafe(total);
  if (frame) {
    e.writeInt32(total - 4).writeInt16(frame.apiKey).writeInt16(frame.apiVersion)
      .writeInt32(frame.correlationId).writeString(frame.clientId);
  }
  e.writeString(transactionalId).writeInt16(acks).writeInt32(timeout).writeInt32(topicData.length);
  const attributes = NONE | (transactionalId ? TRANSACTIONAL : 0);
  let n = 0;
  for (const { topic, partitions } of topicData) {
    e.writeString(topic).writeInt32(partitions.length);
    for (const { partition, messages, firstSequence = 0 } of partitions) {
      const now = Date.now();
      const start = e.offset;
      e.writeInt32(partition).writeInt32(0); // record batch size, set below
      e.writeInt64(Long.fromInt(0)).writeInt32(0); // batch length, set below
      e.writeInt32(0).writeInt8(MAGIC).writeUInt32(0); // crc, set below
      const bodyStart = e.offset;
      e.writeInt16(attributes).writeInt32(messages.length - 1).writeInt64(now).writeInt64(now)
        .writeInt64(producerId).writeInt16(producerEpoch).writeInt32(firstSequence)
        .writeInt32(messages.length);
      const buf = e.buf;
      const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
      let o = e.offset;
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!;
        const k = lengths[n++]!;
        const v = lengths[n++]!;
        o = writeVarInt(buf, o, lengths[n++]!);
        buf[o++] = 0; // attributes
        buf[o++] = 0; // timestamp delta: kafkajs' is 0 when no message has a timestamp
        o = writeVarInt(buf, o, i);
        o = writeVarInt(buf, o, k);
        o = writeBytes(bytes, o, m.key, k);
        o = writeVarInt(buf, o, v);
        o = writeBytes(bytes, o, m.value, v);
        buf[o++] = 0; // no headers
      }
      e.offset = o;
      buf.writeInt32BE(o - start - 8, start + 4);
      buf.writeInt32BE(o - start - 20, start + 16);
      buf.writeUInt32BE(crc32c(buf, bodyStart, o), start + 25);
    }
  }
  if (e.offset !== total) throw new Error(`Produce request is ${e.offset} bytes, sized ${total}`);
  return e;
}

function asBuffers(m: ProduceMessage): void {
  const view = (v: unknown) =>
    v instanceof Uint8Array && !Buffer.isBuffer(v)
      ? Buffer.from(v.buffer, v.byteOffset, v.length)
      : v;
  m.key = view(m.key);
  m.value = view(m.value);
}

/** kafkajs' v3 request with {@link encodeProduce} first and kafkajs' own encoder as fallback. */
export function produceV3(args: ProduceArgs): ProduceRequest {
  const request = originalProduceV3(args);
  const fallback = request.encode;
  request.encode = () => {
    const fast = encodeProduce(args);
    if (fast) return Promise.resolve(fast);
    // kafkajs' encoder takes Buffers only (a plain Uint8Array would be written as text).
    for (const { partitions } of args.topicData) {
      for (const { messages } of partitions) for (const m of messages) asBuffers(m);
    }
    return fallback();
  };
  request.encodeFramed = (frame) => encodeProduce(args, frame);
  return request;
}

v3Module.exports = produceV3;

type CreateRequest = (input: {
  correlationId: number;
  clientId: string | null;
  request: ProduceRequest;
}) => Promise<EncoderLike>;

const requestPath = require.resolve("kafkajs/src/protocol/request.js");
require(requestPath);
const requestModule = require.cache[requestPath]!;

/** kafkajs' own framing of a request (a copy of the payload behind size and header). */
export const originalCreateRequest = requestModule.exports as CreateRequest;

/**
 * kafkajs' `protocol/request.js`: a Produce request the fast encoder takes is
 * written with its size and header in the same buffer (no copy); any other
 * request as kafkajs frames it.
 */
export const createRequest: CreateRequest = (input) => {
  const { correlationId, clientId, request } = input;
  const framed = request.encodeFramed?.({
    apiKey: request.apiKey,
    apiVersion: request.apiVersion,
    correlationId,
    clientId,
  });
  return framed ? Promise.resolve(framed) : originalCreateRequest(input);
};

// kafkajs' connection module keeps the function it required: it must not be loaded yet.
const connectionPath = require.resolve("kafkajs/src/network/connection.js");
if (require.cache[connectionPath]) {
  throw new Error("Cannot patch kafkajs' request framing as kafkajs was loaded before it");
}
requestModule.exports = createRequest;
