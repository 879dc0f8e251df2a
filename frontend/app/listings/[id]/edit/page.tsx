import type { Metadata } from "next";
import { notFound, redirect } from "next/navigation";

import { updateListing } from "@/app/actions/listings";
import { ListingForm } from "@/components/ListingForm";
import { api } from "@/lib/api/client";
import { currentUser } from "@/lib/session";

export const metadata: Metadata = { title: "Edit listing" };

export default async function EditListingPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await currentUser();
  if (!user) redirect(`/login?next=/listings/${id}/edit`);
  const { market } = await api();
  const { data } = await market.GET("/api/marketplace/listings/{listing_id}", {
    params: { path: { listing_id: id } },
  });
  if (!data || data.owner_id !== user.id) notFound();
  return (
    <>
      <h1 className="text-2xl font-bold">Edit listing</h1>
      <ListingForm
        action={updateListing.bind(null, id)}
        submitLabel="Save changes"
        initial={{
          title: data.title,
          description: data.description,
          price: (data.price_minor / 100).toFixed(2),
          currency: data.currency,
        }}
      />
    </>
  );
}
