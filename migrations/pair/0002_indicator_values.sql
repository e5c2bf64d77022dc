-- Pair actor, schema 2: indicator values computed on each candle close, kept
-- beside the candle they belong to (same retention).
CREATE TABLE indicator_values (
  tf     TEXT    NOT NULL,
  t      INTEGER NOT NULL,
  values_json TEXT NOT NULL,
  PRIMARY KEY (tf, t)
) WITHOUT ROWID;
