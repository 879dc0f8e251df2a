import type { Metadata } from "next";
import { redirect } from "next/navigation";

import { createListing } from "@/app/actions/listings";
import { ListingForm } from "@/components/ListingForm";
import { currentUser } from "@/lib/session";

export const metadata: Metadata = { title: "Sell an item" };

export default async function NewListingPage() {
  if (!(await currentUser())) redirect("/login?next=/listings/new");
  return (
    <>
      <h1 className="text-2xl font-bold">Sell an item</h1>
      <ListingForm action={createListing} submitLabel="Create listing" />
    </>
  );
}
