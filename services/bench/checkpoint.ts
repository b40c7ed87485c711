/**
 * A PostgreSQL checkpoint before each timed phase that writes to the server.
 *
 * Why: the server checkpoints whenever its WAL outgrows `max_wal_size` (1 GB
 * here: 363 requested checkpoints since the server started, most of them
 * during a session of benches), and a phase that meets one pays for the
 * writes of those before it. The COPY anchor keeps the fastest of four loads,
 * so it usually dodges one; the consumer's single drain does not (0.47 to
 * 0.59 of COPY in five runs of nearly the same code). Starting each timed
 * phase from a fresh checkpoint gives every phase the same start.
 *
 * @module
 */

import { connect, type Sql } from "../../lib/db.ts";

/**
 * Runs `CHECKPOINT` on the server of `on` (a URL, connected for this alone,
 * or an open connection); false when the role may not (a managed server),
 * which leaves the phases as they were.
 *
 * @example
 * ```ts ignore
 * await checkpoint("postgres://postgres@127.0.0.1:5432/dwh_db");
 * ```
 */
export async function checkpoint(on: string | Sql): Promise<boolean> {
  const sql = typeof on === "string" ? connect(on, { max: 1 }) : on;
  try {
    await sql`checkpoint`;
    return true;
  } catch {
    return false;
  } finally {
    if (sql !== on) await sql.end({ timeout: 5 });
  }
}
