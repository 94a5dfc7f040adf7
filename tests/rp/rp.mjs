// openid-client as the relying party, against a live provider (run by tests/test_rp_node.py).
//
//   node rp.mjs '<config JSON>'
//
// config: {"issuer", "web": {client_id, client_secret, redirect_uri},
//          "native": {client_id, redirect_uri}, "spa": {client_id, redirect_uri},
//          "service": {access_key, secret_key, scope}}
//
// It speaks JSON lines on stdout/stdin. For each front-channel step it prints
//   {"authorize": "<authorization URL>", "redirect_uri": "<where it ends>"}
// and reads one line back: the URL the user's browser ended on (the driver logs in on the
// hosted page and consents). Each check prints {"check", "ok", "detail" | "error"}; the last
// line is {"done": true}. Every check runs even when an earlier one failed.

import * as readline from 'node:readline';
import * as client from 'openid-client';

const config = JSON.parse(process.argv[2]);
const issuer = new URL(config.issuer);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const insecure = { execute: [client.allowInsecureRequests], timeout: 15 };

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function browse(url, redirectUri) {
  say({ authorize: url.href, redirect_uri: redirectUri });
  const { value, done } = await lines.next();
  if (done) throw new Error('the driver closed stdin');
  return new URL(value.trim());
}

const results = {};
async function check(name, fn) {
  try {
    const detail = await fn();
    results[name] = detail ?? true;
    say({ check: name, ok: true, detail: detail ?? null });
  } catch (err) {
    const error = `${err?.name}: ${err?.message}${err?.code ? ` [${err.code}]` : ''}` +
      `${err?.error ? ` error=${err.error}` : ''}${err?.error_description ? ` (${err.error_description})` : ''}` +
      `${err?.cause && !(err.cause instanceof Error) ? ` cause=${JSON.stringify(err.cause).slice(0, 600)}` : ''}`;
    say({ check: name, ok: false, error });
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

async function discover(clientId, secret, auth) {
  const c = await client.discovery(issuer, clientId, secret, auth, insecure);
  // Verify the signatures of ID tokens from the token endpoint too, with keys from jwks_uri.
  client.enableNonRepudiationChecks(c);
  return c;
}

let web;
let webTokens;

await check('discovery', async () => {
  web = await discover(config.web.client_id, config.web.client_secret, client.ClientSecretBasic(config.web.client_secret));
  const meta = web.serverMetadata();
  assert(meta.issuer === config.issuer, `issuer ${meta.issuer} != ${config.issuer}`);
  assert(meta.supportsPKCE('S256'), 'S256 advertised');
  for (const k of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri']) {
    assert(typeof meta[k] === 'string' && meta[k].startsWith(config.issuer), `${k} under the issuer`);
  }
  return { issuer: meta.issuer };
});

await check('code_pkce_confidential', async () => {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(web, {
    redirect_uri: config.web.redirect_uri, scope: 'openid profile email', nonce, state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const back = await browse(url, config.web.redirect_uri);
  webTokens = await client.authorizationCodeGrant(web, back, {
    pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true,
  });
  const claims = webTokens.claims();
  assert(claims.aud === config.web.client_id || claims.aud.includes(config.web.client_id), 'aud');
  assert(webTokens.refresh_token, 'a refresh token');
  return { sub: claims.sub };
});

await check('userinfo', async () => {
  const sub = webTokens.claims().sub;
  const info = await client.fetchUserInfo(web, webTokens.access_token, sub);
  assert(info.sub === sub && info.email, 'sub and email');
  return { sub: info.sub, email: info.email };
});

await check('introspection', async () => {
  const result = await client.tokenIntrospection(web, webTokens.access_token);
  assert(result.active === true && result.client_id === config.web.client_id, JSON.stringify(result));
  return { active: result.active };
});

let refreshed;
await check('refresh', async () => {
  refreshed = await client.refreshTokenGrant(web, webTokens.refresh_token);
  assert(refreshed.access_token && refreshed.access_token !== webTokens.access_token, 'a new access token');
  assert(refreshed.refresh_token && refreshed.refresh_token !== webTokens.refresh_token, 'a rotated refresh token');
  assert(refreshed.claims()?.sub === webTokens.claims().sub, 'the same sub in the new ID token');
  return { rotated: true };
});

await check('refresh_replay_revokes_family', async () => {
  let replay;
  try {
    await client.refreshTokenGrant(web, webTokens.refresh_token);
  } catch (err) {
    replay = err;
  }
  assert(replay?.error === 'invalid_grant', `replay refused with invalid_grant, got ${replay?.error ?? 'a token'}`);
  let family;
  try {
    await client.refreshTokenGrant(web, refreshed.refresh_token);
  } catch (err) {
    family = err;
  }
  assert(family?.error === 'invalid_grant', 'the newer token of the family is revoked too');
  return { replay: replay.error };
});

await check('revocation', async () => {
  await client.tokenRevocation(web, refreshed.access_token, { token_type_hint: 'access_token' });
  const result = await client.tokenIntrospection(web, refreshed.access_token);
  assert(result.active === false, 'inactive after revocation');
  return { active: result.active };
});

await check('code_pkce_public', async () => {
  const native = await discover(config.native.client_id, undefined, client.None());
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(native, {
    redirect_uri: config.native.redirect_uri, scope: 'openid', nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const back = await browse(url, config.native.redirect_uri);
  const tokens = await client.authorizationCodeGrant(native, back, { pkceCodeVerifier: verifier, expectedNonce: nonce });
  assert(tokens.claims().aud.includes?.(config.native.client_id) || tokens.claims().aud === config.native.client_id, 'aud');
  const again = await client.refreshTokenGrant(native, tokens.refresh_token);
  assert(again.access_token, 'a public client refreshes without a secret');
  return { sub: tokens.claims().sub };
});

await check('hybrid_code_id_token', async () => {
  const hybrid = await discover(config.web.client_id, config.web.client_secret, client.ClientSecretPost(config.web.client_secret));
  client.useCodeIdTokenResponseType(hybrid);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(hybrid, { redirect_uri: config.web.redirect_uri, scope: 'openid email', nonce, state });
  assert(url.searchParams.get('response_type') === 'code id_token', url.searchParams.get('response_type'));
  const back = await browse(url, config.web.redirect_uri);
  // Validates the front-channel ID token (signature, c_hash, nonce, ...) before the exchange.
  const tokens = await client.authorizationCodeGrant(hybrid, back, { expectedNonce: nonce, expectedState: state });
  assert(tokens.access_token && tokens.claims().sub, 'tokens and an ID token from the code');
  return { sub: tokens.claims().sub };
});

await check('implicit_id_token', async () => {
  const spa = await discover(config.spa.client_id, undefined, client.None());
  client.useIdTokenResponseType(spa);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(spa, { redirect_uri: config.spa.redirect_uri, scope: 'openid email', nonce, state });
  const back = await browse(url, config.spa.redirect_uri);
  const claims = await client.implicitAuthentication(spa, back, nonce, { expectedState: state });
  assert(claims.sub && claims.email, 'sub and email in the ID token');
  return { sub: claims.sub };
});

await check('client_credentials', async () => {
  const tokens = await client.clientCredentialsGrant(web, { scope: 'profile' });
  assert(tokens.access_token && !tokens.id_token && !tokens.refresh_token, 'an access token only');
  const service = await discover(config.service.access_key, config.service.secret_key, client.ClientSecretBasic(config.service.secret_key));
  const ak = await client.clientCredentialsGrant(service, { scope: config.service.scope });
  assert(ak.access_token && !ak.refresh_token, 'the AK/SK pair gets an access token');
  return { scope: ak.scope ?? null };
});

say({ done: true, passed: Object.keys(results) });
process.exit(0);
