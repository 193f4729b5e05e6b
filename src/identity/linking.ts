// Finds or creates the internal user for an upstream identity, and writes what a login, a link or a
// re-authentication changes. Linking policy:
// 1. a known (provider, subject) is its user;
// 2. an explicit link (?link=1 with the session's current token and a recent authentication) attaches the
//    identity to the signed-in user;
// 3. a verified email from a provider trusted for email links to the one user whose email is verified and equal;
// 4. otherwise a new user.
// A user's email counts as verified only when a trusted provider verified it, so an untrusted provider can never
// plant a "verified" email that a later login would link to (pre-account-takeover).
//
// Each completion is two statements: one read that finds the identity and the candidate users, and one statement
// whose data-modifying CTEs write the user, the identity, the session (or its re-authentication) and the audit
// events together, so a login is recorded whole or not at all. The write re-checks what the read saw (user still
// active, identity still its user's, session still live): when something changed in between, nothing is written
// and the completion starts over once.
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { jsonArrayFrom, jsonObjectFrom } from 'kysely/helpers/postgres';
import { type AuditInput, auditRow } from '../audit.js';
import type { NormalizedIdentity } from '../providers/types.js';
import type { Storage } from '../storage/db.js';
import { preparedQuery } from '../storage/prepared.js';
import type { Database } from '../storage/schema.js';
import { NEW_SESSION_COLUMNS, type NewSession, newSessionRow } from '../tokens/sessions.js';

export type LinkedBy = 'existing' | 'explicit' | 'email' | 'new';

export interface Resolution {
  userId: string;
  identityId: string;
  linkedBy: LinkedBy;
}

/** A login that the linking policy refuses; `reason` goes to the audit log. */
export class LinkRefused extends Error {
  constructor(
    readonly reason:
      'user_disabled' | 'identity_linked_to_another_user' | 'link_user_gone' | 'session_ended' | 'reauth_other_user' | 'concurrent_change',
  ) {
    super(reason);
    this.name = 'LinkRefused';
  }
}

export interface ResolveOptions {
  trustEmail: boolean;
  linkUserId: string | null;
}

/** What a completed upstream login is for. */
export type Purpose =
  /** sign in: open this session */
  | { kind: 'login'; session: Omit<NewSession, 'userId'> }
  /** attach the identity to the user of this (live) session */
  | { kind: 'link'; sessionId: string; userId: string; ip: string | null }
  /** the session's user authenticated again: the identity must be one of theirs; the session's auth_time moves */
  | { kind: 'reauth'; sessionId: string; userId: string; ip: string | null };

/** The user as a token needs it. */
export interface CompletedUser {
  id: string;
  email: string | null;
  email_verified: boolean;
  name: string | null;
  roles: string[];
}

export interface Completion extends Resolution {
  user: CompletedUser;
  at: Date;
}

interface Found {
  identity: { identity_id: string; user_id: string; status: string } | null;
  by_email: { id: string; status: string }[];
  link_user: { id: string; status: string } | null;
}

interface Plan extends Resolution {
  newUser: boolean;
  newIdentity: boolean;
  verifiedByTrusted: boolean;
}

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

/**
 * Statement 1 of every completion, prepared: the identity, the users a verified email may link to (none when
 * `email` is null), and the user to link to (none when `linkUserId` is null: `id = NULL` matches no row).
 */
const findStatement = (db: Kysely<Database>) =>
  preparedQuery<'provider' | 'subject' | 'email' | 'linkUserId', Found>('gw_find_identity', (slot) =>
    db.selectNoFrom((eb) => [
      jsonObjectFrom(
        eb
          .selectFrom('identities as i')
          .innerJoin('users as u', 'u.id', 'i.user_id')
          .select(['i.id as identity_id', 'i.user_id', 'u.status'])
          .where('i.provider', '=', slot('provider'))
          .where('i.subject', '=', slot('subject')),
      ).as('identity'),
      jsonArrayFrom(
        eb
          .selectFrom('users')
          .select(['id', 'status'])
          .where(sql`lower(email)`, '=', slot('email'))
          .where('email_verified', '=', true)
          // exactly one match, or it is not clear whose account this is
          .limit(2),
      ).as('by_email'),
      jsonObjectFrom(eb.selectFrom('users').select(['id', 'status']).where('id', '=', slot('linkUserId'))).as('link_user'),
    ]),
  );

export class IdentityService {
  private readonly db: Kysely<Database>;
  readonly #findStatement: ReturnType<typeof findStatement>;

  constructor(
    private readonly storage: Storage,
    private readonly now: () => Date,
  ) {
    this.db = storage.db;
    this.#findStatement = findStatement(this.db);
  }

  /** Finds or creates the user of an identity (no session); the policy alone, as a login applies it. */
  async resolve(identity: NormalizedIdentity, options: ResolveOptions): Promise<Resolution> {
    const purpose = options.linkUserId ? { kind: 'link' as const, sessionId: null, userId: options.linkUserId, ip: null } : undefined;
    const { userId, identityId, linkedBy } = await this.#complete(identity, options.trustEmail, purpose);
    return { userId, identityId, linkedBy };
  }

  /** Applies the policy and writes the login, link or re-authentication in one statement. */
  complete(identity: NormalizedIdentity, trustEmail: boolean, purpose: Purpose): Promise<Completion> {
    return this.#complete(identity, trustEmail, purpose);
  }

  async #complete(
    identity: NormalizedIdentity,
    trustEmail: boolean,
    purpose: Purpose | { kind: 'link'; sessionId: null; userId: string; ip: null } | undefined,
  ): Promise<Completion> {
    for (let attempt = 0; ; attempt++) {
      const now = this.now();
      const plan = this.#plan(
        identity,
        trustEmail,
        purpose,
        await this.#find(identity, trustEmail, purpose?.kind === 'link' ? purpose.userId : null),
      );
      let user: CompletedUser | undefined;
      try {
        user = await this.#write(plan, identity, purpose, now);
      } catch (err) {
        // a concurrent first login of the same identity (or email) won the insert: look again
        if (!isUniqueViolation(err) || attempt > 0) throw err;
      }
      if (user) return { userId: plan.userId, identityId: plan.identityId, linkedBy: plan.linkedBy, user, at: now };
      if (attempt > 0)
        throw new LinkRefused(purpose && purpose.kind !== 'login' && purpose.sessionId ? 'session_ended' : 'concurrent_change');
    }
  }

  /** Statement 1: the identity, the users its verified email may link to, and the user to link to. */
  async #find(id: NormalizedIdentity, trustEmail: boolean, linkUserId: string | null): Promise<Found> {
    const email = trustEmail && id.emailVerified && id.email ? id.email.toLowerCase() : null;
    const [row] = await this.#findStatement.run(this.storage, { provider: id.provider, subject: id.subject, email, linkUserId });
    return row;
  }

  /** The policy, on what #find saw. Throws LinkRefused. */
  #plan(id: NormalizedIdentity, trustEmail: boolean, purpose: { kind: string; userId?: string } | undefined, found: Found): Plan {
    const verifiedByTrusted = trustEmail && id.emailVerified && !!id.email;
    const linkUserId = purpose?.kind === 'link' ? purpose.userId! : null;
    if (found.identity) {
      const { identity_id, user_id, status } = found.identity;
      if (linkUserId && user_id !== linkUserId) throw new LinkRefused('identity_linked_to_another_user');
      if (purpose?.kind === 'reauth' && user_id !== purpose.userId) throw new LinkRefused('reauth_other_user');
      if (status !== 'active') throw new LinkRefused('user_disabled');
      return { userId: user_id, identityId: identity_id, linkedBy: 'existing', newUser: false, newIdentity: false, verifiedByTrusted };
    }
    // a re-authentication proves the session's user only through an identity they already have
    if (purpose?.kind === 'reauth') throw new LinkRefused('reauth_other_user');
    const identityId = randomUUID();
    if (linkUserId) {
      if (!found.link_user) throw new LinkRefused('link_user_gone');
      if (found.link_user.status !== 'active') throw new LinkRefused('user_disabled');
      return { userId: linkUserId, identityId, linkedBy: 'explicit', newUser: false, newIdentity: true, verifiedByTrusted };
    }
    if (found.by_email.length === 1) {
      if (found.by_email[0].status !== 'active') throw new LinkRefused('user_disabled');
      return { userId: found.by_email[0].id, identityId, linkedBy: 'email', newUser: false, newIdentity: true, verifiedByTrusted };
    }
    return { userId: randomUUID(), identityId, linkedBy: 'new', newUser: true, newIdentity: true, verifiedByTrusted };
  }

  /**
   * Statement 2: writes the plan, and the purpose's session change and audit events, as one statement. Returns
   * undefined when what the plan relied on changed meanwhile (then nothing was written).
   */
  async #write(
    plan: Plan,
    id: NormalizedIdentity,
    purpose: Purpose | { kind: 'link'; sessionId: null; userId: string; ip: null } | undefined,
    now: Date,
  ): Promise<CompletedUser | undefined> {
    const db = this.db;
    const profile = identityProfile(id);
    const audits = auditEvents(plan, id, purpose, now);

    const query = db
      .with('u', (q) =>
        plan.newUser
          ? q
              .insertInto('users')
              .values({
                id: plan.userId,
                email: id.email,
                email_verified: plan.verifiedByTrusted,
                name: id.name,
                picture: id.picture,
                created_at: now,
                updated_at: now,
              })
              .returning(['id', 'email', 'email_verified', 'name', 'roles'])
          : q
              .updateTable('users')
              .set((eb) => ({
                // profile fields follow the provider on each login; the email only when a trusted provider verified it
                name: id.name ?? eb.ref('name'),
                picture: id.picture ?? eb.ref('picture'),
                updated_at: now,
                ...(plan.verifiedByTrusted
                  ? { email: id.email, email_verified: true }
                  : // an unverified email only fills an empty one, and never counts as verified
                    { email: eb.fn.coalesce('email', eb.val(id.email)) }),
              }))
              .where('id', '=', plan.userId)
              .where('status', '=', 'active')
              .returning(['id', 'email', 'email_verified', 'name', 'roles']),
      )
      // a link or a re-authentication needs its session still live and still its user's
      .with('live', (q) =>
        purpose && purpose.kind !== 'login' && purpose.sessionId
          ? q
              .selectFrom('sessions as s')
              .innerJoin('u', 'u.id', 's.user_id')
              .select('s.id')
              .where('s.id', '=', purpose.sessionId)
              .where('s.revoked_at', 'is', null)
              .where('s.expires_at', '>', now)
              .where('s.idle_expires_at', '>', now)
          : q.selectFrom('u').select('u.id'),
      )
      .with('i', (q) =>
        plan.newIdentity
          ? q
              .insertInto('identities')
              .columns([
                'id',
                'user_id',
                'provider',
                'subject',
                'email',
                'email_verified',
                'name',
                'picture',
                'raw_claims',
                'created_at',
                'last_login_at',
              ])
              .expression((eb) =>
                eb
                  .selectFrom('u')
                  .where((w) => w.exists(w.selectFrom('live').select('live.id')))
                  .select((e) => [
                    e.val(plan.identityId).as('id'),
                    'u.id as user_id',
                    e.val(id.provider).as('provider'),
                    e.val(id.subject).as('subject'),
                    e.val(profile.email).as('email'),
                    e.val(profile.email_verified).as('email_verified'),
                    e.val(profile.name).as('name'),
                    e.val(profile.picture).as('picture'),
                    sql<string>`${profile.raw_claims}::jsonb`.as('raw_claims'),
                    e.val(now).as('created_at'),
                    e.val(now).as('last_login_at'),
                  ]),
              )
              .returning('id')
          : q
              .updateTable('identities')
              .set({ ...profile, last_login_at: now })
              .where('id', '=', plan.identityId)
              // still this user's identity, and the user still active
              .where('user_id', 'in', (eb) => eb.selectFrom('u').select('u.id'))
              .where((w) => w.exists(w.selectFrom('live').select('live.id')))
              .returning('id'),
      )
      .with('s', (q) => {
        if (purpose?.kind === 'login') {
          const row = newSessionRow({ ...purpose.session, userId: plan.userId }, now);
          return q
            .insertInto('sessions')
            .columns(NEW_SESSION_COLUMNS)
            .expression((eb) => eb.selectFrom('i').select((e) => NEW_SESSION_COLUMNS.map((c) => e.val(row[c]).as(c))))
            .returning('id');
        }
        if (purpose?.kind === 'reauth') {
          return q
            .updateTable('sessions')
            .set({ auth_time: now })
            .where('id', '=', purpose.sessionId)
            .where((w) => w.exists(w.selectFrom('i').select('i.id')))
            .returning('id');
        }
        return q.selectFrom('i').select('i.id');
      });
    // the audit events go in the same statement, kept only when the change itself was written
    const withAudit = !audits.length
      ? query
      : query.with('a', (q) =>
          q
            .insertInto('audit_events')
            .columns(['id', 'created_at', 'type', 'outcome', 'reason', 'user_id', 'session_id', 'provider', 'actor', 'ip', 'details'])
            .expression((eb) =>
              eb
                .selectFrom(
                  sql<Record<string, unknown>>`(values ${sql.join(
                    audits.map(
                      (a) =>
                        sql`(${a.id}::uuid, ${a.created_at}::timestamptz, ${a.type}, ${a.outcome}, ${a.reason}, ${a.user_id}::uuid, ${a.session_id}::uuid, ${a.provider}, ${a.actor}, ${a.ip}, ${a.details}::jsonb)`,
                    ),
                  )})`.as('v(id, created_at, type, outcome, reason, user_id, session_id, provider, actor, ip, details)'),
                )
                .where((w) => w.exists(w.selectFrom('s').select(sql`1`.as('one'))))
                .selectAll(),
            ),
        );
    return (withAudit as typeof query)
      .selectFrom('u')
      .where((w) => w.exists(w.selectFrom('s').select(sql`1`.as('one'))))
      .select(['u.id', 'u.email', 'u.email_verified', 'u.name', 'u.roles'])
      .executeTakeFirst();
  }
}

function identityProfile(id: NormalizedIdentity) {
  return {
    email: id.email,
    email_verified: id.emailVerified,
    name: id.name,
    picture: id.picture,
    raw_claims: JSON.stringify(id.claims),
  };
}

/** The audit events a completion writes with its change. */
function auditEvents(
  plan: Plan,
  id: NormalizedIdentity,
  purpose: Purpose | { kind: 'link'; sessionId: null; userId: string; ip: null } | undefined,
  at: Date,
): ReturnType<typeof auditRow>[] {
  const events: AuditInput[] = [];
  const ip = purpose?.kind === 'login' ? purpose.session.ip : (purpose?.ip ?? null);
  const sessionId = purpose?.kind === 'login' ? purpose.session.id : (purpose?.sessionId ?? null);
  if (plan.linkedBy === 'explicit' || plan.linkedBy === 'email') {
    events.push({
      type: 'identity.linked',
      userId: plan.userId,
      sessionId,
      provider: id.provider,
      actor: plan.linkedBy === 'explicit' ? `user:${plan.userId}` : 'system',
      ip,
      details: { identity_id: plan.identityId, subject: id.subject, linked_by: plan.linkedBy },
      at,
    });
  }
  if (purpose?.kind === 'login') {
    events.push({
      type: 'login',
      userId: plan.userId,
      sessionId,
      provider: id.provider,
      actor: `user:${plan.userId}`,
      ip,
      details: { linked_by: plan.linkedBy, identity_id: plan.identityId },
      at,
    });
  }
  if (purpose?.kind === 'reauth') {
    events.push({
      type: 'session.reauthenticated',
      userId: plan.userId,
      sessionId,
      provider: id.provider,
      actor: `user:${plan.userId}`,
      ip,
      details: { identity_id: plan.identityId },
      at,
    });
  }
  if (!purpose && plan.newUser) {
    events.push({
      type: 'user.created',
      userId: plan.userId,
      provider: id.provider,
      actor: 'system',
      details: { identity_id: plan.identityId },
      at,
    });
  }
  return events.map(auditRow);
}
