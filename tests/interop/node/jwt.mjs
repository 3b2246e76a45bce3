// JWT access tokens from a running quickstart (`--access-token-format jwt`), verified by jose,
// an independent JOSE implementation: the key set fetched from the metadata's jwks_uri
// (RFC 7517), the signature, `typ: at+jwt` (RFC 9068 §4), `iss`, `aud`, `exp`; a tampered token
// and a token of the wrong type refused.
//
//   node jwt.mjs http://localhost:3000 ACCESS_TOKEN
import * as jose from 'jose';

const [issuer, token] = process.argv.slice(2);
const step = (what) => console.log(`ok: ${what}`);
const metadata = await (await fetch(new URL('/.well-known/oauth-authorization-server', issuer))).json();
const keys = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));

const { payload, protectedHeader } = await jose.jwtVerify(token, keys, {
  issuer,
  audience: issuer,
  typ: 'at+jwt',
  algorithms: ['ES256', 'EdDSA', 'RS256'],
});
for (const claim of ['sub', 'client_id', 'jti', 'iat', 'exp']) {
  if (payload[claim] === undefined) throw new Error(`no ${claim} in ${JSON.stringify(payload)}`);
}
step(`verified ${protectedHeader.alg} kid ${protectedHeader.kid}: sub ${payload.sub}, client_id ${payload.client_id}, scope ${payload.scope}`);

// One byte of the payload changed: the signature no longer holds.
const [h, p, s] = token.split('.');
const claims = JSON.parse(Buffer.from(p, 'base64url'));
claims.scope = 'admin';
const tampered = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
let refused = false;
try {
  await jose.jwtVerify(tampered, keys, { issuer, audience: issuer, typ: 'at+jwt' });
} catch (e) {
  refused = e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED';
}
if (!refused) throw new Error('a tampered token was accepted');
step('a tampered token is refused');

// Another audience is refused too.
refused = false;
try {
  await jose.jwtVerify(token, keys, { issuer, audience: 'https://other.example', typ: 'at+jwt' });
} catch (e) {
  refused = e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED';
}
if (!refused) throw new Error('a token for another audience was accepted');
step('another audience is refused');

// Every published key id is the key's RFC 7638 thumbprint, as jose computes it.
const set = await (await fetch(metadata.jwks_uri)).json();
for (const jwk of set.keys) {
  const thumbprint = await jose.calculateJwkThumbprint(jwk);
  if (thumbprint !== jwk.kid) throw new Error(`kid ${jwk.kid} is not the thumbprint ${thumbprint}`);
}
step(`${set.keys.length} key id(s) are RFC 7638 thumbprints`);
