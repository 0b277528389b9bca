/** How pgha compresses what it stores. Parsed from --compress by src/config/values.ts. */

/** zstd at a level (1-19), or no compression. */
export type Compression = { algorithm: "zstd"; level: number } | { algorithm: "none" };

/** The algorithm alone: what an object's content metadata records (pgha-compression). */
export type CompressionAlgorithm = Compression["algorithm"];
