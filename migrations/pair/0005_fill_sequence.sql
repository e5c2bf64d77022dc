-- The order in which fills were applied (an audit needs it, and the fill id does not give it).
-- Fills from before this migration keep 0: their order is their timestamp.
ALTER TABLE fills ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX fills_by_seq ON fills (seq);
