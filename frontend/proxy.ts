import { NextResponse, type NextRequest } from "next/server";

import { logJson } from "@/lib/log";
import { clientAddress } from "@/lib/client-address";
import { refreshOnce } from "@/lib/refresh";
import {
  ACCESS_COOKIE,
  REFRESH_COOKIE,
  expiredCookies,
  tokenCookies,
  type CookieSpec,
} from "@/lib/tokens";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const GATEWAY_NONCE = /^[0-9a-f]{32}$/;

/** The caller's X-Request-ID when it is a sane token (the gateway sets one), else a fresh one. */
function requestId(request: NextRequest): string {
  const given = request.headers.get("x-request-id");
  return given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

/** A strict CSP with a per-request nonce: no 'unsafe-eval' and no 'unsafe-inline' in production. */
function contentSecurityPolicy(nonce: string, https: boolean): string {
  const dev = process.env.NODE_ENV === "development";
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? " 'unsafe-eval'" : ""}`,
    `style-src 'self'${dev ? " 'unsafe-inline'" : ` 'nonce-${nonce}'`}`,
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    ...(https ? ["upgrade-insecure-requests"] : []),
  ].join("; ");
}

/**
 * CSRF: a cookie-authenticated write must come from one of this app's own pages. Browsers send
 * Origin on every POST; a missing or foreign one is refused (Server Actions check it again).
 */
function sameOrigin(request: NextRequest): boolean {
  const origin = request.headers.get("origin");
  if (!origin) return false;
  const host = request.headers.get("x-forwarded-host") ?? request.headers.get("host");
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** The request's Cookie header with *set* replacing (or adding) cookies, *drop* removed. */
function cookieHeader(request: NextRequest, set: CookieSpec[], drop: string[]): string {
  const jar = new Map(request.cookies.getAll().map((c) => [c.name, c.value]));
  for (const name of drop) jar.delete(name);
  for (const c of set) jar.set(c.name, c.value);
  return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
}

export async function proxy(request: NextRequest): Promise<NextResponse> {
  const started = performance.now();
  const id = requestId(request);
  const log = (status: number | undefined, extra: Record<string, unknown> = {}) =>
    logJson({
      msg: "request",
      request_id: id,
      method: request.method,
      path: request.nextUrl.pathname,
      ...(status ? { status } : {}),
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
      ...extra,
    });

  if (!SAFE_METHODS.has(request.method) && !sameOrigin(request)) {
    log(403, { reason: "csrf" });
    return NextResponse.json(
      { error: { code: "csrf", message: "cross-site request refused", request_id: id } },
      { status: 403, headers: { "x-request-id": id } },
    );
  }

  // Refresh flow: the access cookie expires a little before its token; with a refresh cookie
  // still there, get a new pair now so the page renders signed in.
  let refreshed: CookieSpec[] = [];
  let dropped: string[] = [];
  const refresh = request.cookies.get(REFRESH_COOKIE)?.value;
  if (refresh && !request.cookies.get(ACCESS_COOKIE)) {
    const result = await refreshOnce(refresh, id, clientAddress(request.headers));
    if (result === "refused") dropped = [ACCESS_COOKIE, REFRESH_COOKIE];
    else if (result !== "unavailable") refreshed = tokenCookies(result);
  }

  // The gateway mints the nonce (nginx's $request_id, 32 hex) and sends the browser its own CSP with
  // it, replacing this one: use it, so the scripts Next.js renders carry the nonce the browser
  // expects (docs/adr/0011-web-app-on-the-platform.md). Direct calls (no gateway) mint their own.
  const given = request.headers.get("x-nonce");
  const nonce =
    given && GATEWAY_NONCE.test(given)
      ? given
      : Buffer.from(crypto.randomUUID()).toString("base64");
  const https = request.headers.get("x-forwarded-proto") === "https";
  const csp = contentSecurityPolicy(nonce, https);
  const headers = new Headers(request.headers);
  headers.set("x-request-id", id);
  headers.set("x-nonce", nonce);
  headers.set("content-security-policy", csp);
  if (refreshed.length || dropped.length)
    headers.set("cookie", cookieHeader(request, refreshed, dropped));

  const response = NextResponse.next({ request: { headers } });
  response.headers.set("x-request-id", id);
  response.headers.set("content-security-policy", csp);
  for (const { name, value, ...options } of refreshed) response.cookies.set(name, value, options);
  if (dropped.length) {
    for (const { name, value, ...options } of expiredCookies())
      response.cookies.set(name, value, options);
  }
  log(undefined, refreshed.length ? { refreshed: true } : {});
  return response;
}

export const config = {
  // Pages and route handlers; not the build's static files (immutable, served by the gateway).
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};
