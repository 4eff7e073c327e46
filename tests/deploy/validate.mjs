// deploy.schema: every rendered document validates against the Kubernetes OpenAPI schemas
// (npm kubernetes-models; the CRDs from @kubernetes-models/prometheus-operator and
// @kubernetes-models/cert-manager), and has no field those schemas do not know. A kind
// with no schema is a failure, never skipped.
//   node tests/deploy/validate.mjs FILE.yaml|DIR...   (DIR: every .yaml in it)
//
// Unknown fields: the schemas do not forbid extra properties, so a typo such as
// "contianers" passes plain validation. The validators are generated code that reads
// every property its schema declares (and enumerates the keys of maps), so each object is
// handed to them behind a Proxy that records what they read. A key of an object the
// validator looked into, but never read, is a field the schema does not have. Objects the
// validator never looks into (free-form ones, or those under an unknown key, which is
// reported already) are not judged.
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Failures, describe, importDep, parseYamlDocs } from "./lib.mjs";

// apiVersion -> the module holding its models.
function modelModule(apiVersion) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  if (group === "cert-manager.io") return `@kubernetes-models/cert-manager/${apiVersion}`;
  return group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
}

function track(value, at, records) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v, i) => track(v, `${at}[${i}]`, records));
  const rec = { at, target: null, read: new Set(), enumerated: false };
  rec.target = Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, track(v, at ? `${at}.${k}` : k, records)]));
  records.push(rec);
  return new Proxy(rec.target, {
    get(t, key, receiver) {
      if (typeof key === "string") rec.read.add(key);
      return Reflect.get(t, key, receiver);
    },
    has(t, key) {
      if (typeof key === "string") rec.read.add(key);
      return Reflect.has(t, key);
    },
    ownKeys(t) {
      rec.enumerated = true;
      return Reflect.ownKeys(t);
    },
  });
}

// Returns the problems of one document, as strings naming the field.
export async function problems(doc) {
  if (!doc.apiVersion || !doc.kind) return ["no apiVersion or kind"];
  let model;
  try {
    model = (await import(modelModule(doc.apiVersion)))[doc.kind];
  } catch {
    model = undefined;
  }
  if (!model) return [`no schema for ${doc.apiVersion} ${doc.kind} (add its models package)`];
  const records = [];
  const out = [];
  try {
    model.prototype.validate.call(track(doc, "", records));
  } catch (e) {
    if (!e.errors) throw e;
    for (const err of e.errors) {
      out.push(`schema: ${err.instancePath || "/"} ${err.message ?? err.keyword} ${JSON.stringify(err.params)}`);
    }
  }
  for (const rec of records) {
    if (rec.enumerated || rec.read.size === 0) continue;
    for (const key of Object.keys(rec.target)) {
      if (!rec.read.has(key)) out.push(`unknown field ${rec.at ? `${rec.at}.` : ""}${key}`);
    }
  }
  return out;
}

export async function validateFiles(files) {
  const results = [];
  for (const file of files) {
    for (const doc of await parseYamlDocs(readFileSync(file, "utf8"), file)) {
      results.push({ file, doc, problems: await problems(doc) });
    }
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await importDep("kubernetes-models");
  const files = process.argv.slice(2).flatMap((a) => (statSync(a).isDirectory()
    ? readdirSync(a).filter((n) => n.endsWith(".yaml")).sort().map((n) => path.join(a, n))
    : [a]));
  if (!files.length) {
    console.error("usage: validate.mjs FILE.yaml|DIR...");
    process.exit(2);
  }
  const f = new Failures("deploy.schema");
  const results = await validateFiles(files);
  for (const r of results) for (const p of r.problems) f.add(`${r.file}: ${describe(r.doc)}: ${p}`);
  f.expect(results.length > 0, "no documents to validate");
  f.finish(`${results.length} documents in ${files.length} file(s) match their schemas, no unknown fields`);
}
