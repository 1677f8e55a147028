// A real OpenID Provider for Logbook's single sign-on browser tests: the certified
// `oidc-provider` package, listening on 127.0.0.1 only, with one client (Logbook) and its
// development login form (any login name is accepted and becomes the account's email).
//
// The tests need a provider that misbehaves on request, so `OIDC_MISBEHAVE` selects what the
// token endpoint's ID token carries; the flow itself (discovery, authorization, PKCE, the code
// exchange, JWKS) is always the package's own:
//   (unset)            a correct ID token
//   email_unverified   the account's claims say `email_verified: false` (a legitimate provider
//                      answer, through `findAccount`)
//   wrong_audience     the provider's ID token re-signed with the provider's own key for
//                      another client's audience
//   expired            the provider's ID token re-signed with the provider's own key, `exp` an
//                      hour in the past
//   bad_signature      the provider's ID token signed with a key that is not the provider's,
//                      under the provider's own key id
//   rotated_keys       the provider signs with a new key that its first JWKS answer does not
//                      list yet (every later answer does): a key rotation seen by a client that
//                      fetched the keys just before it
//
// Environment: OIDC_PORT (0 picks one), OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI.
// Prints `listening <issuer>` on standard output once it accepts connections, and
// `redirect <url>` for each answer it sends the browser back to Logbook with.

import http from 'node:http';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const clientId = process.env.OIDC_CLIENT_ID ?? 'logbook';
const clientSecret = process.env.OIDC_CLIENT_SECRET ?? 'logbook-test-secret';
const redirectUri = process.env.OIDC_REDIRECT_URI;
const misbehave = process.env.OIDC_MISBEHAVE ?? '';
if (!redirectUri) {
  console.error('OIDC_REDIRECT_URI is required');
  process.exit(2);
}

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
const { privateKey: newKey } = await jose.generateKeyPair('RS256', { extractable: true });
const newJwk = { ...(await jose.exportJWK(newKey)), kid: 'test-key-2', alg: 'RS256', use: 'sig' };
const { privateKey: foreignKey } = await jose.generateKeyPair('RS256', { extractable: true });

// Bind first so the issuer carries the real port.
const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.env.OIDC_PORT ?? 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // The first key signs; with rotated_keys that is the new one.
  jwks: { keys: misbehave === 'rotated_keys' ? [newJwk, signingJwk] : [signingJwk] },
  cookies: { keys: ['logbook-test-cookie-key'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  // Put the scopes' claims in the ID token, as Google, Okta and Entra ID do for `email`.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // The test's person consents to Logbook once they sign in, so the flow has no consent screen.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, email_verified: misbehave !== 'email_unverified' };
      },
    };
  },
});

async function tamper(idToken) {
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  if (misbehave === 'wrong_audience') {
    claims.aud = 'another-client';
  } else if (misbehave === 'expired') {
    claims.iat = now - 7200;
    claims.exp = now - 3600;
  }
  const key = misbehave === 'bad_signature' ? foreignKey : privateKey;
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid, typ: 'JWT' }).sign(key);
}

if (['wrong_audience', 'expired', 'bad_signature'].includes(misbehave)) {
  // Koa middleware around the provider's own token endpoint: its answer is rewritten after the
  // provider made it, which is what a compromised or misconfigured provider would send.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && ctx.body && typeof ctx.body.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: await tamper(ctx.body.id_token) };
    }
  });
}

if (misbehave === 'rotated_keys') {
  let jwksAnswers = 0;
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/jwks') {
      jwksAnswers += 1;
      if (jwksAnswers === 1) {
        ctx.body = { keys: ctx.body.keys.filter((key) => key.kid !== newJwk.kid) };
      }
      console.log(`jwks ${jwksAnswers}`);
    }
  });
}

// Every redirect back to Logbook is printed, so a test can replay an answer (`state` and code).
provider.use(async (ctx, next) => {
  await next();
  const location = ctx.response.get('location');
  if (location && location.startsWith(redirectUri)) {
    console.log(`redirect ${location}`);
  }
});

server.on('request', provider.callback());
console.log(`listening ${issuer}`);
