// Tokens signed by jose, for our JwtValidator to verify: a fresh ES256, Ed25519 and RS256 key
// pair, their public JWK Set, and an RFC 9068 access token signed with each.
//
//   node sign.mjs ISSUER AUDIENCE   → {"jwks": {...}, "tokens": ["…", "…", "…"]}
import * as jose from 'jose';

const [issuer, audience] = process.argv.slice(2);
const keys = [];
const tokens = [];
for (const [alg, options] of [
  ['ES256', {}],
  ['EdDSA', { crv: 'Ed25519' }],
  ['RS256', { modulusLength: 2048 }],
]) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, options);
  const jwk = await jose.exportJWK(publicKey);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = alg;
  jwk.use = 'sig';
  keys.push(jwk);
  tokens.push(
    await new jose.SignJWT({ client_id: 'jose-client', scope: 'read' })
      .setProtectedHeader({ alg, kid: jwk.kid, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject('carol')
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti(crypto.randomUUID())
      .sign(privateKey),
  );
}
console.log(JSON.stringify({ jwks: { keys }, tokens }));
