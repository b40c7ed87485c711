/**
 * Hot spots of kafkajs 2.2.4, replaced by code with the same output: the
 * producer's varint writes and its grouping of a send's messages by
 * partition here; the consumer's decoding of a record's offset and timestamp
 * and its batch's offset filter in ./kafkajs_fetch.ts; the Produce request in
 * ./kafkajs_produce.ts.
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
// The consumer's record decoder and Batch (same fields).
export { decodeRecord, FastBatch, OriginalBatch, originalDecodeRecord } from "./kafkajs_fetch.ts";

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
