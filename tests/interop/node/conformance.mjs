// The MCP conformance suite's authorization-server scenarios (`conformance authorization`,
// from @modelcontextprotocol/conformance, run under the Node 22 it needs: the `node` package)
// against a running server: its metadata, and the authorization code grant. That scenario
// prints an authorize URL and waits for a person; this script is the person: it opens the URL,
// checks that the login page names the resource asked for, signs in as test/test, approves,
// and follows the redirect to the suite's callback. Then it prints each check, and exits 1 if
// any failed.
//
//   node conformance.mjs ISSUER CLIENT_ID CALLBACK_PORT [RESOURCE]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signIn } from './login.mjs';

const [issuer, clientId, port, resource] = process.argv.slice(2);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const node22 = here('./node_modules/node/bin/node');
const cli = here('./node_modules/@modelcontextprotocol/conformance/dist/index.js');
const fail = (what) => {
  throw new Error(what);
};

/** Run every authorization-server scenario in one go (the code grant reads the metadata the
 * first one fetched); their checks, by scenario. */
async function run() {
  const out = mkdtempSync(join(tmpdir(), 'mcp-conformance-'));
  const args = [cli, 'authorization', '--url', issuer, '--client-id', clientId];
  args.push('-p', port, '-o', out);
  if (resource) args.push('--resource', resource);
  const child = spawn(node22, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let signedIn = Promise.resolve();
  let buffered = '';
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop();
    for (const line of lines) {
      const url = line.trim();
      if (/^https?:\/\/\S+\?\S*response_type=code/.test(url)) {
        signedIn = signIn(url, { resource })
          .then(async (back) => (await fetch(back)).text())
          .catch((e) => {
            console.error(`sign-in failed: ${e.message}`);
            child.kill();
          });
      }
    }
  });
  const code = await new Promise((resolve) => child.on('close', resolve));
  await signedIn;
  const dirs = readdirSync(out);
  if (dirs.length === 0) fail(`no results (exit ${code})`);
  return dirs.map((d) => [d, JSON.parse(readFileSync(join(out, d, 'checks.json'), 'utf8'))]);
}

let failed = false;
for (const [scenario, checks] of await run()) {
  for (const check of checks) {
    const why = check.errorMessage ? `: ${check.errorMessage}` : '';
    const name = scenario.replace(/^authorization-server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
    console.log(`check ${name} ${check.id} ${check.status}${why}`);
    failed ||= check.status === 'FAILURE';
  }
}
process.exit(failed ? 1 : 0);
