import { apiBaseUrl } from "@/lib/config";

export const dynamic = "force-dynamic";

export default async function BrowsePage() {
  const res = await fetch(`${apiBaseUrl()}/api/marketplace/listings`, { cache: "no-store" });
  const page = (await res.json()) as { items: { id: string; title: string }[]; total: number };
  return (
    <>
      <h1 className="text-2xl font-bold">Listings</h1>
      <p>{page.total} listings</p>
      <ul>
        {page.items.map((l) => (
          <li key={l.id}>{l.title}</li>
        ))}
      </ul>
    </>
  );
}
