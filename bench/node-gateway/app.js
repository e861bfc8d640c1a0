// The peer of linelogin's gateway benchmark (bench/gateway.sh): the same job as `linelogin
// serve` with [gateway] upstream, written the way a Node team would write it. Express with
// passport-line-auth logs in against the linelogin emulator, express-session keeps the
// session (in memory, the fastest store it has), and http-proxy-middleware passes every other
// request to the app with the identity headers, including an ES256 assertion signed with jose,
// which is what lets the app verify who the user is.
//
// Environment: PORT (default 8095), UPSTREAM (default http://127.0.0.1:3000), LINE_BASE (the
// emulator, default http://127.0.0.1:9000), CHANNEL_ID, CHANNEL_SECRET (default: the emulator's
// demo channel). Routes: /linelogin/login, /linelogin/callback, everything else proxied.
'use strict';

const crypto = require('node:crypto');
const express = require('express');
const session = require('express-session');
const passport = require('passport');
const LineStrategy = require('passport-line-auth');
const { createProxyMiddleware } = require('http-proxy-middleware');

const port = Number(process.env.PORT || 8095);
const upstream = process.env.UPSTREAM || 'http://127.0.0.1:3000';
const lineBase = (process.env.LINE_BASE || 'http://127.0.0.1:9000').replace(/\/$/, '');
const publicUrl = `http://127.0.0.1:${port}`;
const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

async function main() {
  const { SignJWT } = await import('jose');
  passport.use(new LineStrategy({
    channelID: process.env.CHANNEL_ID || '1234567890',
    channelSecret: process.env.CHANNEL_SECRET || '0123456789abcdef0123456789abcdef',
    callbackURL: `${publicUrl}/linelogin/callback`,
    scope: ['profile', 'openid'],
    authorizationURL: `${lineBase}/oauth2/v2.1/authorize`,
    tokenURL: `${lineBase}/oauth2/v2.1/token`,
    profileURL: `${lineBase}/v2/profile`,
  }, (accessToken, refreshToken, params, profile, done) => {
    done(null, { userId: profile.id, displayName: profile.displayName });
  }));
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user, done) => done(null, user));

  const app = express();
  app.disable('x-powered-by');
  app.use(session({
    secret: 'bench-only-session-secret',
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax' },
  }));
  app.use(passport.initialize());
  app.use(passport.session());
  app.get('/linelogin/login', passport.authenticate('line'));
  app.get('/linelogin/callback', passport.authenticate('line', { successRedirect: '/', failureRedirect: '/linelogin/failed' }));
  app.get('/linelogin/failed', (req, res) => res.status(400).send('login failed'));

  // Everything else: a session or a login; the identity headers replace anything the client sent.
  app.use(async (req, res, next) => {
    for (const h of Object.keys(req.headers)) if (h.startsWith('x-linelogin-')) delete req.headers[h];
    if (!req.user) {
      if ((req.headers.accept || '').includes('text/html')) {
        return res.redirect(`/linelogin/login?next=${encodeURIComponent(req.originalUrl)}`);
      }
      return res.status(401).json({ error: 'unauthenticated' });
    }
    const now = Math.floor(Date.now() / 1000);
    req.headers['x-linelogin-user'] = req.user.userId;
    req.headers['x-linelogin-name'] = encodeURIComponent(req.user.displayName);
    req.headers['x-linelogin-assertion'] = await new SignJWT({ name: req.user.displayName })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
      .setIssuer(publicUrl).setAudience('my-app').setSubject(req.user.userId)
      .setIssuedAt(now).setExpirationTime(now + 300).setJti(crypto.randomUUID())
      .sign(privateKey);
    next();
  });
  app.use(createProxyMiddleware({ target: upstream, changeOrigin: false, xfwd: true }));

  app.listen(port, '127.0.0.1', () => console.log(`node gateway on ${publicUrl} -> ${upstream}`));
}

main();
