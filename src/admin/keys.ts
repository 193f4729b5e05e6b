// Admin: signing keys (public metadata only) and rotation on demand.
import { Type } from '@sinclair/typebox';
import type { App } from '../context.js';
import { perMinute } from '../http/rate-limit.js';
import { adminErrors, iso, isoOrNull, SigningKeyInfo, Timestamp } from './schemas.js';

export async function keyRoutes(app: App): Promise<void> {
  const { config, storage, keys } = app.ctx;
  const limited = { config: perMinute(config.rateLimits.admin) };

  app.get(
    '/admin/keys',
    { ...limited, schema: { response: { 200: Type.Object({ keys: Type.Array(SigningKeyInfo) }), ...adminErrors } } },
    async () => {
      // read from the database, not this instance's cache: what every instance will act on. Never the private
      // column (and the response schema would drop it anyway).
      const rows = await storage.db
        .selectFrom('signing_keys')
        .select(['kid', 'alg', 'state', 'created_at', 'publish_at', 'activate_at', 'activated_at', 'retired_at', 'remove_at'])
        .orderBy('created_at', 'desc')
        .orderBy('activate_at', 'desc')
        .orderBy('kid')
        .execute();
      return {
        keys: rows.map((k) => ({
          ...k,
          created_at: iso(k.created_at),
          publish_at: iso(k.publish_at),
          activate_at: iso(k.activate_at),
          activated_at: isoOrNull(k.activated_at),
          retired_at: isoOrNull(k.retired_at),
          remove_at: isoOrNull(k.remove_at),
        })),
      };
    },
  );

  app.post(
    '/admin/keys/rotate',
    {
      ...limited,
      schema: {
        body: Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()]),
        response: {
          200: Type.Object({
            kid: Type.String(),
            activate_at: Timestamp,
            result: Type.Union([Type.Literal('created'), Type.Literal('brought_forward'), Type.Literal('already_scheduled')]),
          }),
          ...adminErrors,
        },
      },
    },
    async (request) => {
      // published now, signing only after one JWKS cache period (JWKS_MAX_AGE), so verifiers that cached the
      // JWKS learn the key before they meet a token it signed
      // the event is written in the rotation's transaction, and says what the request did: a failed insert
      // undoes the rotation, and a request that found the next key already due is not recorded as a rotation
      const { kid, activateAt, result } = await keys.rotateNow((r, tx) =>
        tx.audit({
          type: 'key.rotation_requested',
          actor: request.adminActor,
          ip: request.ip,
          details: {
            kid: r.kid,
            activate_at: iso(r.activateAt),
            result: r.result,
            ...(r.previousActivateAt ? { previous_activate_at: iso(r.previousActivateAt) } : {}),
          },
          at: app.ctx.now(),
        }),
      );
      return { kid, activate_at: iso(activateAt), result };
    },
  );
}
