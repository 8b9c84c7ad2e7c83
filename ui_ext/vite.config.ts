import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { defineConfig, type Plugin } from "vite";

// Swagger UI's files for the API's /docs, copied from the npm package so the docs need no CDN (they work offline).
function docsAssets(): Plugin {
  const dist = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  return {
    name: "reelflow-docs-assets",
    apply: "build",
    generateBundle() {
      for (const name of ["swagger-ui-bundle.js", "swagger-ui.css"])
        this.emitFile({ type: "asset", fileName: `docs-assets/${name}`, source: readFileSync(join(dist, name)) });
    },
  };
}

// The panel is served by the reelflow API at "/", so assets use absolute paths. `npm run dev` proxies
// the API to a `reelflow serve` on port 8000.
export default defineConfig({
  plugins: [docsAssets()],
  // The panel runs on Preact's React-compatible layer (about 10 KiB gzip instead of react-dom's 60), which keeps its
  // JavaScript within issue 15's budget; TypeScript still checks against @types/react.
  resolve: {
    alias: [
      { find: /^react-dom\/client$/, replacement: "preact/compat/client" },
      { find: /^react-dom$/, replacement: "preact/compat" },
      { find: /^react\/jsx-runtime$/, replacement: "preact/jsx-runtime" },
      { find: /^react\/jsx-dev-runtime$/, replacement: "preact/jsx-dev-runtime" },
      { find: /^react$/, replacement: "preact/compat" },
    ],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    rollupOptions: {
      // @tanstack/react-query marks its modules "use client" for React Server Components, which a panel never has.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
});
