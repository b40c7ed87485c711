/**
 * The two streams the producer publishes, as data: where the rows live, which
 * channel announces them, how a page becomes messages and how it is logged.
 *
 * @module
 */

import type { Names } from "../../lib/contracts.ts";
import {
  behaviorMessages,
  type BehaviorRow,
  type OutMessage,
  transactionMessages,
  type TransactionRow,
} from "./messages.ts";
import { type StreamTable, TRANSACTIONS, USER_BEHAVIOR } from "./queries.ts";
import type { PageRow } from "./source.ts";

export type StreamName = "transactions" | "user_behavior";

export interface StreamSpec<R extends PageRow = PageRow> {
  name: StreamName;
  database: "instashop" | "crm";
  /** NOTIFY channel of the source table's insert trigger. */
  channel: string;
  table: StreamTable;
  /** Plural noun of a row, for log lines. */
  noun: string;
  toMessages(rows: readonly R[]): OutMessage[];
  /** The "📤 Sending ..." line of a page. */
  describe(rows: readonly R[], messages: readonly OutMessage[], names: Names): string;
}

type TxRow = TransactionRow & PageRow;
type BhRow = BehaviorRow & PageRow;

const transactions: StreamSpec<TxRow> = {
  name: "transactions",
  database: "instashop",
  channel: "instashop_rows",
  table: TRANSACTIONS,
  noun: "transactions",
  toMessages: transactionMessages,
  describe(rows, _messages, n) {
    const items = rows.reduce((sum, r) => sum + (r.items?.length ?? 0), 0);
    return `📤 Sending ${rows.length} transactions (${items} items) to ${n.topics.transactions}`;
  },
};

const userBehavior: StreamSpec<BhRow> = {
  name: "user_behavior",
  database: "crm",
  channel: "crm_rows",
  table: USER_BEHAVIOR,
  noun: "behaviour events",
  toMessages: behaviorMessages,
  describe(rows, messages, n) {
    return `📤 Sending ${rows.length} behaviour events to ${n.topics.userBehavior} (${
      count(messages, "searches")
    } searches, ${count(messages, "cartEvents")} cart events)`;
  },
};

/** Both streams, in the order logs and summaries list them. */
export const STREAMS: Readonly<Record<StreamName, StreamSpec>> = {
  transactions: transactions as unknown as StreamSpec,
  user_behavior: userBehavior as unknown as StreamSpec,
};

function count(messages: readonly OutMessage[], topic: OutMessage["topic"]): number {
  let c = 0;
  for (const m of messages) if (m.topic === topic) c++;
  return c;
}
