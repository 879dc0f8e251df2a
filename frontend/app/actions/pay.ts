"use server";

import { api, errorCode, errorMessage } from "@/lib/api/client";

export interface PayResult {
  status: "succeeded" | "declined" | "error";
  message: string;
  /** A new attempt needs a new Idempotency-Key (the last one is settled). */
  settled: boolean;
}

export interface PayInput {
  listingId: string;
  amountMinor: number;
  currency: string;
  idempotencyKey: string;
  card: { number: string; expMonth: number; expYear: number; cvc: string };
}

const EXPLAIN: Record<string, string> = {
  price_changed: "The seller changed the price. Reload the page to see the new price.",
  listing_sold: "Someone else bought this item just now.",
  own_listing: "You cannot buy your own listing.",
  too_many_payment_attempts: "Too many payment attempts. Try again later.",
  processor_unavailable: "The payment service is busy. Your card was not charged; try again.",
  listing_not_found: "This listing no longer exists.",
};

/** Pay for a listing; the caller's Idempotency-Key makes a repeated submit the same payment. */
export async function pay(input: PayInput): Promise<PayResult> {
  const { payments } = await api();
  const { data, error, response } = await payments.POST("/api/payments", {
    params: { header: { "Idempotency-Key": input.idempotencyKey } },
    body: {
      listing_id: input.listingId,
      amount_minor: input.amountMinor,
      currency: input.currency,
      card: {
        number: input.card.number,
        exp_month: input.card.expMonth,
        exp_year: input.card.expYear,
        cvc: input.card.cvc,
      },
    },
  });
  if (data?.status === "succeeded") {
    return { status: "succeeded", message: "Payment complete. The item is yours.", settled: true };
  }
  if (response.status === 402) {
    return {
      status: "declined",
      message:
        "Your card was declined. Nothing was charged. Check the details or use another card.",
      settled: true,
    };
  }
  if (response.status === 401) {
    return { status: "error", message: "Your session ended. Log in again to pay.", settled: false };
  }
  const code = errorCode(error);
  const message =
    (code && EXPLAIN[code]) ??
    (response.status === 422
      ? `Check the card details: ${errorMessage(error, "they are not valid")}.`
      : errorMessage(error, "The payment did not go through. Nothing was charged."));
  return { status: "error", message, settled: response.status !== 503 };
}
