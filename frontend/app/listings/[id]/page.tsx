import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";

import { openConversation } from "@/app/actions/chat";
import { deleteListing } from "@/app/actions/listings";
import { Alert } from "@/components/Alert";
import { BuyForm } from "@/components/BuyForm";
import { button, dangerButton, link, secondaryButton } from "@/components/ui";
import { api } from "@/lib/api/client";
import { formatPrice } from "@/lib/money";
import { currentUser } from "@/lib/session";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function load(id: string) {
  if (!UUID.test(id)) notFound();
  const { market } = await api();
  const { data, response } = await market.GET("/api/marketplace/listings/{listing_id}", {
    params: { path: { listing_id: id } },
  });
  if (response.status === 404) notFound();
  if (!data) throw new Error(`listing ${id}: ${response.status}`);
  return data;
}

export async function generateMetadata({
  params,
}: {
  params: Promise<{ id: string }>;
}): Promise<Metadata> {
  const listing = await load((await params).id);
  return { title: listing.title, description: listing.description.slice(0, 150) || undefined };
}

export default async function ListingPage({
  params,
  searchParams,
}: {
  params: Promise<{ id: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { id } = await params;
  const query = await searchParams;
  const [listing, user] = await Promise.all([load(id), currentUser()]);
  const mine = user?.id === listing.owner_id;
  const sold = listing.status === "sold";

  return (
    <article>
      <p>
        <Link href="/" className={link}>
          ← All listings
        </Link>
      </p>
      <h1 className="mt-2 text-2xl font-bold">{listing.title}</h1>
      <p className="mt-2 text-xl font-semibold">
        {formatPrice(listing.price_minor, listing.currency)}
      </p>
      {sold && (
        <p
          className="mt-2 inline-block rounded bg-slate-800 px-2 py-1 text-white"
          data-testid="sold"
        >
          Sold
        </p>
      )}
      {listing.description && <p className="mt-4 whitespace-pre-line">{listing.description}</p>}
      <p className="mt-4 text-sm text-slate-700">
        Listed {new Date(listing.created_at).toLocaleDateString("en-GB", { dateStyle: "medium" })}
      </p>
      {query.chat === "failed" && <Alert>The conversation could not be opened. Try again.</Alert>}

      <div className="mt-6 flex flex-wrap gap-3">
        {mine && (
          <>
            {!sold && (
              <Link href={`/listings/${id}/edit`} className={secondaryButton}>
                Edit
              </Link>
            )}
            <form action={deleteListing.bind(null, id)}>
              <button type="submit" className={dangerButton}>
                Delete listing
              </button>
            </form>
          </>
        )}
        {!mine && user && (
          <form action={openConversation.bind(null, id)}>
            <button type="submit" className={secondaryButton}>
              Message the seller
            </button>
          </form>
        )}
      </div>

      {!mine && !sold && user && (
        <BuyForm listingId={id} amountMinor={listing.price_minor} currency={listing.currency} />
      )}
      {!user && (
        <p className="mt-6">
          <Link href={`/login?next=/listings/${id}`} className={button}>
            Log in to buy or message the seller
          </Link>
        </p>
      )}
    </article>
  );
}
