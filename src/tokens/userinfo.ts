// The user behind an access token, in one prepared statement: its session (or OP grant) live, its user active,
// the token not revoked (RFC 7009), and the user's identities. /auth/userinfo and the OpenID Provider's UserInfo
// both ask it.
import type { Kysely } from 'kysely';
import { jsonArrayFrom } from 'kysely/helpers/postgres';
import type { Database } from '../storage/schema.js';
import { preparedQuery } from '../storage/prepared.js';
import { liveSession } from './sessions.js';

export interface UserInfoRow {
  id: string;
  email: string | null;
  email_verified: boolean;
  name: string | null;
  picture: string | null;
  roles: string[];
  identities: { provider: string; subject: string; email: string | null }[];
}

export const userinfoStatement = (db: Kysely<Database>) =>
  preparedQuery<'sid' | 'sub' | 'jti' | 'now', UserInfoRow>('gw_userinfo', (slot) =>
    liveSession(db, slot('sid'), slot('sub'), slot('now'))
      .where((eb) => eb.not(eb.exists(eb.selectFrom('revoked_access_tokens as r').select('r.jti').where('r.jti', '=', slot('jti')))))
      .select((eb) => [
        'u.id',
        'u.email',
        'u.email_verified',
        'u.name',
        'u.picture',
        'u.roles',
        jsonArrayFrom(
          eb
            .selectFrom('identities as i')
            .select(['i.provider', 'i.subject', 'i.email'])
            .whereRef('i.user_id', '=', 'u.id')
            .orderBy('i.created_at'),
        ).as('identities'),
      ]),
  );
