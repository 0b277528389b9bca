// Scratch (not committed): a scale-70 pgbench cluster archiving into a local repo, a full, and 1% updated.
import { writeFile } from "node:fs/promises";
import { PgCluster, serverOwnedTempDir } from "../test/helpers/pg-cluster.js";
import { archiveCommand, archiverIdle, sqlString } from "./bench-cluster.js";
import { log } from "./common.js";
import { runPgha } from "../test/helpers/pgha.js";

const repo = await serverOwnedTempDir("pgha-exp2-repo-");
const repoEnv = { PGHA_REPO: repo, PGHA_CLUSTER: "incr", PGHA_ARCHIVE_TIMEOUT: "300s", PGHA_LOG_LEVEL: "warn" };
const cluster = await PgCluster.init({
  env: repoEnv,
  conf: ["archive_mode = on", `archive_command = ${sqlString(archiveCommand())}`, "max_wal_size = '4GB'"],
});
await cluster.start();
await cluster.pgbench(["-i", "-s", "70", "-q"]);
await cluster.sql("CHECKPOINT");
await archiverIdle(cluster);
const env = { ...repoEnv, ...cluster.connEnv() };
const full = await runPgha(["backup", "--fast", "--type", "full"], { env, asServerUser: true });
log(`full: ${full.stdout.trim()} ${full.stderr}`);
await cluster.sql(
  "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid IN (SELECT aid FROM pgbench_accounts TABLESAMPLE BERNOULLI (1))",
);
await cluster.sql("CHECKPOINT");
await archiverIdle(cluster);
await writeFile("/tmp/exp2/setup.json", JSON.stringify({ repo, env, dataDir: cluster.dataDir, full: full.stdout.trim() }, null, 1));
log("ready; cluster left running");
process.exit(0);
