/**
 * The browser's address, as the gateway saw it (`X-Real-IP`, set from its `$remote_addr`), for the
 * app's server-side API calls to pass on as `X-Forwarded-For`. The gateway's internal listener trusts
 * that header only from the app's own pods, so rate limits and login limits stay per browser instead
 * of one bucket shared by every user of the app (docs/frontend.md, "Environment").
 */
export function clientAddress(incoming: Headers): string | undefined {
  const realIp = incoming.get("x-real-ip")?.trim();
  if (realIp) return realIp;
  const first = incoming.get("x-forwarded-for")?.split(",")[0]?.trim();
  return first || undefined;
}
