// Our node:crypto JWS against jose, both ways, and the ECDSA signature conversion at its edges.
import { generateKeyPairSync } from 'node:crypto';
import { compactVerify, CompactSign, importJWK } from 'jose';
import t from 'tap';
import { derToJose, joseToDer, JwsRejected, signJws, verifyJws } from '../../src/tokens/jws.js';

t.test('R || S and DER convert both ways at the edges', async (t) => {
  const cases: [string, Buffer, Buffer][] = [
    ['high bit set', Buffer.alloc(32, 0xff), Buffer.alloc(32, 0x80)],
    ['leading zero bytes', Buffer.concat([Buffer.alloc(3), Buffer.alloc(29, 0x11)]), Buffer.concat([Buffer.alloc(31), Buffer.from([1])])],
    ['a zero byte then a high bit', Buffer.concat([Buffer.alloc(1), Buffer.alloc(31, 0x90)]), Buffer.alloc(32, 0x7f)],
  ];
  for (const [name, r, s] of cases) {
    const raw = Buffer.concat([r, s]);
    const der = joseToDer(raw, 32)!;
    t.equal(der[0], 0x30, `${name}: a SEQUENCE`);
    t.same(derToJose(der, 32), raw, `${name}: back to the same R || S`);
  }
  t.equal(joseToDer(Buffer.alloc(63), 32), undefined, 'a signature of the wrong length is no signature');
});

t.test('tokens we sign verify with jose, and what jose signs verifies with us', async (t) => {
  for (const [alg, pair] of [
    ['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['EdDSA', generateKeyPairSync('ed25519')],
    ['RS256', generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ] as const) {
    const key = { alg, kid: `k-${alg}`, privateKey: pair.privateKey };
    const jwk = await importJWK({ ...pair.publicKey.export({ format: 'jwk' }), alg }, alg);
    // many signatures, so that short and high-bit R and S values come up
    for (let i = 0; i < (alg === 'RS256' ? 20 : 300); i++) {
      const token = signJws(key, 'at+jwt', { i, sub: 'x' });
      const { payload } = await compactVerify(token, jwk);
      if (JSON.parse(Buffer.from(payload).toString()).i !== i) t.fail(`${alg} token ${i} does not verify with jose`);
    }
    const theirs = await new CompactSign(Buffer.from(JSON.stringify({ sub: 'y' })))
      .setProtectedHeader({ alg, kid: key.kid, typ: 'at+jwt' })
      .sign(await importJWK({ ...pair.privateKey.export({ format: 'jwk' }), alg }, alg));
    const opts = { keyFor: () => ({ alg, publicKey: pair.publicKey }), algorithms: [alg], typ: ['at+jwt'] };
    t.equal((await verifyJws(theirs, opts)).payload.sub, 'y', `${alg}: jose's token verifies with us`);
    const [h, p, sig] = theirs.split('.');
    const flipped = `${h}.${p}.${sig.slice(0, -2)}${sig.at(-2) === 'A' ? 'B' : 'A'}${sig.at(-1)}`;
    await t.rejects(verifyJws(flipped, opts), new JwsRejected('signature'), `${alg}: a changed signature is refused`);
    await t.rejects(verifyJws(`${h}.${p}.${sig.slice(0, 20)}`, opts), new JwsRejected('signature'), `${alg}: a short one too`);
  }
});
