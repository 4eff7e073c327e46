// deploy.dockerfile: docker cannot run here, so this reads the Dockerfile instead.
//  - Every COPY from the build context names files that exist and .dockerignore keeps, and
//    the context keeps everything the CMake build reads.
//  - Every COPY --from=build copies a binary the CMake sources build at that path: the
//    binary name comes from a smig_binary()/add_executable() call in the CMakeLists.txt of
//    that directory, which add_subdirectory() reaches from the root. A binary still missing
//    from the CMake sources (say, a service not written yet) fails the check.
//  - The stages are Debian bookworm, the build uses the default preset, the image runs as
//    a numeric non-root user.
//   node tests/deploy/check_dockerfile.mjs
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Failures, repo } from "./lib.mjs";

// Instructions as {cmd, args, flags, line}, continuation lines joined.
export function parseDockerfile(file = path.join(repo, "Dockerfile")) {
  const out = [];
  let buf = "";
  let start = 0;
  for (const [i, raw] of readFileSync(file, "utf8").split("\n").entries()) {
    if (!buf && (/^\s*#/.test(raw) || !raw.trim())) continue;
    if (!buf) start = i + 1;
    if (/^\s*#/.test(raw)) continue;  // comments inside a continued RUN
    buf += raw.replace(/\\\s*$/, " ");
    if (/\\\s*$/.test(raw)) continue;
    const [cmd, ...rest] = buf.trim().split(/\s+/);
    let args = rest;
    if (buf.trim().slice(cmd.length).trim().startsWith("[")) args = JSON.parse(buf.trim().slice(cmd.length));
    const flags = Object.fromEntries(args.filter((a) => a.startsWith("--")).map((a) => a.slice(2).split("=")));
    out.push({ cmd: cmd.toUpperCase(), args: args.filter((a) => !a.startsWith("--")), flags, line: start, text: buf.trim() });
    buf = "";
  }
  return out;
}

// Stages: [{name, from, instructions}]
export function stages(instructions) {
  const list = [];
  for (const ins of instructions) {
    if (ins.cmd === "FROM") {
      const as = ins.args.findIndex((a) => a.toUpperCase() === "AS");
      list.push({ from: ins.args[0], name: as >= 0 ? ins.args[as + 1] : String(list.length), instructions: [], line: ins.line });
    } else if (list.length) {
      list.at(-1).instructions.push(ins);
    }
  }
  return list;
}

// The binaries the final stage copies out of the build: [{name, dir, line}], dir relative
// to the build tree (the same as the source directory that defines it).
export function copiedBinaries(list, buildDirInStage) {
  const out = [];
  for (const ins of list.at(-1).instructions) {
    if (ins.cmd !== "COPY" || !ins.flags.from) continue;
    for (const src of ins.args.slice(0, -1)) {
      const rel = path.posix.relative(buildDirInStage, src);
      out.push({ src, rel, name: path.posix.basename(rel), dir: path.posix.dirname(rel), line: ins.line, from: ins.flags.from });
    }
  }
  return out;
}

// .dockerignore as a predicate on repo-relative paths (last matching pattern wins).
function dockerignore() {
  const file = path.join(repo, ".dockerignore");
  const rules = existsSync(file)
    ? readFileSync(file, "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    : [];
  const compiled = rules.map((r) => {
    const negate = r.startsWith("!");
    const pat = path.posix.normalize((negate ? r.slice(1) : r).replace(/^\//, ""));
    const re = pat.split("/").map((seg) => (seg === "**" ? "(?:.*)" : seg.replace(/[.+^${}()|\\]/g, "\\$&")
      .replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]"))).join("/").replace(/\(\?:\.\*\)\//g, "(?:.*/)?");
    return { negate, re: new RegExp(`^${re}$`) };
  });
  return (rel) => {
    const parts = rel.split("/");
    let ignored = false;
    for (let n = 1; n <= parts.length; n++) {
      const prefix = parts.slice(0, n).join("/");
      for (const { negate, re } of compiled) if (re.test(prefix)) ignored = !negate;
      if (ignored) return true;  // an excluded directory takes everything under it
    }
    return ignored;
  };
}

// CMake: {dirs reached by add_subdirectory from the root, binary name -> [dirs defining it]}
export function cmakeGraph() {
  const reached = [];
  const binaries = new Map();
  const queue = [""];
  while (queue.length) {
    const dir = queue.shift();
    const file = path.join(repo, dir, "CMakeLists.txt");
    if (!existsSync(file)) continue;
    reached.push(dir);
    const text = readFileSync(file, "utf8").replace(/#.*$/gm, "");
    for (const m of text.matchAll(/\badd_subdirectory\s*\(\s*([^\s)]+)/g)) queue.push(path.posix.join(dir, m[1]));
    const includes = [...text.matchAll(/\binclude\s*\(\s*\$\{CMAKE_CURRENT_(?:SOURCE|LIST)_DIR\}\/([^\s)]+)/g)]
      .map((m) => readFileSync(path.join(repo, dir, m[1]), "utf8").replace(/#.*$/gm, ""));
    for (const t of [text, ...includes]) {
      for (const m of t.matchAll(/\b(?:smig_binary|add_executable)\s*\(\s*([A-Za-z0-9_.+-]+)/g)) {
        binaries.set(m[1], [...(binaries.get(m[1]) ?? []), dir]);
      }
    }
  }
  return { reached, binaries };
}

// The default preset's build tree, relative to the source tree ("build").
export function presetBuildDir() {
  const presets = JSON.parse(readFileSync(path.join(repo, "CMakePresets.json"), "utf8"));
  const p = presets.configurePresets.find((c) => c.name === "default");
  return p.binaryDir.replace("${sourceDir}/", "");
}

// The build tree inside the build stage: its WORKDIR (the sources) plus the preset's dir.
export function buildTreeInImage(list) {
  const build = list.find((s) => s.instructions.some((i) => i.cmd === "RUN" && /cmake --build --preset default/.test(i.text)));
  const workdir = build?.instructions.filter((i) => i.cmd === "WORKDIR").at(-1)?.args[0] ?? "/src";
  return path.posix.join(workdir, presetBuildDir());
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const f = new Failures("deploy.dockerfile");
  const list = stages(parseDockerfile());
  const ignored = dockerignore();
  f.expect(list.length >= 2, "want a multi-stage build (build, runtime)");
  for (const s of list) f.expect(/^debian:bookworm(-slim)?$/.test(s.from), `stage ${s.name} (line ${s.line}): FROM ${s.from}, want debian:bookworm`);

  const build = list.find((s) => s.instructions.some((i) => i.cmd === "RUN" && /cmake --build --preset default/.test(i.text)));
  if (f.expect(build, "no stage runs cmake --build --preset default")) {
    f.expect(build.instructions.some((i) => i.cmd === "RUN" && /cmake --preset default/.test(i.text)), "the build stage never runs cmake --preset default");
    const workdir = build.instructions.filter((i) => i.cmd === "WORKDIR").at(-1)?.args[0];
    f.expect(workdir, "the build stage has no WORKDIR (the source tree)");

    // The build context: what COPY takes must exist and survive .dockerignore, and the
    // sources the CMake build reads must survive it too.
    const { reached, binaries } = cmakeGraph();
    for (const ins of build.instructions.filter((i) => i.cmd === "COPY" && !i.flags.from)) {
      for (const src of ins.args.slice(0, -1)) {
        const rel = path.posix.normalize(src).replace(/^\.?\/?/, "") || ".";
        f.expect(existsSync(path.join(repo, rel)), `line ${ins.line}: COPY ${src}: not in the repository`);
        f.expect(rel === "." || !ignored(rel), `line ${ins.line}: COPY ${src}: excluded by .dockerignore`);
      }
    }
    const needed = ["CMakeLists.txt", "CMakePresets.json", "cmake", ...reached.filter(Boolean)];
    for (const n of needed) f.expect(!ignored(n), `.dockerignore excludes ${n}, which the CMake build reads`);
    for (const top of readdirSync(path.join(repo, "proto"))) f.expect(!ignored(`proto/${top}`), `.dockerignore excludes proto/${top}`);

    // The binaries copied out of the build.
    const buildTree = buildTreeInImage(list);
    const copied = copiedBinaries(list, buildTree);
    f.expect(copied.length > 0, "the final stage copies nothing from the build");
    for (const c of copied) {
      f.expect(c.from === build.name, `line ${c.line}: COPY --from=${c.from}, want --from=${build.name}`);
      if (!f.expect(!c.rel.startsWith(".."), `line ${c.line}: ${c.src} is not under the build tree ${buildTree}`)) continue;
      const where = binaries.get(c.name);
      if (!where) {
        f.add(`line ${c.line}: ${c.name}: no smig_binary(${c.name} ...) in the CMake sources reached from the root CMakeLists.txt`);
      } else if (!where.includes(c.dir)) {
        f.add(`line ${c.line}: ${c.name} is built in ${where.map((d) => `${presetBuildDir()}/${d}`).join(", ")}, the Dockerfile copies ${c.src}`);
      }
    }
    console.log(`deploy.dockerfile: copies ${copied.map((c) => c.name).join(", ")}`);
  }

  const final = list.at(-1);
  const user = final?.instructions.filter((i) => i.cmd === "USER").at(-1)?.args[0] ?? "";
  f.expect(/^[1-9]\d*(:\d+)?$/.test(user), `the final stage must run as a numeric non-root USER (got "${user}")`);
  f.finish("every COPY source exists or is a binary the CMake build defines at that path");
}
