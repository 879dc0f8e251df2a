import { NextResponse, type NextRequest } from "next/server";

import { logJson } from "@/lib/log";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

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

export function proxy(request: NextRequest): NextResponse {
  const started = performance.now();
  const id = requestId(request);
  const nonce = Buffer.from(crypto.randomUUID()).toString("base64");
  const https = request.headers.get("x-forwarded-proto") === "https";
  const csp = contentSecurityPolicy(nonce, https);

  const headers = new Headers(request.headers);
  headers.set("x-request-id", id);
  headers.set("x-nonce", nonce);
  headers.set("content-security-policy", csp);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("x-request-id", id);
  response.headers.set("content-security-policy", csp);
  logJson({
    msg: "request",
    request_id: id,
    method: request.method,
    path: request.nextUrl.pathname,
    duration_ms: Math.round((performance.now() - started) * 10) / 10,
  });
  return response;
}

export const config = {
  // Pages and route handlers; not the build's static files (immutable, served by the gateway).
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};
