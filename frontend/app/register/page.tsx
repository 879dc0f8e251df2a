import type { Metadata } from "next";
import Link from "next/link";

import { register } from "@/app/actions/auth";
import { AuthForm } from "@/components/AuthForm";
import { link } from "@/components/ui";

export const metadata: Metadata = { title: "Create an account" };

export default async function RegisterPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const next = (await searchParams).next ?? "/";
  return (
    <>
      <h1 className="text-2xl font-bold">Create an account</h1>
      <AuthForm action={register} submitLabel="Create account" next={next} newPassword />
      <p className="mt-4">
        Have an account?{" "}
        <Link href={`/login?next=${encodeURIComponent(next)}`} className={link}>
          Log in
        </Link>
      </p>
    </>
  );
}
