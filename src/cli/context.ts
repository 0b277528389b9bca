/**
 * What every command gets: the resolved config and a logger. Built from the flags that
 * commander parsed (keyed like the option table), the environment and the config file.
 */
import { existsSync } from "node:fs";
import { type Config, readConfigFile, resolveConfig } from "../config/load.js";
import { OPTION_KEYS, type OptionKey } from "../config/options.js";
import { type Logger, stderrLogger } from "../log.js";

export interface CommandContext {
  config: Config;
  log: Logger;
}

export function loadContext(opts: Record<string, unknown>): CommandContext {
  const flags: Partial<Record<OptionKey, string>> = {};
  for (const key of OPTION_KEYS) {
    const value = opts[key];
    if (typeof value === "string") flags[key] = value;
  }
  const configFlag = typeof opts.config === "string" ? opts.config : undefined;
  const file = readConfigFile(configFlag, process.env, existsSync);
  const config = resolveConfig({ flags, env: process.env, file });
  return { config, log: stderrLogger(config.logLevel) };
}
