-- Coordinator, schema 1: the portfolio book (one row per pair, as last
-- reported), open reservations, and small state (limits, trading state, equity marks).
CREATE TABLE pair_book (
  pair             TEXT    PRIMARY KEY,
  net_units        INTEGER NOT NULL,
  open_positions   INTEGER NOT NULL,
  mid              REAL    NOT NULL,
  realised_cents   INTEGER NOT NULL,
  unrealised_cents INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE reservations (
  client_order_id TEXT    PRIMARY KEY,
  pair            TEXT    NOT NULL,
  delta_units     INTEGER NOT NULL,
  mid             REAL    NOT NULL,
  opens_position  INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE coordinator_state (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  actor       TEXT    NOT NULL,
  action      TEXT    NOT NULL,
  target      TEXT    NOT NULL,
  before_json TEXT,
  after_json  TEXT
);
