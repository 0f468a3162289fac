-- A custom pgbench script: meta-commands, a transaction with reads and writes,
-- \gset across statements, and a query outside the transaction.
\set aid random(1, 100000 * :scale)
\set delta random(-5000, 5000)
BEGIN;
SELECT abalance AS before FROM pgbench_accounts WHERE aid = :aid \gset
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, :delta, CURRENT_TIMESTAMP);
SELECT abalance - :before AS moved FROM pgbench_accounts WHERE aid = :aid;
END;
SELECT count(*) FROM pgbench_branches;
