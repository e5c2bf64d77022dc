-- Pair actor, schema 4: orders with their outbox, the paper broker's own book,
-- fills, positions and risk rejections.
CREATE TABLE orders (
  client_order_id TEXT    PRIMARY KEY,
  strategy_id     TEXT    NOT NULL,
  intent_json     TEXT    NOT NULL,
  -- pending (in the outbox) -> working (resting at the broker) | filled | rejected
  status          TEXT    NOT NULL,
  reject_reason   TEXT,
  -- What the optional advisor said (or why its answer was not used).
  advice_json     TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX orders_by_created ON orders (created_at);

-- Signals written in the same transaction as the candle that produced them
-- and removed in the transaction that records their order (or its refusal):
-- a signal is decided exactly once even if the actor dies in between.
CREATE TABLE pending_signals (
  signal_id   TEXT    PRIMARY KEY,
  signal_json TEXT    NOT NULL,
  created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Intents written in the same transaction as the order, removed once the
-- broker's answer is applied: what a restarted actor must (re)send.
CREATE TABLE outbox (
  client_order_id TEXT    PRIMARY KEY,
  created_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- The paper broker's book, kept apart from ours: it answers a re-sent client
-- order id with what it already did, as a real broker does.
CREATE TABLE paper_orders (
  client_order_id TEXT PRIMARY KEY,
  intent_json     TEXT NOT NULL,
  status          TEXT NOT NULL,
  fills_json      TEXT NOT NULL
) WITHOUT ROWID;
-- Every tick looks for resting orders: keep that lookup off a full scan.
CREATE INDEX paper_orders_by_status ON paper_orders (status);

CREATE TABLE fills (
  id              TEXT    PRIMARY KEY,
  client_order_id TEXT    NOT NULL,
  fill_json       TEXT    NOT NULL,
  ts              INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE positions (
  id          TEXT    PRIMARY KEY,
  strategy_id TEXT    NOT NULL,
  status      TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  json        TEXT    NOT NULL,
  updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX positions_open ON positions (status, strategy_id);

CREATE TABLE risk_rejections (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  client_order_id TEXT    NOT NULL,
  strategy_id     TEXT    NOT NULL,
  rejection_json  TEXT    NOT NULL,
  time            INTEGER NOT NULL
);

-- Every state change of the pair's trading side (orders, configuration,
-- trading state): who, what, before, after, when. Append-only.
CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  actor       TEXT    NOT NULL,
  action      TEXT    NOT NULL,
  target      TEXT    NOT NULL,
  before_json TEXT,
  after_json  TEXT
);
