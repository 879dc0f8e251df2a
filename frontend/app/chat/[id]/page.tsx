import type { Metadata } from "next";
import Link from "next/link";
import { notFound, redirect } from "next/navigation";

import { ChatRoom } from "@/components/ChatRoom";
import { link } from "@/components/ui";
import { api } from "@/lib/api/client";
import { currentUser } from "@/lib/session";

export const metadata: Metadata = { title: "Conversation" };

export default async function ConversationPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await currentUser();
  if (!user) redirect(`/login?next=/chat/${id}`);
  const { chat, market } = await api();
  const [conversation, history] = await Promise.all([
    chat.GET("/api/chat/conversations/{conversation_id}", {
      params: { path: { conversation_id: id } },
    }),
    chat.GET("/api/chat/conversations/{conversation_id}/messages", {
      params: { path: { conversation_id: id }, query: { limit: 50 } },
    }),
  ]);
  if (!conversation.data || !history.data) notFound();
  const { data: listing } = await market.GET("/api/marketplace/listings/{listing_id}", {
    params: { path: { listing_id: conversation.data.listing_id } },
  });
  return (
    <>
      <p>
        <Link href="/chat" className={link}>
          ← Messages
        </Link>
      </p>
      <h1 className="mt-2 text-2xl font-bold">
        {listing ? (
          <Link href={`/listings/${listing.id}`} className={link}>
            {listing.title}
          </Link>
        ) : (
          "Conversation"
        )}
      </h1>
      <ChatRoom conversationId={id} me={user.id} initial={[...history.data.items].reverse()} />
    </>
  );
}
