/**
 * A backup manifest's chain fields (incremental backups, FORMAT.md): `type`, `parent`,
 * `chain`. Manifests written before incremental backups have none of them: they are
 * fulls. A manifest that says "incr" without a well-formed chain cannot be restored and
 * is refused as unreadable (prune then leaves it, and everything else, untouched).
 */
import { IntegrityError } from "../errors.js";
import { BACKUP_ID } from "./backup-manifest.js";

export interface BackupChain {
  type: "full" | "incr";
  parent: string | null;
  /** Ids from the full to the parent, oldest first: every backup this one needs. */
  chain: string[];
}

export function chainOf(manifest: { id: string }): BackupChain {
  const m = manifest as { id: string; type?: unknown; parent?: unknown; chain?: unknown };
  if (m.type === undefined || m.type === "full") return { type: "full", parent: null, chain: [] };
  const chain = m.chain;
  const wellFormed =
    m.type === "incr" &&
    Array.isArray(chain) &&
    chain.length > 0 &&
    chain.every((id) => typeof id === "string" && BACKUP_ID.test(id) && id < m.id) &&
    chain.at(-1) === m.parent;
  if (!wellFormed)
    throw new IntegrityError(
      `backup ${m.id}'s manifest has type ${JSON.stringify(m.type)} without a valid parent chain`,
    );
  return { type: "incr", parent: m.parent as string, chain: [...(chain as string[])] };
}
