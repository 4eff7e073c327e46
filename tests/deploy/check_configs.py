#!/usr/bin/python3
"""deploy.configs: the JSON configs under deploy/ parse as the config messages the daemons
load, with the daemons' rule (common/config.cc: protobuf JSON, unknown keys are errors),
so a key the code does not know fails here and not as a crash loop in a cluster.

  /usr/bin/python3 tests/deploy/check_configs.py WORK_DIR

Each file <name>.json is the config of component <name> (dataplane, proximity, decision,
migrator): message smig.<name>.v1.<Name>Config from proto/smig/<name>/v1/. A component
whose config message does not exist yet fails. Needs Debian's python3-protobuf (this is
/usr/bin/python3 on purpose: the python3 on PATH may be another interpreter) and protoc.
"""
import glob
import importlib
import os
import shutil
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHECK = "deploy.configs"


def fail(msg):
    print(f"{CHECK}: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        print("usage: check_configs.py WORK_DIR", file=sys.stderr)
        sys.exit(2)
    try:
        from google.protobuf import json_format, symbol_database
    except ImportError:
        fail("python3-protobuf is not installed (Debian package python3-protobuf)")
    if not shutil.which("protoc"):
        fail("protoc is not installed (Debian package protobuf-compiler)")

    # Generate Python for every proto of the repository, then import it all.
    out = os.path.join(sys.argv[1], "deploy-configs-py")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    proto_root = os.path.join(REPO, "proto")
    protos = sorted(os.path.relpath(p, proto_root)
                    for p in glob.glob(os.path.join(proto_root, "**", "*.proto"), recursive=True))
    r = subprocess.run(["protoc", f"-I{proto_root}", f"--python_out={out}", *protos],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"protoc: {r.stderr.strip()}")
    sys.path.insert(0, out)
    for p in protos:
        importlib.import_module(p[:-len(".proto")].replace("/", ".") + "_pb2")
    db = symbol_database.Default()

    configs = sorted(glob.glob(os.path.join(REPO, "deploy", "**", "*.json"), recursive=True))
    configs = [c for c in configs if os.path.basename(os.path.dirname(c)) != "grafana"]
    problems = []
    for path in configs:
        name = os.path.basename(path)[:-len(".json")]
        full = f"smig.{name}.v1.{name.capitalize()}Config"
        rel = os.path.relpath(path, REPO)
        try:
            cls = db.GetSymbol(full)
        except KeyError:
            problems.append(f"{rel}: no message {full} in proto/smig/{name}/v1/ (is the {name} service's config written yet?)")
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            json_format.Parse(text, cls(), ignore_unknown_fields=False)
        except json_format.ParseError as e:
            problems.append(f"{rel}: not a valid {full}: {e}")
    if not configs:
        problems.append("no JSON configs under deploy/")
    for p in problems:
        print(f"{CHECK}: FAIL: {p}", file=sys.stderr)
    if problems:
        fail(f"{len(problems)} config(s) the daemons would refuse")
    print(f"{CHECK}: ok: {len(configs)} configs parse as their config messages")


if __name__ == "__main__":
    main()
