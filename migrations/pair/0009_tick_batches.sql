-- Tick batches sent with a batchId: what became of them, so a batch sent again (its answer was lost)
-- is answered with what was stored instead of storing its last tick twice. A batch is taken in parts
-- (one transaction up to each signal); `next` is the first index not taken yet, so a batch cut by a
-- crash goes on where it stopped. Rows older than a day are pruned on write.
CREATE TABLE tick_batches (
  batch_id      TEXT    PRIMARY KEY,
  digest        TEXT    NOT NULL,
  next          INTEGER NOT NULL,
  rejected_json TEXT    NOT NULL,
  created_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tick_batches_by_created ON tick_batches (created_at);
