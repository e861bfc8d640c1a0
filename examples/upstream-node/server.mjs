// An app behind the linelogin gateway, in Node, with nothing but `jose` and `ws`.
//
// It trusts no header on its own: the identity comes from the X-LineLogin-Assertion JWT,
// verified with jose against the gateway's published JWKS (ES256 only; issuer, audience and
// expiry checked). A WebSocket echo at /ws shows upgrades passing through the gateway.
//
// Environment: PORT (default 3000; 0 picks a free port), LINELOGIN_URL (the gateway's public URL
// with its prefix; the JWKS is LINELOGIN_URL/.well-known/jwks.json), LINELOGIN_ISSUER (default:
// LINELOGIN_URL's origin), ASSERTION_AUDIENCE (default my-app).
//
// Routes: GET / (HTML greeting), GET /whoami (JSON: verified claims and headers received),
// GET /health (public), WebSocket /ws (echo; the first message says who is connected).
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { WebSocketServer } from 'ws';

const linelogin = (process.env.LINELOGIN_URL || 'http://127.0.0.1:8080/linelogin').replace(/\/$/, '');
const issuer = process.env.LINELOGIN_ISSUER || new URL(linelogin).origin;
const audience = process.env.ASSERTION_AUDIENCE || 'my-app';
const jwks = createRemoteJWKSet(new URL(`${linelogin}/.well-known/jwks.json`));

/** The verified claims of the request's assertion, or null. */
async function identity(req) {
  const token = req.headers['x-linelogin-assertion'];
  if (!token) return null;
  try {
    const { payload } = await jwtVerify(token, jwks, {
      issuer, audience, algorithms: ['ES256'], requiredClaims: ['exp', 'iat', 'sub'],
    });
    return payload;
  } catch (e) {
    console.error(`assertion refused: ${e.code ?? e.message}`);
    return null;
  }
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, 'http://upstream').pathname;
  if (path === '/health') return send(res, 200, 'ok\n', 'text/plain');
  const claims = await identity(req);
  if (path === '/whoami') return send(res, 200, JSON.stringify({ claims, headers: req.headers }));
  if (!claims) return send(res, 401, JSON.stringify({ error: 'no valid X-LineLogin-Assertion' }));
  if (decodeURIComponent(req.headers['x-linelogin-name'] ?? '') !== claims.name) {
    return send(res, 500, JSON.stringify({ error: 'X-LineLogin-Name disagrees with the assertion' }));
  }
  send(res, 200, `<!doctype html><meta charset=utf-8><title>Upstream app</title>`
    + `<h1 id=greeting>Hello, ${escape(claims.name)}</h1>`
    + `<p>LINE user <code id=user>${escape(claims.sub)}</code></p>`, 'text/html; charset=utf-8');
});

// WebSocket echo: upgrades are authenticated like any request (the gateway sends the assertion).
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', async (req, socket, head) => {
  const claims = await identity(req);
  if (!claims || new URL(req.url, 'http://upstream').pathname !== '/ws') {
    socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.send(`hello ${claims.name}`);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
});

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`upstream-node on http://127.0.0.1:${server.address().port}`);
});
