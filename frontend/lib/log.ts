/** One JSON object per line on stdout, the platform's log format (services write the same keys). */
export function logJson(fields: Record<string, unknown>): void {
  process.stdout.write(
    JSON.stringify({ ts: new Date().toISOString(), service: "web", level: "info", ...fields }) +
      "\n",
  );
}
