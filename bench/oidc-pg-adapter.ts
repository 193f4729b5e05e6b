// A small Postgres adapter for node-oidc-provider, the benchmark's peer: one JSONB table keyed by model name and
// id, with the columns its lookups need (grant id for revocation, session uid, device user code) beside the payload.
// It implements the provider's adapter interface (upsert, find, findByUid, findByUserCode, consume, destroy,
// revokeByGrantId) with plain parameterised statements, as a typical adapter does.
import type pg from 'pg';

interface Payload {
  grantId?: string;
  uid?: string;
  userCode?: string;
  consumed?: number;
  [claim: string]: unknown;
}

export const SCHEMA = `
  create table if not exists oidc_payloads (
    model text not null,
    id text not null,
    payload jsonb not null,
    grant_id text,
    uid text,
    user_code text,
    expires_at timestamptz,
    primary key (model, id)
  );
  create index if not exists oidc_payloads_grant_id on oidc_payloads (grant_id);
  create index if not exists oidc_payloads_uid on oidc_payloads (uid);
  create index if not exists oidc_payloads_user_code on oidc_payloads (user_code);
`;

/** Returns the adapter class oidc-provider instantiates once per model name. */
export function postgresAdapter(pool: pg.Pool) {
  // an expired row is as good as absent; the provider checks expiry again itself
  const live = '(expires_at is null or expires_at > now())';

  async function one(text: string, values: unknown[]): Promise<Payload | undefined> {
    const { rows } = await pool.query<{ payload: Payload }>(text, values);
    return rows[0]?.payload;
  }

  return class PostgresAdapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      await pool.query(
        `insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id,
           uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at`,
        [
          this.model,
          id,
          payload,
          payload.grantId ?? null,
          payload.uid ?? null,
          payload.userCode ?? null,
          typeof expiresIn === 'number' ? new Date(Date.now() + expiresIn * 1000) : null,
        ],
      );
    }

    find(id: string): Promise<Payload | undefined> {
      return one(`select payload from oidc_payloads where model = $1 and id = $2 and ${live}`, [this.model, id]);
    }

    findByUid(uid: string): Promise<Payload | undefined> {
      return one(`select payload from oidc_payloads where model = $1 and uid = $2 and ${live}`, [this.model, uid]);
    }

    findByUserCode(userCode: string): Promise<Payload | undefined> {
      return one(`select payload from oidc_payloads where model = $1 and user_code = $2 and ${live}`, [this.model, userCode]);
    }

    /** marks a single-use artifact (code, rotated refresh token) as used: its reuse is what the provider detects */
    async consume(id: string): Promise<void> {
      await pool.query(
        `update oidc_payloads set payload = payload || jsonb_build_object('consumed', $3::bigint) where model = $1 and id = $2`,
        [this.model, id, Math.floor(Date.now() / 1000)],
      );
    }

    async destroy(id: string): Promise<void> {
      await pool.query('delete from oidc_payloads where model = $1 and id = $2', [this.model, id]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await pool.query('delete from oidc_payloads where model = $1 and grant_id = $2', [this.model, grantId]);
    }
  };
}
