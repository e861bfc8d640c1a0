// Shared by the Node logins of the compatibility suite: the emulator's settings (from the
// environment `compat/run.sh` sets), hop-named failures, the browser hop, and the result line.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The emulator under test and the channel of `compat/emulator.toml`. */
export const EMU = (process.env.EMULATOR_URL || 'http://127.0.0.1:9000').replace(/\/$/, '');
export const CHANNEL_ID = process.env.CHANNEL_ID || '1234567890';
export const CHANNEL_SECRET = process.env.CHANNEL_SECRET || '0123456789abcdef0123456789abcdef';
/** LINE's issuer: kept as it is; only the endpoint URLs point at the emulator. */
export const ISSUER = 'https://access.line.me';
/** LINE's endpoints, on the emulator's one origin. */
export const URLS = {
  authorization: `${EMU}/oauth2/v2.1/authorize`,
  token: `${EMU}/oauth2/v2.1/token`,
  userinfo: `${EMU}/oauth2/v2.1/userinfo`,
  profile: `${EMU}/v2/profile`,
  jwks: `${EMU}/oauth2/v2.1/certs`,
  revoke: `${EMU}/oauth2/v2.1/revoke`,
};

/** A failure at one hop of the login. */
export class HopError extends Error {
  constructor(hop, message) {
    super(message);
    this.hop = hop;
  }
}

/** Runs `fn` and turns any exception into a HopError of `hop`. */
export async function hop(name, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof HopError) throw e;
    const cause = e?.cause ? ` (cause: ${e.cause.message ?? JSON.stringify(e.cause)})` : '';
    throw new HopError(name, `${e?.name ?? 'Error'}: ${e?.message ?? e}${cause}`);
  }
}

/** The version of an installed package. */
export function version(pkg) {
  const url = new URL(`./node_modules/${pkg}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

/**
 * The browser's part: follows the library's authorization URL to the emulator (which runs
 * with --auto-consent) and returns the callback URL it redirects to.
 */
export async function consent(authorizationUrl, expectedCallbackPrefix) {
  const u = await hop('authorize URL', async () => {
    const u = new URL(authorizationUrl);
    if (!authorizationUrl.startsWith(URLS.authorization)) {
      throw new Error(`points at ${u.origin}${u.pathname}, not ${URLS.authorization}`);
    }
    return u;
  });
  return hop('consent', async () => {
    const resp = await fetch(u, { redirect: 'manual' });
    const location = resp.headers.get('location');
    if (resp.status !== 302 || !location) {
      const body = (await resp.text()).slice(0, 300).replace(/\s+/g, ' ');
      throw new Error(`authorize answered ${resp.status}: ${body}`);
    }
    if (!location.startsWith(expectedCallbackPrefix)) {
      throw new Error(`redirected to ${location}, not ${expectedCallbackPrefix}`);
    }
    const q = new URL(location).searchParams;
    if (q.get('error')) {
      throw new Error(`callback carries error=${q.get('error')}: ${q.get('error_description')}`);
    }
    return location;
  });
}

/**
 * Checks an ID token's HS256 signature with the channel secret (LINE web login): the suite's
 * own check, on top of whatever the library checked.
 */
export function checkHs256(idToken) {
  const [h, p, s] = String(idToken).split('.');
  if (!s) throw new HopError('id_token', 'not a JWS');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  if (header.alg !== 'HS256') throw new HopError('id_token', `alg ${header.alg}, not HS256`);
  const mac = createHmac('sha256', CHANNEL_SECRET).update(`${h}.${p}`).digest();
  const sig = Buffer.from(s, 'base64url');
  if (sig.length !== mac.length || !timingSafeEqual(sig, mac)) {
    throw new HopError('id_token', 'HS256 signature does not verify with the channel secret');
  }
  return JSON.parse(Buffer.from(p, 'base64url'));
}

/** Prints the result line and sets the exit code. */
export async function report(name, label, run) {
  try {
    const detail = await run();
    console.log(`ok ${name} ${label}${detail ? ` (${detail})` : ''}`);
  } catch (e) {
    const hopName = e instanceof HopError ? e.hop : 'harness';
    const msg = String(e?.message ?? e).replace(/\s+/g, ' ');
    console.log(`FAIL ${name} ${label}: ${hopName}: ${msg}`);
    process.exitCode = 1;
  }
}
