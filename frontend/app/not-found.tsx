import Link from "next/link";

export default function NotFound() {
  return (
    <>
      <h1 className="text-2xl font-bold">Not found</h1>
      <p className="mt-2">
        This page does not exist.{" "}
        <Link href="/" className="text-blue-800 underline">
          Browse listings
        </Link>
      </p>
    </>
  );
}
