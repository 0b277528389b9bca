/**
 * Setup file of the integration project: after each test file, the directories its
 * tests made with serverOwnedTempDir are removed (restored data directories, tablespace
 * locations, repositories), whether or not the test removed them itself. Without it, a
 * run of the suite left about 300 MB per incremental chain test in the temporary
 * directory, and a machine that runs it often filled up.
 */
import { afterAll } from "vitest";
import { removeServerOwnedTempDirs } from "./pg-cluster.js";

afterAll(removeServerOwnedTempDirs);
