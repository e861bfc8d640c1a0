// passport-line-auth logs in against the emulator through passport (no web framework: the
// strategy gets plain request/response objects), unchanged except for its endpoint URLs:
// authenticate (authorization URL, state in the session) -> emulator -> authenticate with the
// callback query (token exchange) -> the strategy's profile fetch (GET /v2/profile).
'use strict';

const passport = require('passport');
const LineStrategy = require('passport-line-auth');

async function main() {
  const { CHANNEL_ID, CHANNEL_SECRET, ISSUER, URLS, HopError, checkHs256, consent, hop, report, version } =
    await import('./common.mjs');
  const CALLBACK = 'http://127.0.0.1:8080/callback';
  let verified;
  passport.use(new LineStrategy({
    channelID: CHANNEL_ID,
    channelSecret: CHANNEL_SECRET,
    callbackURL: CALLBACK,
    scope: ['profile', 'openid'],
    // The only changes: LINE's endpoints on the emulator.
    authorizationURL: URLS.authorization,
    tokenURL: URLS.token,
    profileURL: URLS.profile,
  }, (accessToken, refreshToken, params, profile, done) => {
    verified = { params, profile };
    done(null, { id: profile.id, displayName: profile.displayName });
  }));

  /** Runs passport.authenticate on a bare request; resolves with what the strategy did. */
  function authenticate(req) {
    return new Promise((resolve) => {
      const res = {
        statusCode: 200,
        headers: {},
        setHeader(k, v) { this.headers[k.toLowerCase()] = v; },
        end() { resolve({ redirect: this.headers.location, status: this.statusCode }); },
      };
      passport.authenticate('line', { session: false }, (err, user, info) =>
        resolve({ err, user, info }))(req, res, (err) => resolve({ err }));
    });
  }

  await report('passport-line-auth', `passport-line-auth ${version('passport-line-auth')}`, async () => {
    const session = {};
    const start = await hop('authorize URL', async () => {
      const r = await authenticate({ method: 'GET', url: '/login', query: {}, headers: {}, session });
      if (!r.redirect) throw new Error(`no redirect: ${r.err?.message ?? JSON.stringify(r.info)}`);
      return r.redirect;
    });
    const callback = await consent(start, `${CALLBACK}?`);
    const r = await hop('callback', async () => {
      const u = new URL(callback);
      return authenticate({
        method: 'GET',
        url: `${u.pathname}${u.search}`,
        query: Object.fromEntries(u.searchParams),
        headers: {},
        session,
      });
    });
    if (r.err) {
      // passport-oauth2 names the failing step: "Failed to obtain access token" or
      // "Failed to fetch user profile".
      const inner = r.err.oauthError?.data ?? r.err.oauthError?.message ?? '';
      const where = /profile/i.test(r.err.message) ? 'profile' : 'token';
      throw new HopError(where, `${r.err.message}${inner ? `: ${inner}` : ''}`);
    }
    if (!r.user) throw new HopError('callback', `no user: ${JSON.stringify(r.info)}`);
    const claims = checkHs256(verified.params.id_token);
    if (claims.iss !== ISSUER || claims.aud !== CHANNEL_ID || claims.sub !== verified.profile.id) {
      throw new HopError('id_token', `unexpected claims ${JSON.stringify(claims)}`);
    }
    if (!verified.profile.displayName) throw new HopError('profile', 'no displayName');
  });
}

main();
