import { cookies } from "next/headers";
import type { NextRequest } from "next/server";

import { apiBaseUrl } from "@/lib/config";
import { logJson } from "@/lib/log";
import { ACCESS_COOKIE } from "@/lib/tokens";

export const dynamic = "force-dynamic";

/**
 * Live messages of one conversation as Server-Sent Events. This server opens chat-svc's WebSocket
 * with the user's access token (subprotocols `bearer, <token>`), so the token never reaches the
 * page. The stream ends when the socket closes (e.g. the token expired): EventSource reconnects,
 * and proxy.ts refreshes the token on that request.
 */
export async function GET(request: NextRequest, ctx: { params: Promise<{ id: string }> }) {
  const { id } = await ctx.params;
  const token = (await cookies()).get(ACCESS_COOKIE)?.value;
  if (!token) return new Response("sign in first", { status: 401 });
  const url = `${apiBaseUrl().replace(/^http/, "ws")}/api/chat/ws`;
  const encoder = new TextEncoder();
  let socket: WebSocket | undefined;
  let keepAlive: ReturnType<typeof setInterval> | undefined;

  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      const close = () => {
        if (!open) return;
        open = false;
        clearInterval(keepAlive);
        socket?.close();
        controller.close();
      };
      socket = new WebSocket(url, ["bearer", token]);
      // Live only once chat-svc has registered the socket: it answers "ping" with "pong" from the
      // connection it keeps, so the first pong means no message can be missed from here on.
      let ready = false;
      socket.onopen = () => socket?.send("ping");
      socket.onmessage = (event) => {
        if (event.data === "pong") {
          if (!ready && open) controller.enqueue(encoder.encode("event: ready\ndata: {}\n\n"));
          ready = true;
          return;
        }
        try {
          const frame = JSON.parse(String(event.data)) as {
            type?: string;
            message?: { conversation_id?: string };
          };
          if (frame.type === "message" && frame.message?.conversation_id === id && open) {
            controller.enqueue(encoder.encode(`data: ${JSON.stringify(frame.message)}\n\n`));
          }
        } catch {
          // "pong" and anything else that is not a message frame
        }
      };
      socket.onclose = (event) => {
        logJson({
          msg: "chat socket closed",
          code: event.code,
          request_id: request.headers.get("x-request-id"),
        });
        close();
      };
      socket.onerror = () => close();
      keepAlive = setInterval(() => {
        if (!open) return;
        controller.enqueue(encoder.encode(": keep-alive\n\n"));
        if (socket?.readyState === WebSocket.OPEN) socket.send("ping");
      }, 20_000);
      request.signal.addEventListener("abort", close);
    },
    cancel() {
      clearInterval(keepAlive);
      socket?.close();
    },
  });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}
