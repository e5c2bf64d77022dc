-- Pair actor, schema 3: strategies configured on this pair (with their saved
-- state) and the signals they emitted (the required trading_signals record).
CREATE TABLE strategies (
  id          TEXT PRIMARY KEY,
  config_json TEXT    NOT NULL,
  state_json  TEXT    NOT NULL,
  position    INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE trading_signals (
  id          TEXT    PRIMARY KEY,
  strategy_id TEXT    NOT NULL,
  timeframe   TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  confidence  REAL    NOT NULL,
  reason      TEXT    NOT NULL,
  metadata    TEXT    NOT NULL,
  time        INTEGER NOT NULL,
  candle_t    INTEGER NOT NULL,
  stop_loss   INTEGER,
  take_profit INTEGER
) WITHOUT ROWID;
CREATE INDEX trading_signals_by_time ON trading_signals (time);
