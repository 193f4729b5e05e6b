-- One active signing key per algorithm: access tokens use SIGNING_ALG's, ID tokens the algorithm their client
-- registered (RS256 by default, OIDC Core), and each algorithm rotates on its own.
DROP INDEX signing_keys_one_active;
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 'active';
