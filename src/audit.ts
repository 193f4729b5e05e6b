// Writes audit events. Callers pass the transaction they run in, so an event commits with the change it records.
import { randomUUID } from 'node:crypto';
import type { Insertable, Kysely } from 'kysely';
import type { AuditEventsTable, Database } from './storage/schema.js';

export type AuditType =
  | 'login'
  | 'identity.linked'
  | 'identity.unlinked'
  | 'refresh.reuse_detected'
  /** a session's user authenticated again upstream (before linking an identity) */
  | 'session.reauthenticated'
  | 'logout'
  | 'session.revoked'
  | 'user.created'
  | 'user.updated'
  | 'user.deleted'
  | 'key.created'
  | 'key.rotated'
  /** an admin asked for a rotation now (the key it created or brought forward is in details) */
  | 'key.rotation_requested';

export interface AuditInput {
  type: AuditType;
  outcome?: 'success' | 'failure';
  /** a short machine-readable reason, required for failures */
  reason?: string;
  userId?: string | null;
  sessionId?: string | null;
  provider?: string | null;
  /** who did it: "user:<id>", "admin-token", "system" */
  actor?: string | null;
  ip?: string | null;
  details?: Record<string, unknown>;
  at: Date;
}

/** The row an audit event is stored as (for statements that write it together with the change it records). */
export function auditRow(e: AuditInput): Insertable<AuditEventsTable> {
  return {
    id: randomUUID(),
    created_at: e.at,
    type: e.type,
    outcome: e.outcome ?? 'success',
    reason: e.reason ?? null,
    user_id: e.userId ?? null,
    session_id: e.sessionId ?? null,
    provider: e.provider ?? null,
    actor: e.actor ?? null,
    ip: e.ip ?? null,
    details: JSON.stringify(e.details ?? {}),
  };
}

export async function recordAudit(db: Kysely<Database>, e: AuditInput): Promise<void> {
  await db.insertInto('audit_events').values(auditRow(e)).execute();
}
