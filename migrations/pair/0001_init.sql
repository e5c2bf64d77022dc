-- Pair actor, schema 1: ticks, candles per timeframe, and a small key/value
-- table for the actor's own state (aggregator, last tick, feed).
-- Prices are integers in the pair's display precision ("points").
CREATE TABLE ticks (
  id  INTEGER PRIMARY KEY AUTOINCREMENT,
  ts  INTEGER NOT NULL,
  bid INTEGER NOT NULL,
  ask INTEGER NOT NULL
);
CREATE INDEX ticks_by_ts ON ticks (ts);

CREATE TABLE candles (
  tf TEXT    NOT NULL,
  t  INTEGER NOT NULL,
  bo INTEGER NOT NULL, bh INTEGER NOT NULL, bl INTEGER NOT NULL, bc INTEGER NOT NULL,
  ao INTEGER NOT NULL, ah INTEGER NOT NULL, al INTEGER NOT NULL, ac INTEGER NOT NULL,
  n  INTEGER NOT NULL,
  PRIMARY KEY (tf, t)
) WITHOUT ROWID;

CREATE TABLE actor_state (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
