-- Gatekeeper, schema 1: API keys (hashes only) and the audit log of key changes.
CREATE TABLE api_keys (
  id          TEXT    PRIMARY KEY,
  secret_hash TEXT    NOT NULL,
  role        TEXT    NOT NULL,
  label       TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
) WITHOUT ROWID;

CREATE TABLE audit_log (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  at     INTEGER NOT NULL,
  actor  TEXT    NOT NULL,
  action TEXT    NOT NULL,
  target TEXT    NOT NULL,
  before_json TEXT,
  after_json  TEXT
);
