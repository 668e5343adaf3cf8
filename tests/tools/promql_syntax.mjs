// Reads a JSON list of PromQL expressions on stdin and prints, as JSON, the ones the
// Prometheus project's own PromQL grammar (@prometheus-io/lezer-promql, pinned in
// package.json) cannot parse: [{"index": i, "at": offset, "near": "..."}].
import { parser } from "@prometheus-io/lezer-promql";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const problems = [];
JSON.parse(input).forEach((expr, index) => {
  const tree = parser.parse(expr);
  let bad = null;
  tree.iterate({
    enter(node) {
      if (bad === null && node.type.isError) bad = node.from;
    },
  });
  if (bad !== null) problems.push({ index, at: bad, near: expr.slice(Math.max(0, bad - 20), bad + 20) });
});
process.stdout.write(JSON.stringify(problems));
