/**
 * Hot spots of kafkajs 2.2.4, replaced by code with the same output: the
 * producer's varint writes and its grouping of a send's messages by
 * partition, and the consumer's decoding of a record's offset and timestamp
 * and its batch's offset filter.
 *
 * kafkajs 2.2.4 writes every varint of every record (length, offset delta,
 * key and value lengths) by building an array, `Buffer.from(array)` and a
 * copy, and every timestamp delta through its BigInt-backed `Long`. On Deno's
 * Node `Buffer` each of those small buffers is an expensive allocation: in a
 * CPU profile of `consume --drain` sending 120,000 `transaction_item` events,
 * kafkajs' record encoding was 19% of the process's CPU, most of it there.
 * These replacements write the same bytes straight into the encoder's own
 * buffer, and take plain numbers (what the producer passes) without `Long`;
 * anything else goes to the original code. `tests/kafkajs_fast_test.ts`
 * compares them byte for byte with the originals.
 *
 * Imported for its effect by ./kafka.ts, before any producer exists.
 *
 * @module
 */

import { createRequire } from "node:module";
import Encoder from "kafkajs/src/protocol/encoder.js";
// The Produce request written in one buffer of its exact size (same bytes).
import "./kafkajs_produce.ts";

/** The encoder's fields and methods these replacements use. */
interface EncoderLike {
  buf: Uint8Array;
  offset: number;
  ensureAvailable(length: number): void;
}

interface EncoderClass {
  prototype: {
    writeUVarInt(this: EncoderLike, value: number): EncoderLike;
    writeVarLong(this: EncoderLike, value: unknown): EncoderLike;
  };
  sizeOfVarLong(value: unknown): number;
}

const encoder = Encoder as unknown as EncoderClass;

/** The originals, for the fallback and for the tests. */
export const original = {
  writeUVarInt: encoder.prototype.writeUVarInt,
  writeVarLong: encoder.prototype.writeVarLong,
  sizeOfVarLong: encoder.sizeOfVarLong,
};

/** ZigZag of `value` as a plain number, when it is exact (|value| < 2^52); else undefined. */
function zigZag(value: unknown): number | undefined {
  if (typeof value !== "number" || !Number.isInteger(value)) return undefined;
  if (value >= 2 ** 52 || value <= -(2 ** 52)) return undefined;
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

/** Same loop as kafkajs (bits above the low 7 of the 32-bit value), written in place. */
function writeUVarInt(this: EncoderLike, value: number): EncoderLike {
  this.ensureAvailable(5);
  const buf = this.buf;
  let offset = this.offset;
  while ((value & 0xffffff80) !== 0) {
    buf[offset++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[offset++] = value & 0x7f;
  this.offset = offset;
  return this;
}

function writeVarLong(this: EncoderLike, value: unknown): EncoderLike {
  let z = zigZag(value);
  if (z === undefined) return original.writeVarLong.call(this, value);
  this.ensureAvailable(8);
  const buf = this.buf;
  let offset = this.offset;
  while (z >= 128) {
    buf[offset++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[offset++] = z;
  this.offset = offset;
  return this;
}

function sizeOfVarLong(value: unknown): number {
  let z = zigZag(value);
  if (z === undefined) return original.sizeOfVarLong.call(encoder, value);
  let bytes = 1;
  while (z >= 128) {
    bytes++;
    z = Math.floor(z / 128);
  }
  return bytes;
}

encoder.prototype.writeUVarInt = writeUVarInt;
encoder.prototype.writeVarLong = writeVarLong;
encoder.sizeOfVarLong = sizeOfVarLong;

interface GroupInput {
  topic: string;
  partitionMetadata: unknown[];
  messages: unknown[];
  partitioner(input: { topic: string; partitionMetadata: unknown[]; message: unknown }): number;
}
type Group = (input: GroupInput) => Record<number, unknown[]>;

const require = createRequire(import.meta.url);
const groupPath = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");
require(groupPath);
const groupModule = require.cache[groupPath]!;

/** kafkajs' own grouping, for the tests. */
export const originalGroup = groupModule.exports as Group;

/**
 * Messages by partition, in send order: what kafkajs' reduce builds, in linear
 * time. A message that names its partition is not passed to the partitioner:
 * kafkajs' partitioners (default and legacy) return that partition, but only
 * after filtering the partition metadata, once per message.
 */
export function groupMessagesPerPartition(
  { topic, partitionMetadata, messages, partitioner }: GroupInput,
): Record<number, unknown[]> {
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const named = (message as { partition?: unknown }).partition;
    const partition = typeof named === "number"
      ? named
      : partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

groupModule.exports = groupMessagesPerPartition;

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

/** kafkajs' record decoder (record/v0/decoder.js) with numbers instead of `Long`s. */
export function decodeRecord(decoder: DecoderLike, batchContext: BatchContext = {}): unknown {
  const {
    firstOffset,
    firstTimestamp,
    magicByte,
    isControlBatch = false,
    timestampType,
    maxTimestamp,
  } = batchContext;
  const baseOffset = Number(firstOffset);
  const baseTimestamp = Number(firstTimestamp);
  if (
    typeof firstOffset !== "string" || typeof firstTimestamp !== "string" ||
    !Number.isSafeInteger(baseOffset) || !Number.isSafeInteger(baseTimestamp) ||
    Math.abs(baseOffset) >= 2 ** 52 ||
    String(baseOffset) !== firstOffset || String(baseTimestamp) !== firstTimestamp
  ) {
    return originalDecodeRecord(decoder, batchContext);
  }
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
