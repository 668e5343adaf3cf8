// A stand-in for Tempo's OTLP/gRPC receiver, for tests that run real Dynamo: h2c on
// 127.0.0.1:<port>, answers TraceService/Export with OK (an empty ExportTraceServiceResponse)
// and every other method with UNIMPLEMENTED, as a receiver that takes traces only does.
// Prints one JSON line per request: {"path": ..., "body": <base64 of the gRPC message>}.
import http2 from "node:http2";

const TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const port = Number(process.argv[2]);
const server = http2.createServer();
server.on("stream", (stream, headers) => {
  const chunks = [];
  stream.on("data", (chunk) => chunks.push(chunk));
  stream.on("end", () => {
    const path = headers[":path"];
    const body = Buffer.concat(chunks);
    process.stdout.write(JSON.stringify({ path, body: body.subarray(5).toString("base64") }) + "\n");
    if (path === TRACES) {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    } else {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
    }
  });
});
server.listen(port, "127.0.0.1", () => process.stdout.write(JSON.stringify({ listening: port }) + "\n"));
