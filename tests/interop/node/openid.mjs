// OpenID Connect against the quickstart with panva's openid-client (v6), unmodified: discovery,
// the code flow with PKCE, state and nonce (signed in over HTTP, as login.mjs does), the ID
// token's signature verified with the published keys (non-repudiation checks on), userinfo,
// a refresh that returns a new ID token for the same user, and RP-initiated logout, after which
// the refresh token is dead. Prints one JSON line of what it saw.
import * as client from 'openid-client';
import { signIn } from './login.mjs';

const [issuer] = process.argv.slice(2);
const port = new URL(issuer).port;
const config = await client.discovery(new URL(issuer), 'quickstart-spa', undefined, client.None(), {
  execute: [client.allowInsecureRequests],
});
// Verify the ID token's JWS with the jwks_uri keys, not only its claims.
client.enableNonRepudiationChecks(config);

const verifier = client.randomPKCECodeVerifier();
const nonce = client.randomNonce();
const state = client.randomState();
const redirect_uri = `http://127.0.0.1:${port}/callback`;
const url = client.buildAuthorizationUrl(config, {
  redirect_uri,
  scope: 'openid profile email offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  nonce,
  state,
});
const callback = await signIn(url.href);
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier,
  expectedNonce: nonce,
  expectedState: state,
  idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
const again = refreshed.claims();
if (again.sub !== claims.sub || again.auth_time !== claims.auth_time) {
  throw new Error(`the refreshed ID token changed sub or auth_time: ${JSON.stringify(again)}`);
}

// RP-initiated logout: the ID token names the session, so no confirmation; back with state.
const logoutState = client.randomState();
const endSession = client.buildEndSessionUrl(config, {
  id_token_hint: refreshed.id_token,
  post_logout_redirect_uri: `http://127.0.0.1:${port}/`,
  state: logoutState,
});
const res = await fetch(endSession, { redirect: 'manual' });
const location = res.headers.get('location');
if (res.status !== 302 || location !== `http://127.0.0.1:${port}/?state=${logoutState}`) {
  throw new Error(`logout answered ${res.status} to ${location}: ${await res.text()}`);
}
let refreshAfterLogout = 'accepted';
try {
  await client.refreshTokenGrant(config, refreshed.refresh_token);
} catch (e) {
  refreshAfterLogout = e.error ?? e.code ?? String(e);
}

console.log(JSON.stringify({
  alg: JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg,
  claims,
  userinfo,
  refreshed: again,
  refreshAfterLogout,
}));
