// Auth.js (@auth/core) with its LINE provider, unchanged except for the endpoint URLs, logs in
// against the emulator: csrf -> signin (authorization URL) -> emulator -> callback (token
// exchange and ID token checks inside Auth.js) -> session (the profile from the ID token).
import { Auth } from '@auth/core';
import LINE from '@auth/core/providers/line';

import { CHANNEL_ID, CHANNEL_SECRET, HopError, ISSUER, URLS, checkHs256, consent, hop, report, version } from './common.mjs';

const APP = 'http://127.0.0.1:8080';
const BASE = `${APP}/auth`;

// What Auth.js said, kept for the failure line (it answers errors with a redirect only).
const logged = [];
const config = {
  basePath: '/auth',
  trustHost: true,
  secret: 'compat-suite-only-auth-secret-0123456789',
  logger: {
    error: (e) => {
      // Auth.js wraps the library's error: the wrapped one says what the server answered.
      const inner = e?.cause?.err;
      const body = inner?.cause?.error ? ` ${inner.cause.error}: ${inner.cause.error_description}` : '';
      logged.push(`${e?.name ?? 'Error'}${inner ? ` <- ${inner.name}: ${inner.message}${body}` : `: ${e?.message ?? e}`}`);
    },
    warn: () => {},
    debug: () => {},
  },
  callbacks: {
    // Keep the raw ID token to check it independently after Auth.js did.
    jwt({ token, account }) {
      if (account?.id_token) {
        token.idToken = account.id_token;
        token.lineUserId = account.providerAccountId; // the ID token's `sub`
      }
      return token;
    },
    session({ session, token }) {
      session.idToken = token.idToken;
      session.lineUserId = token.lineUserId;
      return session;
    },
  },
  providers: [
    LINE({
      clientId: CHANNEL_ID,
      clientSecret: CHANNEL_SECRET,
      // The only changes: LINE's endpoints on the emulator. The issuer stays LINE's
      // (the provider's `issuer: "https://access.line.me"`), so ID tokens still check.
      authorization: { url: URLS.authorization, params: { scope: 'openid profile email' } },
      token: URLS.token,
      userinfo: URLS.userinfo,
    }),
  ],
};

/** A minimal cookie jar over Auth.js's Set-Cookie headers. */
const jar = new Map();
function remember(resp) {
  for (const c of resp.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
}
const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

async function call(url, init = {}) {
  const headers = new Headers(init.headers);
  if (jar.size) headers.set('cookie', cookieHeader());
  const resp = await Auth(new Request(url, { ...init, headers }), config);
  remember(resp);
  return resp;
}

function authError(resp) {
  const loc = resp.headers.get('location') ?? '';
  const err = loc.includes('error=') ? new URL(loc, APP).searchParams.get('error') : null;
  return `${resp.status}${err ? ` error=${err}` : ''}${logged.length ? `: ${logged.join(' | ')}` : ''}`;
}

await report('authjs', `@auth/core ${version('@auth/core')}`, async () => {
  const authorizationUrl = await hop('authorize URL', async () => {
    const csrf = await (await call(`${BASE}/csrf`)).json();
    const resp = await call(`${BASE}/signin/line`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrfToken: csrf.csrfToken, callbackUrl: `${APP}/` }),
    });
    const loc = resp.headers.get('location');
    if (resp.status !== 302 || !loc || loc.includes('error=')) {
      throw new Error(`signin answered ${authError(resp)}`);
    }
    return loc;
  });
  const callback = await consent(authorizationUrl, `${BASE}/callback/line?`);
  await hop('callback', async () => {
    const resp = await call(callback);
    const loc = resp.headers.get('location') ?? '';
    if (resp.status !== 302 || loc.includes('error=')) {
      // Auth.js does the token exchange and the ID token checks inside the callback.
      const hopName = logged.some((l) => /id_token|ID Token|JWT/i.test(l)) ? 'id_token' : 'token';
      throw new HopError(hopName, `callback answered ${authError(resp)}`);
    }
  });
  const session = await hop('profile', async () => {
    const s = await (await call(`${BASE}/session`)).json();
    if (!s?.user?.name) throw new Error(`no user in the session: ${JSON.stringify(s)}`);
    return s;
  });
  const claims = checkHs256(session.idToken);
  if (claims.iss !== ISSUER || claims.aud !== CHANNEL_ID || claims.sub !== session.lineUserId) {
    throw new HopError('id_token', `unexpected claims ${JSON.stringify(claims)}`);
  }
});
