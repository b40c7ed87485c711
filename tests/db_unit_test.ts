/**
 * The recognisers of lib/db.ts' guard against postgres.js' uncatchable
 * errors on a cut connection: they must match those errors and nothing else,
 * so that no other uncaught error is ever swallowed.
 */

import assert from "node:assert/strict";
import { assertRowsIntact } from "../lib/db.ts";
import {
  isConnectionError,
  isCutTypeFetch,
  isCutWrite,
  isOrphanConnectTimeout,
  isOrphanServerCut,
} from "../lib/db_errors.ts";

const FRAME = "    at Immediate.nextWrite (file:///root/.cache/deno/npm/registry.npmjs.org/" +
  "postgres/3.4.9/src/connection.js:255:22)";

function withStack<T extends Error>(error: T, frame: string): T {
  error.stack = `${error.name}: ${error.message}\n${frame}\n    at runImmediates (ext:core)`;
  return error;
}

Deno.test("db guard: the null-socket TypeError from postgres.js' nextWrite, and only it", () => {
  const message = "Cannot read properties of null (reading 'write')";
  assert.ok(isCutWrite(withStack(new TypeError(message), FRAME)));
  const epipe = withStack(new Error("This socket has been ended by the other party"), FRAME);
  assert.ok(isCutWrite(Object.assign(epipe, { code: "EPIPE" })));
  // The same message from our own code, another message from postgres.js, not an Error.
  assert.ok(
    !isCutWrite(withStack(new TypeError(message), "    at flush (file:///x/flush.ts:1:1)")),
  );
  assert.ok(!isCutWrite(withStack(new TypeError("x is not a function"), FRAME)));
  assert.ok(!isCutWrite(withStack(new RangeError(message), FRAME)));
  assert.ok(!isCutWrite(message));
});

Deno.test("db guard: postgres.js' connect timeout raised by its timer, and only it", () => {
  const frame = "    at connectTimedOut (file:///root/.cache/deno/npm/registry.npmjs.org/" +
    "postgres/3.4.9/src/connection.js:262:20)";
  const timeout = () => new Error("write CONNECT_TIMEOUT 127.0.0.1:5432");
  assert.ok(
    isOrphanConnectTimeout(Object.assign(withStack(timeout(), frame), { code: "CONNECT_TIMEOUT" })),
  );
  assert.ok(!isOrphanConnectTimeout(withStack(timeout(), frame)), "no code");
  assert.ok(
    !isOrphanConnectTimeout(
      Object.assign(withStack(timeout(), "    at reach (file:///x/consumer.ts:1:1)"), {
        code: "CONNECT_TIMEOUT",
      }),
    ),
    "raised elsewhere",
  );
  assert.ok(!isOrphanConnectTimeout({ code: "CONNECT_TIMEOUT" }), "not an Error");
});

Deno.test("db guard: a cut array-type fetch is recognised by its query and a connection code", () => {
  const query = `
      select b.oid, b.typarray
      from pg_catalog.pg_type a
      left join pg_catalog.pg_type b on b.oid = a.typelem
      where a.typcategory = 'A'`;
  const cut = Object.assign(new Error("terminating connection due to administrator command"), {
    code: "57P01",
    query,
  });
  assert.ok(isCutTypeFetch(cut));
  assert.ok(!isCutTypeFetch({ ...cut }), "not an Error");
  assert.ok(!isCutTypeFetch(Object.assign(new Error("syntax"), { code: "42601", query })));
  assert.ok(
    !isCutTypeFetch(Object.assign(new Error("cut"), { code: "57P01", query: "select 1" })),
  );
});

Deno.test("db guard: the server's end of a session, read by postgres.js' ErrorResponse, and only it", () => {
  const frame = "    at ErrorResponse (file:///root/.cache/deno/npm/registry.npmjs.org/" +
    "postgres/3.4.9/src/connection.js:815:30)\n    at handle (file:///root/.cache/deno/npm/" +
    "registry.npmjs.org/postgres/3.4.9/src/connection.js:489:6)";
  const ended = (code: string, at = frame) => {
    const error = withStack(new Error("terminating connection due to administrator command"), at);
    error.name = "PostgresError";
    return Object.assign(error, { code });
  };
  assert.ok(isOrphanServerCut(ended("57P01")));
  assert.ok(isOrphanServerCut(ended("08006")));
  assert.ok(!isOrphanServerCut(ended("23505")), "a statement's error");
  assert.ok(!isOrphanServerCut(ended("57P01", "    at flush (file:///x/flush.ts:1:1)")));
  const plain = withStack(new Error("terminating connection"), frame);
  assert.ok(!isOrphanServerCut(Object.assign(plain, { code: "57P01" })), "not a PostgresError");
  assert.ok(!isOrphanServerCut({ name: "PostgresError", code: "57P01", stack: frame }));
});

Deno.test("db: connection errors are told from statement errors", () => {
  for (
    const code of ["57P01", "08006", "53300", "CONNECTION_CLOSED", "CONNECT_TIMEOUT", "ECONNRESET"]
  ) {
    assert.ok(isConnectionError({ code }), code);
  }
  for (const code of ["23505", "42P01", "22P02", undefined, "ERR_X"]) {
    assert.ok(!isConnectionError({ code }), String(code));
  }
});

Deno.test("db: a result with a missing row is a connection error, retried as after a cut", () => {
  const rows = [{ id: 1 }, { id: 2 }];
  assert.equal(assertRowsIntact(rows, "read a page"), rows);
  assert.deepEqual(assertRowsIntact([], "read a page"), []);
  const holed: { id: number }[] = [];
  holed[2] = { id: 3 };
  assert.throws(
    () => assertRowsIntact(holed, "read a page"),
    (error: Error & { code?: string }) =>
      error.code === "CONNECTION_CLOSED" && isConnectionError(error) &&
      error.message === "Cannot read a page as row 0 of 3 is missing from the result " +
          "(postgres.js after a cut connection); reading it again",
  );
});
