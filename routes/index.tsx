/**
 * `GET /`: the dashboard, server-rendered with the current numbers so that it
 * reads well before (or without) any script; the islands then hydrate and
 * follow `/api/stream`.
 *
 * @module
 */

import { type ComponentChildren, h } from "preact";
import type { Handler } from "../services/dashboard/context.ts";
import type { DashboardState } from "../services/dashboard/model.ts";
import { type IslandName, ISLANDS } from "../islands/_registry.ts";
import { renderDocument, withToken } from "./_document.tsx";

export const handler: Handler = async ({ app, token }) => {
  const [state, hasIslands] = await Promise.all([app.state.read(), app.hasIslands()]);
  const html = renderDocument({
    title: "InstaShop · Real-time dashboard",
    body: <Page state={state} namespace={app.namespace} />,
    boot: { stream: withToken("/api/stream", token), state },
    hasIslands,
    token,
  });
  return new Response(html, {
    headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
  });
};

/** An island's server render, in the element the browser hydrates. */
function Island({ name, state }: { name: IslandName; state: DashboardState }) {
  const { component, select } = ISLANDS[name];
  return <div class="island" data-island={name}>{h(component, select(state))}</div>;
}

function Card(
  { title, id, wide, children }: {
    title: string;
    id: string;
    /** `wide`: 8 of 12 columns; `full`: the whole row; `last`: the whole row on mid-size screens. */
    wide?: "wide" | "full" | "last";
    children: ComponentChildren;
  },
) {
  return (
    <section class={`card ${wide ?? ""}`} aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

function Page({ state, namespace }: { state: DashboardState; namespace: string }) {
  return (
    <>
      <header class="top">
        <div class="brand">
          <h1>
            InstaShop <span>real-time</span>
          </h1>
          <p>Kafka → aggregator → Redis, pushed to this page as it changes</p>
        </div>
        <Island name="LiveBadge" state={state} />
      </header>
      <main>
        <section aria-label="Key figures">
          <Island name="Kpis" state={state} />
        </section>
        <div class="grid">
          <Card title="Revenue and transactions per window" id="h-windows" wide="wide">
            <Island name="WindowChart" state={state} />
          </Card>
          <Card title="Pipeline status" id="h-status">
            <Island name="StatusPanel" state={state} />
          </Card>
          <Card title="Sales by category" id="h-categories">
            <Island name="CategoryChart" state={state} />
          </Card>
          <Card title="Behaviour mix" id="h-behavior">
            <Island name="BehaviorChart" state={state} />
          </Card>
          <Card title="Revenue by hour (warehouse, UTC)" id="h-hours" wide="last">
            <Island name="HourlyChart" state={state} />
          </Card>
          <Card title="Latest events (warehouse)" id="h-events" wide="full">
            <Island name="LatestEvents" state={state} />
          </Card>
        </div>
      </main>
      <footer>
        {namespace ? `Namespace ${namespace} · ` : ""}Numbers from Redis (metrics:*) and the
        warehouse; times in UTC.
      </footer>
    </>
  );
}
