import { defineConfig } from "vite";

// The console is served by the gateway at "/", on the same origin as the APIs, so the
// refresh cookie (SameSite=Strict, httpOnly) reaches the token endpoint. `npm run dev`
// proxies the API prefixes to a running `jinji up`.
const api = process.env.JINJI_URL ?? "http://127.0.0.1:8000";
const prefixes = ["/identity", "/tenants", "/ingestion", "/analytics", "/audit"];

export default defineConfig({
  oxc: { jsx: { runtime: "automatic" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No inline assets: everything loads from 'self' under a strict CSP.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: Object.fromEntries(prefixes.map((p) => [p, { target: api, changeOrigin: false }])),
  },
});
