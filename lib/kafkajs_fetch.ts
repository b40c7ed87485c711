/**
 * The consumer's side of kafkajs 2.2.4, replaced by code with the same
 * output (./kafkajs_fast.ts has the producer's side and imports this one):
 * the decoding of a record's offset and timestamp, with numbers instead of
 * BigInt-backed `Long`s, and a fetched batch's offset filter, comparing
 * offsets as numbers. Anything these cannot vouch for goes to kafkajs' own
 * code. `tests/kafkajs_fast_test.ts` compares them with the originals.
 *
 * Imported for its effect through ./kafkajs_fast.ts by ../lib/kafka.ts,
 * before kafkajs' consumer is loaded.
 *
 * @module
 */

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

interface DecoderLike {
  buffer: Uint8Array;
  offset: number;
  readInt8(): number;
  readVarInt(): number;
  readVarIntBytes(): unknown;
  readVarIntArray(reader: unknown): { key: string; value: unknown }[];
}

interface BatchContext {
  firstOffset?: string;
  firstTimestamp?: string;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
  maxTimestamp?: string;
}

type RecordDecoder = (decoder: DecoderLike, batchContext?: BatchContext) => unknown;

const recordPath = require.resolve("kafkajs/src/protocol/recordBatch/record/v0/decoder.js");
const headerDecoder = require("kafkajs/src/protocol/recordBatch/header/v0/decoder.js");
require(recordPath);
const recordModule = require.cache[recordPath]!;

/** kafkajs' own record decoder, for the fallback and the tests. */
export const originalDecodeRecord = recordModule.exports as RecordDecoder;

const LOG_APPEND_TIME = 1;

/**
 * A zigzag varlong as a number when it has at most 7 bytes (49 bits, exact);
 * undefined (offset untouched) otherwise.
 */
function readSmallVarLong(decoder: DecoderLike): number | undefined {
  const buf = decoder.buffer;
  let offset = decoder.offset;
  let z = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    const byte = buf[offset++]!;
    z += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) {
      decoder.offset = offset;
      return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    }
  }
  return undefined;
}

// The batch whose base offset and timestamp were read last: its records share them, and
// checking them again per record made two strings a record.
let baseOf: BatchContext | undefined;
let baseOffset = NaN;
let baseTimestamp = NaN;

/** Reads the batch's base offset and timestamp as numbers; false when they are not exact. */
function readBases(batchContext: BatchContext): boolean {
  if (batchContext === baseOf) return true;
  const { firstOffset, firstTimestamp } = batchContext;
  const offset = Number(firstOffset);
  const timestamp = Number(firstTimestamp);
  if (
    typeof firstOffset !== "string" || typeof firstTimestamp !== "string" ||
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(timestamp) ||
    Math.abs(offset) >= 2 ** 52 ||
    String(offset) !== firstOffset || String(timestamp) !== firstTimestamp
  ) {
    return false;
  }
  baseOf = batchContext;
  baseOffset = offset;
  baseTimestamp = timestamp;
  return true;
}

/** kafkajs' record decoder (record/v0/decoder.js) with numbers instead of `Long`s. */
export function decodeRecord(decoder: DecoderLike, batchContext: BatchContext = {}): unknown {
  const { magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext;
  if (!readBases(batchContext)) return originalDecodeRecord(decoder, batchContext);
  const start = decoder.offset;
  const attributes = decoder.readInt8();
  const timestampDelta = readSmallVarLong(decoder);
  const sum = baseTimestamp + (timestampDelta ?? 0);
  if (timestampDelta === undefined || !Number.isSafeInteger(sum)) {
    decoder.offset = start;
    return originalDecodeRecord(decoder, batchContext);
  }
  const timestamp = timestampType === LOG_APPEND_TIME && maxTimestamp ? maxTimestamp : String(sum);
  const offset = String(baseOffset + decoder.readVarInt());
  const key = decoder.readVarIntBytes();
  const value = decoder.readVarIntBytes();
  const headers: Record<string, unknown> = {};
  // No headers (a varint 0, what our producers write): no array to read them into.
  if (decoder.buffer[decoder.offset] === 0) decoder.offset++;
  else readHeaders(decoder, headers);
  return {
    magicByte,
    attributes,
    timestamp,
    offset,
    key,
    value,
    headers,
    isControlRecord: isControlBatch,
    batchContext,
  };
}

function readHeaders(decoder: DecoderLike, headers: Record<string, unknown>) {
  for (const header of decoder.readVarIntArray(headerDecoder)) {
    const seen = headers[header.key];
    // defineProperty: a key like "__proto__" becomes an own property, as in kafkajs' spread.
    Object.defineProperty(headers, header.key, {
      value: seen === undefined
        ? header.value
        : Array.isArray(seen)
        ? seen.concat([header.value])
        : [seen, header.value],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
}

recordModule.exports = decodeRecord;

interface FetchedMessage {
  offset: string;
  isControlRecord?: boolean;
}

interface PartitionData {
  partition: number;
  highWatermark: string;
  abortedTransactions?: unknown[];
  messages: FetchedMessage[];
}

type BatchClass = new (topic: string, fetchedOffset: string, data: PartitionData) => object;

const batchPath = require.resolve("kafkajs/src/consumer/batch.js");
require(batchPath);
const batchModule = require.cache[batchPath]!;

/** kafkajs' consumer batch, for the fallback and the tests. */
export const OriginalBatch = batchModule.exports as BatchClass;

/**
 * kafkajs' `Batch` (consumer/batch.js) with offsets compared as numbers: it
 * parses every message's offset into a BigInt-backed `Long` to drop those
 * before the fetched offset. Batches with aborted transactions, or offsets
 * that are not exact as numbers, are built by kafkajs' own constructor. Same
 * prototype, so the methods and `instanceof` are kafkajs'.
 */
export const FastBatch = function (
  this: Record<string, unknown>,
  topic: string,
  fetchedOffset: string,
  partitionData: PartitionData,
) {
  const { abortedTransactions, messages } = partitionData;
  // Canonical decimal strings of at most 15 digits: exact as numbers, as they are as Longs.
  const exact = (offset: unknown) =>
    typeof offset === "string" && offset.length < 16 && String(Number(offset)) === offset;
  if ((abortedTransactions && abortedTransactions.length > 0) || !exact(fetchedOffset)) {
    return new OriginalBatch(topic, fetchedOffset, partitionData);
  }
  const start = Number(fetchedOffset);
  const within: FetchedMessage[] = [];
  for (const m of messages) {
    if (!exact(m.offset)) return new OriginalBatch(topic, fetchedOffset, partitionData);
    if (Number(m.offset) >= start) within.push(m);
  }
  this.fetchedOffset = fetchedOffset;
  this.topic = topic;
  this.partition = partitionData.partition;
  this.highWatermark = partitionData.highWatermark;
  this.rawMessages = messages;
  this.messagesWithinOffset = within;
  this.messages = within.filter((m) => !m.isControlRecord);
  return this;
} as unknown as BatchClass;
FastBatch.prototype = OriginalBatch.prototype;

batchModule.exports = FastBatch;
