import "server-only";

/**
 * The server's view of its environment (docs/frontend.md, "Environment"). Only the app's server
 * reads these; nothing here reaches the browser.
 */
export function apiBaseUrl(): string {
  const url = process.env.API_BASE_URL;
  if (!url)
    throw new Error("API_BASE_URL is not set (the gateway's origin, e.g. https://localhost:8443)");
  return url.replace(/\/+$/, "");
}
