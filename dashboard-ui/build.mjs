// Bundles src/main.js (and the CSS it imports) into the Python package, so the
// plugin serves everything itself and the page loads nothing from another host.
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, "..", "plugins", "ccproxy_dashboard", "static");

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const result = await esbuild.build({
  entryPoints: { dashboard: join(here, "src", "main.js") },
  outdir,
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "eof",
  metafile: true,
  logLevel: "warning",
});

for (const [file, info] of Object.entries(result.metafile.outputs)) {
  console.log(`${file}  ${(info.bytes / 1024).toFixed(1)} KiB`);
}
