#!/usr/bin/env node
// A small grpcurl-like client for smig servers. It has no compiled stubs: every service,
// method and message type is learnt from the server's reflection service
// (grpc.reflection.v1alpha, through npm grpc-reflection-js), and calls go through
// @grpc/grpc-js with protobufjs doing the encoding.
//
//   node grpcurl.mjs [flags] ADDR list [SERVICE]
//   node grpcurl.mjs [flags] ADDR describe [SYMBOL]
//   node grpcurl.mjs [flags] -d JSON ADDR pkg.Service/Method
//
// Requests are JSON with proto field names (snake_case); unknown keys (camelCase too) are
// errors. Responses print as JSON with proto field names, 64-bit integers as strings,
// enums as names and defaults included, one compact object per line (-pretty indents).
// Exit status: 0 OK; 1 a gRPC error (printed to stderr as "ERROR:\n  Code: ..\n  Message: ..")
// or any other failure; 2 bad usage.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');
const { Client: ReflectionClient } = require('grpc-reflection-js');

const Long = protobuf.util.Long;
process.noDeprecation = true;  // grpc-js + TLS to an IP address warns (DEP0123) on every run

// The standard grpc.health.v1 protocol, used only when the server's reflection lists
// grpc.health.v1.Health but has no descriptor for it (the C++ default health service
// registers none; a server must link grpc/health/v1/health.pb.cc for reflection to have it).
const BUILTIN_HEALTH_PROTO = `
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
`;

const USAGE = `usage: grpcurl.mjs [flags] ADDR (list [SERVICE] | describe [SYMBOL] | pkg.Service/Method)

ADDR is host:port or unix:/path/to.sock. Flags (before or after ADDR, "-x v" or "-x=v"):
  -plaintext         no TLS (as grpcurl, TLS is the default)
  -insecure          TLS without verifying the server's certificate
  -cacert FILE       CA certificates for verifying the server
  -cert FILE -key FILE   client certificate (mutual TLS)
  -authority NAME    :authority / TLS server name
  -d JSON            request body; "@" reads stdin; several concatenated objects for
                     client-streaming / bidi methods; omitted: an empty request
  -H "name: value"   request metadata (repeatable)
  -max-time SECONDS  deadline for the whole operation
  -pretty            indent JSON output
`;

// ---------------------------------------------------------------------------------------
// Output and exit helpers

class UsageError extends Error {}
class CliError extends Error {}  // a local failure: printed as is, exit 1

const CODE_NAMES = {
  0: 'OK', 1: 'Canceled', 2: 'Unknown', 3: 'InvalidArgument', 4: 'DeadlineExceeded',
  5: 'NotFound', 6: 'AlreadyExists', 7: 'PermissionDenied', 8: 'ResourceExhausted',
  9: 'FailedPrecondition', 10: 'Aborted', 11: 'OutOfRange', 12: 'Unimplemented',
  13: 'Internal', 14: 'Unavailable', 15: 'DataLoss', 16: 'Unauthenticated',
};

function isGrpcError(e) {
  return e && typeof e === 'object' && typeof e.code === 'number' && e.code in CODE_NAMES;
}

function formatGrpcError(e) {
  return `ERROR:\n  Code: ${CODE_NAMES[e.code]}\n  Message: ${e.details ?? e.message ?? ''}\n`;
}

function exitWith(code) {
  // Let stdout/stderr drain before exiting (they may be pipes).
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

// ---------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const opts = { plaintext: false, insecure: false, headers: [], pretty: false };
  const valued = new Set(['d', 'H', 'max-time', 'cacert', 'cert', 'key', 'authority']);
  const boolean = new Set(['plaintext', 'insecure', 'pretty', 'help', 'h']);
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { positional.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('-') || a === '-') { positional.push(a); continue; }
    let name = a.replace(/^--?/, '');
    let value;
    const eq = name.indexOf('=');
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
    if (boolean.has(name)) {
      if (value !== undefined && !['true', 'false'].includes(value)) {
        throw new UsageError(`flag -${name} takes no value`);
      }
      const on = value !== 'false';
      if (name === 'help' || name === 'h') opts.help = true; else opts[name] = on;
    } else if (valued.has(name)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new UsageError(`flag -${name} needs a value`);
        value = argv[++i];
      }
      if (name === 'H') opts.headers.push(value);
      else if (name === 'max-time') {
        const s = Number(value);
        if (!Number.isFinite(s) || s <= 0) throw new UsageError(`-max-time: bad number of seconds "${value}"`);
        opts.maxTime = s;
      } else opts[name] = value;
    } else {
      throw new UsageError(`unknown flag ${a}`);
    }
  }
  return { opts, positional };
}

function makeCredentials(opts) {
  if (opts.plaintext) {
    if (opts.insecure || opts.cacert || opts.cert || opts.key) {
      throw new UsageError('-plaintext cannot be combined with TLS flags');
    }
    return grpc.credentials.createInsecure();
  }
  if (!!opts.cert !== !!opts.key) throw new UsageError('-cert and -key go together');
  const read = (f) => {
    try { return fs.readFileSync(f); } catch (e) { throw new CliError(`Failed to read ${f}: ${e.message}`); }
  };
  const verify = {};
  if (opts.insecure) {
    verify.rejectUnauthorized = false;
    verify.checkServerIdentity = () => undefined;
  }
  return grpc.credentials.createSsl(
    opts.cacert ? read(opts.cacert) : null,
    opts.key ? read(opts.key) : null,
    opts.cert ? read(opts.cert) : null,
    verify);
}

function makeMetadata(headers) {
  const md = new grpc.Metadata();
  for (const h of headers) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`-H "${h}": expected "name: value"`);
    const name = h.slice(0, colon).trim().toLowerCase();
    const value = h.slice(colon + 1).trim();
    if (name.endsWith('-bin')) md.add(name, Buffer.from(value, 'base64'));
    else md.add(name, value);
  }
  return md;
}

// ---------------------------------------------------------------------------------------
// Reflection

class Reflector {
  constructor(target, creds, channelOptions, metadata, deadline) {
    this.client = new ReflectionClient(target, creds, channelOptions, metadata);
    // grpc-reflection-js opens its streams without call options; give them our deadline.
    const raw = this.client.grpcClient;
    const open = raw.serverReflectionInfo.bind(raw);
    raw.serverReflectionInfo = (md) => open(md, deadline ? { deadline } : {});
    this.roots = new Map();
  }

  close() { this.client.grpcClient.close(); }

  async listServices() {
    return (await this.client.listServices()).slice().sort();
  }

  // The protobufjs Root holding `symbol` and everything its file depends on.
  async rootFor(symbol) {
    if (this.roots.has(symbol)) return this.roots.get(symbol);
    let root;
    try {
      root = await this.client.fileContainingSymbol(symbol);
    } catch (e) {
      if (isGrpcError(e)) throw e;
      // grpc-reflection-js turns the server's error_response into an empty Error.
      throw new CliError(`Failed to resolve symbol "${symbol}": Symbol not found: ${symbol}`);
    }
    root.resolveAll();
    this.roots.set(symbol, root);
    return root;
  }

  // Resolves a fully-qualified name to a protobufjs reflection object. Falls back to the
  // enclosing symbol (for methods, fields and enum values the server may not index).
  async lookup(symbol) {
    const name = symbol.replace(/^\./, '');
    try {
      return await this.lookupReflected(name);
    } catch (e) {
      if (!(e instanceof CliError) || !name.startsWith('grpc.health.v1.')) throw e;
      const root = protobuf.parse(BUILTIN_HEALTH_PROTO, { keepCase: true }).root;
      root.resolveAll();
      const obj = root.lookup('.' + name);
      if (!obj) throw e;
      process.stderr.write('note: the server\'s reflection has no descriptor for grpc.health.v1; ' +
          'using the built-in grpc/health/v1/health.proto\n');
      return obj;
    }
  }

  async lookupReflected(name) {
    let root;
    try {
      root = await this.rootFor(name);
    } catch (e) {
      const dot = name.lastIndexOf('.');
      if (!(e instanceof CliError) || dot < 0) throw e;
      try { root = await this.rootFor(name.slice(0, dot)); } catch { throw e; }
    }
    const obj = root.lookup('.' + name);
    if (!obj) throw new CliError(`Failed to resolve symbol "${name}": Symbol not found: ${name}`);
    return obj;
  }
}

// ---------------------------------------------------------------------------------------
// Type helpers

const fullName = (t) => t.fullName.replace(/^\./, '');
const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const UNSIGNED = new Set(['uint32', 'fixed32', 'uint64', 'fixed64']);
const INT32 = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);

function pascal(s) {
  return s.split('_').map((p) => (p ? p[0].toUpperCase() + p.slice(1) : '')).join('');
}
function lowerCamel(s) {
  return s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

// protobufjs built from descriptors keeps a map<K,V> as a repeated XEntry message.
function mapEntryType(field) {
  if (field.map) return null;  // real MapField: not produced by fromDescriptor, handled below
  if (!field.repeated) return null;
  const t = field.resolvedType;
  if (!(t instanceof protobuf.Type)) return null;
  const isEntry = (t.options && (t.options.map_entry || t.options.mapEntry)) ||
      (t.parent === field.parent && t.name === pascal(field.name) + 'Entry');
  if (!isEntry) return null;
  const key = t.fields.key, value = t.fields.value;
  if (!key || !value || key.id !== 1 || value.id !== 2) return null;
  return t;
}

// proto3 `optional` is a synthetic one-field oneof named "_<field>".
function isProto3Optional(field) {
  if (field.options && field.options.proto3_optional) return true;
  const o = field.partOf;
  return !!o && o.fieldsArray.length === 1 && o.name === '_' + field.name;
}

function realOneof(field) {
  const o = field.partOf;
  if (!o) return null;
  if (isProto3Optional(field)) return null;
  return o;
}

function typeLabel(field) {
  if (field.resolvedType) return field.resolvedType.fullName;
  return field.type;
}

// ---------------------------------------------------------------------------------------
// JSON -> message (proto field names; strict)

class InputError extends Error {}

function inputError(path, msg) {
  return new InputError(`${path ? path + ': ' : ''}${msg}`);
}

function jsonType(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function parseLong(v, type, path) {
  let s;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw inputError(path, `${type} needs an integer, got ${v}`);
    if (!Number.isSafeInteger(v)) throw inputError(path, `${v} is not exact in JSON: pass 64-bit integers as strings`);
    s = String(v);
  } else if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) {
    s = v.trim();
  } else {
    throw inputError(path, `${type} needs an integer or a decimal string, got ${JSON.stringify(v)}`);
  }
  const unsigned = UNSIGNED.has(type);
  if (unsigned && s.startsWith('-')) throw inputError(path, `${type} cannot be negative: ${s}`);
  const l = Long.fromString(s, unsigned, 10);
  const canon = s.replace(/^(-?)0+(\d)/, '$1$2');
  if (l.toString() !== (canon === '-0' ? '0' : canon)) throw inputError(path, `${s} is out of range for ${type}`);
  return l;
}

function parseInt32(v, type, path) {
  let n = v;
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) n = Number(v.trim());
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw inputError(path, `${type} needs an integer, got ${JSON.stringify(v)}`);
  }
  const [lo, hi] = UNSIGNED.has(type) ? [0, 4294967295] : [-2147483648, 2147483647];
  if (n < lo || n > hi) throw inputError(path, `${n} is out of range for ${type}`);
  return n;
}

function parseScalar(v, type, path) {
  if (INT64.has(type)) return parseLong(v, type, path);
  if (INT32.has(type)) return parseInt32(v, type, path);
  switch (type) {
    case 'double': case 'float': {
      if (typeof v === 'number') return v;
      if (v === 'NaN') return NaN;
      if (v === 'Infinity') return Infinity;
      if (v === '-Infinity') return -Infinity;
      if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
      throw inputError(path, `${type} needs a number, got ${JSON.stringify(v)}`);
    }
    case 'bool':
      if (typeof v !== 'boolean') throw inputError(path, `bool needs true or false, got ${JSON.stringify(v)}`);
      return v;
    case 'string':
      if (typeof v !== 'string') throw inputError(path, `string needs a JSON string, got ${jsonType(v)}`);
      return v;
    case 'bytes': {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) {
        throw inputError(path, `bytes needs a base64 string, got ${JSON.stringify(v)}`);
      }
      return Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    }
    default:
      throw inputError(path, `unsupported field type ${type}`);
  }
}

function parseEnum(v, enumType, path) {
  if (typeof v === 'string') {
    if (!(v in enumType.values)) {
      throw inputError(path, `"${v}" is not a value of enum ${fullName(enumType)} (values: ${Object.keys(enumType.values).join(', ')})`);
    }
    return enumType.values[v];
  }
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  throw inputError(path, `enum ${fullName(enumType)} needs a value name or a number, got ${JSON.stringify(v)}`);
}

// RFC 3339 -> {seconds, nanos}
function parseTimestamp(v, path) {
  const m = typeof v === 'string' &&
      /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(v);
  if (!m) throw inputError(path, `google.protobuf.Timestamp needs an RFC 3339 string like "2024-01-02T03:04:05.5Z", got ${JSON.stringify(v)}`);
  const ms = Date.parse(`${m[1]}T${m[2]}${m[4].toUpperCase()}`);
  if (Number.isNaN(ms)) throw inputError(path, `bad timestamp ${JSON.stringify(v)}`);
  return { seconds: Long.fromNumber(ms / 1000), nanos: m[3] ? Number(m[3].padEnd(9, '0')) : 0 };
}

// "1.5s" -> {seconds, nanos}
function parseDuration(v, path) {
  const m = typeof v === 'string' && /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(v);
  if (!m) throw inputError(path, `google.protobuf.Duration needs a string like "1.5s", got ${JSON.stringify(v)}`);
  const sign = m[1] ? -1 : 1;
  const seconds = Long.fromString(m[2]).multiply(sign);
  const nanos = (m[3] ? Number(m[3].padEnd(9, '0')) : 0) * sign;
  return { seconds, nanos };
}

function parseValue(v, type, path) {  // google.protobuf.Value
  const f = (name) => type.fields[name] ? name : lowerCamel(name);
  if (v === null) return { [f('null_value')]: 0 };
  if (typeof v === 'number') return { [f('number_value')]: v };
  if (typeof v === 'string') return { [f('string_value')]: v };
  if (typeof v === 'boolean') return { [f('bool_value')]: v };
  const root = type.root;
  if (Array.isArray(v)) {
    return { [f('list_value')]: { values: v.map((x, i) => parseValue(x, type, `${path}[${i}]`)) } };
  }
  const structType = root.lookupType('.google.protobuf.Struct');
  return { [f('struct_value')]: parseWellKnown(v, structType, path) };
}

// Returns undefined when `type` is not a well-known type with a special JSON form.
function parseWellKnown(v, type, path) {
  switch (fullName(type)) {
    case 'google.protobuf.Timestamp': return parseTimestamp(v, path);
    case 'google.protobuf.Duration': return parseDuration(v, path);
    case 'google.protobuf.DoubleValue': case 'google.protobuf.FloatValue':
      return { value: parseScalar(v, 'double', path) };
    case 'google.protobuf.Int64Value': return { value: parseLong(v, 'int64', path) };
    case 'google.protobuf.UInt64Value': return { value: parseLong(v, 'uint64', path) };
    case 'google.protobuf.Int32Value': return { value: parseInt32(v, 'int32', path) };
    case 'google.protobuf.UInt32Value': return { value: parseInt32(v, 'uint32', path) };
    case 'google.protobuf.BoolValue': return { value: parseScalar(v, 'bool', path) };
    case 'google.protobuf.StringValue': return { value: parseScalar(v, 'string', path) };
    case 'google.protobuf.BytesValue': return { value: parseScalar(v, 'bytes', path) };
    case 'google.protobuf.FieldMask':
      if (typeof v !== 'string') throw inputError(path, 'google.protobuf.FieldMask needs a string like "a.b,c"');
      return { paths: v === '' ? [] : v.split(',').map((p) => p.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())) };
    case 'google.protobuf.Struct': {
      if (jsonType(v) !== 'object') throw inputError(path, 'google.protobuf.Struct needs a JSON object');
      const valueType = type.root.lookupType('.google.protobuf.Value');
      const fields = {};
      for (const [k, x] of Object.entries(v)) fields[k] = parseValue(x, valueType, `${path}.${k}`);
      return { fields };
    }
    case 'google.protobuf.Value': return parseValue(v, type, path);
    case 'google.protobuf.ListValue': {
      if (!Array.isArray(v)) throw inputError(path, 'google.protobuf.ListValue needs a JSON array');
      const valueType = type.root.lookupType('.google.protobuf.Value');
      return { values: v.map((x, i) => parseValue(x, valueType, `${path}[${i}]`)) };
    }
    case 'google.protobuf.Any':
      throw inputError(path, 'google.protobuf.Any in requests is not supported');
    default: return undefined;
  }
}

function parseFieldValue(v, field, path) {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) {
    if (v === null && fullName(t) === 'google.protobuf.NullValue') return 0;
    return parseEnum(v, t, path);
  }
  if (t instanceof protobuf.Type) return jsonToObject(v, t, path);
  return parseScalar(v, field.type, path);
}

// JSON value -> plain object for protobufjs Type.fromObject. Keys must be proto field names.
function jsonToObject(json, type, path = '') {
  const wkt = parseWellKnown(json, type, path || fullName(type));
  if (wkt !== undefined) return wkt;
  if (jsonType(json) !== 'object') {
    throw inputError(path, `${fullName(type)} needs a JSON object, got ${jsonType(json)}`);
  }
  const out = {};
  const oneofSeen = new Map();
  for (const [key, v] of Object.entries(json)) {
    const field = type.fields[key];
    const where = path ? `${path}.${key}` : key;
    if (!field) {
      const byCamel = type.fieldsArray.find((f) => lowerCamel(f.name) === key);
      const hint = byCamel ? ` (did you mean "${byCamel.name}"? use proto field names)`
          : ` (fields: ${type.fieldsArray.map((f) => f.name).join(', ') || 'none'})`;
      throw new InputError(`unknown field "${key}" in ${fullName(type)}${path ? ` at ${path}` : ''}${hint}`);
    }
    if (v === null && !(field.resolvedType && fullName(field.resolvedType) === 'google.protobuf.Value')) {
      continue;  // null means unset
    }
    const oneof = realOneof(field);
    if (oneof) {
      if (oneofSeen.has(oneof.name)) {
        throw inputError(path, `fields "${oneofSeen.get(oneof.name)}" and "${key}" are both in oneof ${oneof.name}`);
      }
      oneofSeen.set(oneof.name, key);
    }
    const entry = mapEntryType(field);
    if (entry || field.map) {
      if (jsonType(v) !== 'object') throw inputError(where, `map field needs a JSON object, got ${jsonType(v)}`);
      const keyType = entry ? entry.fields.key.type : field.keyType;
      const valueField = entry ? entry.fields.value : field;
      const list = [];
      for (const [k, x] of Object.entries(v)) {
        let parsedKey;
        if (keyType === 'bool') {
          if (k !== 'true' && k !== 'false') throw inputError(`${where}[${k}]`, 'bool map keys are "true" or "false"');
          parsedKey = k === 'true';
        } else if (keyType === 'string') parsedKey = k;
        else parsedKey = parseScalar(k, keyType, `${where}[${k}]`);
        list.push({ key: parsedKey, value: parseFieldValue(x, valueField, `${where}[${k}]`) });
      }
      if (entry) out[field.name] = list;
      else out[field.name] = Object.fromEntries(list.map((e) => [String(e.key), e.value]));
      continue;
    }
    if (field.repeated) {
      if (!Array.isArray(v)) throw inputError(where, `repeated field needs a JSON array, got ${jsonType(v)}`);
      out[field.name] = v.map((x, i) => parseFieldValue(x, field, `${where}[${i}]`));
      continue;
    }
    out[field.name] = parseFieldValue(v, field, where);
  }
  return out;
}

function buildRequest(json, type) {
  const msg = type.fromObject(jsonToObject(json, type));
  const err = type.verify(msg);
  if (err) throw new InputError(`request does not verify as ${fullName(type)}: ${err}`);
  return msg;
}

// Splits "-d" text into top-level JSON values ({...}{...} or whitespace separated).
function parseJsonStream(text) {
  const values = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i])) i++;
    if (i >= n) break;
    const start = i;
    let depth = 0, inString = false;
    for (; i < n; i++) {
      const c = text[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
        if (depth === 0 && !inString) { i++; break; }
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') { depth--; if (depth === 0) { i++; break; } }
      else if (depth === 0 && /\s/.test(c)) break;
    }
    const chunk = text.slice(start, i);
    try {
      values.push(JSON.parse(chunk));
    } catch (e) {
      throw new InputError(`request data is not valid JSON: ${e.message}`);
    }
  }
  return values;
}

// ---------------------------------------------------------------------------------------
// message -> JSON (proto field names, int64 as strings, enums as names, defaults included)

function longToString(v, type) {
  if (Long.isLong(v)) return (UNSIGNED.has(type) ? v.toUnsigned() : v.toSigned()).toString();
  if (typeof v === 'string') return v;  // hash strings are handled by the map code
  return String(v ?? 0);
}

function toLong(v) {
  if (Long.isLong(v)) return v;
  return Long.fromValue(v ?? 0);
}

function floatJson(v, type) {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (type === 'float') {
    // Shortest decimal that round-trips through float32, as protojson prints it.
    for (let p = 1; p <= 9; p++) {
      const s = Number(v.toPrecision(p));
      if (Math.fround(s) === v) return s;
    }
  }
  return v;
}

function scalarToJson(v, type) {
  if (INT64.has(type)) return longToString(v, type);
  switch (type) {
    case 'double': case 'float': return floatJson(v ?? 0, type);
    case 'bool': return !!v;
    case 'string': return v ?? '';
    case 'bytes': return Buffer.from(v ?? []).toString('base64');
    default: return v ?? 0;
  }
}

function pad9(n) { return String(n).padStart(9, '0'); }
function fraction(nanos) {
  if (nanos === 0) return '';
  const s = pad9(nanos);
  if (nanos % 1e6 === 0) return '.' + s.slice(0, 3);
  if (nanos % 1e3 === 0) return '.' + s.slice(0, 6);
  return '.' + s;
}

function timestampJson(m) {
  const seconds = toLong(m.seconds).toNumber();
  const nanos = m.nanos || 0;
  const d = new Date(seconds * 1000);
  if (Number.isNaN(d.getTime())) return `${seconds}s`;
  return d.toISOString().slice(0, 19) + fraction(nanos) + 'Z';
}

function durationJson(m) {
  const seconds = toLong(m.seconds);
  const nanos = m.nanos || 0;
  const neg = seconds.isNegative() || nanos < 0;
  const abs = seconds.isNegative() ? seconds.negate() : seconds;
  return `${neg ? '-' : ''}${abs.toString()}${fraction(Math.abs(nanos))}s`;
}

function valueJson(m, type) {
  for (const f of type.fieldsArray) {
    if (!Object.prototype.hasOwnProperty.call(m, f.name)) continue;
    const base = f.name.replace(/_value$|Value$/, '');
    switch (base) {
      case 'null': return null;
      case 'number': return floatJson(m[f.name], 'double');
      case 'string': return m[f.name];
      case 'bool': return m[f.name];
      case 'struct': return messageToJson(m[f.name], f.resolvedType);
      case 'list': return messageToJson(m[f.name], f.resolvedType);
    }
  }
  return null;
}

function wellKnownToJson(m, type) {
  switch (fullName(type)) {
    case 'google.protobuf.Timestamp': return timestampJson(m);
    case 'google.protobuf.Duration': return durationJson(m);
    case 'google.protobuf.DoubleValue': case 'google.protobuf.FloatValue':
    case 'google.protobuf.Int64Value': case 'google.protobuf.UInt64Value':
    case 'google.protobuf.Int32Value': case 'google.protobuf.UInt32Value':
    case 'google.protobuf.BoolValue': case 'google.protobuf.StringValue':
    case 'google.protobuf.BytesValue':
      return scalarToJson(m.value, type.fields.value.type);
    case 'google.protobuf.FieldMask':
      return (m.paths || []).map(lowerCamel).join(',');
    case 'google.protobuf.Struct': {
      const out = {};
      const valueType = type.root.lookupType('.google.protobuf.Value');
      for (const [k, v] of Object.entries(m.fields || {})) {
        out[k] = valueJson(v.value ?? v, valueType);
      }
      // From descriptors, map fields are lists of entries.
      if (Array.isArray(m.fields)) {
        for (const e of m.fields) out[e.key] = valueJson(e.value || {}, valueType);
      }
      return out;
    }
    case 'google.protobuf.ListValue': {
      const valueType = type.root.lookupType('.google.protobuf.Value');
      return (m.values || []).map((v) => valueJson(v, valueType));
    }
    case 'google.protobuf.Value': return valueJson(m, type);
    case 'google.protobuf.Empty': return {};
    case 'google.protobuf.Any': {
      const url = m.type_url ?? m.typeUrl ?? '';
      const inner = url ? type.root.lookup('.' + url.slice(url.lastIndexOf('/') + 1)) : null;
      if (inner instanceof protobuf.Type) {
        const decoded = inner.decode(m.value || []);
        const j = messageToJson(decoded, inner);
        if (jsonType(j) === 'object') return { '@type': url, ...j };
        return { '@type': url, value: j };
      }
      return { '@type': url, value: Buffer.from(m.value || []).toString('base64') };
    }
    default: return undefined;
  }
}

function fieldValueToJson(v, field) {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) {
    if (fullName(t) === 'google.protobuf.NullValue') return null;
    const n = v ?? 0;
    return t.valuesById[n] ?? n;
  }
  if (t instanceof protobuf.Type) return v == null ? null : messageToJson(v, t);
  return scalarToJson(v, field.type);
}

function mapKeyToString(k, keyType) {
  if (INT64.has(keyType) && typeof k === 'string' && k.length === 8 && !/^-?\d+$/.test(k)) {
    // protobufjs keys 64-bit maps by an 8-character hash string.
    return protobuf.util.LongBits.fromHash(k).toLong(UNSIGNED.has(keyType)).toString();
  }
  if (Long.isLong(k)) return longToString(k, keyType);
  return String(k);
}

function messageToJson(m, type) {
  const wkt = wellKnownToJson(m, type);
  if (wkt !== undefined) return wkt;
  const out = {};
  for (const field of type.fieldsArray) {
    const present = Object.prototype.hasOwnProperty.call(m, field.name);
    // Oneof members (and proto3 `optional`) only when set.
    if (field.partOf && !present) continue;
    const v = m[field.name];
    const entry = mapEntryType(field);
    if (entry) {
      const obj = {};
      for (const e of v || []) {
        obj[mapKeyToString(e.key ?? entry.fields.key.defaultValue, entry.fields.key.type)] =
            fieldValueToJson(e.value, entry.fields.value);
      }
      out[field.name] = obj;
    } else if (field.map) {
      const obj = {};
      for (const [k, x] of Object.entries(v || {})) obj[mapKeyToString(k, field.keyType)] = fieldValueToJson(x, field);
      out[field.name] = obj;
    } else if (field.repeated) {
      out[field.name] = (v || []).map((x) => fieldValueToJson(x, field));
    } else {
      out[field.name] = fieldValueToJson(v, field);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// describe

function fieldLine(field, indent) {
  const entry = mapEntryType(field);
  let type;
  if (entry) type = `map<${typeLabel(entry.fields.key)}, ${typeLabel(entry.fields.value)}>`;
  else if (field.map) type = `map<${field.keyType}, ${typeLabel(field)}>`;
  else type = typeLabel(field);
  let label = '';
  if (!entry && !field.map) {
    if (field.repeated) label = 'repeated ';
    else if (field.required) label = 'required ';
    else if (isProto3Optional(field)) label = 'optional ';
  }
  return `${indent}${label}${type} ${field.name} = ${field.id};`;
}

function describeMessage(type, indent = '') {
  const lines = [`${indent}message ${type.name} {`];
  const inner = indent + '  ';
  const emittedOneofs = new Set();
  for (const field of type.fieldsArray) {
    const oneof = realOneof(field);
    if (oneof) {
      if (emittedOneofs.has(oneof)) continue;
      emittedOneofs.add(oneof);
      lines.push(`${inner}oneof ${oneof.name} {`);
      for (const f of oneof.fieldsArray) lines.push(fieldLine(f, inner + '  '));
      lines.push(`${inner}}`);
      continue;
    }
    lines.push(fieldLine(field, inner));
  }
  const mapEntries = new Set(type.fieldsArray.map(mapEntryType).filter(Boolean));
  for (const nested of type.nestedArray) {
    if (mapEntries.has(nested)) continue;
    if (nested instanceof protobuf.Type) lines.push(describeMessage(nested, inner));
    else if (nested instanceof protobuf.Enum) lines.push(describeEnum(nested, inner));
  }
  lines.push(`${indent}}`);
  return lines.join('\n');
}

function describeEnum(e, indent = '') {
  const lines = [`${indent}enum ${e.name} {`];
  for (const [name, n] of Object.entries(e.values)) lines.push(`${indent}  ${name} = ${n};`);
  lines.push(`${indent}}`);
  return lines.join('\n');
}

function methodLine(m) {
  const req = m.resolvedRequestType.fullName, res = m.resolvedResponseType.fullName;
  return `rpc ${m.name} ( ${m.requestStream ? 'stream ' : ''}${req} ) returns ( ${m.responseStream ? 'stream ' : ''}${res} );`;
}

function describe(obj) {
  const name = fullName(obj);
  if (obj instanceof protobuf.Service) {
    const lines = [`${name} is a service:`, `service ${obj.name} {`];
    for (const m of obj.methodsArray) lines.push('  ' + methodLine(m));
    lines.push('}');
    return lines.join('\n');
  }
  if (obj instanceof protobuf.Method) return `${name} is a method:\n${methodLine(obj)}`;
  if (obj instanceof protobuf.Type) return `${name} is a message:\n${describeMessage(obj)}`;
  if (obj instanceof protobuf.Enum) return `${name} is an enum:\n${describeEnum(obj)}`;
  if (obj instanceof protobuf.Field) return `${name} is a field:\n${fieldLine(obj, '')}`;
  return `${name} is a ${obj.constructor.name}`;
}

// ---------------------------------------------------------------------------------------
// invoke

function splitMethod(spec) {
  const s = spec.replace(/^\//, '');
  const slash = s.lastIndexOf('/');
  const dot = s.lastIndexOf('.');
  const cut = slash >= 0 ? slash : dot;
  if (cut <= 0 || cut === s.length - 1) {
    throw new UsageError(`"${spec}" is not a method name like pkg.Service/Method`);
  }
  return [s.slice(0, cut), s.slice(cut + 1)];
}

async function invoke({ target, creds, channelOptions, metadata, deadline, reflector, methodSpec, data, pretty }) {
  const [serviceName, methodName] = splitMethod(methodSpec);
  const service = await reflector.lookup(serviceName);
  if (!(service instanceof protobuf.Service)) throw new CliError(`"${serviceName}" is not a service`);
  const method = service.methods[methodName];
  if (!method) {
    throw new CliError(`Service "${serviceName}" does not include a method named "${methodName}"`);
  }
  const reqType = method.resolvedRequestType, resType = method.resolvedResponseType;

  let values = data === undefined ? [{}] : parseJsonStream(data);
  if (!method.requestStream) {
    if (values.length === 0) values = [{}];
    if (values.length > 1) throw new InputError(`method ${methodName} takes one request message, got ${values.length}`);
  }
  const requests = values.map((v) => buildRequest(v, reqType));

  const path = `/${serviceName}/${methodName}`;
  const serialize = (msg) => Buffer.from(reqType.encode(msg).finish());
  const deserialize = (buf) => resType.decode(buf);
  const print = (msg) => {
    const j = messageToJson(msg, resType);
    process.stdout.write((pretty ? JSON.stringify(j, null, 2) : JSON.stringify(j)) + '\n');
  };
  const client = new grpc.Client(target, creds, channelOptions);
  const callOptions = deadline ? { deadline } : {};
  try {
    await new Promise((resolve, reject) => {
      const onStatusError = (err) => reject(err);
      if (!method.requestStream && !method.responseStream) {
        client.makeUnaryRequest(path, serialize, deserialize, requests[0], metadata, callOptions,
            (err, res) => { if (err) reject(err); else { print(res); resolve(); } });
      } else if (!method.requestStream) {
        const call = client.makeServerStreamRequest(path, serialize, deserialize, requests[0], metadata, callOptions);
        call.on('data', print);
        call.on('error', onStatusError);
        call.on('status', (s) => { if (s.code === grpc.status.OK) resolve(); });
      } else if (!method.responseStream) {
        const call = client.makeClientStreamRequest(path, serialize, deserialize, metadata, callOptions,
            (err, res) => { if (err) reject(err); else { print(res); resolve(); } });
        for (const r of requests) call.write(r);
        call.end();
      } else {
        const call = client.makeBidiStreamRequest(path, serialize, deserialize, metadata, callOptions);
        call.on('data', print);
        call.on('error', onStatusError);
        call.on('status', (s) => { if (s.code === grpc.status.OK) resolve(); });
        for (const r of requests) call.write(r);
        call.end();
      }
    });
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------

async function main(argv) {
  const { opts, positional } = parseArgs(argv);
  if (opts.help) { process.stdout.write(USAGE); return 0; }
  if (positional.length < 2) throw new UsageError('need ADDR and a command');
  const [target, verb, ...rest] = positional;
  const creds = makeCredentials(opts);
  const metadata = makeMetadata(opts.headers);
  const channelOptions = {};
  if (opts.authority) {
    channelOptions['grpc.default_authority'] = opts.authority;
    channelOptions['grpc.ssl_target_name_override'] = opts.authority;
  }
  const deadline = opts.maxTime ? new Date(Date.now() + opts.maxTime * 1000) : undefined;
  if (deadline) {
    // Covers local work and anything the per-call deadlines do not.
    setTimeout(() => {
      process.stderr.write(formatGrpcError({ code: grpc.status.DEADLINE_EXCEEDED, details: `-max-time ${opts.maxTime}s exceeded` }));
      process.exit(1);
    }, opts.maxTime * 1000 + 500).unref();
  }
  const reflector = new Reflector(target, creds, channelOptions, metadata, deadline);
  let context = '';
  try {
    if (verb === 'list') {
      if (rest.length > 1) throw new UsageError('list takes at most one SERVICE');
      if (rest.length === 0) {
        context = 'Failed to list services';
        if (opts.d !== undefined) throw new UsageError('-d is for method calls');
        for (const s of await reflector.listServices()) process.stdout.write(s + '\n');
      } else {
        const name = rest[0].replace(/^\./, '').replace(/\/$/, '');
        context = `Failed to list methods for service "${name}"`;
        const svc = await reflector.lookup(name);
        if (!(svc instanceof protobuf.Service)) throw new CliError(`"${name}" is not a service`);
        const names = svc.methodsArray.map((m) => `${name}.${m.name}`).sort();
        for (const m of names) process.stdout.write(m + '\n');
      }
    } else if (verb === 'describe') {
      const symbols = rest.length ? rest : await reflector.listServices();
      context = 'Failed to describe';
      const out = [];
      for (const s of symbols) {
        const name = s.replace(/^\./, '').replace('/', '.');
        context = `Failed to describe "${name}"`;
        out.push(describe(await reflector.lookup(name)));
      }
      process.stdout.write(out.join('\n\n') + '\n');
    } else {
      if (rest.length) throw new UsageError(`unexpected arguments after the method: ${rest.join(' ')}`);
      context = '';
      let data = opts.d;
      if (data === '@') data = fs.readFileSync(0, 'utf8');
      await invoke({ target, creds, channelOptions, metadata, deadline, reflector, methodSpec: verb, data, pretty: opts.pretty });
    }
    return 0;
  } catch (e) {
    if (isGrpcError(e)) {
      if (context) process.stderr.write(`${context}:\n`);
      process.stderr.write(formatGrpcError(e));
      if (e.code === grpc.status.UNAVAILABLE && !opts.plaintext) {
        process.stderr.write('(the connection used TLS; pass -plaintext for a server without TLS)\n');
      }
      return 1;
    }
    if (e instanceof InputError) {
      process.stderr.write(`Error invoking method "${verb}": bad request data: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    reflector.close();
  }
}

main(process.argv.slice(2)).then(exitWith, (e) => {
  if (e instanceof UsageError) {
    process.stderr.write(`${e.message}\n\n${USAGE}`);
    exitWith(2);
  } else if (e instanceof CliError) {
    process.stderr.write(e.message + '\n');
    exitWith(1);
  } else {
    process.stderr.write(`${e && e.stack || e}\n`);
    exitWith(1);
  }
});
