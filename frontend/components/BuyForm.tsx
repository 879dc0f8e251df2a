"use client";

import { useRouter } from "next/navigation";
import { useRef, useState } from "react";

import { pay, type PayResult } from "@/app/actions/pay";
import { Alert } from "@/components/Alert";
import { button, input, label } from "@/components/ui";
import { formatPrice } from "@/lib/money";

/**
 * Pay with a (sandbox) card. One Idempotency-Key per attempt: it is made when an attempt starts and
 * kept until that attempt is settled, so a double click or a retry of the same attempt is the same
 * payment; a new attempt (after a decline) gets a new key.
 */
export function BuyForm({
  listingId,
  amountMinor,
  currency,
}: {
  listingId: string;
  amountMinor: number;
  currency: string;
}) {
  const router = useRouter();
  const key = useRef<string | null>(null);
  const inFlight = useRef(false);
  const [pending, setPending] = useState(false);
  const [result, setResult] = useState<PayResult | null>(null);

  async function submit(form: FormData) {
    if (inFlight.current) return; // the same attempt is already on its way
    inFlight.current = true;
    setPending(true);
    key.current ??= crypto.randomUUID();
    const [month, year] = String(form.get("exp") ?? "").split("/");
    try {
      const outcome = await pay({
        listingId,
        amountMinor,
        currency,
        idempotencyKey: key.current,
        card: {
          number: String(form.get("number") ?? "").replace(/[\s-]/g, ""),
          expMonth: Number(month),
          expYear: 2000 + Number(year),
          cvc: String(form.get("cvc") ?? ""),
        },
      });
      if (outcome.settled) key.current = null;
      setResult(outcome);
      if (outcome.status === "succeeded") router.refresh();
    } catch {
      setResult({
        status: "error",
        message: "Network error: try again (you will not pay twice).",
        settled: false,
      });
    } finally {
      inFlight.current = false;
      setPending(false);
    }
  }

  if (result?.status === "succeeded") {
    return (
      <div className="mt-6">
        <Alert kind="success">{result.message}</Alert>
      </div>
    );
  }
  return (
    <form action={submit} className="mt-6 max-w-sm space-y-3 rounded border border-slate-300 p-4">
      <h2 className="text-lg font-semibold">Buy for {formatPrice(amountMinor, currency)}</h2>
      <p className="text-sm text-slate-700">
        Sandbox: card 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined.
      </p>
      <div>
        <label htmlFor="number" className={label}>
          Card number
        </label>
        <input
          id="number"
          name="number"
          inputMode="numeric"
          autoComplete="cc-number"
          required
          className={input}
        />
      </div>
      <div className="flex gap-3">
        <div className="flex-1">
          <label htmlFor="exp" className={label}>
            Expiry (MM/YY)
          </label>
          <input
            id="exp"
            name="exp"
            placeholder="12/30"
            pattern="\d{1,2}/\d{2}"
            autoComplete="cc-exp"
            required
            className={input}
          />
        </div>
        <div className="w-24">
          <label htmlFor="cvc" className={label}>
            CVC
          </label>
          <input
            id="cvc"
            name="cvc"
            inputMode="numeric"
            autoComplete="cc-csc"
            pattern="\d{3,4}"
            required
            className={input}
          />
        </div>
      </div>
      {result && <Alert>{result.message}</Alert>}
      <button type="submit" disabled={pending} aria-busy={pending} className={button}>
        {pending ? "Paying…" : `Pay ${formatPrice(amountMinor, currency)}`}
      </button>
    </form>
  );
}
