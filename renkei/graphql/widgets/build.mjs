// Bundle src/index.js into static/renkei/widgets.js (committed). Deterministic: same sources,
// same bytes. The first line records the digest of the sources (see bundle.py, which
// computes it the same way; tests/graphql/widgets compares the two).
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const ROOT = dirname(fileURLToPath(import.meta.url));
const OUTFILE = join(ROOT, "static", "renkei", "widgets.js");
const TOP_LEVEL = ["package.json", "package-lock.json", "build.mjs"];

function walk(relative) {
  const found = [];
  for (const entry of readdirSync(join(ROOT, relative), { withFileTypes: true })) {
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory()) found.push(...walk(path));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}

/** The files that determine the bundle, sorted by relative posix path (as UTF-8 bytes). */
function sources() {
  return [...TOP_LEVEL, ...walk("src")].sort((a, b) =>
    Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")),
  );
}

/** sha256 over `relpath \0 bytes \0` for each source, in order (same as bundle.source_digest). */
function sourceDigest() {
  const hash = createHash("sha256");
  for (const relpath of sources()) {
    hash.update(Buffer.from(relpath, "utf8"));
    hash.update(Buffer.from([0]));
    hash.update(readFileSync(join(ROOT, relpath)));
    hash.update(Buffer.from([0]));
  }
  return hash.digest("hex");
}

async function build() {
  const header = `/*! renkei-widgets sources:sha256=${sourceDigest()} */\n`;
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ["src/index.js"],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2020",
    minify: true,
    sourcemap: false,
    legalComments: "eof", // keeps Chart.js's MIT notice (and @kurkle/color's) at the end
    charset: "ascii", // embedding pages are not always UTF-8
    loader: { ".graphql": "text" },
    write: false,
    logLevel: "warning",
  });
  const [output] = result.outputFiles;
  mkdirSync(dirname(OUTFILE), { recursive: true });
  writeFileSync(OUTFILE, Buffer.concat([Buffer.from(header, "utf8"), Buffer.from(output.contents)]));
  console.log(`wrote ${OUTFILE} (${output.contents.length + header.length} bytes)`);
}

await build();
