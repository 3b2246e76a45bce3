// The person at the browser, for the scripts here: open an authorization URL of the quickstart
// or the MCP example, check that its login page names what it should, sign in as test/test,
// approve, and return where the server redirects (the client's callback, with the code).
export async function signIn(url, { resource } = {}) {
  let res = await fetch(url, { redirect: 'manual' });
  if (res.status !== 200) throw new Error(`authorize answered ${res.status}: ${await res.text()}`);
  const cookie = res.headers.get('set-cookie').split(';')[0];
  const page = await res.text();
  if (resource && !page.includes(`<li><code>${resource}</code></li>`)) {
    throw new Error(`the login page does not name ${resource}: ${page}`);
  }
  const field = (name) => page.match(new RegExp(`name="${name}" value="([^"]+)"`))[1];
  res = await fetch(new URL('/oauth/authorize/login', url), {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      handle: field('handle'),
      csrf: field('csrf'),
      username: 'test',
      password: 'test',
      action: 'approve',
    }),
  });
  if (res.status !== 303) throw new Error(`login answered ${res.status}`);
  return new URL(res.headers.get('location'));
}
