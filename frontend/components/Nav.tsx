import Link from "next/link";

import { logout } from "@/app/actions/auth";
import { link } from "@/components/ui";
import { currentUser } from "@/lib/session";

export async function Nav() {
  const user = await currentUser();
  return (
    <nav
      aria-label="Main"
      className="mx-auto flex max-w-4xl flex-wrap items-center gap-x-4 gap-y-2 p-4"
    >
      <Link href="/" className="mr-auto text-lg font-bold text-blue-800 hover:underline">
        Marketplace
      </Link>
      {user ? (
        <>
          <Link href="/listings/new" className={link}>
            Sell
          </Link>
          <Link href="/purchases" className={link}>
            My purchases
          </Link>
          <Link href="/chat" className={link}>
            Messages
          </Link>
          <form action={logout}>
            <button type="submit" className={link}>
              Log out
            </button>
          </form>
        </>
      ) : (
        <>
          <Link href="/login" className={link}>
            Log in
          </Link>
          <Link href="/register" className={link}>
            Register
          </Link>
        </>
      )}
    </nav>
  );
}
