import Runtime

/// The JavaScript around a tenant's source: enough of the web platform for Supabase-style
/// handlers (`Deno.serve(async (req) => new Response(...))`, `req.json()`, `Response.json`,
/// `Headers`, `URL`, `Deno.env.get`), built from the same WAGI call a WebAssembly function gets —
/// the CGI variables (written into the script: libc reads the environment once per instance, and
/// instances serve many calls), the body on stdin —
/// and answered the same way: a CGI header block and the body on stdout. `console` writes to
/// stderr (the function's log), never into the response.
enum DenoShim {
    /// Evaluated before the tenant's source (a module, so top-level `await` works).
    static let prelude = #"""
const __mb = (() => {
  const environ = __mbEnviron;
  // Compiled on first use only: QuickJS in an interpreter pays for every function it parses, and
  // most calls never touch these.
  const lazy = (name, source) => Object.defineProperty(globalThis, name, {
    configurable: true, enumerable: false,
    get() { const value = (0, eval)(source); Object.defineProperty(globalThis, name, { value, writable: true, configurable: true }); return value; },
    set(value) { Object.defineProperty(globalThis, name, { value, writable: true, configurable: true }); },
  });
  lazy("TextEncoder", `(class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(text = "") {
      const out = [];
      for (const ch of String(text)) {
        const c = ch.codePointAt(0);
        if (c < 0x80) out.push(c);
        else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
        else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      }
      return new Uint8Array(out);
    }
  })`);
  lazy("TextDecoder", `(class TextDecoder {
    get encoding() { return "utf-8"; }
    decode(input) {
      if (!input) return "";
      const b = input instanceof Uint8Array ? input : new Uint8Array(input.buffer || input, input.byteOffset || 0, input.byteLength);
      let out = "";
      for (let i = 0; i < b.length;) {
        const x = b[i++];
        let c = x < 0x80 ? x : x < 0xe0 ? ((x & 31) << 6) | (b[i++] & 63)
          : x < 0xf0 ? ((x & 15) << 12) | ((b[i++] & 63) << 6) | (b[i++] & 63)
          : ((x & 7) << 18) | ((b[i++] & 63) << 12) | ((b[i++] & 63) << 6) | (b[i++] & 63);
        out += String.fromCodePoint(c > 0x10ffff ? 0xfffd : c);
      }
      return out;
    }
  })`);
  lazy("URLSearchParams", `(class URLSearchParams {
    constructor(init = "") {
      this._p = [];
      if (typeof init === "string") {
        const decode = (t) => { t = t.replace(/\\+/g, " "); try { return decodeURIComponent(t); } catch (_) { return t; } };
        for (const part of init.replace(/^\\?/, "").split("&")) {
          if (!part) continue;
          const at = part.indexOf("=");
          this._p.push(at < 0 ? [decode(part), ""] : [decode(part.slice(0, at)), decode(part.slice(at + 1))]);
        }
      } else if (init && typeof init[Symbol.iterator] === "function") for (const [k, v] of init) this.append(k, v);
      else if (init) for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(k, v) { this._p.push([String(k), String(v)]); }
    set(k, v) { this.delete(k); this.append(k, v); }
    get(k) { const p = this._p.find((e) => e[0] === k); return p ? p[1] : null; }
    getAll(k) { return this._p.filter((e) => e[0] === k).map((e) => e[1]); }
    has(k) { return this._p.some((e) => e[0] === k); }
    delete(k) { this._p = this._p.filter((e) => e[0] !== k); }
    forEach(f, self) { for (const [k, v] of this._p) f.call(self, v, k, this); }
    entries() { return this._p.map((e) => [e[0], e[1]])[Symbol.iterator](); }
    keys() { return this._p.map((e) => e[0])[Symbol.iterator](); }
    values() { return this._p.map((e) => e[1])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    get size() { return this._p.length; }
    toString() { return this._p.map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v)).join("&"); }
  })`);
  lazy("URL", `(class URL {
    constructor(input, base) {
      let text = String(input);
      if (base !== undefined && !/^[a-z][a-z0-9+.-]*:/i.test(text)) {
        const root = new URL(base);
        text = text.startsWith("/") ? root.origin + text : root.origin + root.pathname.replace(/[^/]*$/, "") + text;
      }
      const m = /^([a-z][a-z0-9+.-]*:)\\/\\/([^/?#]*)([^?#]*)(\\?[^#]*)?(#.*)?$/i.exec(text);
      if (!m) throw new TypeError("Invalid URL: " + text);
      this.protocol = m[1].toLowerCase();
      this.host = m[2];
      [this.hostname, this.port = ""] = m[2].split(":");
      this.pathname = m[3] || "/";
      this.searchParams = new URLSearchParams(m[4] || "");
      this.hash = m[5] || "";
    }
    get search() { const q = this.searchParams.toString(); return q ? "?" + q : ""; }
    get origin() { return this.protocol + "//" + this.host; }
    get href() { return this.origin + this.pathname + this.search + this.hash; }
    toString() { return this.href; }
    toJSON() { return this.href; }
  })`);

  // A body is kept as text or bytes, whichever it came as; QuickJS's std converts text natively.
  const asBytes = (b) => (typeof b === "string" ? new TextEncoder().encode(b) : b);
  function Body(body, read) {
    this._used = false;
    this._read = read || null;
    if (body === null || body === undefined) this._b = null;
    else if (typeof body === "string" || body instanceof Uint8Array) this._b = body;
    else if (body instanceof ArrayBuffer) this._b = new Uint8Array(body);
    else if (ArrayBuffer.isView(body)) this._b = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    else this._b = String(body);
  }
  Body.prototype._take = function (asText) {
    if (this._used) throw new TypeError("Body already used");
    this._used = true;
    if (this._read) return this._read(asText);
    const b = this._b === null ? "" : this._b;
    return asText ? (typeof b === "string" ? b : new TextDecoder().decode(b)) : asBytes(b);
  };
  Body.prototype.text = async function () { return this._take(true); };
  Body.prototype.json = async function () { return JSON.parse(this._take(true)); };
  Body.prototype.bytes = async function () { return this._take(false); };
  Body.prototype.arrayBuffer = async function () { const b = this._take(false); return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength); };
  Body.prototype.formData = async function () { return new URLSearchParams(this._take(true)); };
  Object.defineProperty(Body.prototype, "bodyUsed", { get() { return this._used; } });

  class Headers {
    constructor(init) {
      this._m = new Map();
      if (init instanceof Headers) { init._m.forEach((v, k) => this._m.set(k, v)); this._c = init._c && [...init._c]; }
      else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else if (init) for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(k, v) {
      k = String(k).toLowerCase();
      const p = this._m.get(k);
      if (k === "set-cookie") this._c = [...(this._c || []), String(v)];  // never joined: one line each
      this._m.set(k, p === undefined ? String(v) : p + ", " + v);
    }
    getSetCookie() { return this._c ? [...this._c] : this.has("set-cookie") ? [this.get("set-cookie")] : []; }
    set(k, v) { k = String(k).toLowerCase(); if (k === "set-cookie") this._c = [String(v)]; this._m.set(k, String(v)); }
    get(k) { const v = this._m.get(String(k).toLowerCase()); return v === undefined ? null : v; }
    has(k) { return this._m.has(String(k).toLowerCase()); }
    delete(k) { k = String(k).toLowerCase(); if (k === "set-cookie") this._c = undefined; this._m.delete(k); }
    forEach(f, self) { for (const [k, v] of this.entries()) f.call(self, v, k, this); }
    entries() { return [...this._m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))[Symbol.iterator](); }
    keys() { return [...this._m.keys()].sort()[Symbol.iterator](); }
    values() { return [...this.entries()].map((e) => e[1])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
  }

  class Request {
    constructor(input, init = {}, read) {
      Body.call(this, init.body, read);
      this.url = String(input instanceof Request ? input.url : input);
      this.method = String(init.method || "GET").toUpperCase();
      this.headers = new Headers(init.headers);
    }
  }
  Object.setPrototypeOf(Request.prototype, Body.prototype);

  class Response {
    constructor(body = null, init = {}) {
      Body.call(this, body);
      this.status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(this.status) || this.status < 200 || this.status > 599) throw new RangeError("Invalid status " + init.status);
      this.statusText = init.statusText || "";
      this.headers = new Headers(init.headers);
      if (typeof body === "string" && !this.headers.has("content-type")) this.headers.set("content-type", "text/plain;charset=UTF-8");
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    static json(data, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(JSON.stringify(data), { ...init, headers });
    }
    static redirect(url, status = 302) { return new Response(null, { status, headers: { location: String(url) } }); }
  }
  Object.setPrototypeOf(Response.prototype, Body.prototype);
  Object.assign(globalThis, { Headers, Request, Response });

  const show = (p) => { if (typeof p === "string") return p; try { return JSON.stringify(p); } catch (_) { return String(p); } };
  const log = (...parts) => std.err.puts(parts.map(show).join(" ") + "\n");
  globalThis.console = { log, info: log, debug: log, warn: log, error: log, trace: log };
  globalThis.print = log;  // QuickJS's print writes to stdout, which is the answer

  let handler = null;
  const has = (k) => Object.prototype.hasOwnProperty.call(environ, k);
  globalThis.Deno = {
    env: { get: (k) => (has(k) ? environ[k] : undefined), has, toObject: () => ({ ...environ }) },
    serve(first, second) {
      handler = typeof first === "function" ? first : typeof second === "function" ? second : first && first.handler;
      if (typeof handler !== "function") throw new TypeError("Deno.serve needs a handler function");
      return { finished: Promise.resolve(), shutdown: async () => {}, addr: { hostname: "0.0.0.0", port: 0 } };
    },
  };

  // The body is read from stdin only when the handler asks for it.
  function readBody(asText) {
    std.in.clearerr();  // an earlier call on this instance read stdin to its end
    if (asText) return std.in.readAsString();
    const chunks = [];
    let total = 0;
    for (;;) {
      const buffer = new ArrayBuffer(65536);
      const count = std.in.read(buffer, 0, 65536);
      if (!count) break;
      chunks.push(new Uint8Array(buffer, 0, count));
      total += count;
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) { bytes.set(chunk, at); at += chunk.length; }
    return bytes;
  }

  function request() {
    const headers = new Headers();
    for (const k of Object.keys(environ)) if (k.startsWith("HTTP_")) headers.set(k.slice(5).toLowerCase().replace(/_/g, "-"), environ[k]);
    if (environ.CONTENT_TYPE) headers.set("content-type", environ.CONTENT_TYPE);
    const method = environ.REQUEST_METHOD || "GET";
    const none = (asText) => (asText ? "" : new Uint8Array(0));
    return new Request(environ.X_FULL_URL || "http://localhost/", { method, headers }, method === "GET" || method === "HEAD" ? none : readBody);
  }

  function write(response) {
    if (!(response instanceof Response)) throw new TypeError("the handler must return a Response");
    const clean = (t) => String(t).replace(/[\r\n]/g, " ");
    let head = "Status: " + response.status + (response.statusText ? " " + clean(response.statusText) : "") + "\n";
    response.headers.forEach((v, k) => {
      if (/[\r\n]/.test(k + v)) return;
      if (k === "set-cookie") { for (const c of response.headers.getSetCookie()) if (!/[\r\n]/.test(c)) head += "set-cookie: " + c + "\n"; }
      else head += k + ": " + v + "\n";
    });
    if (!response.headers.has("content-type")) head += "content-type: application/octet-stream\n";
    std.out.puts(head + "\n");
    const body = response._b;
    if (typeof body === "string") std.out.puts(body);
    else if (body && body.length) std.out.write(body.buffer, body.byteOffset, body.byteLength);
    std.out.flush();
  }

  return {
    async dispatch() {
      if (typeof handler !== "function") throw new Error("the source never calls Deno.serve(handler)");
      if (environ.MB_CHECK_ONLY === "1") return;
      try {
        write(await handler(request(), { remoteAddr: { hostname: environ.REMOTE_ADDR || "", port: 0, transport: "tcp" } }));
      } finally {
        // Nothing of this call may wait in libc's buffers for the next one on this instance.
        std.out.flush();
        std.in.clearerr();
        std.in.readAsString();
      }
    },
  };
})();

"""#

    /// Evaluated after the tenant's source.
    static let epilogue = "\n;await __mb.dispatch();\n"

    /// The whole module for one call: the call's environment as a JSON object, the prelude, the
    /// tenant's source, the dispatch.
    static func script(for source: String, environment: [String]) -> String {
        var variables = JSONObject()
        for entry in environment {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            variables[String(entry[..<equals])] = .string(String(entry[entry.index(after: equals)...]))
        }
        // Runtime's JSON writer escapes U+2028/2029 too: the object is also a JavaScript literal.
        return "const __mbEnviron = \(JSONValue.object(variables).jsonString);\n" + prelude + source + epilogue
    }
}
