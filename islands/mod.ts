/**
 * The browser entry (`deno task build` bundles it to
 * `static/build/islands.js`): hydrate each island from the state the page
 * embedded, then follow the live stream.
 *
 * @module
 */

import { h, hydrate } from "preact";
import type { Boot } from "../services/dashboard/model.ts";
import { startLive } from "./_live.ts";
import { BOOT_ELEMENT_ID, type IslandName, ISLANDS } from "./_registry.ts";

function boot(): void {
  const script = document.getElementById(BOOT_ELEMENT_ID);
  if (!script?.textContent) return;
  const { stream, state } = JSON.parse(script.textContent) as Boot;
  for (const element of document.querySelectorAll<HTMLElement>("[data-island]")) {
    const definition = ISLANDS[element.dataset.island as IslandName];
    if (definition) hydrate(h(definition.component, definition.select(state)), element);
  }
  startLive(stream);
}

boot();
