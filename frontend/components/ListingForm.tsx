"use client";

import { useActionState } from "react";

import type { ListingFormState } from "@/app/actions/listings";
import { Alert } from "@/components/Alert";
import { button, input, label } from "@/components/ui";
import { CURRENCIES } from "@/lib/money";

export function ListingForm({
  action,
  initial,
  submitLabel,
}: {
  action: (state: ListingFormState, form: FormData) => Promise<ListingFormState>;
  initial?: { title: string; description: string; price: string; currency: string };
  submitLabel: string;
}) {
  const [state, formAction, pending] = useActionState(action, {});
  const values = state.values ?? initial;
  return (
    <form action={formAction} className="mt-4 max-w-lg space-y-4">
      <div>
        <label htmlFor="title" className={label}>
          Title
        </label>
        <input
          id="title"
          name="title"
          required
          maxLength={200}
          defaultValue={values?.title}
          className={input}
        />
      </div>
      <div>
        <label htmlFor="description" className={label}>
          Description
        </label>
        <textarea
          id="description"
          name="description"
          rows={4}
          maxLength={5000}
          defaultValue={values?.description}
          className={input}
        />
      </div>
      <div className="flex gap-3">
        <div className="flex-1">
          <label htmlFor="price" className={label}>
            Price
          </label>
          <input
            id="price"
            name="price"
            inputMode="decimal"
            required
            placeholder="12.50"
            defaultValue={values?.price}
            className={input}
          />
        </div>
        <div className="w-28">
          <label htmlFor="currency" className={label}>
            Currency
          </label>
          <select
            id="currency"
            name="currency"
            defaultValue={values?.currency ?? "EUR"}
            className={input}
          >
            {CURRENCIES.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </div>
      </div>
      {state.error && <Alert>{state.error}</Alert>}
      <button type="submit" disabled={pending} className={button}>
        {pending ? "Saving…" : submitLabel}
      </button>
    </form>
  );
}
