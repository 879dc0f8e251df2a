import "server-only";

import { cookies } from "next/headers";

import {
  ACCESS_COOKIE,
  REFRESH_COOKIE,
  claimsOf,
  expiredCookies,
  tokenCookies,
  type TokenPair,
} from "@/lib/tokens";

export interface User {
  id: string;
}

/** The signed-in user per the access cookie (proxy.ts refreshes it before the page renders). */
export async function currentUser(): Promise<User | null> {
  const token = (await cookies()).get(ACCESS_COOKIE)?.value;
  const claims = token ? claimsOf(token) : null;
  return claims && claims.exp > Date.now() / 1000 ? { id: claims.sub } : null;
}

/** Store a token pair (only from Server Actions and route handlers, which may set cookies). */
export async function storeTokens(pair: TokenPair): Promise<void> {
  const jar = await cookies();
  for (const { name, value, ...options } of tokenCookies(pair)) jar.set(name, value, options);
}

export async function refreshToken(): Promise<string | undefined> {
  return (await cookies()).get(REFRESH_COOKIE)?.value;
}

export async function clearTokens(): Promise<void> {
  const jar = await cookies();
  for (const { name, value, ...options } of expiredCookies()) jar.set(name, value, options);
}
