// The comparison peer for `linelogin loadtest`: a small Express app that logs in with LINE
// through passport-line-auth, pointed at the linelogin emulator. It exposes the routes the
// runner drives: GET /login, GET /callback, GET /api/me.
//
// Environment: PORT (default 8090), LINE_BASE (the emulator, default http://127.0.0.1:9000),
// CHANNEL_ID, CHANNEL_SECRET (default: the emulator's demo channel).
'use strict';

const express = require('express');
const session = require('express-session');
const passport = require('passport');
const LineStrategy = require('passport-line-auth');

const port = Number(process.env.PORT || 8090);
const lineBase = (process.env.LINE_BASE || 'http://127.0.0.1:9000').replace(/\/$/, '');
const channelID = process.env.CHANNEL_ID || '1234567890';
const channelSecret = process.env.CHANNEL_SECRET || '0123456789abcdef0123456789abcdef';

passport.use(new LineStrategy({
  channelID,
  channelSecret,
  callbackURL: `http://127.0.0.1:${port}/callback`,
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
app.use(session({
  secret: 'bench-only-session-secret',
  resave: false,
  saveUninitialized: false,
  cookie: { httpOnly: true, sameSite: 'lax' },
}));
app.use(passport.initialize());
app.use(passport.session());

app.get('/login', passport.authenticate('line'));
app.get('/callback', passport.authenticate('line', { successRedirect: '/me', failureRedirect: '/failed' }));
app.get('/me', (req, res) => res.send(req.user ? `Hello ${req.user.displayName}` : 'not logged in'));
app.get('/api/me', (req, res) => {
  if (!req.user) return res.status(401).json({ error: 'not logged in' });
  res.json(req.user);
});
app.get('/failed', (req, res) => res.status(400).send('login failed'));

app.listen(port, '127.0.0.1', () => console.log(`express + passport-line-auth on http://127.0.0.1:${port}`));
