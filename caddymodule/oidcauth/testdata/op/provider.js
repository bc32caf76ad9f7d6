// An OpenID provider for the oidcauth tests, built on the certified
// oidc-provider package and listening on loopback.
//
// Usage: node provider.js <config.json>
//
// The configuration file holds:
//   clients:  client metadata as oidc-provider takes it
//   accounts: login name -> claims; claims whose name starts with "ui_"
//             are served by the userinfo endpoint only, the others in the
//             ID token too
//   jwks:     the private signing keys (a JWK set)
//   port:     the TCP port, 0 for any free one
//   control_key: the secret of the test-control endpoints below
//
// Once listening it prints "LISTENING <issuer>" on a line of its own.
//
// Test control, each request with "Authorization: Bearer <control_key>"
// (anything else gets 403), so that nothing else on the machine can steer
// it:
//   POST /__test/jwks with a JWK set replaces the signing keys (a key
//     rotation) without losing sessions, grants or codes.
//   POST /__test/forge-next-id-token with {"claims": {...}, "unsigned":
//     bool} makes the token endpoint rewrite the next ID token it issues:
//     the claims given replace the genuine ones, and the token is signed
//     again with the provider's own key under the same kid, or, with
//     unsigned, sent with "alg": "none" and no signature. This is the
//     provider gone wrong (or an attacker in the middle) that a relying
//     party must refuse.
//   POST /__test/hold-next-redirect makes the next redirect back to a
//     client's redirect URI (the authorization response, code and state)
//     stop at a page of the provider instead, so that a test can choose
//     which callback the browser makes.
//   GET /__test/record answers {"forged_id_tokens": [...],
//     "held_redirects": [...], "grant_errors": [...]}: what the two above
//     did so far, and why the token endpoint refused each grant it
//     refused ("invalid_grant: <detail>").

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

function claimsFor(accountId, use) {
  const out = { sub: accountId };
  for (const [name, value] of Object.entries(config.accounts[accountId])) {
    if (use === 'userinfo' || !name.startsWith('ui_')) out[name] = value;
  }
  return out;
}

function makeProvider(issuer, jwks) {
  const op = new Provider(issuer, {
    clients: config.clients,
    jwks,
    cookies: { keys: ['oidcauth-test-cookie-key'] },
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub', 'groups', 'ui_groups'],
      email: ['email', 'email_verified', 'ui_email'],
      profile: ['name'],
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    pkce: { required: () => true },
    async findAccount(ctx, id) {
      if (!Object.hasOwn(config.accounts, id)) return undefined;
      return { accountId: id, async claims(use) { return claimsFor(id, use); } };
    },
  });
  op.on('server_error', (ctx, err) => console.error('server_error', err));
  op.on('grant.error', (ctx, err) => {
    record.grant_errors.push(`${err.error}: ${err.error_detail || err.cause?.message || err.error_description}`);
  });
  return op;
}

let current;
let handler;
let signingKeys = config.jwks; // the private keys the provider signs with now

function install(op, jwks) {
  current = op;
  handler = op.callback();
  signingKeys = jwks;
}

// What the test asked for and what was done.
let forgery = null; // how to rewrite the next ID token, or null
let holdNext = false; // whether to hold the next redirect to a client
const record = { forged_id_tokens: [], held_redirects: [], grant_errors: [] };

const controlKey = Buffer.from(String(config.control_key || ''));

// authorized reports whether req carries the control key.
function authorized(req) {
  const want = Buffer.concat([Buffer.from('Bearer '), controlKey]);
  const got = Buffer.from(String(req.headers.authorization || ''));
  return controlKey.length >= 16 && got.length === want.length && crypto.timingSafeEqual(got, want);
}

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
const unb64 = (seg) => JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));

// signJWS signs input (the JWS signing input) with the JWK jwk for alg.
function signJWS(alg, jwk, input) {
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(input);
  const hash = `sha${alg.slice(2)}`;
  switch (alg.slice(0, 2)) {
    case 'RS': return crypto.sign(hash, data, key);
    case 'PS': return crypto.sign(hash, data, {
      key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
    });
    case 'ES': return crypto.sign(hash, data, { key, dsaEncoding: 'ieee-p1363' });
    default: return crypto.sign(null, data, key); // EdDSA
  }
}

// forge rewrites the compact ID token idToken as f says.
function forge(idToken, f) {
  const [h, p] = idToken.split('.');
  const header = unb64(h);
  const payload = { ...unb64(p), ...f.claims };
  if (f.unsigned) {
    return `${b64({ alg: 'none', typ: header.typ, kid: header.kid })}.${b64(payload)}.`;
  }
  const jwk = signingKeys.keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`no signing key has the ID token's kid ${header.kid}`);
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signJWS(header.alg, jwk, input).toString('base64url')}`;
}

// forgeTokenResponse makes res, a token endpoint response, carry a forged
// ID token when one is asked for.
function forgeTokenResponse(res) {
  const end = res.end.bind(res);
  res.end = (chunk, ...rest) => {
    if (forgery && res.statusCode === 200 && chunk) {
      const body = JSON.parse(chunk.toString());
      if (body.id_token) {
        body.id_token = forge(body.id_token, forgery);
        forgery = null;
        record.forged_id_tokens.push(body.id_token);
        chunk = JSON.stringify(body);
        res.setHeader('Content-Length', Buffer.byteLength(chunk));
      }
    }
    return end(chunk, ...rest);
  };
}

// toClient reports whether location is a redirect to a client's
// redirect URI.
function toClient(location) {
  return config.clients.some((c) => (c.redirect_uris || []).some((u) => location.startsWith(`${u}?`)));
}

const escapeHTML = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// holdRedirect answers res, when it redirects to a client, with a page of
// the provider instead that shows where it would have gone.
function holdRedirect(res) {
  const setHeader = res.setHeader.bind(res);
  const end = res.end.bind(res);
  let held = null;
  res.setHeader = (name, value) => {
    if (holdNext && name.toLowerCase() === 'location' && toClient(String(value))) {
      holdNext = false;
      held = String(value);
      record.held_redirects.push(held);
      return res;
    }
    return setHeader(name, value);
  };
  res.end = (chunk, ...rest) => {
    if (held === null) return end(chunk, ...rest);
    const page = `<!doctype html><title>Redirect held</title><p>The redirect to the client was held:</p>\n<p id="held">${escapeHTML(held)}</p>\n`;
    res.statusCode = 200;
    setHeader('Content-Type', 'text/html; charset=utf-8');
    setHeader('Content-Length', Buffer.byteLength(page));
    return end(page);
  };
}

// control serves the /__test/ endpoints.
function control(req, res) {
  if (!authorized(req)) {
    res.writeHead(403).end('the control key is missing or wrong');
    return;
  }
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    try {
      switch (`${req.method} ${req.url}`) {
        case 'POST /__test/jwks': {
          const jwks = JSON.parse(body);
          install(makeProvider(current.issuer, jwks), jwks);
          break;
        }
        case 'POST /__test/forge-next-id-token': {
          const f = JSON.parse(body);
          forgery = { claims: f.claims || {}, unsigned: Boolean(f.unsigned) };
          break;
        }
        case 'POST /__test/hold-next-redirect':
          holdNext = true;
          break;
        case 'GET /__test/record':
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(record));
          return;
        default:
          res.writeHead(404).end();
          return;
      }
      res.writeHead(204).end();
    } catch (err) {
      res.writeHead(400).end(String(err));
    }
  });
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__test/')) {
    control(req, res);
    return;
  }
  // The issuer has no path, so the token endpoint is /token.
  if (forgery && req.method === 'POST' && req.url.split('?')[0] === '/token') {
    forgeTokenResponse(res);
  }
  if (holdNext) holdRedirect(res);
  handler(req, res);
});

server.listen(config.port || 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  install(makeProvider(issuer, config.jwks), config.jwks);
  console.log(`LISTENING ${issuer}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
