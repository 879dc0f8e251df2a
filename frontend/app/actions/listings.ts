"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";

import { api, errorMessage } from "@/lib/api/client";
import { parsePrice } from "@/lib/money";
import { currentUser } from "@/lib/session";

export interface ListingFormState {
  error?: string;
  /** What was submitted, shown again after an error (React resets the form after an action). */
  values?: { title: string; description: string; price: string; currency: string };
}

function submitted(form: FormData): ListingFormState["values"] {
  return {
    title: text(form, "title"),
    description: text(form, "description"),
    price: text(form, "price"),
    currency: text(form, "currency") || "EUR",
  };
}

function text(form: FormData, name: string): string {
  const value = form.get(name);
  return typeof value === "string" ? value.trim() : "";
}

function fields(form: FormData): { error?: string; body?: Record<string, string | number> } {
  const title = text(form, "title");
  const price = parsePrice(text(form, "price"));
  if (!title) return { error: "Give the listing a title." };
  if (price === null || price < 1) return { error: "Enter a price like 12.50." };
  return {
    body: {
      title,
      description: text(form, "description"),
      price_minor: price,
      currency: text(form, "currency") || "EUR",
    },
  };
}

export async function createListing(
  _: ListingFormState,
  form: FormData,
): Promise<ListingFormState> {
  if (!(await currentUser())) redirect("/login?next=/listings/new");
  const { error, body } = fields(form);
  if (!body) return { error, values: submitted(form) };
  const { market } = await api();
  const { data, error: failed } = await market.POST("/api/marketplace/listings", {
    body: body as { title: string; price_minor: number; currency: string; description: string },
  });
  if (!data) {
    return {
      error: errorMessage(failed, "Could not create the listing."),
      values: submitted(form),
    };
  }
  redirect(`/listings/${data.id}`);
}

export async function updateListing(
  id: string,
  _: ListingFormState,
  form: FormData,
): Promise<ListingFormState> {
  const { error, body } = fields(form);
  if (!body) return { error, values: submitted(form) };
  const { market } = await api();
  const { data, error: failed } = await market.PATCH("/api/marketplace/listings/{listing_id}", {
    params: { path: { listing_id: id } },
    body,
  });
  if (!data) {
    return { error: errorMessage(failed, "Could not save the listing."), values: submitted(form) };
  }
  revalidatePath(`/listings/${id}`);
  redirect(`/listings/${id}`);
}

export async function deleteListing(id: string): Promise<void> {
  const { market } = await api();
  await market.DELETE("/api/marketplace/listings/{listing_id}", {
    params: { path: { listing_id: id } },
  });
  redirect("/?deleted=1");
}
