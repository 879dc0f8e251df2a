import Link from "next/link";

import { Alert } from "@/components/Alert";
import { ListingCard } from "@/components/ListingCard";
import { button, input, label, link } from "@/components/ui";
import type { components } from "@/lib/api/generated/marketplace-svc";

export const PAGE_SIZE = 12;

export type Search = Record<string, string | string[] | undefined>;

export function one(params: Search, name: string): string {
  const value = params[name];
  return (Array.isArray(value) ? value[0] : value)?.trim() ?? "";
}

/** The shareable URL of these filters at another page. */
function pageHref(params: Search, page: number): string {
  const query = new URLSearchParams();
  for (const name of ["q", "min", "max", "sold"]) {
    const value = one(params, name);
    if (value) query.set(name, value);
  }
  if (page > 1) query.set("page", String(page));
  const text = query.toString();
  return text ? `/?${text}` : "/";
}

/** The browse page's markup (also rendered from static data by bench/web.py's baseline page). */
export function BrowseView({
  params,
  data,
  page,
  badRange,
}: {
  params: Search;
  data: components["schemas"]["ListingPage"] | undefined;
  page: number;
  badRange: boolean;
}) {
  const q = one(params, "q");
  const includeSold = one(params, "sold") === "1";
  const pages = data ? Math.max(1, Math.ceil(data.total / PAGE_SIZE)) : 1;
  return (
    <>
      <h1 className="text-2xl font-bold">Browse listings</h1>
      <form method="get" action="/" role="search" className="mt-4 grid gap-3 sm:grid-cols-6">
        <div className="sm:col-span-3">
          <label htmlFor="q" className={label}>
            Search
          </label>
          <input id="q" name="q" type="search" defaultValue={q} className={input} />
        </div>
        <div>
          <label htmlFor="min" className={label}>
            Min price
          </label>
          <input
            id="min"
            name="min"
            inputMode="decimal"
            defaultValue={one(params, "min")}
            className={input}
          />
        </div>
        <div>
          <label htmlFor="max" className={label}>
            Max price
          </label>
          <input
            id="max"
            name="max"
            inputMode="decimal"
            defaultValue={one(params, "max")}
            className={input}
          />
        </div>
        <div className="flex items-end">
          <button type="submit" className={`${button} w-full`}>
            Search
          </button>
        </div>
        <div className="flex items-center gap-2 sm:col-span-6">
          <input
            id="sold"
            name="sold"
            type="checkbox"
            value="1"
            defaultChecked={includeSold}
            className="h-4 w-4"
          />
          <label htmlFor="sold" className="text-sm">
            Include sold items
          </label>
        </div>
      </form>

      <section aria-labelledby="results" className="mt-6">
        <h2 id="results" className="sr-only">
          Results
        </h2>
        {badRange && <Alert>The minimum price is above the maximum price.</Alert>}
        {!badRange && !data && (
          <Alert>Listings could not be loaded right now. Try again in a moment.</Alert>
        )}
        {data && (
          <>
            <p className="text-sm text-slate-700" aria-live="polite">
              {data.total === 0
                ? "No listings match."
                : `${data.total} listing${data.total === 1 ? "" : "s"}, page ${page} of ${pages}`}
            </p>
            {data.total === 0 && (
              <p className="mt-2">
                Nothing here yet.{" "}
                <Link href="/listings/new" className={link}>
                  Sell something
                </Link>
              </p>
            )}
            <ul className="mt-3 grid gap-3 sm:grid-cols-2">
              {data.items.map((listing) => (
                <ListingCard key={listing.id} listing={listing} />
              ))}
            </ul>
            {pages > 1 && (
              <nav aria-label="Pagination" className="mt-4 flex justify-between">
                {page > 1 ? (
                  <Link href={pageHref(params, page - 1)} className={link} rel="prev">
                    Previous page
                  </Link>
                ) : (
                  <span />
                )}
                {page < pages && (
                  <Link href={pageHref(params, page + 1)} className={link} rel="next">
                    Next page
                  </Link>
                )}
              </nav>
            )}
          </>
        )}
      </section>
    </>
  );
}
