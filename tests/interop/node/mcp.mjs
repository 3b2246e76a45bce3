// The official MCP TypeScript SDK against `examples/mcp_server.rs`: its OAuth client provider,
// configured with the pre-registered public client `mcp-client`, starts from a bare 401 at
// /mcp, discovers the protected-resource metadata (RFC 9728) and the authorization server's
// (RFC 8414), runs the authorization code flow with PKCE and `resource` (RFC 8707), calls the
// tools, refreshes through the SDK and calls again. A token obtained for the server's other
// resource is refused at /mcp, by the server and so by the SDK. The "browser" step posts the
// demo login form, as a person would.
//
// With `dcr`, the SDK is given no client: it registers one itself (RFC 7591) at the
// registration endpoint the metadata names, and every step after runs as that client. With
// `cimd URL`, its client is the metadata document at URL (`clientMetadataUrl`): the server
// says it supports them, so the SDK uses the URL as its client_id, and the server fetches it.
//
//   node mcp.mjs http://127.0.0.1:3200 [dcr | cimd https://127.0.0.1:PORT/client.json]
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { signIn } from './login.mjs';

const origin = process.argv[2];
const dcr = process.argv[3] === 'dcr';
const documentUrl = process.argv[3] === 'cimd' ? process.argv[4] : undefined;
const mcpUrl = new URL('/mcp', origin);
const resource = mcpUrl.href;
const other = new URL('/other', origin).href;
const step = (what) => console.log(`ok: ${what}`);
const fail = (what) => {
  throw new Error(what);
};

/** The pre-registered client (or, with `dcr`, none until the SDK registers one), keeping
 * what the SDK hands it, and the authorize URL it opens. */
class Provider {
  constructor(redirectUrl) {
    this._redirectUrl = redirectUrl;
    this.saved = undefined;
    this.verifier = undefined;
    this.opened = [];
    this.registered = dcr || documentUrl ? undefined : { client_id: 'mcp-client' };
    this.clientMetadataUrl = documentUrl;
  }
  get redirectUrl() {
    return this._redirectUrl;
  }
  get clientMetadata() {
    return {
      client_name: 'mcp.mjs',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.registered;
  }
  saveClientInformation(info) {
    this.registered = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url) {
    this.opened.push(new URL(url));
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

/** The browser: signed in at `url`, whose page must name `forResource`; the code. */
async function signInFor(url, forResource) {
  const back = await signIn(url, { resource: forResource });
  if (!back.href.startsWith(redirectUrl)) fail(`redirected to ${back}`);
  if (back.searchParams.get('iss') !== origin) fail(`iss ${back.searchParams.get('iss')}`);
  return back.searchParams.get('code');
}

async function connect(provider) {
  const client = new Client({ name: 'mcp.mjs', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
}

const text = (result) => result.content.map((c) => c.text).join('');

// 1. A bare request: 401, naming the resource metadata and the scope.
let res = await fetch(mcpUrl, {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
});
const challenge = res.headers.get('www-authenticate') ?? '';
if (res.status !== 401 || !challenge.includes('resource_metadata=')) {
  fail(`bare request: ${res.status} ${challenge}`);
}
step(`bare request: 401 ${challenge}`);

// 2. The SDK's flow: discovery, then the authorization request it would open in a browser.
const redirectUrl = 'http://127.0.0.1:47123/callback';
const provider = new Provider(redirectUrl);
let transport;
try {
  ({ transport } = await connect(provider));
  fail('connected without a token');
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
}
const opened = provider.opened.at(-1) ?? fail('the SDK opened no authorization URL');
const clientId = provider.registered?.client_id ?? fail('no client');
if (dcr) {
  const info = provider.registered;
  if (!clientId.startsWith('dcr_')) fail(`registered client_id ${clientId}`);
  if (info.client_secret) fail('a public client was given a secret');
  if (!info.client_id_issued_at) fail('no client_id_issued_at');
  step(`SDK registered itself (RFC 7591): client_id ${clientId}, token_endpoint_auth_method ${info.token_endpoint_auth_method}`);
}
if (documentUrl) {
  if (clientId !== documentUrl) fail(`client_id ${clientId}, not the document URL`);
  step(`SDK used its client ID metadata document as client_id: ${clientId}`);
}
const asked = Object.fromEntries(opened.searchParams);
if (asked.resource !== resource) fail(`authorization request resource: ${asked.resource}`);
if (asked.code_challenge_method !== 'S256') fail('no PKCE S256');
if (asked.client_id !== clientId) fail(`client_id ${asked.client_id}`);
step(
  `SDK discovered the metadata and asked ${opened.origin}${opened.pathname} for ` +
    `resource=${asked.resource} scope=${asked.scope} (PKCE ${asked.code_challenge_method})`,
);

// 3. The person signs in; the SDK exchanges the code (with `resource`) and connects.
const code = await signInFor(opened, resource);
const retry = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
await retry.finishAuth(code);
const first = provider.saved ?? fail('no tokens saved');
if (!first.refresh_token) fail('no refresh token');
step(`SDK exchanged the code: token_type ${first.token_type}, scope ${first.scope}`);
const parts = first.access_token.split('.');
if (parts.length === 3) {
  // A JWT access token (RFC 9068): its aud is the resource the SDK asked for.
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  const aud = [claims.aud].flat();
  if (aud.join() !== resource) fail(`JWT aud ${JSON.stringify(claims.aud)}`);
  step(`the access token is a JWT for ${JSON.stringify(aud)}`);
}
let { client } = await connect(provider);
const tools = (await client.listTools()).tools.map((t) => t.name).sort();
if (tools.join() !== 'add,whoami') fail(`tools ${tools}`);
const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
if (who.sub !== 'test' || who.client_id !== clientId) fail(`whoami ${JSON.stringify(who)}`);
const sum = text(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }));
if (sum !== '42') fail(`add said ${sum}`);
step(`tools ${tools}; whoami ${JSON.stringify(who)}; add(2, 40) = ${sum}`);
await client.close();

// 4. The access token revoked (RFC 7009): the SDK's next call gets 401, refreshes with the
// refresh token (and `resource`) and goes on.
res = await fetch(new URL('/oauth/revoke', origin), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ token: first.access_token, client_id: clientId }),
});
if (res.status !== 200) fail(`revocation answered ${res.status}`);
({ client } = await connect(provider));
const again = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
const second = provider.saved;
if (second.access_token === first.access_token) fail('the SDK did not refresh');
if (second.refresh_token === first.refresh_token) fail('the refresh token was not rotated');
if (again.sub !== 'test') fail(`whoami after refresh ${JSON.stringify(again)}`);
step(`SDK refreshed after a 401 (new access and refresh tokens) and called whoami again: ${again.sub}`);
await client.close();

// 5. A token for the other resource: the same login, asked by hand for /other.
const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const authorize = new URL('/oauth/authorize', origin);
for (const [k, v] of Object.entries({
  response_type: 'code',
  client_id: clientId,
  redirect_uri: redirectUrl,
  scope: 'mcp:tools',
  resource: other,
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
})) {
  authorize.searchParams.set(k, v);
}
const otherCode = await signInFor(authorize, other);
res = await fetch(new URL('/oauth/token', origin), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    grant_type: 'authorization_code',
    client_id: clientId,
    code: otherCode,
    redirect_uri: redirectUrl,
    code_verifier: verifier,
    resource: other,
  }),
});
const forOther = await res.json();
if (!forOther.access_token) fail(`token for /other: ${JSON.stringify(forOther)}`);
res = await fetch(mcpUrl, {
  method: 'POST',
  headers: {
    authorization: `Bearer ${forOther.access_token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  },
  body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
});
const refusal = res.headers.get('www-authenticate') ?? '';
if (res.status !== 401 || !refusal.includes('error="invalid_token"') || !refusal.includes('not meant for this resource')) {
  fail(`a token for ${other} at /mcp: ${res.status} ${refusal}`);
}
step(`a token for ${other} at /mcp: 401 ${refusal}`);
// The SDK, handed only that token, cannot use it either: it is sent back to authorize.
const stranger = new Provider(redirectUrl);
stranger.saved = { access_token: forOther.access_token, token_type: 'Bearer' };
try {
  await connect(stranger);
  fail('the SDK connected with a token for another resource');
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
}
if (stranger.opened.length !== 1) fail('the SDK did not start a new authorization');
step('the SDK, holding only that token, is refused and starts a new authorization');
