/** Shown while a signed-in page loads (browse and listing pages render whole: they work without JS). */
export default function Loading() {
  return (
    <p role="status" className="text-slate-700">
      Loading…
    </p>
  );
}
