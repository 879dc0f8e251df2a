import { logJson } from "@/lib/log";
import type { TokenPair } from "@/lib/tokens";

/**
 * One refresh per refresh token at a time, remembered briefly: a page load fires several requests
 * at once, and presenting a rotated refresh token twice would end every session of the user
 * (auth-svc's reuse detection). Per server process; see ADR 0006 for several replicas.
 */
/** A new pair; "refused" (the session is over: sign out); "unavailable" (keep the cookies, retry). */
export type RefreshResult = TokenPair | "refused" | "unavailable";

const recent = new Map<string, { at: number; result: Promise<RefreshResult> }>();
const REMEMBER_MS = 30_000;

export function refreshOnce(
  refreshToken: string,
  requestId: string,
  client?: string,
): Promise<RefreshResult> {
  const now = Date.now();
  for (const [key, entry] of recent) if (now - entry.at > REMEMBER_MS) recent.delete(key);
  const known = recent.get(refreshToken);
  if (known) return known.result;
  const result = callRefresh(refreshToken, requestId, client);
  recent.set(refreshToken, { at: now, result });
  return result;
}

async function callRefresh(
  refreshToken: string,
  requestId: string,
  client?: string,
): Promise<RefreshResult> {
  const base = (process.env.API_BASE_URL ?? "").replace(/\/+$/, "");
  try {
    const res = await fetch(`${base}/api/auth/refresh`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-request-id": requestId,
        ...(client ? { "x-forwarded-for": client } : {}),
      },
      body: JSON.stringify({ refresh_token: refreshToken }),
      cache: "no-store",
    });
    if (res.ok) return (await res.json()) as TokenPair;
    logJson({
      msg: "refresh refused",
      request_id: requestId,
      status: res.status,
      level: "warning",
    });
    if (res.status >= 400 && res.status < 500 && res.status !== 429) return "refused";
  } catch (error) {
    logJson({ msg: "refresh failed", request_id: requestId, error: String(error), level: "error" });
  }
  recent.delete(refreshToken); // not settled: the next request tries again
  return "unavailable";
}
