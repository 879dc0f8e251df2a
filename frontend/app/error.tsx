"use client";

export default function ErrorPage({ reset }: { error: Error; reset: () => void }) {
  return (
    <div role="alert" className="rounded border border-red-700 bg-red-50 p-4 text-red-900">
      <h1 className="text-xl font-bold">Something went wrong</h1>
      <p className="mt-2">The page could not be shown. Try again in a moment.</p>
      <button type="button" onClick={reset} className="mt-3 underline">
        Try again
      </button>
    </div>
  );
}
