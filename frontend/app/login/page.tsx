import type { Metadata } from "next";
import Link from "next/link";

import { login } from "@/app/actions/auth";
import { AuthForm } from "@/components/AuthForm";
import { link } from "@/components/ui";

export const metadata: Metadata = { title: "Log in" };

export default async function LoginPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const next = (await searchParams).next ?? "/";
  return (
    <>
      <h1 className="text-2xl font-bold">Log in</h1>
      <AuthForm action={login} submitLabel="Log in" next={next} />
      <p className="mt-4">
        New here?{" "}
        <Link href={`/register?next=${encodeURIComponent(next)}`} className={link}>
          Create an account
        </Link>
      </p>
    </>
  );
}
