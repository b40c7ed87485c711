/**
 * Every island with the function that picks its props from the state. The
 * page renders each one inside `<div data-island="Name">` with
 * `select(state)`; the browser hydrates the same vnode from the same state,
 * so the first client render matches the server's.
 *
 * @module
 */

import type { FunctionComponent } from "preact";
import type { DashboardState } from "../services/dashboard/model.ts";
import BehaviorChart, { selectBehavior } from "./BehaviorChart.tsx";
import CategoryChart, { selectCategories } from "./CategoryChart.tsx";
import HourlyChart, { selectHours } from "./HourlyChart.tsx";
import Kpis, { selectKpis } from "./Kpis.tsx";
import LatestEvents, { selectLatestEvents } from "./LatestEvents.tsx";
import LiveBadge, { selectLiveBadge } from "./LiveBadge.tsx";
import StatusPanel, { selectStatus } from "./StatusPanel.tsx";
import WindowChart, { selectWindows } from "./WindowChart.tsx";

/** An island: a component and how to get its props from the state. */
export interface IslandDefinition {
  component: FunctionComponent<object>;
  select: (state: DashboardState) => object;
}

function island<P extends object>(
  component: FunctionComponent<P>,
  select: (state: DashboardState) => P,
): IslandDefinition {
  return { component: component as FunctionComponent<object>, select };
}

export const ISLANDS = {
  LiveBadge: island(LiveBadge, selectLiveBadge),
  Kpis: island(Kpis, selectKpis),
  StatusPanel: island(StatusPanel, selectStatus),
  WindowChart: island(WindowChart, selectWindows),
  CategoryChart: island(CategoryChart, selectCategories),
  BehaviorChart: island(BehaviorChart, selectBehavior),
  HourlyChart: island(HourlyChart, selectHours),
  LatestEvents: island(LatestEvents, selectLatestEvents),
} as const;

export type IslandName = keyof typeof ISLANDS;

/** The id of the JSON script the page embeds for the islands. */
export const BOOT_ELEMENT_ID = "dashboard-boot";
