import type { Metadata } from "next";
import Link from "next/link";
import { redirect } from "next/navigation";

import { Alert } from "@/components/Alert";
import { link } from "@/components/ui";
import { api } from "@/lib/api/client";
import { currentUser } from "@/lib/session";

export const metadata: Metadata = { title: "Messages" };

export default async function ConversationsPage() {
  const user = await currentUser();
  if (!user) redirect("/login?next=/chat");
  const { chat, market } = await api();
  const { data } = await chat.GET("/api/chat/conversations");
  const titles = new Map<string, string>();
  await Promise.all(
    (data?.items ?? []).map(async (c) => {
      const { data: listing } = await market.GET("/api/marketplace/listings/{listing_id}", {
        params: { path: { listing_id: c.listing_id } },
      });
      if (listing) titles.set(c.listing_id, listing.title);
    }),
  );
  return (
    <>
      <h1 className="text-2xl font-bold">Messages</h1>
      {!data && <Alert>Your conversations could not be loaded. Try again in a moment.</Alert>}
      {data?.items.length === 0 && <p className="mt-4">No conversations yet.</p>}
      <ul className="mt-4 space-y-2">
        {data?.items.map((c) => (
          <li key={c.id}>
            <Link href={`/chat/${c.id}`} className={link}>
              {titles.get(c.listing_id) ?? "A listing"} —{" "}
              {c.seller_id === user.id ? "a buyer" : "the seller"}
            </Link>
          </li>
        ))}
      </ul>
    </>
  );
}
