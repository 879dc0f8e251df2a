import type { Metadata } from "next";
import Link from "next/link";
import { redirect } from "next/navigation";

import { Alert } from "@/components/Alert";
import { link } from "@/components/ui";
import { api } from "@/lib/api/client";
import { formatPrice } from "@/lib/money";
import { currentUser } from "@/lib/session";

export const metadata: Metadata = { title: "My purchases" };

export default async function PurchasesPage() {
  if (!(await currentUser())) redirect("/login?next=/purchases");
  const { payments, market } = await api();
  const { data } = await payments.GET("/api/payments", {
    params: { query: { status: "succeeded" } },
  });
  const titles = new Map<string, string>();
  await Promise.all(
    (data?.items ?? []).map(async (p) => {
      const { data: listing } = await market.GET("/api/marketplace/listings/{listing_id}", {
        params: { path: { listing_id: p.listing_id } },
      });
      if (listing) titles.set(p.listing_id, listing.title);
    }),
  );
  return (
    <>
      <h1 className="text-2xl font-bold">My purchases</h1>
      {!data && <Alert>Your purchases could not be loaded. Try again in a moment.</Alert>}
      {data?.items.length === 0 && (
        <p className="mt-4">
          You have not bought anything yet.{" "}
          <Link href="/" className={link}>
            Browse listings
          </Link>
        </p>
      )}
      <ul className="mt-4 space-y-3">
        {data?.items.map((p) => (
          <li key={p.id} className="rounded border border-slate-300 p-3">
            <Link href={`/listings/${p.listing_id}`} className={link}>
              {titles.get(p.listing_id) ?? "A removed listing"}
            </Link>
            <p className="text-sm text-slate-700">
              {formatPrice(p.amount_minor, p.currency)} · card •••• {p.card_last4} ·{" "}
              {new Date(p.created_at).toLocaleDateString("en-GB", { dateStyle: "medium" })}
            </p>
          </li>
        ))}
      </ul>
    </>
  );
}
