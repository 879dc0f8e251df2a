import Link from "next/link";

import type { components } from "@/lib/api/generated/marketplace-svc";
import { formatPrice } from "@/lib/money";

type Listing = components["schemas"]["ListingOut"];

export function ListingCard({ listing }: { listing: Listing }) {
  return (
    <li className="rounded border border-slate-300 p-4">
      <h2 className="text-lg font-semibold">
        <Link href={`/listings/${listing.id}`} className="text-blue-800 hover:underline">
          {listing.title}
        </Link>
      </h2>
      <p className="mt-1 font-medium">{formatPrice(listing.price_minor, listing.currency)}</p>
      {listing.status === "sold" && (
        <p className="mt-1 inline-block rounded bg-slate-800 px-2 text-sm text-white">Sold</p>
      )}
      {listing.description && (
        <p className="mt-2 line-clamp-2 text-sm text-slate-700">{listing.description}</p>
      )}
    </li>
  );
}
