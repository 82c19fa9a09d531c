import t from 'tap';
import { ConfigError, DEFAULT_LIMITS, loadConfig, type AuthConfig, type Config, type ReadTextFile } from '../../src/config.ts';
import { generateTestKeyPair } from '../helpers/tokens.ts';

const SECRET_32 = 'a'.repeat(32);
const SECRET_48 = 'b'.repeat(48);
const SECRET_64 = 'c'.repeat(64);
const rsa = generateTestKeyPair('rsa');
const ec256 = generateTestKeyPair('ec-p256');
const ec384 = generateTestKeyPair('ec-p384');
const ec521 = generateTestKeyPair('ec-p521');
const ed25519 = generateTestKeyPair('ed25519');
const rsaPss = generateTestKeyPair('rsa-pss');

// No file exists unless a test puts it here.
function files(contents: Record<string, string> = {}): ReadTextFile {
  return (path) => {
    const text = contents[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
    return text;
  };
}

function load(env: Record<string, string | undefined>, readFile: ReadTextFile = files()): Config {
  return loadConfig(env, readFile);
}

function algorithmsOf(auth: AuthConfig): readonly string[] {
  return auth.kind === 'dev' ? [] : auth.algorithms;
}

t.test('with an empty environment: the contract defaults and dev mode', async (t) => {
  const config = load({});
  t.same(config, {
    databaseUrl: null,
    host: '127.0.0.1',
    port: 8080,
    auth: { kind: 'dev' },
    token: { roleClaim: 'role' },
    retentionMs: 24 * 3_600_000,
    shutdownTimeoutMs: 10_000,
    logLevel: 'info',
    includeExample: true,
    limits: DEFAULT_LIMITS,
  });
  t.same(DEFAULT_LIMITS, {
    maxFrameBytes: 65_536,
    maxBackpressureBytes: 4_194_304,
    maxMessagesPerSecond: 100,
    maxSubscriptions: 100,
    maxConnections: 50_000,
    maxConnectionsPerSubject: null,
    maxFilterDepth: 16,
    maxFilterNodes: 256,
    allowedOrigins: null,
  });
});

t.test('empty values count as unset', async (t) => {
  const config = load({ PORT: '', HOST: '', LOG_LEVEL: '', RELAY_RETENTION: '', DATABASE_URL: '', JWT_ROLE_CLAIM: '' });
  t.equal(config.port, 8080);
  t.equal(config.host, '127.0.0.1');
  t.equal(config.logLevel, 'info');
  t.equal(config.retentionMs, 86_400_000);
  t.equal(config.databaseUrl, null);
  t.equal(config.token.roleClaim, 'role');
});

t.test('good values are taken', async (t) => {
  const cases: Array<[string, Record<string, string>, (c: Config) => unknown, unknown]> = [
    ['postgres URL', { DATABASE_URL: 'postgres://u:p@db:5432/app' }, (c) => c.databaseUrl, 'postgres://u:p@db:5432/app'],
    ['postgresql URL', { DATABASE_URL: 'postgresql://localhost/app' }, (c) => c.databaseUrl, 'postgresql://localhost/app'],
    ['IPv4 host', { HOST: '0.0.0.0' }, (c) => c.host, '0.0.0.0'],
    ['IPv6 host', { HOST: '::1' }, (c) => c.host, '::1'],
    ['host name', { HOST: 'relay-1.internal' }, (c) => c.host, 'relay-1.internal'],
    ['port 0 (any free port)', { PORT: '0' }, (c) => c.port, 0],
    ['port 65535', { PORT: '65535' }, (c) => c.port, 65535],
    ['issuer', { JWT_ISSUER: 'https://id.example' }, (c) => c.token.issuer, 'https://id.example'],
    ['one audience', { JWT_AUDIENCE: 'relay' }, (c) => c.token.audience, ['relay']],
    ['audience list', { JWT_AUDIENCE: 'relay, api ,web' }, (c) => c.token.audience, ['relay', 'api', 'web']],
    ['nested role claim', { JWT_ROLE_CLAIM: 'app.role' }, (c) => c.token.roleClaim, 'app.role'],
    ['retention 90s', { RELAY_RETENTION: '90s' }, (c) => c.retentionMs, 90_000],
    ['retention 30m', { RELAY_RETENTION: '30m' }, (c) => c.retentionMs, 1_800_000],
    ['retention 24h', { RELAY_RETENTION: '24h' }, (c) => c.retentionMs, 86_400_000],
    ['retention 7d', { RELAY_RETENTION: '7d' }, (c) => c.retentionMs, 604_800_000],
    ['retention at its maximum, 3650d', { RELAY_RETENTION: '3650d' }, (c) => c.retentionMs, 315_360_000_000],
    ['shutdown timeout 3s', { RELAY_SHUTDOWN_TIMEOUT: '3s' }, (c) => c.shutdownTimeoutMs, 3_000],
    ['shutdown timeout 2m', { RELAY_SHUTDOWN_TIMEOUT: '2m' }, (c) => c.shutdownTimeoutMs, 120_000],
    ['log level silent', { LOG_LEVEL: 'silent' }, (c) => c.logLevel, 'silent'],
    ['log level trace', { LOG_LEVEL: 'trace' }, (c) => c.logLevel, 'trace'],
    ['no example', { RELAY_EXAMPLE: 'false' }, (c) => c.includeExample, false],
    ['example', { RELAY_EXAMPLE: 'true' }, (c) => c.includeExample, true],
    ['frame size in bytes', { RELAY_MAX_FRAME_SIZE: '2048' }, (c) => c.limits.maxFrameBytes, 2048],
    ['frame size in KiB', { RELAY_MAX_FRAME_SIZE: '128KiB' }, (c) => c.limits.maxFrameBytes, 131_072],
    ['backpressure in MiB', { RELAY_MAX_BACKPRESSURE: '16MiB' }, (c) => c.limits.maxBackpressureBytes, 16 * 1024 * 1024],
    ['messages per second', { RELAY_MAX_MESSAGES_PER_SECOND: '20' }, (c) => c.limits.maxMessagesPerSecond, 20],
    ['subscriptions', { RELAY_MAX_SUBSCRIPTIONS: '3' }, (c) => c.limits.maxSubscriptions, 3],
    ['connections', { RELAY_MAX_CONNECTIONS: '1' }, (c) => c.limits.maxConnections, 1],
    ['connections per subject', { RELAY_MAX_CONNECTIONS_PER_SUBJECT: '5' }, (c) => c.limits.maxConnectionsPerSubject, 5],
    ['no limit per subject when unset', {}, (c) => c.limits.maxConnectionsPerSubject, null],
    ['filter depth', { RELAY_MAX_FILTER_DEPTH: '4' }, (c) => c.limits.maxFilterDepth, 4],
    ['filter nodes', { RELAY_MAX_FILTER_NODES: '1000' }, (c) => c.limits.maxFilterNodes, 1000],
    [
      'origins, as browsers send them',
      { RELAY_ALLOWED_ORIGINS: 'https://App.Example, http://localhost:3000/,https://app.example:443' },
      (c) => c.limits.allowedOrigins,
      ['https://app.example', 'http://localhost:3000'],
    ],
    ['JWKS cooldown', { JWT_JWKS_URL: 'https://id.example/jwks', JWT_JWKS_COOLDOWN: '5m' }, (c) => c.auth.kind === 'jwks' && c.auth.refetchCooldownMs, 300_000],
  ];
  for (const [name, env, pick, expected] of cases) t.same(pick(load(env)), expected, name);
});

t.test('each bad value stops start-up with one line naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL', /must be a postgres:\/\/ or postgresql:\/\/ URL/],
    [{ DATABASE_URL: 'mysql://u:p@db/app' }, 'DATABASE_URL', /got a mysql:\/\/ URL/],
    [{ HOST: 'bad host' }, 'HOST', /must be an IP address or a host name, got "bad host"/],
    [{ HOST: '-leading-dash' }, 'HOST', /host name/],
    [{ PORT: 'abc' }, 'PORT', /^PORT: must be an integer from 0 to 65535, got "abc"$/],
    [{ PORT: '65536' }, 'PORT', /got "65536"/],
    [{ PORT: '-1' }, 'PORT', /got "-1"/],
    [{ PORT: '80.5' }, 'PORT', /got "80.5"/],
    [{ PORT: ' 80' }, 'PORT', /got " 80"/],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET', /must be at least 32 bytes \(HS256 needs 256 bits\), got 5$/],
    [{ JWT_SECRET: 'a'.repeat(31) }, 'JWT_SECRET', /got 31$/],
    [{ JWT_JWKS_URL: 'ftp://keys.example/jwks' }, 'JWT_JWKS_URL', /must be an http:\/\/ or https:\/\/ URL, got "ftp:/],
    [{ JWT_JWKS_URL: 'keys.example' }, 'JWT_JWKS_URL', /http/],
    [{ JWT_SECRET: SECRET_32, JWT_ALGORITHMS: 'HS257' }, 'JWT_ALGORITHMS', /"HS257" is not a supported algorithm/],
    [{ JWT_SECRET: SECRET_32, JWT_ALGORITHMS: 'none' }, 'JWT_ALGORITHMS', /"none" is not a supported algorithm/],
    [{ JWT_SECRET: SECRET_32, JWT_ALGORITHMS: 'HS256,,HS384' }, 'JWT_ALGORITHMS', /without empty items/],
    [{ JWT_SECRET: SECRET_32, JWT_ALGORITHMS: 'RS256' }, 'JWT_ALGORITHMS', /RS256 does not fit a JWT_SECRET/],
    [{ JWT_SECRET: SECRET_32, JWT_ALGORITHMS: 'HS384' }, 'JWT_ALGORITHMS', /HS384 does not fit a JWT_SECRET of 32 bytes.*HS384 needs 48/],
    [{ JWT_SECRET: SECRET_48, JWT_ALGORITHMS: 'HS512' }, 'JWT_ALGORITHMS', /HS512 does not fit .*usable: HS256, HS384$/],
    [{ JWT_PUBLIC_KEY: rsa.publicKeyPem, JWT_ALGORITHMS: 'HS256' }, 'JWT_ALGORITHMS', /HS256 does not fit this rsa public key/],
    [{ JWT_PUBLIC_KEY: rsa.publicKeyPem, JWT_ALGORITHMS: 'ES256' }, 'JWT_ALGORITHMS', /ES256 does not fit/],
    [{ JWT_PUBLIC_KEY: ec256.publicKeyPem, JWT_ALGORITHMS: 'ES384' }, 'JWT_ALGORITHMS', /ES384 does not fit this ec public key; usable: ES256$/],
    [{ JWT_PUBLIC_KEY: ed25519.publicKeyPem, JWT_ALGORITHMS: 'RS256' }, 'JWT_ALGORITHMS', /usable: EdDSA, Ed25519$/],
    [{ JWT_PUBLIC_KEY: rsaPss.publicKeyPem, JWT_ALGORITHMS: 'RS256' }, 'JWT_ALGORITHMS', /usable: PS256$/],
    [{ JWT_JWKS_URL: 'https://id.example/jwks', JWT_ALGORITHMS: 'HS256' }, 'JWT_ALGORITHMS', /asymmetric only/],
    [{ JWT_ALGORITHMS: 'HS256' }, 'JWT_ALGORITHMS', /needs one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL; dev mode/],
    [{ JWT_AUDIENCE: 'a,,b' }, 'JWT_AUDIENCE', /without empty items, got "a,,b"/],
    [{ JWT_ROLE_CLAIM: 'app..role' }, 'JWT_ROLE_CLAIM', /must be a dotted claim path/],
    [{ JWT_ROLE_CLAIM: '.role' }, 'JWT_ROLE_CLAIM', /got ".role"/],
    [{ JWT_ROLE_CLAIM: 'role.' }, 'JWT_ROLE_CLAIM', /got "role."/],
    [{ JWT_ROLE_CLAIM: ' ' }, 'JWT_ROLE_CLAIM', /got " "/],
    [{ JWT_ROLE_CLAIM: 'app. role' }, 'JWT_ROLE_CLAIM', /must be a dotted claim path/],
    [{ JWT_ISSUER: ' ' }, 'JWT_ISSUER', /must not begin or end with whitespace, got " "/],
    [{ JWT_ISSUER: 'https://id.example ' }, 'JWT_ISSUER', /must not begin or end with whitespace/],
    [{ RELAY_RETENTION: '24' }, 'RELAY_RETENTION', /must be a duration like 90s, 30m, 24h or 7d, got "24"/],
    [{ RELAY_RETENTION: '1w' }, 'RELAY_RETENTION', /got "1w"/],
    [{ RELAY_RETENTION: '1.5h' }, 'RELAY_RETENTION', /got "1.5h"/],
    [{ RELAY_RETENTION: '-1h' }, 'RELAY_RETENTION', /got "-1h"/],
    [{ RELAY_RETENTION: '0s' }, 'RELAY_RETENTION', /must be longer than 0/],
    [{ RELAY_RETENTION: '99999999999999999d' }, 'RELAY_RETENTION', /too long \(at most 3650d\)/],
    // Accepted before, then every prune failed with "timestamp out of range" (now() minus it).
    [{ RELAY_RETENTION: '100000000d' }, 'RELAY_RETENTION', /^RELAY_RETENTION: is too long \(at most 3650d\), got "100000000d"$/],
    [{ RELAY_RETENTION: '3651d' }, 'RELAY_RETENTION', /too long \(at most 3650d\)/],
    [{ RELAY_RETENTION: '87601h' }, 'RELAY_RETENTION', /too long \(at most 3650d\)/],
    [{ RELAY_SHUTDOWN_TIMEOUT: '10' }, 'RELAY_SHUTDOWN_TIMEOUT', /must be a duration like 90s, 30m, 24h or 7d, got "10"/],
    [{ RELAY_SHUTDOWN_TIMEOUT: '0s' }, 'RELAY_SHUTDOWN_TIMEOUT', /must be longer than 0/],
    // setTimeout fires at once for a delay over 2^31-1 ms (about 24.8 days).
    [{ RELAY_SHUTDOWN_TIMEOUT: '25d' }, 'RELAY_SHUTDOWN_TIMEOUT', /too long \(at most about 24.8 days\)/],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL', /must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"/],
    [{ LOG_LEVEL: 'INFO' }, 'LOG_LEVEL', /got "INFO"/],
    [{ RELAY_EXAMPLE: 'yes' }, 'RELAY_EXAMPLE', /must be true or false, got "yes"/],
    [{ RELAY_EXAMPLE: 'TRUE' }, 'RELAY_EXAMPLE', /got "TRUE"/],
    [{ JWT_JWKS_URL: 'https://id.example/jwks', JWT_JWKS_COOLDOWN: '30' }, 'JWT_JWKS_COOLDOWN', /must be a duration like 90s/],
    // Without a JWKS it is unused, but checked all the same: before, any value passed.
    [{ JWT_JWKS_COOLDOWN: 'abc' }, 'JWT_JWKS_COOLDOWN', /^JWT_JWKS_COOLDOWN: must be a duration like 90s, 30m, 24h or 7d, got "abc"$/],
    [{ JWT_SECRET: SECRET_32, JWT_JWKS_COOLDOWN: '0s' }, 'JWT_JWKS_COOLDOWN', /must be longer than 0/],
    [{ JWT_PUBLIC_KEY: rsa.publicKeyPem, JWT_JWKS_COOLDOWN: '30' }, 'JWT_JWKS_COOLDOWN', /must be a duration/],
    [{ RELAY_MAX_BACKPRESSURE: '4GiB' }, 'RELAY_MAX_BACKPRESSURE', /must be a size from 64KiB to 1024MiB \(bytes, or with KiB or MiB\), got "4GiB"/],
    [{ RELAY_MAX_BACKPRESSURE: '1KiB' }, 'RELAY_MAX_BACKPRESSURE', /from 64KiB/],
    [{ RELAY_MAX_FRAME_SIZE: '10' }, 'RELAY_MAX_FRAME_SIZE', /must be a size from 1KiB to 4MiB/],
    [{ RELAY_MAX_FRAME_SIZE: '8MiB' }, 'RELAY_MAX_FRAME_SIZE', /to 4MiB .*got "8MiB"/],
    [{ RELAY_MAX_FRAME_SIZE: '64kb' }, 'RELAY_MAX_FRAME_SIZE', /got "64kb"/],
    [{ RELAY_MAX_MESSAGES_PER_SECOND: '0' }, 'RELAY_MAX_MESSAGES_PER_SECOND', /must be an integer from 1 to 1000000, got "0"/],
    [{ RELAY_MAX_MESSAGES_PER_SECOND: '1.5' }, 'RELAY_MAX_MESSAGES_PER_SECOND', /got "1.5"/],
    [{ RELAY_MAX_SUBSCRIPTIONS: '-1' }, 'RELAY_MAX_SUBSCRIPTIONS', /from 1 to 100000/],
    [{ RELAY_MAX_CONNECTIONS: 'lots' }, 'RELAY_MAX_CONNECTIONS', /got "lots"/],
    [{ RELAY_MAX_CONNECTIONS_PER_SUBJECT: '0' }, 'RELAY_MAX_CONNECTIONS_PER_SUBJECT', /from 1 to 10000000, got "0"/],
    [{ RELAY_MAX_FILTER_DEPTH: '65' }, 'RELAY_MAX_FILTER_DEPTH', /from 1 to 64, got "65"/],
    [{ RELAY_MAX_FILTER_NODES: '0' }, 'RELAY_MAX_FILTER_NODES', /from 1 to 100000/],
    [{ RELAY_ALLOWED_ORIGINS: 'app.example' }, 'RELAY_ALLOWED_ORIGINS', /must be a comma list of origins like https:\/\/app.example, got "app.example"/],
    [{ RELAY_ALLOWED_ORIGINS: 'https://app.example/path' }, 'RELAY_ALLOWED_ORIGINS', /got "https:\/\/app.example\/path"/],
    [{ RELAY_ALLOWED_ORIGINS: 'https://a.example,,https://b.example' }, 'RELAY_ALLOWED_ORIGINS', /got ""/],
    [{ RELAY_ALLOWED_ORIGINS: 'ftp://files.example' }, 'RELAY_ALLOWED_ORIGINS', /got "ftp:/],
    [{ RELAY_ALLOWED_ORIGINS: '*' }, 'RELAY_ALLOWED_ORIGINS', /got "\*"/],
  ];
  for (const [env, variable, pattern] of cases) {
    const label = `${JSON.stringify(env).slice(0, 80)} -> ${variable}`;
    t.throws(() => load(env), ConfigError, label);
    try {
      load(env);
    } catch (error) {
      const configError = error as ConfigError;
      t.equal(configError.variable, variable, label);
      t.ok(configError.message.startsWith(`${variable}: `), `${label}: message names the variable`);
      t.match(configError.message, pattern, label);
      t.notMatch(configError.message, /\n/, `${label}: one line`);
    }
  }
});

t.test('a database URL that does not parse is not echoed (it may hold a password)', async (t) => {
  const error = t.throws(() => load({ DATABASE_URL: 'postgres//user:hunter2@db' })) as ConfigError;
  t.notMatch(error.message, /hunter2/);
});

t.test('a JWKS URL with credentials is refused at start-up, and they are never echoed', async (t) => {
  // Node's fetch refuses such a URL: the relay used to start, then answer every token with 401.
  const cases: Array<[string, RegExp]> = [
    ['http://admin:s3cretpw@127.0.0.1:18601/jwks', /must not hold a user name or password/],
    ['https://admin:s3cretpw@id.example/jwks', /must not hold a user name or password/],
    ['https://:s3cretpw@id.example/jwks', /must not hold a user name or password/],
    ['https://admin@id.example/jwks', /must not hold a user name or password/],
    ['ftp://admin:s3cretpw@keys.example/jwks', /must be an http:\/\/ or https:\/\/ URL, got a value not shown/],
    // No scheme: URL reads `admin:` as the scheme, and the rest as a path.
    ['admin:s3cretpw@127.0.0.1/jwks', /must be an http:\/\/ or https:\/\/ URL, got a value not shown/],
    ['admin:s3cretpw@ keys', /must be an http:\/\/ or https:\/\/ URL, got a value not shown/],
  ];
  for (const [url, pattern] of cases) {
    const error = t.throws(() => load({ JWT_JWKS_URL: url }), ConfigError, url) as ConfigError;
    t.equal(error.variable, 'JWT_JWKS_URL', `${url}: names the variable`);
    t.match(error.message, pattern, `${url}: says what is wrong`);
    t.notMatch(error.message, /s3cretpw|admin/, `${url}: neither the password nor the user name is shown`);
  }
});

t.test('a JWKS URL refused at start-up is shown with its query values blanked (they may hold an API key)', async (t) => {
  const cases: Array<[string, string]> = [
    ['ftp://keys.example/jwks?api_key=sk_live_0123456789', '"ftp://keys.example/jwks?api_key=[redacted]"'],
    ['keys.example/jwks?tenant=acme&sk_live_0123456789', '"keys.example/jwks?tenant=[redacted]&[redacted]"'],
  ];
  for (const [url, shown] of cases) {
    const error = t.throws(() => load({ JWT_JWKS_URL: url }), ConfigError, url) as ConfigError;
    t.equal(error.message, `JWT_JWKS_URL: must be an http:// or https:// URL, got ${shown}`, `${url}: says what is wrong, and where`);
    t.notMatch(error.message, /sk_live|acme/, `${url}: no query value is shown`);
  }
});

t.test('a secret is never echoed, only its length', async (t) => {
  const error = t.throws(() => load({ JWT_SECRET: 'hunter2-hunter2' })) as ConfigError;
  t.notMatch(error.message, /hunter2/);
});

t.test('a long value is cut short in the message', async (t) => {
  const error = t.throws(() => load({ LOG_LEVEL: 'x'.repeat(500) })) as ConfigError;
  t.ok(error.message.length < 200, `message is ${error.message.length} characters`);
});

t.test('at most one key source', async (t) => {
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ JWT_SECRET: SECRET_32, JWT_PUBLIC_KEY: rsa.publicKeyPem }, 'JWT_PUBLIC_KEY', /JWT_SECRET is also set; set only one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL/],
    [{ JWT_SECRET: SECRET_32, JWT_JWKS_URL: 'https://id.example/jwks' }, 'JWT_JWKS_URL', /JWT_SECRET is also set/],
    [{ JWT_PUBLIC_KEY: rsa.publicKeyPem, JWT_JWKS_URL: 'https://id.example/jwks' }, 'JWT_JWKS_URL', /JWT_PUBLIC_KEY is also set/],
    [{ JWT_SECRET: SECRET_32, JWT_PUBLIC_KEY: rsa.publicKeyPem, JWT_JWKS_URL: 'https://x/' }, 'JWT_PUBLIC_KEY', /JWT_SECRET is also set/],
    [{ JWT_SECRET: '', JWT_JWKS_URL: 'https://id.example/jwks' }, 'JWT_JWKS_URL', /JWT_SECRET is also set/],
  ];
  for (const [env, variable, pattern] of cases) {
    const error = t.throws(() => load(env), ConfigError) as ConfigError;
    t.equal(error.variable, variable);
    t.match(error.message, pattern);
  }
});

t.test('an empty key source is an error, not a silent dev mode', async (t) => {
  for (const variable of ['JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_JWKS_URL']) {
    const error = t.throws(() => load({ [variable]: '' }), ConfigError) as ConfigError;
    t.equal(error.message, `${variable}: is set but empty; unset it for dev mode`);
  }
});

t.test('JWT_SECRET: the HMAC algorithms its length allows', async (t) => {
  const cases: Array<[Record<string, string>, string[]]> = [
    [{ JWT_SECRET: SECRET_32 }, ['HS256']],
    [{ JWT_SECRET: SECRET_48 }, ['HS256', 'HS384']],
    [{ JWT_SECRET: SECRET_64 }, ['HS256', 'HS384', 'HS512']],
    [{ JWT_SECRET: SECRET_64, JWT_ALGORITHMS: 'HS512' }, ['HS512']],
    [{ JWT_SECRET: SECRET_64, JWT_ALGORITHMS: ' HS384 , HS256,HS384' }, ['HS384', 'HS256']],
    // Bytes, not characters: 16 two-byte characters are 32 bytes.
    [{ JWT_SECRET: 'é'.repeat(16) }, ['HS256']],
  ];
  for (const [env, algorithms] of cases) {
    const { auth } = load(env);
    t.equal(auth.kind, 'secret', JSON.stringify(env));
    t.same(algorithmsOf(auth), algorithms, JSON.stringify(env));
    t.equal(auth.kind === 'secret' && auth.secret, env.JWT_SECRET);
  }
});

t.test('JWT_PUBLIC_KEY: algorithms follow the key type, JWT_ALGORITHMS narrows them', async (t) => {
  const cases: Array<[string, Record<string, string>, string[]]> = [
    ['RSA', { JWT_PUBLIC_KEY: rsa.publicKeyPem }, ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']],
    ['RSA narrowed', { JWT_PUBLIC_KEY: rsa.publicKeyPem, JWT_ALGORITHMS: 'PS256,RS512' }, ['PS256', 'RS512']],
    ['RSA-PSS restricted to SHA-256', { JWT_PUBLIC_KEY: rsaPss.publicKeyPem }, ['PS256']],
    ['EC P-256', { JWT_PUBLIC_KEY: ec256.publicKeyPem }, ['ES256']],
    ['EC P-384', { JWT_PUBLIC_KEY: ec384.publicKeyPem }, ['ES384']],
    ['EC P-521', { JWT_PUBLIC_KEY: ec521.publicKeyPem }, ['ES512']],
    ['Ed25519', { JWT_PUBLIC_KEY: ed25519.publicKeyPem }, ['EdDSA', 'Ed25519']],
    ['Ed25519 narrowed', { JWT_PUBLIC_KEY: ed25519.publicKeyPem, JWT_ALGORITHMS: 'EdDSA' }, ['EdDSA']],
    ['PEM with leading blank line', { JWT_PUBLIC_KEY: `\n${ec256.publicKeyPem}` }, ['ES256']],
  ];
  for (const [name, env, algorithms] of cases) {
    const { auth } = load(env);
    t.equal(auth.kind, 'public-key', name);
    t.same(algorithmsOf(auth), algorithms, name);
  }
});

t.test('JWT_PUBLIC_KEY: a value that is not PEM text is a path to a PEM file', async (t) => {
  const { auth } = load({ JWT_PUBLIC_KEY: '/etc/relay/key.pem' }, files({ '/etc/relay/key.pem': ec256.publicKeyPem }));
  t.equal(auth.kind, 'public-key');
  t.same(algorithmsOf(auth), ['ES256']);

  const missing = t.throws(() => load({ JWT_PUBLIC_KEY: '/nope.pem' }), ConfigError) as ConfigError;
  t.equal(missing.message, 'JWT_PUBLIC_KEY: is not PEM text and the file "/nope.pem" cannot be read (ENOENT)');

  const garbage = t.throws(() => load({ JWT_PUBLIC_KEY: '/k.pem' }, files({ '/k.pem': 'hello' })), ConfigError) as ConfigError;
  t.match(garbage.message, /^JWT_PUBLIC_KEY: file "\/k.pem" is not a PEM public key/);
});

t.test('JWT_PUBLIC_KEY: keys that cannot verify JWTs are refused at start-up', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['not PEM', '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----', /is not a PEM public key/],
    ['a private key', rsa.privateKeyPem, /is a private key; give the public key only/],
    ['RSA under 2048 bits', generateTestKeyPair('rsa-1024').publicKeyPem, /is a 1024-bit RSA key; at least 2048/],
    ['Ed448', generateTestKeyPair('ed448').publicKeyPem, /Ed448 key, which jose 6 cannot verify/],
    ['secp256k1', generateTestKeyPair('secp256k1').publicKeyPem, /uses the EC curve secp256k1/],
  ];
  for (const [name, value, pattern] of cases) {
    const error = t.throws(() => load({ JWT_PUBLIC_KEY: value }), ConfigError, name) as ConfigError;
    t.equal(error.variable, 'JWT_PUBLIC_KEY', name);
    t.match(error.message, pattern, name);
    t.notMatch(error.message, /-----BEGIN/, `${name}: the key is not echoed`);
  }
});

t.test('JWT_JWKS_URL: every asymmetric algorithm unless narrowed', async (t) => {
  const { auth } = load({ JWT_JWKS_URL: 'https://id.example/.well-known/jwks.json' });
  t.same(auth, {
    kind: 'jwks',
    url: 'https://id.example/.well-known/jwks.json',
    refetchCooldownMs: 30_000,
    algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'],
  });
  t.same(algorithmsOf(load({ JWT_JWKS_URL: 'http://localhost:9000/jwks', JWT_ALGORITHMS: 'ES256' }).auth), ['ES256']);
});

t.test('the first bad value is the one reported, in the order of the contract table', async (t) => {
  const error = t.throws(() => load({ LOG_LEVEL: 'loud', PORT: 'x', RELAY_RETENTION: 'y' }), ConfigError) as ConfigError;
  t.equal(error.variable, 'PORT');
});
