"use client";

import { useEffect, useRef, useState } from "react";

import { sendMessage, type Message } from "@/app/actions/chat";
import { Alert } from "@/components/Alert";
import { button, input } from "@/components/ui";

function merge(list: Message[], message: Message): Message[] {
  if (list.some((m) => m.id === message.id)) return list;
  return [...list, message].sort((a, b) => a.id - b.id);
}

/**
 * History comes from the server render; new messages arrive live through this app's server, which
 * holds the chat WebSocket with the user's token (Server-Sent Events to the page: no token in it).
 */
export function ChatRoom({
  conversationId,
  me,
  initial,
}: {
  conversationId: string;
  me: string;
  initial: Message[];
}) {
  const [messages, setMessages] = useState(initial);
  const [live, setLive] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const end = useRef<HTMLLIElement>(null);

  useEffect(() => {
    const source = new EventSource(`/chat/${conversationId}/events`);
    source.addEventListener("ready", () => setLive(true));
    source.onerror = () => setLive(false);
    source.onmessage = (event) => {
      const message = JSON.parse(event.data as string) as Message;
      setMessages((list) => merge(list, message));
    };
    return () => source.close();
  }, [conversationId]);

  useEffect(() => {
    end.current?.scrollIntoView({ block: "nearest" });
  }, [messages]);

  async function send(form: HTMLFormElement) {
    const text = String(new FormData(form).get("body") ?? "").trim();
    if (!text || sending) return;
    setSending(true);
    const result = await sendMessage(conversationId, text);
    setSending(false);
    if (result.message) {
      setError(null);
      setMessages((list) => merge(list, result.message!));
      form.reset();
    } else setError(result.error ?? "The message was not sent.");
  }

  return (
    <section aria-label="Conversation" className="mt-4">
      <p className="text-sm text-slate-700" role="status" data-testid="live-status">
        {live ? "Live" : "Connecting…"}
      </p>
      <ol
        aria-live="polite"
        className="mt-2 max-h-[60vh] space-y-2 overflow-y-auto"
        data-testid="messages"
      >
        {messages.length === 0 && <li className="text-slate-700">No messages yet. Say hello.</li>}
        {messages.map((m) => (
          <li
            key={m.id}
            className={`max-w-[85%] rounded px-3 py-2 ${m.sender_id === me ? "ml-auto bg-blue-700 text-white" : "bg-slate-100"}`}
          >
            <span className="sr-only">{m.sender_id === me ? "You: " : "Them: "}</span>
            {m.body}
          </li>
        ))}
        <li ref={end} aria-hidden="true" />
      </ol>
      <form
        className="mt-3 flex gap-2"
        onSubmit={(event) => {
          event.preventDefault();
          void send(event.currentTarget);
        }}
      >
        <label htmlFor="body" className="sr-only">
          Message
        </label>
        <input
          id="body"
          name="body"
          required
          maxLength={4000}
          autoComplete="off"
          className={input}
        />
        <button type="submit" disabled={sending} className={button}>
          Send
        </button>
      </form>
      {error && <Alert>{error}</Alert>}
    </section>
  );
}
