/**
 * The coordinator's broker credentials room: OANDA credentials kept at rest
 * sealed with AES-GCM under the CREDENTIALS_KEY secret
 * (src/security/credential-box.ts); the token is never stored, logged or
 * returned in clear (backups hold the sealed form only). The pairs and the
 * feed get their endpoint from here, through the Coordinator's RPC methods.
 */
import { configFor } from "../src/config.ts";
import { maskAccountId } from "../src/broker/broker-config.ts";
import { OandaHttp, type OandaEndpoint } from "../src/broker/oanda/oanda-http.ts";
import { readAccount, type AccountView } from "../src/broker/oanda/oanda-account.ts";
import { open, seal } from "../src/security/credential-box.ts";
import { writeAudit } from "./audit-entry.ts";
import type { StateCells } from "./coordinator-store.ts";

/** Bound as AES-GCM additional data: a sealed value opens only as broker credentials. */
export const CREDENTIALS_PURPOSE = "fxrt:broker-credentials:oanda";

/** The coordinator_state key the sealed credentials are kept under (kept across a restore). */
export const CREDENTIALS_STATE_KEY = "broker_credentials";

/** OANDA credentials as kept in coordinator_state: sealed, with a masked account id for display. */
export interface StoredCredentials {
  sealed: string;
  accountId: string | null;
  setAt: number;
}

export interface BrokerCredentialsInfo {
  /** Where the pairs' credentials come from: sealed in this actor, the OANDA_* config, or nowhere yet. */
  source: "stored" | "config" | "none";
  accountId: string | null;
  setAt: number | null;
}

export interface BrokerCredentialsDeps {
  storage: DurableObjectStorage;
  cells: StateCells;
  env: Env;
  clock: () => number;
}

export class BrokerCredentials {
  constructor(private readonly d: BrokerCredentialsDeps) {}

  private sealingKey(): unknown {
    return (this.d.env as unknown as Record<string, unknown>).CREDENTIALS_KEY;
  }

  /** Seal and keep the credentials (audited: the masked account id before and after). */
  async set(accountId: string, token: string, actor: string): Promise<{ ok: true; info: BrokerCredentialsInfo } | { ok: false; code: string; message: string }> {
    const key = this.sealingKey();
    if (typeof key !== "string" || key === "") {
      return { ok: false, code: "credentials_key_missing", message: "set the CREDENTIALS_KEY secret (32 random bytes, base64) before storing credentials" };
    }
    const sealed = await seal(JSON.stringify({ accountId, token }), key, CREDENTIALS_PURPOSE);
    const stored: StoredCredentials = { sealed, accountId: maskAccountId(accountId), setAt: this.d.clock() };
    this.d.storage.transactionSync(() => {
      const before = this.d.cells.get<StoredCredentials>(CREDENTIALS_STATE_KEY);
      this.d.cells.put(CREDENTIALS_STATE_KEY, stored);
      writeAudit(this.d.storage.sql, stored.setAt, actor, "broker.credentials", "broker", before ? { accountId: before.accountId } : null, { accountId: stored.accountId });
    });
    return { ok: true, info: this.info() };
  }

  info(): BrokerCredentialsInfo {
    const stored = this.d.cells.get<StoredCredentials>(CREDENTIALS_STATE_KEY);
    if (stored) return { source: "stored", accountId: stored.accountId, setAt: stored.setAt };
    const config = configFor(this.d.env).broker.oanda;
    if (config.accountId && config.token) return { source: "config", accountId: maskAccountId(config.accountId), setAt: null };
    return { source: "none", accountId: null, setAt: null };
  }

  /** Where and as whom to reach OANDA: the stored credentials, opened, or the OANDA_* config. */
  async endpoint(): Promise<OandaEndpoint> {
    const config = configFor(this.d.env).broker.oanda;
    const stored = this.d.cells.get<StoredCredentials>(CREDENTIALS_STATE_KEY);
    if (stored) {
      const key = String(this.sealingKey() ?? "");
      const { accountId, token } = JSON.parse(await open(stored.sealed, key, CREDENTIALS_PURPOSE)) as { accountId: string; token: string };
      return { apiUrl: config.apiUrl, streamUrl: config.streamUrl, accountId, token };
    }
    if (config.accountId && config.token) return { apiUrl: config.apiUrl, streamUrl: config.streamUrl, accountId: config.accountId, token: config.token };
    throw new Error("no OANDA credentials: set OANDA_ACCOUNT_ID and the OANDA_TOKEN secret, or PUT /api/admin/broker/credentials");
  }

  /** The OANDA account as OANDA reports it (summary, positions, instrument check); null without credentials. */
  async account(): Promise<AccountView | { error: string } | null> {
    if (this.info().source === "none") return null;
    try {
      return await readAccount(new OandaHttp(await this.endpoint()), configFor(this.d.env).pairs);
    } catch (err) {
      return { error: String(err instanceof Error ? err.message : err).slice(0, 300) };
    }
  }
}
