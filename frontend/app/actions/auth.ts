"use server";

import { redirect } from "next/navigation";

import { api, errorMessage } from "@/lib/api/client";
import { clearTokens, refreshToken, storeTokens } from "@/lib/session";

export interface FormState {
  error?: string;
  /** The email submitted, shown again after an error (React resets the form after an action). */
  email?: string;
}

function field(form: FormData, name: string): string {
  const value = form.get(name);
  return typeof value === "string" ? value : "";
}

/** Only same-site paths: a `next` parameter must not send the user elsewhere. */
function safeNext(form: FormData): string {
  const next = field(form, "next");
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

async function logIn(email: string, password: string): Promise<string | undefined> {
  const { auth } = await api({ anonymous: true });
  const { data, error, response } = await auth.POST("/api/auth/login", {
    body: { email, password },
  });
  if (!data) {
    return response.status === 429
      ? "Too many failed attempts. Wait a few minutes and try again."
      : errorMessage(error, "Wrong email or password.");
  }
  await storeTokens(data);
  return undefined;
}

export async function login(_: FormState, form: FormData): Promise<FormState> {
  const failed = await logIn(field(form, "email"), field(form, "password"));
  if (failed) return { error: failed, email: field(form, "email") };
  redirect(safeNext(form));
}

export async function register(_: FormState, form: FormData): Promise<FormState> {
  const email = field(form, "email");
  const password = field(form, "password");
  const { auth } = await api({ anonymous: true });
  const { data, error, response } = await auth.POST("/api/auth/register", {
    body: { email, password },
  });
  if (!data) {
    if (response.status === 409)
      return { error: "An account with this email already exists.", email };
    const detail = (error as { error?: { details?: { errors?: { msg?: string }[] } } } | undefined)
      ?.error?.details?.errors?.[0]?.msg;
    return { error: detail ?? errorMessage(error, "Could not create the account."), email };
  }
  const failed = await logIn(email, password);
  if (failed) return { error: failed };
  redirect(safeNext(form));
}

export async function logout(): Promise<void> {
  const token = await refreshToken();
  if (token) {
    const { auth } = await api({ anonymous: true });
    await auth.POST("/api/auth/logout", { body: { refresh_token: token } });
  }
  await clearTokens();
  redirect("/");
}
