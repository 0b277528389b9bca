/**
 * What every command gets: the resolved config and a logger. Built from the setting flags
 * given on the command line (keyed like the option table), the environment and the config
 * file.
 */
import { existsSync } from "node:fs";
import { type Config, readConfigFile, resolveConfig } from "../config/load.js";
import type { SettingFlags } from "../config/options.js";
import { type Logger, stderrLogger } from "../log.js";

export interface CommandContext {
  config: Config;
  log: Logger;
}

export function loadContext(opts: { settings: SettingFlags }): CommandContext {
  const { config: configFlag, ...flags } = opts.settings;
  const file = readConfigFile(configFlag, process.env, existsSync);
  const config = resolveConfig({ flags, env: process.env, file });
  return { config, log: stderrLogger(config.logLevel) };
}
