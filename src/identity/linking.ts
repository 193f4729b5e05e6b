// Finds or creates the internal user for an upstream identity. Linking policy:
// 1. a known (provider, subject) is its user;
// 2. an explicit link (?link=1 with a valid session) attaches the identity to the signed-in user;
// 3. a verified email from a provider trusted for email links to the one user whose email is verified and equal;
// 4. otherwise a new user.
// A user's email counts as verified only when a trusted provider verified it, so an untrusted provider can never
// plant a "verified" email that a later login would link to (pre-account-takeover).
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { NormalizedIdentity } from '../providers/types.js';
import type { Database } from '../storage/schema.js';

export type LinkedBy = 'existing' | 'explicit' | 'email' | 'new';

export interface Resolution {
  userId: string;
  identityId: string;
  linkedBy: LinkedBy;
}

/** A login that the linking policy refuses; `reason` goes to the audit log. */
export class LinkRefused extends Error {
  constructor(readonly reason: 'user_disabled' | 'identity_linked_to_another_user' | 'link_user_gone') {
    super(reason);
    this.name = 'LinkRefused';
  }
}

export interface ResolveOptions {
  trustEmail: boolean;
  linkUserId: string | null;
}

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

export class IdentityService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => Date,
  ) {}

  /** Runs in its own transaction; a concurrent first login of the same identity is retried once. */
  async resolve(identity: NormalizedIdentity, options: ResolveOptions): Promise<Resolution> {
    try {
      return await this.db.transaction().execute((trx) => this.#resolve(trx, identity, options));
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      return this.db.transaction().execute((trx) => this.#resolve(trx, identity, options));
    }
  }

  async #resolve(trx: Kysely<Database>, id: NormalizedIdentity, o: ResolveOptions): Promise<Resolution> {
    const now = this.now();
    const verifiedByTrusted = o.trustEmail && id.emailVerified && !!id.email;
    const existing = await trx
      .selectFrom('identities')
      .select(['id', 'user_id'])
      .where('provider', '=', id.provider)
      .where('subject', '=', id.subject)
      .forUpdate()
      .executeTakeFirst();

    if (existing) {
      if (o.linkUserId && existing.user_id !== o.linkUserId) throw new LinkRefused('identity_linked_to_another_user');
      await this.#assertActive(trx, existing.user_id);
      await trx
        .updateTable('identities')
        .set({ ...profile(id), last_login_at: now })
        .where('id', '=', existing.id)
        .execute();
      await this.#refreshUser(trx, existing.user_id, id, verifiedByTrusted, now);
      return { userId: existing.user_id, identityId: existing.id, linkedBy: 'existing' };
    }

    let userId: string | undefined;
    let linkedBy: LinkedBy = 'new';
    if (o.linkUserId) {
      const user = await trx.selectFrom('users').select(['id', 'status']).where('id', '=', o.linkUserId).executeTakeFirst();
      if (!user) throw new LinkRefused('link_user_gone');
      if (user.status !== 'active') throw new LinkRefused('user_disabled');
      userId = user.id;
      linkedBy = 'explicit';
    } else if (verifiedByTrusted) {
      const matches = await trx
        .selectFrom('users')
        .select(['id', 'status'])
        .where(sql`lower(email)`, '=', id.email!.toLowerCase())
        .where('email_verified', '=', true)
        .limit(2)
        .execute();
      // exactly one match, or it is not clear whose account this is
      if (matches.length === 1) {
        if (matches[0].status !== 'active') throw new LinkRefused('user_disabled');
        userId = matches[0].id;
        linkedBy = 'email';
      }
    }
    if (!userId) {
      userId = randomUUID();
      await trx
        .insertInto('users')
        .values({
          id: userId,
          email: id.email,
          email_verified: verifiedByTrusted,
          name: id.name,
          picture: id.picture,
          created_at: now,
          updated_at: now,
        })
        .execute();
    } else {
      await this.#refreshUser(trx, userId, id, verifiedByTrusted, now);
    }
    const identityId = randomUUID();
    await trx
      .insertInto('identities')
      .values({
        id: identityId,
        user_id: userId,
        provider: id.provider,
        subject: id.subject,
        ...profile(id),
        created_at: now,
        last_login_at: now,
      })
      .execute();
    return { userId, identityId, linkedBy };
  }

  async #assertActive(trx: Kysely<Database>, userId: string): Promise<void> {
    const user = await trx.selectFrom('users').select('status').where('id', '=', userId).executeTakeFirstOrThrow();
    if (user.status !== 'active') throw new LinkRefused('user_disabled');
  }

  /** Profile fields follow the provider on each login; the email only when it is verified by a trusted provider. */
  async #refreshUser(trx: Kysely<Database>, userId: string, id: NormalizedIdentity, verifiedByTrusted: boolean, now: Date): Promise<void> {
    await trx
      .updateTable('users')
      .set((eb) => ({
        name: id.name ?? eb.ref('name'),
        picture: id.picture ?? eb.ref('picture'),
        updated_at: now,
        ...(verifiedByTrusted
          ? { email: id.email, email_verified: true }
          : // an unverified email only fills an empty one, and never counts as verified
            { email: eb.fn.coalesce('email', eb.val(id.email)) }),
      }))
      .where('id', '=', userId)
      .execute();
  }
}

function profile(id: NormalizedIdentity) {
  return {
    email: id.email,
    email_verified: id.emailVerified,
    name: id.name,
    picture: id.picture,
    raw_claims: JSON.stringify(id.claims),
  };
}
