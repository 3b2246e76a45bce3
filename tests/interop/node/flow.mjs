// The authorization-code flow against a running quickstart, as oauth4webapi runs it: strict
// RFC 8414 discovery (the issuer must match), a pushed authorization request (RFC 9126), the
// authorization response validated with its iss (RFC 9207), the code exchanged with PKCE
// (RFC 7636), and a refresh. The "browser" step posts the quickstart's demo login form.
//
//   node flow.mjs http://localhost:3000
import * as oauth from 'oauth4webapi';
import { signIn } from './login.mjs';

const issuer = new URL(process.argv[2]);
const port = issuer.port;
const insecure = { [oauth.allowInsecureRequests]: true }; // plain http on loopback
const step = (what) => console.log(`ok: ${what}`);

const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
);
if (!as.authorization_endpoint || !as.pushed_authorization_request_endpoint) {
  throw new Error(`metadata lacks the authorization endpoints: ${JSON.stringify(as)}`);
}
if (as.authorization_response_iss_parameter_supported !== true) {
  throw new Error('metadata does not announce iss');
}
step('discovery (RFC 8414) with authorization_endpoint and PAR');

const client = { client_id: 'quickstart-spa' };
const auth = oauth.None();
const redirect_uri = `http://127.0.0.1:${port}/callback`;
const code_verifier = oauth.generateRandomCodeVerifier();
const state = oauth.generateRandomState();
const params = new URLSearchParams({
  response_type: 'code',
  redirect_uri,
  scope: 'read offline_access',
  state,
  code_challenge: await oauth.calculatePKCECodeChallenge(code_verifier),
  code_challenge_method: 'S256',
});
const par = await oauth.processPushedAuthorizationResponse(
  as,
  client,
  await oauth.pushedAuthorizationRequest(as, client, auth, params, insecure),
);
step(`pushed authorization request (RFC 9126): expires_in ${par.expires_in}`);

// The browser: the authorization endpoint's login page, then its form.
const authorize = new URL(as.authorization_endpoint);
authorize.searchParams.set('client_id', client.client_id);
authorize.searchParams.set('request_uri', par.request_uri);
const callback = await signIn(authorize);
step('signed in and approved');

// A response claiming another issuer is refused (RFC 9207 mix-up defence)...
const forged = new URL(callback);
forged.searchParams.set('iss', 'https://attacker.example');
let refused = false;
try {
  oauth.validateAuthResponse(as, client, forged, state);
} catch {
  refused = true;
}
if (!refused) throw new Error('a forged iss was accepted');
// ... ours is not.
const callbackParams = oauth.validateAuthResponse(as, client, callback, state);
step('authorization response validated with iss (RFC 9207)');

const tokens = await oauth.processAuthorizationCodeResponse(
  as,
  client,
  await oauth.authorizationCodeGrantRequest(
    as, client, auth, callbackParams, redirect_uri, code_verifier, insecure,
  ),
);
if (!tokens.access_token || !tokens.refresh_token) throw new Error('no tokens');
step(`code exchanged with PKCE: scope ${tokens.scope}`);

let res = await fetch(new URL('/api/me', issuer), {
  headers: { authorization: `Bearer ${tokens.access_token}` },
});
const me = await res.json();
if (me.user !== 'test' || me.client_id !== 'quickstart-spa') {
  throw new Error(`/api/me said ${JSON.stringify(me)}`);
}
step('the access token works');

const refreshed = await oauth.processRefreshTokenResponse(
  as,
  client,
  await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, insecure),
);
if (!refreshed.refresh_token || refreshed.refresh_token === tokens.refresh_token) {
  throw new Error('the refresh token was not rotated');
}
step('refreshed, with rotation');
