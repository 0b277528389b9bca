/**
 * What every command gets: the resolved config and a logger. Built from the setting flags
 * given on the command line (keyed like the option table), the environment and the config
 * file.
 */
import { existsSync } from "node:fs";
import { type Config, readConfigFile, resolveConfig } from "../config/load.js";
import { OPTION_KEYS, OPTIONS, type OptionGroup, type SettingFlags } from "../config/options.js";
import { type Logger, type LogOutput, stderrLogger } from "../log.js";
import { useLogOutput } from "./report.js";

export interface CommandContext {
  config: Config;
  log: Logger;
}

/**
 * Groups whose settings a command that does not take them never reads: backups',
 * retention's and the scheduler's. (Storage, encryption, logging and the rest are read by
 * every command, taken or not: an invalid one always fails.)
 */
const SKIPPABLE: readonly OptionGroup[] = ["backup", "retention", "window", "schedule"];

/**
 * `uses`: the setting groups of a command that must not fail over settings it does not
 * read (wal-push, wal-fetch and their background processes): an invalid value of a
 * setting of a SKIPPABLE group outside them is logged as a warning and its default used.
 */
export function loadContext(
  opts: { settings: SettingFlags },
  uses?: readonly OptionGroup[],
): CommandContext {
  const { config: configFlag, ...flags } = opts.settings;
  const file = readConfigFile(configFlag, process.env, existsSync);
  const warnings: string[] = [];
  const lenient =
    uses === undefined
      ? undefined
      : new Set(
          OPTION_KEYS.filter((key) => {
            const group = OPTIONS[key].group;
            return SKIPPABLE.includes(group) && !uses.includes(group);
          }),
        );
  const config = resolveConfig({ flags, env: process.env, file, lenient, warnings });
  const output = logOutputOf(config);
  useLogOutput(output);
  const log = stderrLogger(config.logLevel, "pgha", output);
  for (const warning of warnings) log.warn(warning);
  return { config, log };
}

export function logOutputOf(config: Pick<Config, "logFormat" | "logFile">): LogOutput {
  return { format: config.logFormat, file: config.logFile };
}
