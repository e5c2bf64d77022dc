-- Pair actor, schema 10: a strategy whose step failed (it threw, acted wrongly,
-- returned a state that is not JSON) is suspended on the pair until an admin
-- resumes it; NULL while it runs.
ALTER TABLE strategies ADD COLUMN suspended_json TEXT;
