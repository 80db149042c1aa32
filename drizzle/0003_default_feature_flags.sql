-- Data migration: flags the service ships with. Inserted only when missing, so an operator's
-- later change (e.g. switching checkout off) is never overwritten by a redeploy.
INSERT INTO "feature_flags" ("key", "enabled", "rollout_percent", "description")
VALUES ('orders.checkout', true, 100, 'Gates POST /v1/orders; off → 403 FEATURE_DISABLED')
ON CONFLICT ("key") DO NOTHING;
