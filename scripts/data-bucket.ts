/**
 * The R2 bucket bound as DATA, from Node, for the CLIs (import, backtest,
 * replay --lake):
 * - local (default): the bucket `npm start` serves, through a Miniflare
 *   instance holding just that binding on the same persist root
 *   (STATE_DIR/v3, as scripts/runtime.ts), so data imported by the CLI is what
 *   the running runtime and CLI backtests read. No account needed.
 * - remote: the real bucket of wrangler.jsonc through wrangler's remote
 *   bindings (needs `npx wrangler login` or CLOUDFLARE_API_TOKEN).
 * The bucket name comes from wrangler.jsonc, like every other binding.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Log, LogLevel, Miniflare } from "miniflare";

const ROOT = path.resolve(import.meta.dirname, "..");

/** The R2 calls the CLIs make (R2Bucket is a Worker type, not in the Node build). */
export interface DataObject {
  arrayBuffer(): Promise<ArrayBuffer>;
  text(): Promise<string>;
}
export interface DataBucket {
  /** The object, or a byte range of it (the lake reader reads record batches by range). */
  get(key: string, options?: { range: { offset: number; length: number } }): Promise<DataObject | null>;
  head(key: string): Promise<{ size: number } | null>;
  put(key: string, value: Uint8Array | string, options?: { httpMetadata?: { contentType?: string } }): Promise<unknown>;
  list(options?: { prefix?: string; cursor?: string }): Promise<{ objects: { key: string }[]; truncated: boolean; cursor?: string }>;
}

export interface OpenedBucket {
  bucket: DataBucket;
  /** Where the data lives, for log lines. */
  where: string;
  dispose(): Promise<void>;
}

/** `remote` could not reach the configured bucket (not logged in, no network, no such bucket). */
export class RemoteError extends Error {}

const REMOTE_HELP =
  "log in with `npx wrangler login` (or set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID), check network access " +
  "and that the bucket exists (`npx wrangler r2 bucket create <name>`)";

export function defaultStateDir(): string {
  return path.resolve(process.env.STATE_DIR ?? path.join(ROOT, ".wrangler", "state"));
}

export interface OpenOptions {
  stateDir?: string;
  configPath?: string;
  remote?: boolean;
  log?: (message: string) => void;
}

export async function openDataBucket(options: OpenOptions = {}): Promise<OpenedBucket> {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  process.env.WRANGLER_SEND_METRICS = "false";
  // Only the DATA binding is read from the config: wrangler's warnings about the Worker's other bindings are noise here.
  process.env.WRANGLER_LOG ??= "error";
  const configPath = options.configPath ?? path.join(ROOT, "wrangler.jsonc");
  return options.remote ? openRemote(configPath, options.log ?? (() => {})) : openLocal(configPath, options.stateDir ?? defaultStateDir());
}

type R2Entry = { binding: string; bucket_name?: string; jurisdiction?: string };

async function dataEntry(configPath: string): Promise<{ raw: Record<string, unknown>; entry: R2Entry & { bucket_name: string } }> {
  const { experimental_readRawConfig } = await import("wrangler");
  const raw = (experimental_readRawConfig({ config: configPath }) as { rawConfig: Record<string, unknown> }).rawConfig;
  const entry = ((raw.r2_buckets ?? []) as R2Entry[]).find((b) => b.binding === "DATA");
  if (!entry?.bucket_name) throw new Error(`no r2_buckets entry with binding DATA and a bucket_name in ${configPath}`);
  return { raw, entry: entry as R2Entry & { bucket_name: string } };
}

async function openLocal(configPath: string, stateDir: string): Promise<OpenedBucket> {
  const persistPath = path.join(path.resolve(stateDir), "v3");
  const { entry } = await dataEntry(configPath);
  const miniflare = new Miniflare({
    modules: true,
    script: "export default {}",
    r2Buckets: { DATA: entry.bucket_name },
    defaultPersistRoot: persistPath,
    log: new Log(LogLevel.WARN),
  });
  const bucket = (await miniflare.getR2Bucket("DATA")) as unknown as DataBucket;
  return { bucket, where: `local R2 under ${persistPath}`, dispose: () => miniflare.dispose() };
}

/**
 * The real bucket through wrangler's remote bindings, from a one-binding
 * config in a temporary folder (the project config stays local-only for
 * `npm start`). Checked with a list before anything is written.
 */
async function openRemote(configPath: string, log: (message: string) => void): Promise<OpenedBucket> {
  let made: { raw: Record<string, unknown>; entry: R2Entry & { bucket_name: string } };
  try {
    made = await dataEntry(configPath);
  } catch (err) {
    throw new RemoteError(`--remote: ${(err as Error).message}`);
  }
  const { raw, entry } = made;
  const dir = await mkdtemp(path.join(tmpdir(), "fxrt-remote-"));
  const config = path.join(dir, "wrangler.json");
  await writeFile(
    config,
    JSON.stringify({
      name: `${String(raw.name ?? "fx-actor-runtime")}-cli`,
      compatibility_date: raw.compatibility_date,
      ...(raw.account_id !== undefined ? { account_id: raw.account_id } : {}),
      r2_buckets: [{ ...entry, remote: true }],
    }),
  );
  if (!process.env.CLOUDFLARE_API_TOKEN) log("--remote without CLOUDFLARE_API_TOKEN: relying on a `wrangler login` session");
  const { getPlatformProxy } = await import("wrangler");
  let proxy: Awaited<ReturnType<typeof getPlatformProxy<{ DATA: DataBucket }>>>;
  try {
    proxy = await getPlatformProxy<{ DATA: DataBucket }>({ configPath: config, persist: false, remoteBindings: true, envFiles: [] });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new RemoteError(`--remote: could not open R2 bucket ${entry.bucket_name} through wrangler: ${(err as Error).message}\n${REMOTE_HELP}`);
  }
  const bucket = proxy.env.DATA;
  try {
    // Fail here, with the reason, rather than half-way through the work.
    await bucket.list({ prefix: "candles/" });
  } catch (err) {
    await proxy.dispose().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw new RemoteError(`--remote: R2 bucket ${entry.bucket_name} is not reachable: ${(err as Error).message}\n${REMOTE_HELP}`);
  }
  return {
    bucket,
    where: `remote R2 bucket ${entry.bucket_name}`,
    dispose: async () => {
      await proxy.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
