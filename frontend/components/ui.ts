/** Shared Tailwind class lists (contrast >= 4.5:1, visible focus rings). */
export const input =
  "mt-1 block w-full rounded border border-slate-400 bg-white px-3 py-2 text-base text-slate-900 focus:outline-none focus:ring-2 focus:ring-blue-700";
export const label = "block text-sm font-medium text-slate-800";
export const button =
  "inline-flex items-center justify-center rounded bg-blue-700 px-4 py-2 font-medium text-white hover:bg-blue-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-blue-700 focus-visible:ring-offset-2 disabled:cursor-not-allowed disabled:bg-slate-500";
export const secondaryButton =
  "inline-flex items-center justify-center rounded border border-slate-400 bg-white px-4 py-2 font-medium text-slate-900 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-blue-700";
export const dangerButton =
  "inline-flex items-center justify-center rounded bg-red-700 px-4 py-2 font-medium text-white hover:bg-red-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-red-700 focus-visible:ring-offset-2";
export const link = "text-blue-800 underline-offset-2 hover:underline focus-visible:outline-2";
