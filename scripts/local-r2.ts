/**
 * The R2 bucket bound as DATA, from Node: the local one `npm start` serves,
 * through a Miniflare instance holding just that binding on the same persist
 * root (STATE_DIR/v3, as scripts/runtime.ts), so data imported by the CLI is
 * what the running runtime and CLI backtests read. The bucket name comes from
 * wrangler.jsonc, like every other binding.
 */
import path from "node:path";
import { Log, LogLevel, Miniflare } from "miniflare";

const ROOT = path.resolve(import.meta.dirname, "..");

/** The R2 calls the CLIs make (R2Bucket is a Worker type, not in the Node build). */
export interface NodeBucket {
  get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer>; text(): Promise<string> } | null>;
  put(key: string, value: Uint8Array | string, options?: { httpMetadata?: { contentType?: string } }): Promise<unknown>;
}

export function defaultStateDir(): string {
  return path.resolve(process.env.STATE_DIR ?? path.join(ROOT, ".wrangler", "state"));
}

export async function openDataBucket(options: { stateDir?: string; configPath?: string } = {}): Promise<{ bucket: NodeBucket; persistPath: string; dispose(): Promise<void> }> {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  // Only the bucket name is read from the config: its warnings about the Worker's other bindings are noise here.
  process.env.WRANGLER_LOG ??= "error";
  const { unstable_getMiniflareWorkerOptions } = await import("wrangler");
  const persistPath = path.join(path.resolve(options.stateDir ?? defaultStateDir()), "v3");
  const { workerOptions } = unstable_getMiniflareWorkerOptions(options.configPath ?? path.join(ROOT, "wrangler.jsonc"));
  const bucketName = workerOptions.r2Buckets && !Array.isArray(workerOptions.r2Buckets) ? workerOptions.r2Buckets.DATA : undefined;
  if (bucketName === undefined) throw new Error("wrangler.jsonc has no R2 binding named DATA");
  const miniflare = new Miniflare({
    modules: true,
    script: "export default {}",
    r2Buckets: { DATA: bucketName },
    defaultPersistRoot: persistPath,
    log: new Log(LogLevel.WARN),
  });
  const bucket = (await miniflare.getR2Bucket("DATA")) as unknown as NodeBucket;
  return { bucket, persistPath, dispose: () => miniflare.dispose() };
}
