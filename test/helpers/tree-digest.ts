/** What a restored or fetched directory tree holds, to compare it with its source. */
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";

/** Every entry below dir: its type, mode and (files) size and sha256, or (links) target. */
export async function treeDigest(dir: string, rel = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const info = await lstat(join(dir, path));
    const mode = (info.mode & 0o7777).toString(8);
    if (info.isSymbolicLink()) out[path] = `link ${await readlink(join(dir, path))}`;
    else if (info.isDirectory()) {
      out[`${path}/`] = mode;
      Object.assign(out, await treeDigest(dir, path));
    } else {
      const sha = createHash("sha256")
        .update(await readFile(join(dir, path)))
        .digest("hex");
      out[path] = `${mode} ${info.size} ${sha}`;
    }
  }
  return out;
}
