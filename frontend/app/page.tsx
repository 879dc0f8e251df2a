import type { Metadata } from "next";

import { BrowseView, one, PAGE_SIZE, type Search } from "@/components/BrowseView";
import { api } from "@/lib/api/client";
import { parsePrice } from "@/lib/money";

export const metadata: Metadata = { title: "Browse listings" };

export default async function BrowsePage({ searchParams }: { searchParams: Promise<Search> }) {
  const params = await searchParams;
  const q = one(params, "q");
  const min = parsePrice(one(params, "min"));
  const max = parsePrice(one(params, "max"));
  const includeSold = one(params, "sold") === "1";
  const page = Math.max(1, Math.min(500, Number.parseInt(one(params, "page"), 10) || 1));
  const badRange = min !== null && max !== null && min > max;

  const { market } = await api();
  const { data } = badRange
    ? { data: undefined }
    : await market.GET("/api/marketplace/listings", {
        params: {
          query: {
            q: q || undefined,
            min_price: min ?? undefined,
            max_price: max ?? undefined,
            status: includeSold ? undefined : "active",
            limit: PAGE_SIZE,
            offset: (page - 1) * PAGE_SIZE,
          },
        },
      });
  return <BrowseView params={params} data={data} page={page} badRange={badRange} />;
}
