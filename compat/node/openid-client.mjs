// openid-client (Node, v6) logs in against the emulator, unchanged except for the endpoint URLs:
// authorization URL (PKCE S256, state, nonce) -> emulator -> authorizationCodeGrant (token
// exchange, ID token claim checks) -> fetchUserInfo (the profile) ->
// refreshTokenGrant.
//
// With COMPAT_AUTH=basic it authenticates with client_secret_basic (openid-client's
// ClientSecretBasic) instead of its default client_secret_post.
import * as client from 'openid-client';

import { CHANNEL_ID, CHANNEL_SECRET, HopError, ISSUER, URLS, checkHs256, consent, hop, report, version } from './common.mjs';

const REDIRECT_URI = 'http://127.0.0.1:8080/callback';
const basic = process.env.COMPAT_AUTH === 'basic';

await report(basic ? 'openid-client-basic' : 'openid-client', `openid-client ${version('openid-client')}`, async () => {
  // LINE's discovery document lives at https://access.line.me; the metadata is given here with
  // LINE's issuer and the emulator's URLs (the only change).
  const server = {
    issuer: ISSUER,
    authorization_endpoint: URLS.authorization,
    token_endpoint: URLS.token,
    userinfo_endpoint: URLS.userinfo,
    jwks_uri: URLS.jwks,
    revocation_endpoint: URLS.revoke,
  };
  const config = new client.Configuration(
    server,
    CHANNEL_ID,
    // LINE web login signs ID tokens with HS256 and the channel secret.
    { client_secret: CHANNEL_SECRET, id_token_signed_response_alg: 'HS256' },
    basic ? client.ClientSecretBasic(CHANNEL_SECRET) : undefined,
  );
  client.allowInsecureRequests(config); // the emulator is plain http on loopback

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = await hop('authorize URL', async () =>
    client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid profile',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    }).href);
  const callback = await consent(authUrl, `${REDIRECT_URI}?`);
  const tokens = await hop('token', () =>
    client.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    }));
  const claims = await hop('id_token', async () => {
    const c = tokens.claims();
    if (!c) throw new Error('no ID token claims');
    const signed = checkHs256(tokens.id_token);
    if (signed.sub !== c.sub) throw new Error('claims differ from the signed payload');
    return c;
  });
  await hop('profile', async () => {
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    if (!info.name) throw new HopError('profile', `no name in ${JSON.stringify(info)}`);
  });
  // Staying logged in: the library refreshes the access token (same client authentication).
  await hop('refresh', async () => {
    const fresh = await client.refreshTokenGrant(config, tokens.refresh_token);
    if (!fresh.access_token || fresh.access_token === tokens.access_token) {
      throw new Error('no new access token');
    }
    await client.fetchUserInfo(config, fresh.access_token, claims.sub);
  });
  // Not driven here: client.tokenRevocation() sends RFC 7009's `token` parameter, while LINE
  // documents `access_token` for /oauth2/v2.1/revoke; the emulator answers as LINE documents
  // (see the deviations in crates/line-emulator/README.md).
});
