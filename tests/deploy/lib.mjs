// Shared by the deploy checks: paths, YAML, running tools, and one way to fail.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const deployDir = path.join(repo, "deploy");

// The kustomizations the checks render: the base and every overlay.
export function kustomizations() {
  const overlays = path.join(deployDir, "k8s/overlays");
  return [
    { name: "base", dir: path.join(deployDir, "k8s/base") },
    ...readdirSync(overlays).sort().map((o) => ({ name: o, dir: path.join(overlays, o) })),
  ];
}

// Collects failures so that one run reports all of them; exit code 1 if any.
export class Failures {
  constructor(check) {
    this.check = check;
    this.list = [];
  }
  add(msg) {
    this.list.push(msg);
  }
  expect(cond, msg) {
    if (!cond) this.add(msg);
    return cond;
  }
  finish(okMessage) {
    if (this.list.length) {
      for (const m of this.list) console.error(`${this.check}: FAIL: ${m}`);
      console.error(`${this.check}: ${this.list.length} failure(s)`);
      process.exit(1);
    }
    console.log(`${this.check}: ok: ${okMessage}`);
  }
}

// A tool the checks cannot do without: a missing one fails the test, never skips it.
export function requireTool(check, tool, hint) {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "pipe" });
  } catch {
    console.error(`${check}: FAIL: ${tool} is not installed (${hint})`);
    process.exit(1);
  }
}

export function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...opts });
}

// The node_modules that `npm ci` (the deploy.npm_ci test) installs beside this file.
export async function importDep(name) {
  try {
    return await import(name);
  } catch (e) {
    console.error(`cannot load npm package ${name}: run \`npm ci\` in tests/deploy (${e.message})`);
    process.exit(1);
  }
}

export async function parseYamlDocs(text, where) {
  const YAML = await importDep("yaml");
  return YAML.parseAllDocuments(text).map((d, i) => {
    if (d.errors.length) throw new Error(`${where}: document ${i + 1}: ${d.errors[0].message}`);
    return d.toJS();
  }).filter((d) => d !== null);
}

export async function readYaml(file) {
  const YAML = await importDep("yaml");
  return YAML.parse(readFileSync(file, "utf8"));
}

// The rendered manifests of one kustomization, written by render.mjs into renderDir.
export async function renderedDocs(renderDir, name) {
  const file = path.join(renderDir, `${name}.yaml`);
  if (!existsSync(file)) {
    console.error(`${file} is missing: the deploy.render test writes it (ctest -L deploy runs it first)`);
    process.exit(1);
  }
  return parseYamlDocs(readFileSync(file, "utf8"), file);
}

export const describe = (doc) => `${doc?.kind ?? "?"}/${doc?.metadata?.name ?? "?"}`;
