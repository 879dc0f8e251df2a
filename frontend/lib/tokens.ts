/**
 * The auth cookies (ADR 0006). Tokens live only in httpOnly, Secure, SameSite=Lax cookies set by
 * this app's server; page scripts never see them.
 */
export const ACCESS_COOKIE = "__Host-mp_access";
export const REFRESH_COOKIE = "__Host-mp_refresh";

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

export interface Claims {
  sub: string;
  exp: number;
}

/** The claims of a JWT, unverified: for display and cookie lifetimes only (the services verify). */
export function claimsOf(token: string): Claims | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const claims = JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Partial<Claims>;
    return typeof claims.sub === "string" && typeof claims.exp === "number"
      ? { sub: claims.sub, exp: claims.exp }
      : null;
  } catch {
    return null;
  }
}

export interface CookieSpec {
  name: string;
  value: string;
  httpOnly: true;
  secure: true;
  sameSite: "lax";
  path: "/";
  maxAge: number;
}

/** The two cookies for a token pair; each expires with its token (the access one a little early). */
export function tokenCookies(pair: TokenPair): CookieSpec[] {
  const now = Date.now() / 1000;
  const refreshExp = claimsOf(pair.refresh_token)?.exp ?? now + 3600;
  const base = { httpOnly: true, secure: true, sameSite: "lax", path: "/" } as const;
  return [
    {
      ...base,
      name: ACCESS_COOKIE,
      value: pair.access_token,
      maxAge: Math.max(1, pair.expires_in - 30),
    },
    {
      ...base,
      name: REFRESH_COOKIE,
      value: pair.refresh_token,
      maxAge: Math.max(1, Math.floor(refreshExp - now)),
    },
  ];
}

/** Cookies that delete the pair: a `__Host-` cookie is only replaced by one with the same flags. */
export function expiredCookies(): CookieSpec[] {
  const base = {
    httpOnly: true,
    secure: true,
    sameSite: "lax",
    path: "/",
    value: "",
    maxAge: 0,
  } as const;
  return [
    { ...base, name: ACCESS_COOKIE },
    { ...base, name: REFRESH_COOKIE },
  ];
}
