// A real OpenID Connect provider (panva's certified oidc-provider) for the tests and
// `make dev`: never a production identity provider.
//
//   node tools/oidc/provider.mjs CONFIG.json
//
// CONFIG.json (written by tests/support/oidc.py or `approvals dev`):
//   issuer     "http://127.0.0.1:PORT" (the port it listens on is taken from it)
//   audience   the resource (API) that JWT access tokens are issued for
//   jwks       {"keys": [private JWK, ...]}: the signing keys; the first signs. Rotation
//              is a restart with another key.
//   clients    [{client_id, client_secret, redirect_uris, access_token_ttl?}]
//   users      {"login": {"password": "...", "claims": {"sub": "...", ...}}}
//   access_token_ttl  seconds (default 300)
//   resources  optional {"https://other": {"ttl": seconds}}: further audiences
//
// The login page is a plain form (user name, password); consent is granted at once.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const issuer = new URL(config.issuer);
const users = config.users ?? {};
const accessTokenTTL = config.access_token_ttl ?? 300;
const resources = { [config.audience]: { ttl: accessTokenTTL }, ...(config.resources ?? {}) };
const signingAlg = (jwk) => jwk.alg ?? (jwk.kty === "EC" ? "ES256" : "RS256");

const clientTTL = Object.fromEntries(
  config.clients.map((c) => [c.client_id, c.access_token_ttl]),
);

function userByAccountId(accountId) {
  return Object.values(users).find((u) => u.claims.sub === accountId);
}

const provider = new Provider(config.issuer, {
  clients: config.clients.map(({ access_token_ttl, ...c }) => ({
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    id_token_signed_response_alg: signingAlg(config.jwks.keys[0]),
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    ...c,
  })),
  jwks: config.jwks,
  cookies: { keys: [config.cookie_key ?? "test-op-cookie-key-0123456789abcdef"] },
  claims: {
    openid: ["sub"],
    profile: ["name", "preferred_username"],
    email: ["email", "email_verified"],
  },
  async findAccount(ctx, accountId) {
    const user = userByAccountId(accountId);
    if (!user) return undefined;
    return { accountId, claims: async () => ({ ...user.claims }) };
  },
  // The claims an API needs to know who calls (the access token has only sub otherwise).
  async extraTokenClaims(ctx, token) {
    const user = userByAccountId(token.accountId);
    if (!user) return undefined;
    const { sub, ...rest } = user.claims;
    return rest;
  },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.audience,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator, client) {
        const resource = resources[indicator];
        if (!resource) throw new Error(`unknown resource ${indicator}`);
        return {
          scope: "approvals",
          audience: indicator,
          accessTokenTTL: clientTTL[client.clientId] ?? resource.ttl ?? accessTokenTTL,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: signingAlg(config.jwks.keys[0]) } },
        };
      },
    },
  },
  enabledJWA: { idTokenSigningAlgValues: ["RS256", "ES256", "PS256"] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL,
    IdToken: 3600,
    Session: 3600,
    Interaction: 600,
    Grant: 3600,
  },
});

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Test identity provider: sign in</title></head><body>
<h1>Test identity provider</h1>
${error ? `<p role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login">
<p><label for="login">User name</label> <input id="login" name="login" autocomplete="username" required></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Sign in</button></p>
</form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

async function grantConsent(details) {
  const { prompt, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(" "));
  }
  return { consent: { grantId: await grant.save() } };
}

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([\w-]+)(\/login)?$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (details.prompt.name === "consent") {
    result = await grantConsent(details);
  } else if (ctx.method === "POST" && match[2]) {
    const form = await readForm(ctx.req);
    const user = users[form.get("login") ?? ""];
    if (!user || user.password !== form.get("password")) {
      ctx.status = 200;
      ctx.type = "html";
      ctx.body = loginPage(details.uid, "Wrong user name or password.");
      return undefined;
    }
    result = { login: { accountId: user.claims.sub } };
  } else {
    ctx.type = "html";
    ctx.body = loginPage(details.uid);
    return undefined;
  }
  const to = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  });
  ctx.status = 303;
  ctx.redirect(to);
  return undefined;
});

const server = provider.listen(Number(issuer.port), issuer.hostname, () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
