-- Pair actor, schema 11: a resting entry its strategy withdrew, written in the
-- transaction of the candle whose step withdrew it and removed once the broker's
-- answer is applied: a restart sends the cancel again, never loses it.
CREATE TABLE cancel_requests (
  client_order_id TEXT    PRIMARY KEY,
  requested_at    INTEGER NOT NULL
) WITHOUT ROWID;
