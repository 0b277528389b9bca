import type { Logger } from "../log.js";

/** Reads every listed item; an unreadable one is reported and left out, not fatal to the list. */
export async function readEach<T>(
  ids: string[],
  read: (id: string) => Promise<T>,
  what: string,
  log: Logger,
): Promise<T[]> {
  const items: T[] = [];
  for (const id of ids) {
    try {
      items.push(await read(id));
    } catch (error) {
      log.error(`${what} ${id} is not listed: ${(error as Error).message}`);
    }
  }
  return items;
}
