/**
 * What every command gets: the resolved config and a logger. Built from the setting flags
 * given on the command line (keyed like the option table), the environment and the config
 * file.
 */
import { existsSync } from "node:fs";
import { type Config, readConfigFile, resolveConfig } from "../config/load.js";
import type { SettingFlags } from "../config/options.js";
import { type Logger, type LogOutput, stderrLogger } from "../log.js";
import { useLogOutput } from "./report.js";

export interface CommandContext {
  config: Config;
  log: Logger;
}

export function loadContext(opts: { settings: SettingFlags }): CommandContext {
  const { config: configFlag, ...flags } = opts.settings;
  const file = readConfigFile(configFlag, process.env, existsSync);
  const config = resolveConfig({ flags, env: process.env, file });
  const output = logOutputOf(config);
  useLogOutput(output);
  return { config, log: stderrLogger(config.logLevel, "pgha", output) };
}

export function logOutputOf(config: Pick<Config, "logFormat" | "logFile">): LogOutput {
  return { format: config.logFormat, file: config.logFile };
}
