import type { Metadata, Viewport } from "next";

import { Nav } from "@/components/Nav";

import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Marketplace", template: "%s · Marketplace" },
  description: "Buy and sell second-hand things.",
};

export const viewport: Viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }: Readonly<{ children: React.ReactNode }>) {
  return (
    <html lang="en">
      <body className="min-h-screen bg-white text-slate-900 antialiased">
        <a
          href="#main"
          className="sr-only focus:not-sr-only focus:absolute focus:bg-white focus:p-2 focus:text-blue-800"
        >
          Skip to content
        </a>
        <header className="border-b border-slate-300">
          <Nav />
        </header>
        <main id="main" className="mx-auto max-w-4xl p-4">
          {children}
        </main>
      </body>
    </html>
  );
}
