// deploy.live_prometheus: a real Prometheus (Debian's) scrapes a real edge demo, and every
// query the dashboard and the alerts make returns data.
//
//   node tests/deploy/live_prometheus.mjs        (root: network namespaces; else exit 77)
//
// 1. python3 -m smigbed.edge_demo (scripts/smigbed) --keep-running --scenario tests/deploy/live_scenario.yaml
//    (two edges, one automatic migration); it writes OUT/endpoints.json when the drive ends
//    and keeps its processes up until SIGINT.
// 2. Prometheus runs in the demo's air namespace (the only place its /metrics are
//    reachable) with deploy/prometheus/rules.yaml, scraping every endpoint each second:
//    job per service kind (as the ServiceMonitor names them), instance = the node's name.
//    The test waits until every target is up, has 5+ samples in the last minute (so rate()
//    over 1m has two), and every rule has been evaluated.
// 3. Every query is taken mechanically from the files: each panel target's expr, each
//    templating query and annotation expr of deploy/grafana/smig-migrations.json, each
//    alert and record expr of deploy/prometheus/rules.yaml. Grafana's variables become the
//    values in GRAFANA_VARS below. Each query must answer status "success" with at least
//    one series; NaN values count as data (a quantile of no events in the window) and are
//    shown. A query whose top-level operator is a comparison (an alert, the migrations
//    annotation: filters that are empty while all is quiet) is checked in its `bool` form
//    instead: the same expression with `bool` after that operator, which keeps every series
//    and the same vector matching, so it is empty only if a side has no series or the two
//    sides do not match; the original must still answer "success". Besides, every vector
//    selector (metric name and matchers) in every query must select at least one series,
//    and Prometheus must report every rule with health "ok".
//    Series the demo cannot give (NOT_IN_DEMO: the replicated control plane's, since the
//    demo runs without etcd) excuse an empty answer: it is listed as NOT CHECKED, not failed.
// 4. Every /metrics endpoint of endpoints.json passes `promtool check metrics` (any output
//    is a complaint).
// 5. Cleanup always: SIGINT to the demo (it stops its processes and deletes its
//    namespaces), Prometheus killed, OUT removed unless something failed.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { importDep, repo } from "./lib.mjs";

const NAME = "deploy.live_prometheus";
// What the queries' Grafana variables become. 1m: Grafana's $__rate_interval is at least
// four scrape intervals, and the ServiceMonitor scrapes every 15s; 1h: the dashboard's
// default time range (now-1h), what $__range is when it opens.
const GRAFANA_VARS = {
  __rate_interval: "1m",
  __interval: "15s",
  __interval_ms: "15000",
  __range: "1h",
  __range_s: "3600",
  __range_ms: "3600000",
};
const PROM_ADDR = "10.199.0.1:9090";  // the air namespace's address on the management bridge
const JOBS = { proximity: "smig-proximity", decision: "smig-decision", migrator: "smig-migrator" };
const jobOf = (node) => JOBS[node] ?? "smig-dataplane";  // vehicle, edge-N
const BINARIES = ["dataplane/daemon/smig-dataplane", "services/proximity/smig-proximity",
  "services/decision/smig-decision", "services/migrator/smig-migrator", "tools/smigctl/smigctl",
  "tools/linkemu/smig-linkemu"];

// Series the edge demo cannot give: it runs the services without a store (etcd), so no
// replica elects, takes over or reconciles, and no SMM leader is ever deposed, so no edge
// refuses a call. A query that selects one of these must still run ("success"); when it is
// empty, or the selector has no series, it is listed as NOT CHECKED with the reason rather
// than failed. tests/deploy/rules_test.yaml proves the alerts on them with promtool; a demo
// with etcd (not yet in scripts/smigbed) would check them here.
const NOT_IN_DEMO = new Map([
  ...["smig_leader", "smig_leader_changes_total", "smig_store_errors_total", "smig_takeover_duration_seconds",
    "smig_reconcile_actions_total", "smig_reconcile_duration_seconds"].map((m) => [m, "needs a store (etcd); the edge demo runs without one"]),
  ["smig_agent_fenced_requests_total", "needs a deposed SMM leader's call (no series until an edge refuses one)"],
]);
const notInDemo = (selector) => {
  const name = /^[a-zA-Z_:][\w:]*/.exec(selector)?.[0] ?? "";
  return NOT_IN_DEMO.get(name) ?? NOT_IN_DEMO.get(name.replace(/_(bucket|count|sum)$/, "")) ?? null;
};
const notChecked = [];  // what NOT_IN_DEMO kept from failing

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => console.log(msg);
const results = [];  // {ok, what}
function report(ok, what, detail = "") {
  results.push({ ok, what });
  console.log(`${ok ? "PASS" : "FAIL"}  ${what}${detail ? `: ${detail}` : ""}`);
}

// ------------------------------------------------------------------ PromQL, just enough
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool",
  "offset", "and", "or", "unless", "inf", "nan", "atan2"]);
const COMPARISONS = new Set(["==", "!=", ">=", "<=", ">", "<"]);

// Tokens {t: kind, v: text, s: start, e: end}; kinds ident, str, num, op.
function tokenize(src) {
  const out = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === "#") { while (i < src.length && src[i] !== "\n") i++; continue; }
    let m;
    const rest = src.slice(i);
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === "\\" && c !== "`" ? 2 : 1;
      if (j >= src.length) throw new Error(`unterminated string at ${i} in ${src}`);
      out.push({ t: "str", v: src.slice(i, j + 1), s: i, e: j + 1 });
      i = j + 1;
    } else if ((m = /^(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?[a-zA-Z0-9]*)/.exec(rest)) && /[0-9.]/.test(c)) {
      out.push({ t: "num", v: m[0], s: i, e: i + m[0].length });
      i += m[0].length;
    } else if ((m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest))) {
      out.push({ t: "ident", v: m[0], s: i, e: i + m[0].length });
      i += m[0].length;
    } else if ((m = /^(?:==|!=|>=|<=|=~|!~|[-+*/%^<>=(){}\[\],@])/.exec(rest))) {
      out.push({ t: "op", v: m[0], s: i, e: i + m[0].length });
      i += m[0].length;
    } else {
      throw new Error(`cannot read ${JSON.stringify(rest.slice(0, 20))} in ${src}`);
    }
  }
  return out;
}

// The vector selectors of an expression, as text: `name{matchers}` or `name` or `{matchers}`.
function selectors(src) {
  const toks = tokenize(src);
  const out = [];
  for (let i = 0; i < toks.length; i++) {
    const tk = toks[i];
    if (tk.t === "ident" && ["by", "without", "on", "ignoring", "group_left", "group_right"].includes(tk.v)) {
      if (toks[i + 1]?.v === "(") {  // a label list: skip it
        i++;
        while (i < toks.length && toks[i].v !== ")") i++;
      }
      continue;
    }
    // Not a name: a keyword, a function or aggregation call, or `sum by (...) (...)`.
    const isName = tk.t === "ident" && !KEYWORDS.has(tk.v.toLowerCase()) && toks[i + 1]?.v !== "("
      && !["by", "without"].includes(toks[i + 1]?.v);
    if (!isName && !(tk.v === "{" && tk.t === "op")) continue;
    let end = tk.e;
    let j = i;
    if (isName && toks[i + 1]?.v === "{") j = i + 1;
    if (toks[j].v === "{") {
      while (j < toks.length && toks[j].v !== "}") j++;
      if (j >= toks.length) throw new Error(`unclosed { in ${src}`);
      end = toks[j].e;
    }
    out.push(src.slice(tk.s, end));
    i = j;
  }
  return out;
}

// {op, form}: the expression with `bool` after its top-level comparison, or null if its
// top-level operator is not a comparison (or already has bool). Throws on what this
// simple reading cannot judge (two comparisons, or and/or/unless at the top level).
function boolForm(src) {
  const toks = tokenize(src);
  let depth = 0;
  const found = [];
  for (let i = 0; i < toks.length; i++) {
    const tk = toks[i];
    if (tk.t === "op" && "([{".includes(tk.v)) depth++;
    else if (tk.t === "op" && ")]}".includes(tk.v)) depth--;
    else if (depth === 0 && tk.t === "op" && COMPARISONS.has(tk.v)) found.push(i);
    else if (depth === 0 && tk.t === "ident" && ["and", "or", "unless"].includes(tk.v)) {
      throw new Error(`set operator ${tk.v} at the top level: not supported by this check`);
    }
  }
  if (found.length === 0) return null;
  if (found.length > 1) throw new Error("more than one top-level comparison: not supported by this check");
  const op = toks[found[0]];
  if (toks[found[0] + 1]?.v === "bool") return null;
  return { op: op.v, form: `${src.slice(0, op.e)} bool${src.slice(op.e)}` };
}

function substituteVars(expr) {
  return expr.replace(/\$(?:\{(\w+)(?::\w+)?\}|(\w+))/g, (whole, a, b) => {
    const v = GRAFANA_VARS[a ?? b];
    if (v === undefined) throw new Error(`Grafana variable ${whole} has no substitute in GRAFANA_VARS`);
    return v;
  });
}

// ------------------------------------------------------------------ the queries
async function collectQueries() {
  const queries = [];  // {where, expr}
  const dash = JSON.parse(readFileSync(path.join(repo, "deploy/grafana/smig-migrations.json"), "utf8"));
  const panels = (dash.panels ?? []).flatMap((p) => (p.type === "row" ? [p, ...(p.panels ?? [])] : [p]));
  for (const p of panels) {
    for (const t of p.targets ?? []) {
      if (typeof t.expr === "string" && t.expr.trim()) {
        queries.push({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr });
      } else {
        queries.push({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: null });
      }
    }
  }
  for (const v of dash.templating?.list ?? []) {
    if (v.type !== "query") continue;  // datasource, custom, constant... query nothing
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    // label_values(m, l), query_result(e): the PromQL inside is what must return data.
    let m;
    const expr = (m = /^\s*query_result\(([\s\S]*)\)\s*$/.exec(q ?? "")) ? m[1]
      : (m = /^\s*label_values\((?:([\s\S]*),\s*)?(\w+)\s*\)\s*$/.exec(q ?? "")) ? (m[1] ?? `{${m[2]}!=""}`)
      : (m = /^\s*metrics\(([\s\S]*)\)\s*$/.exec(q ?? "")) ? `{__name__=~"${m[1]}"}`
      : q;
    queries.push({ where: `variable ${v.name}`, expr: expr || null });
  }
  for (const a of dash.annotations?.list ?? []) {
    if (a.builtIn || a.datasource?.type !== "prometheus") continue;
    queries.push({ where: `annotation "${a.name}"`, expr: a.expr || a.target?.expr || null });
  }
  const YAML = await importDep("yaml");
  const rules = YAML.parse(readFileSync(path.join(repo, "deploy/prometheus/rules.yaml"), "utf8"));
  for (const g of rules.groups ?? []) {
    for (const r of g.rules ?? []) {
      queries.push({ where: r.alert ? `alert ${r.alert}` : `record ${r.record}`, expr: String(r.expr ?? "").trim() || null });
    }
  }
  return queries;
}

// ------------------------------------------------------------------ processes
let demo = null, prom = null, out = null, netns = null, cleaning = null;

function tail(file, n = 40) {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-n).join("\n");
  } catch {
    return `(${file} unreadable)`;
  }
}

const exited = (p) => p.exitCode !== null || p.signalCode !== null;
async function waitExit(p, ms) {
  const end = Date.now() + ms;
  while (!exited(p) && Date.now() < end) await sleep(200);
  return exited(p);
}

function cleanup() {
  cleaning ??= stopAll();
  return cleaning;
}

async function stopAll() {
  if (prom && !exited(prom)) {
    prom.kill("SIGTERM");
    if (!(await waitExit(prom, 15000))) prom.kill("SIGKILL");
  }
  if (demo && !exited(demo)) {
    log(`${NAME}: stopping the edge demo (SIGINT to pid ${demo.pid})`);
    demo.kill("SIGINT");
    if (!(await waitExit(demo, 120000))) {
      report(false, "the edge demo stops within 120 s of SIGINT", "killed; its namespaces may remain");
      demo.kill("SIGKILL");
      await waitExit(demo, 5000);
    } else if (demo.exitCode !== 0 && demo.exitCode !== 77) {
      // The demo exits with its drive's verdict (smigbed.verdict): 1 when a goal was
      // missed. That verdict is not this test's subject; a stop without a verdict is.
      const said = existsSync(path.join(out, "demo.log")) ? readFileSync(path.join(out, "demo.log"), "utf8") : "";
      if (demo.exitCode === 1 && /^\s*verdict: FAIL/m.test(said)) {
        log(`${NAME}: the edge demo stopped after its summary; its drive's verdict is FAIL (not judged here):\n` +
            said.split("\n").filter((l) => /^\s*(FAIL|verdict:)/.test(l)).join("\n"));
      } else {
        report(false, "the edge demo exits with its verdict after SIGINT", `exit ${demo.exitCode ?? demo.signalCode}; ${out}/demo.log:\n${tail(path.join(out, "demo.log"))}`);
      }
    }
  }
  if (netns) {
    const left = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout ?? "";
    const prefix = netns.replace(/air$/, "");
    const ours = left.split("\n").map((l) => l.split(" ")[0]).filter((n) => n && n.startsWith(prefix) && /^(air|veh|e\d+)$/.test(n.slice(prefix.length)));
    if (ours.length) report(false, "the edge demo deletes its namespaces", `left: ${ours.join(", ")}`);
  }
}

async function main() {
  let queries;
  try {
    queries = await collectQueries();
    for (const q of queries) {
      if (q.expr === null) continue;
      q.query = substituteVars(q.expr);
      q.bool = boolForm(q.query);
      q.selectors = [...new Set(selectors(q.query))];
    }
  } catch (e) {
    console.error(`${NAME}: FAIL: reading the queries: ${e.message}`);
    process.exit(1);
  }
  if (process.argv.includes("--list")) {  // what would be queried, without running anything
    for (const q of queries) {
      console.log(`${q.where}\n  query:     ${q.query ?? "(none)"}`);
      if (q.bool) console.log(`  bool form: ${q.bool.form}`);
      for (const s of q.selectors ?? []) console.log(`  selector:  ${s}`);
    }
    process.exit(0);
  }
  if (process.getuid?.() !== 0) {
    console.log(`${NAME}: SKIP: needs root (network namespaces)`);
    process.exit(77);
  }
  for (const [tool, hint] of [["prometheus", "apt-get install prometheus"], ["promtool", "apt-get install prometheus"],
    ["curl", "apt-get install curl"], ["ip", "apt-get install iproute2"], ["ffmpeg", "scripts/install-deps"]]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      console.error(`${NAME}: FAIL: ${tool} is not installed (${hint})`);
      process.exit(1);
    }
  }
  const missing = BINARIES.filter((b) => !existsSync(path.join(repo, "build", b)));
  if (missing.length) {
    console.error(`${NAME}: FAIL: the edge demo runs build/: missing ${missing.join(", ")} (scripts/build)`);
    process.exit(1);
  }

  out = mkdtempSync(path.join(os.tmpdir(), "smig-live-prometheus-"));
  log(`${NAME}: output in ${out}`);
  log(`${NAME}: Grafana variables: ${Object.entries(GRAFANA_VARS).map(([k, v]) => `$${k}=${v}`).join(" ")}`);

  // 1. The demo.
  const demoLog = openSync(path.join(out, "demo.log"), "w");
  const pythonPath = [path.join(repo, "scripts"), process.env.PYTHONPATH].filter(Boolean).join(":");
  demo = spawn("/usr/bin/python3", ["-u", "-m", "smigbed.edge_demo", "--keep-running", "--scenario",
    "tests/deploy/live_scenario.yaml", "--out", out], {
    cwd: repo, stdio: ["ignore", demoLog, demoLog], env: { ...process.env, PYTHONPATH: pythonPath } });
  log(`${NAME}: edge demo started (pid ${demo.pid}), waiting for ${out}/endpoints.json`);
  const endpointsFile = path.join(out, "endpoints.json");
  let endpoints = null;
  for (const end = Date.now() + 150000; Date.now() < end && !exited(demo);) {
    if (existsSync(endpointsFile)) {
      try {
        endpoints = JSON.parse(readFileSync(endpointsFile, "utf8"));
        break;
      } catch { /* still being written */ }
    }
    await sleep(500);
  }
  if (!endpoints) {
    report(false, "the edge demo writes endpoints.json within 150 s",
      exited(demo) ? `it exited (${demo.exitCode ?? demo.signalCode})` : "timed out");
    console.log(tail(path.join(out, "demo.log")));
    return;
  }
  netns = endpoints.netns;
  log(`${NAME}: demo up: namespace ${netns}, ${Object.keys(endpoints.metrics).length} /metrics endpoints`);
  console.log(tail(path.join(out, "demo.log"), 200).split("\n").filter((l) => /^\s+[\d.]+ s /.test(l)).join("\n"));
  const migrated = /migration \S+ \[auto\] .*: DONE/.test(readFileSync(path.join(out, "demo.log"), "utf8"));
  report(migrated, "the scenario made an automatic migration (demo log: [auto] ... DONE)");
  const inNs = (args, opts = {}) => spawnSync("ip", ["netns", "exec", netns, ...args], { encoding: "utf8", ...opts });

  // 2. Prometheus.
  const config = {
    global: { scrape_interval: "1s", evaluation_interval: "1s", scrape_timeout: "1s" },
    rule_files: [path.join(repo, "deploy/prometheus/rules.yaml")],
    scrape_configs: [...new Set(Object.keys(endpoints.metrics).map(jobOf))].map((job) => ({
      job_name: job,
      static_configs: Object.entries(endpoints.metrics).filter(([n]) => jobOf(n) === job)
        .map(([node, addr]) => ({ targets: [addr], labels: { instance: node } })),
    })),
  };
  const promConfig = path.join(out, "prometheus.yml");
  writeFileSync(promConfig, JSON.stringify(config, null, 1));  // JSON is YAML
  const promLog = openSync(path.join(out, "prometheus.log"), "w");
  prom = spawn("ip", ["netns", "exec", netns, "prometheus", `--config.file=${promConfig}`,
    `--storage.tsdb.path=${path.join(out, "tsdb")}`, `--web.listen-address=${PROM_ADDR}`],
  { stdio: ["ignore", promLog, promLog] });
  const api = (endpoint, params = {}) => {
    const args = ["curl", "-s", "--max-time", "10"];
    for (const [k, v] of Object.entries(params)) args.push("--data-urlencode", `${k}=${v}`);
    const r = inNs([...args, `http://${PROM_ADDR}/api/v1/${endpoint}`]);
    try {
      return JSON.parse(r.stdout);
    } catch {
      return { status: "unreachable", error: (r.stderr || r.stdout || `curl exit ${r.status}`).trim() };
    }
  };
  const query = (q) => api("query", { query: q });

  // Every target up (the first scrape comes some seconds after the start), then 5 samples
  // in the last minute for each, then every rule evaluated.
  const nodes = Object.keys(endpoints.metrics);
  let state = "";
  const ready = [
    ["every target up", () => {
      const r = query("up == 1");
      const up = new Set((r.data?.result ?? []).map((s) => s.metric.instance));
      state = `up: ${[...up].sort().join(", ") || "none"} (${r.status}${r.error ? `: ${r.error}` : ""})`;
      return nodes.every((n) => up.has(n));
    }],
    ["5 scrapes of every target", () => {
      const r = query("count_over_time(up[1m]) >= 5");
      const got = new Set((r.data?.result ?? []).map((s) => s.metric.instance));
      state = `5+ samples: ${[...got].sort().join(", ") || "none"}`;
      return nodes.every((n) => got.has(n));
    }],
    ["every rule evaluated", () => {
      const r = api("rules");
      const rules = (r.data?.groups ?? []).flatMap((g) => g.rules);
      state = `rules: ${rules.map((x) => `${x.name}=${x.health}`).join(", ") || "none"}`;
      return rules.length > 0 && rules.every((x) => x.health !== "unknown");
    }],
  ];
  for (const [what, check] of ready) {
    let ok = false;
    for (const end = Date.now() + 90000; Date.now() < end && !exited(prom);) {
      if ((ok = check())) break;
      await sleep(1000);
    }
    report(ok, `Prometheus: ${what}`, ok ? "" : `${state}; ${exited(prom) ? "Prometheus exited" : "timed out after 90 s"}; ${out}/prometheus.log:\n${tail(path.join(out, "prometheus.log"), 15)}`);
    if (!ok) return;
  }
  const targets = api("targets").data?.activeTargets ?? [];
  for (const t of targets) {
    report(t.health === "up", `target ${t.labels.job}/${t.labels.instance} (${t.scrapeUrl})`,
      t.health === "up" ? "" : `${t.health}: ${t.lastError}`);
  }

  // 3. The queries.
  const show = (r) => {
    const res = r.data?.result ?? [];
    if (r.data?.resultType === "scalar" || r.data?.resultType === "string") return `${r.data.resultType} ${res[1]}`;
    const vals = [...new Set(res.map((s) => s.value?.[1]))];
    return `${res.length} series, values ${vals.slice(0, 4).join(" ")}${vals.length > 4 ? " ..." : ""}`;
  };
  const nonEmpty = (r) => r.status === "success" && (r.data?.resultType === "scalar" || (r.data?.result ?? []).length > 0);
  const why = (r) => (r.status !== "success" ? `${r.status}: ${r.errorType ?? ""} ${r.error ?? ""}`.trim() : "empty result");
  for (const q of queries) {
    if (q.expr === null) {
      report(false, `${q.where}: has a query`, "no expr");
      continue;
    }
    const r = query(q.query);
    // Empty is excused only for a query that runs and selects a series the demo lacks.
    const excuse = q.selectors.map(notInDemo).find(Boolean);
    const expectData = (what, res, detail) => {
      if (!nonEmpty(res) && res.status === "success" && excuse) {
        notChecked.push(`${what}: ${excuse}`);
        console.log(`NOT CHECKED  ${what}: empty: ${excuse}`);
      } else {
        report(nonEmpty(res), what, detail);
      }
    };
    if (!q.bool) {
      expectData(`${q.where}: ${q.query.replace(/\s+/g, " ")}`, r, nonEmpty(r) ? show(r) : why(r));
    } else {
      // A filter: the original must run; its bool form must return series.
      report(r.status === "success", `${q.where}: ${q.query.replace(/\s+/g, " ")}`,
        r.status === "success" ? `runs (${(r.data?.result ?? []).length} series now: a filter, quiet is fine)` : why(r));
      const b = query(q.bool.form);
      expectData(`${q.where} [top-level ${q.bool.op} as ${q.bool.op} bool]: ${q.bool.form.replace(/\s+/g, " ")}`,
        b, nonEmpty(b) ? show(b) : why(b));
    }
    for (const sel of q.selectors) {
      const s = query(sel);
      const own = notInDemo(sel);
      if (!nonEmpty(s) && s.status === "success" && own) {
        notChecked.push(`${q.where} [selector]: ${sel}: ${own}`);
        console.log(`NOT CHECKED  ${q.where} [selector]: ${sel}: no series: ${own}`);
        continue;
      }
      report(nonEmpty(s), `${q.where} [selector]: ${sel}`, nonEmpty(s)
        ? `${s.data.result.length} series` : `${why(s)}: no series ${sel} on any target`);
    }
  }
  const rules = (api("rules").data?.groups ?? []).flatMap((g) => g.rules.map((x) => ({ ...x, group: g.name })));
  for (const x of rules) {
    report(x.health === "ok", `Prometheus evaluates rule ${x.group}/${x.name}`, x.health === "ok" ? `state ${x.state ?? "-"}` : `${x.health}: ${x.lastError}`);
  }

  // 4. promtool check metrics on every endpoint.
  for (const [node, addr] of Object.entries(endpoints.metrics)) {
    const url = `http://${addr}/metrics`;
    const body = inNs(["curl", "-sf", "--max-time", "10", url], { maxBuffer: 64 << 20 });
    if (body.status !== 0 || !body.stdout.trim()) {
      report(false, `promtool check metrics ${node} (${url})`, `fetch failed: curl exit ${body.status} ${body.stderr.trim()}`);
      continue;
    }
    writeFileSync(path.join(out, `metrics-${node}.txt`), body.stdout);
    const check = spawnSync("promtool", ["check", "metrics"], { input: body.stdout, encoding: "utf8" });
    const said = `${check.stdout}${check.stderr}`.trim();
    report(check.status === 0 && !said, `promtool check metrics ${node} (${url})`,
      check.status === 0 && !said ? `${body.stdout.split("\n").filter((l) => l && !l.startsWith("#")).length} samples`
        : `exit ${check.status}: ${said}`);
  }
}

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    report(false, `interrupted by ${sig}`);
    await cleanup();
    console.log(`${NAME}: output kept in ${out}`);
    process.exit(1);
  });
}

try {
  await main();
} catch (e) {
  report(false, "the test ran to its end", e.stack);
}
await cleanup();
if (notChecked.length) {
  console.log(`\n${NAME}: ${notChecked.length} queries or selectors NOT CHECKED (the demo cannot give their series):`);
  for (const n of notChecked) console.log(`  ${n}`);
}
const failed = results.filter((r) => !r.ok);
if (failed.length) {
  console.log(`\n${NAME}: ${failed.length} of ${results.length} checks FAILED:`);
  for (const f of failed) console.log(`  ${f.what}`);
  console.log(`${NAME}: output kept in ${out} (demo.log, prometheus.log, prometheus.yml, metrics-*.txt, logs/)`);
  process.exit(1);
}
if (out) rmSync(out, { recursive: true, force: true });
console.log(`\n${NAME}: ok: ${results.length} checks passed`);
