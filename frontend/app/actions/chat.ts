"use server";

import { redirect } from "next/navigation";

import { api, errorMessage } from "@/lib/api/client";
import type { components } from "@/lib/api/generated/chat-svc";
import { currentUser } from "@/lib/session";

export type Message = components["schemas"]["MessageOut"];

/** Open (or reopen) the conversation with a listing's seller, then go to it. */
export async function openConversation(listingId: string): Promise<void> {
  if (!(await currentUser())) redirect(`/login?next=/listings/${listingId}`);
  const { chat } = await api();
  const { data } = await chat.POST("/api/chat/conversations", {
    body: { listing_id: listingId },
  });
  if (!data) redirect(`/listings/${listingId}?chat=failed`);
  redirect(`/chat/${data.id}`);
}

export async function sendMessage(
  conversationId: string,
  body: string,
): Promise<{ message?: Message; error?: string }> {
  const { chat } = await api();
  const { data, error } = await chat.POST("/api/chat/conversations/{conversation_id}/messages", {
    params: { path: { conversation_id: conversationId } },
    body: { body },
  });
  return data ? { message: data } : { error: errorMessage(error, "The message was not sent.") };
}
