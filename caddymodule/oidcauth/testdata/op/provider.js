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
//
// Once listening it prints "LISTENING <issuer>" on a line of its own.
// POST /__test/jwks with a JWK set replaces the signing keys (a key
// rotation) without losing sessions, grants or codes.

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
  return op;
}

let current;
let handler;

function install(op) {
  current = op;
  handler = op.callback();
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/__test/jwks') {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      try {
        install(makeProvider(current.issuer, JSON.parse(body)));
        res.writeHead(204).end();
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
    return;
  }
  handler(req, res);
});

server.listen(config.port || 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  install(makeProvider(issuer, config.jwks));
  console.log(`LISTENING ${issuer}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
