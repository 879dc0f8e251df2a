import "server-only";

import createClient, { type Client } from "openapi-fetch";
import { cookies, headers } from "next/headers";

import { clientAddress } from "@/lib/client-address";
import { apiBaseUrl } from "@/lib/config";
import { ACCESS_COOKIE } from "@/lib/tokens";

import type { paths as AuthPaths } from "./generated/auth-svc";
import type { paths as ChatPaths } from "./generated/chat-svc";
import type { paths as MarketPaths } from "./generated/marketplace-svc";
import type { paths as PaymentPaths } from "./generated/payment-svc";

export interface Api {
  auth: Client<AuthPaths>;
  market: Client<MarketPaths>;
  payments: Client<PaymentPaths>;
  chat: Client<ChatPaths>;
}

/** The error body every service answers with. */
export interface ApiError {
  error?: { code?: string; message?: string; details?: unknown };
}

/**
 * Typed clients for the services, through the gateway, carrying the request id, the browser's address
 * and (when signed in) the access token from the caller's cookie.
 */
export async function api(options: { anonymous?: boolean } = {}): Promise<Api> {
  const incoming = await headers();
  const token = options.anonymous ? undefined : (await cookies()).get(ACCESS_COOKIE)?.value;
  const sent: Record<string, string> = {};
  const requestId = incoming.get("x-request-id");
  if (requestId) sent["x-request-id"] = requestId;
  if (token) sent.authorization = `Bearer ${token}`;
  const client = clientAddress(incoming);
  if (client) sent["x-forwarded-for"] = client;
  const init = { baseUrl: apiBaseUrl(), headers: sent, cache: "no-store" as const };
  return {
    auth: createClient<AuthPaths>(init),
    market: createClient<MarketPaths>(init),
    payments: createClient<PaymentPaths>(init),
    chat: createClient<ChatPaths>(init),
  };
}

/** The message of an error body, or a fallback. */
export function errorMessage(body: unknown, fallback: string): string {
  const message = (body as ApiError | undefined)?.error?.message;
  return typeof message === "string" && message ? message : fallback;
}

export function errorCode(body: unknown): string | undefined {
  return (body as ApiError | undefined)?.error?.code;
}
