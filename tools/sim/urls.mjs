// The server believes it lives at a public URL (PUBLIC_BASE_URL, e.g. https://voice.example.com)
// and writes that into its TwiML (action URLs, the <Stream> wss:// URL); the simulator talks
// to it locally (http://127.0.0.1:8080). Twilio signs the public URL, exactly as written, so
// every request is signed with its public URL and sent to the local one.
export class UrlMap {
  /** @param localBase where the server really listens; @param publicBase what it thinks it is */
  constructor(localBase, publicBase = localBase) {
    this.localBase = String(localBase).replace(/\/+$/, '');
    this.publicBase = String(publicBase || localBase).replace(/\/+$/, '');
    this.local = new URL(this.localBase);
    this.public = new URL(this.publicBase);
  }

  /** Public URL of a path on the server: publicBase + path. */
  publicUrl(path) {
    return this.publicBase + (path.startsWith('/') ? path : '/' + path);
  }

  /**
   * A URL as it appears in TwiML, made absolute against the URL of the document it came
   * from (TwiML URLs may be relative). Absolute URLs are kept byte for byte: they are what
   * Twilio signs. `ws` turns http(s) into ws(s), for a relative <Stream url>.
   */
  resolve(ref, docUrl, { ws = false } = {}) {
    ref = String(ref || '').trim();
    let abs = /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) ? ref : new URL(ref, docUrl).href;
    if (ws) abs = abs.replace(/^http(s?):/i, (_, s) => `ws${s}:`);
    return abs;
  }

  /** Where to send a request Twilio would send to `publicUrl` (unchanged if not the server's). */
  toLocal(publicUrl) {
    let u;
    try {
      u = new URL(publicUrl);
    } catch {
      return publicUrl;
    }
    const pub = this.public;
    const secure = (p) => p === 'https:' || p === 'wss:';
    const port = (x) => x.port || (secure(x.protocol) ? '443' : '80');
    const prefix = pub.pathname.replace(/\/+$/, '');
    const sameHost = u.hostname.toLowerCase() === pub.hostname.toLowerCase() && port(u) === port(pub);
    if (!sameHost || !(u.pathname === prefix || u.pathname.startsWith(prefix + '/') || prefix === '')) return publicUrl;
    const isWs = u.protocol === 'ws:' || u.protocol === 'wss:';
    const loc = this.local;
    const scheme = isWs ? (loc.protocol === 'https:' ? 'wss:' : 'ws:') : loc.protocol;
    const locPrefix = loc.pathname.replace(/\/+$/, '');
    // Keep the path and query as written (URL() would re-encode some characters).
    const rest = publicUrl.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').slice(prefix.length);
    return `${scheme}//${loc.host}${locPrefix}${rest || '/'}`;
  }
}
