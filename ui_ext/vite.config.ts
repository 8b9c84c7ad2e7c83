import { defineConfig } from "vite";

// The panel is served by the reelflow API at "/", so assets use absolute paths. `npm run dev` proxies
// the API to a `reelflow serve` on port 8000.
export default defineConfig({
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
