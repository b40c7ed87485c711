/**
 * Imported first by every module that loads an npm client, so that the
 * client sees only the project's variables (see `sealProcessEnv`).
 *
 * @module
 */

import process from "node:process";
import { sealProcessEnv } from "./config.ts";

sealProcessEnv(process);
