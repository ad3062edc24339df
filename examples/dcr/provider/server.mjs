// A real OpenID provider for the examples/dcr end-to-end test: panva's oidc-provider (pinned in
// package.json) on 127.0.0.1, with RFC 7591 dynamic client registration and RFC 7592 client
// management enabled, and its development login form (accepts any user name).
//
//   node server.mjs [PORT]     (0 or nothing: a free port)
//
// Prints one line, `issuer http://127.0.0.1:<port>`, once it accepts connections; stops on
// SIGTERM or when stdin closes (so a test that dies does not leave it running).
import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    features: {
      registration: { enabled: true },
      registrationManagement: { enabled: true },
      devInteractions: { enabled: true },
    },
    // Test-only keys: this provider exists for the length of one test.
    cookies: { keys: ['ssoctl-dcr-test-cookie-key'] },
    claims: { openid: ['sub'] },
  });
  server.on('request', provider.callback());
  process.stdout.write(`issuer ${issuer}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
