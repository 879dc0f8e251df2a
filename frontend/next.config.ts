import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  // A self-contained server (.next/standalone/server.js) for the image and `platform dev`.
  output: "standalone",
  poweredByHeader: false,
  reactStrictMode: true,
  // bench/web.py builds into its own directory with a baseline page (app/bench-baseline).
  distDir: process.env.NEXT_DIST_DIR || ".next",
  pageExtensions:
    process.env.WEB_BENCH_BASELINE === "1" ? ["tsx", "ts", "bench.tsx"] : ["tsx", "ts"],
};

export default nextConfig;
