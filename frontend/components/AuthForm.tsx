"use client";

import { useActionState } from "react";

import type { FormState } from "@/app/actions/auth";
import { Alert } from "@/components/Alert";
import { button, input, label } from "@/components/ui";

export function AuthForm({
  action,
  submitLabel,
  next,
  newPassword = false,
}: {
  action: (state: FormState, form: FormData) => Promise<FormState>;
  submitLabel: string;
  next: string;
  newPassword?: boolean;
}) {
  const [state, formAction, pending] = useActionState(action, {});
  return (
    <form action={formAction} className="mt-4 max-w-sm space-y-4">
      <input type="hidden" name="next" value={next} />
      <div>
        <label htmlFor="email" className={label}>
          Email
        </label>
        <input
          id="email"
          name="email"
          type="email"
          autoComplete="email"
          required
          className={input}
        />
      </div>
      <div>
        <label htmlFor="password" className={label}>
          Password
        </label>
        <input
          id="password"
          name="password"
          type="password"
          autoComplete={newPassword ? "new-password" : "current-password"}
          minLength={newPassword ? 12 : undefined}
          aria-describedby={newPassword ? "password-hint" : undefined}
          required
          className={input}
        />
        {newPassword && (
          <p id="password-hint" className="mt-1 text-sm text-slate-700">
            At least 12 characters, with a letter and a digit.
          </p>
        )}
      </div>
      {state.error && <Alert>{state.error}</Alert>}
      <button type="submit" disabled={pending} className={button}>
        {pending ? "Please wait…" : submitLabel}
      </button>
    </form>
  );
}
