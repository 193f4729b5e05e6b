// A browser without a screen, for flows across real servers: fetch with manual redirects and a cookie jar per
// host (host-only cookies, which is all the gateway and the test providers set).
export class HttpBrowser {
  readonly jar = new Map<string, Map<string, string>>();

  cookieHeader(url: URL): string {
    return [...(this.jar.get(url.host) ?? new Map())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  cookie(url: string | URL, name: string): string | undefined {
    return this.jar.get(new URL(url).host)?.get(name);
  }

  setCookie(url: string | URL, name: string, value: string): void {
    const host = new URL(url).host;
    if (!this.jar.has(host)) this.jar.set(host, new Map());
    this.jar.get(host)!.set(name, value);
  }

  #store(url: URL, res: Response): void {
    if (!this.jar.has(url.host)) this.jar.set(url.host, new Map());
    const jar = this.jar.get(url.host)!;
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => {
        const [k = '', v = ''] = a.trim().split('=');
        return (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) || (k.toLowerCase() === 'max-age' && Number(v) <= 0);
      });
      if (expired || value === '') jar.delete(name);
      else jar.set(name, decodeURIComponent(value));
    }
  }

  /** One request, no redirect followed. */
  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const u = new URL(url);
    const cookie = this.cookieHeader(u);
    const headers = new Headers(init.headers);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(u, { ...init, headers, redirect: 'manual' });
    this.#store(u, res);
    return res;
  }

  /**
   * Follows redirects from `url` until `stop(url)` says a URL is where the test takes over (it is returned, not
   * requested), or a page answers without redirecting (its response is returned).
   */
  async follow(url: string | URL, stop: (u: URL) => boolean, maxHops = 20): Promise<{ url: URL; response?: Response }> {
    let u = new URL(url);
    for (let hop = 0; hop < maxHops; hop++) {
      if (stop(u)) return { url: u };
      const res = await this.request(u);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) return { url: u, response: res };
      await res.arrayBuffer();
      u = new URL(location, u);
    }
    throw new Error(`more than ${maxHops} redirects from ${url}`);
  }
}
