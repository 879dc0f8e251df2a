// bench/web.py's baseline: the browse page's markup from static data, in the same server. Built
// only with WEB_BENCH_BASELINE=1 (next.config.ts adds the ".bench.tsx" page extension then).
import { BrowseView } from "@/components/BrowseView";

export const dynamic = "force-dynamic";

const NOW = "2026-01-01T00:00:00Z";
const ITEMS = Array.from({ length: 12 }, (_, i) => ({
  id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
  owner_id: "00000000-0000-4000-8000-ffffffffffff",
  title: `Bench lamp ${i}`,
  description: "A brass desk lamp in working order, with a new cable and a warm white bulb.",
  price_minor: 2500 + i,
  currency: "EUR",
  status: "active" as const,
  created_at: NOW,
  updated_at: NOW,
  sold_at: null,
}));

export default async function BaselinePage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const params = await searchParams;
  return (
    <BrowseView
      params={params}
      data={{ items: ITEMS, total: 40, limit: 12, offset: 0 }}
      page={1}
      badRange={false}
    />
  );
}
