// deploy.runtime_libs: the runtime stage of the Dockerfile installs the Debian packages
// that own the shared libraries its binaries load (directly, or through apt's dependencies),
// and none that no binary loads. The binaries are the ones this
// build tree holds at the paths the Dockerfile copies from (ldd, then dpkg -S: this
// machine is Debian bookworm too, like the image).
//   node tests/deploy/check_runtime_libs.mjs BUILD_DIR
import { existsSync } from "node:fs";
import path from "node:path";
import { Failures, repo, requireTool, run } from "./lib.mjs";
import { buildTreeInImage, copiedBinaries, parseDockerfile, stages } from "./check_dockerfile.mjs";

// In debian:bookworm-slim already (dpkg and apt depend on them).
const baseImage = new Set(["libc6", "libgcc-s1", "libstdc++6", "zlib1g"]);

const buildDir = process.argv[2] && path.resolve(process.argv[2]);
if (!buildDir) {
  console.error("usage: check_runtime_libs.mjs BUILD_DIR");
  process.exit(2);
}
const f = new Failures("deploy.runtime_libs");
requireTool(f.check, "ldd", "Debian libc-bin");
requireTool(f.check, "dpkg-query", "Debian dpkg");

const list = stages(parseDockerfile());
const final = list.at(-1);
const installed = new Set();
for (const ins of final.instructions.filter((i) => i.cmd === "RUN")) {
  for (const m of ins.text.matchAll(/apt-get install((?:\s+[^&;|]+)+)/g)) {
    for (const tok of m[1].trim().split(/\s+/)) if (!tok.startsWith("-")) installed.add(tok);
  }
}
f.expect(installed.size > 0, "the runtime stage installs no packages");

function owner(lib) {
  // usrmerge: dpkg knows some libraries under /lib, ldd reports /usr/lib, or the reverse.
  const alt = lib.startsWith("/usr/") ? lib.slice(4) : `/usr${lib}`;
  for (const p of [lib, alt]) {
    try {
      return run("dpkg-query", ["-S", p]).split(":")[0].trim();
    } catch {
      // try the other spelling
    }
  }
  return null;
}

const needed = new Map();  // package -> binaries needing it
let missing = 0;
for (const c of copiedBinaries(list, buildTreeInImage(list))) {
  const file = path.join(buildDir, c.rel);
  if (!f.expect(existsSync(file), `${c.name}: ${file} is not built (the Dockerfile copies ${c.src})`)) {
    missing++;
    continue;
  }
  for (const line of run("ldd", [file]).split("\n")) {
    const m = /=>\s*(\S+)/.exec(line);
    if (!m) continue;
    if (m[1] === "not") {
      f.add(`${c.name}: ${line.trim()}`);
      continue;
    }
    if (m[1].startsWith(buildDir) || m[1].startsWith(repo)) {
      f.add(`${c.name}: loads ${m[1]} from the build tree; the image has only Debian's libraries`);
      continue;
    }
    const pkg = owner(m[1])?.replace(/:[a-z0-9]+$/, "");  // without the architecture
    if (!f.expect(pkg, `${c.name}: no Debian package owns ${m[1]}`)) continue;
    needed.set(pkg, new Set([...(needed.get(pkg) ?? []), c.name]));
  }
}
// What apt brings along with the installed packages (ldd lists indirect libraries too).
const pulledIn = new Set();
if (installed.size > 0) {
  const deps = run("apt-cache", ["depends", "--recurse", "--no-recommends", "--no-suggests",
    "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", ...installed]);
  for (const line of deps.split("\n")) {
    const m = /^\s*(?:\|?(?:Pre)?Depends:\s*)?<?([a-z0-9][a-z0-9+.-]+)>?/.exec(line);
    if (m) pulledIn.add(m[1].replace(/:[a-z0-9]+$/, ""));
  }
}
for (const [pkg, bins] of needed) {
  f.expect(installed.has(pkg) || baseImage.has(pkg) || pulledIn.has(pkg),
    `${pkg} (needed by ${[...bins].join(", ")}) is not installed by the runtime stage`);
}
// Only with every binary at hand can a package be called unneeded.
for (const pkg of missing ? [] : installed) {
  f.expect(needed.has(pkg), `the runtime stage installs ${pkg}, which no copied binary loads`);
}
f.finish(`the runtime stage's ${installed.size} packages (and their dependencies) cover every library the binaries load`);
