// Runs bench/peers/newman.postman_collection.json through Newman's library API, and exits when the run is done.
//
//   node newman-run.js NODE_MODULES COLLECTION ITERATIONS WORKING_DIR NAME=VALUE...
//
// Why not the `newman` command: against bench/stub.py (HTTP/1.1 keep-alive) about half of its runs stay alive
// after the run has ended and its reporters have written (an open handle), so a process wall time would
// measure the hang. This is what the command does (newman/bin/newman.js: newman.run, exit code 1 on a
// failure), with --silent (no reporter), then process.exit().
const path = require("path");
const [modules, collection, iterations, workingDir, ...vars] = process.argv.slice(2);
const newman = require(path.join(modules, "newman"));
newman.run(
  {
    collection: require(path.resolve(collection)),
    iterationCount: Number(iterations),
    workingDir,
    envVar: vars.map((pair) => ({ key: pair.split("=")[0], value: pair.slice(pair.indexOf("=") + 1) })),
    reporters: [],
  },
  (err, summary) => {
    if (err) console.error(`error: ${err.message || err}`);
    const failed = err || summary.run.error || summary.run.failures.length;
    for (const failure of summary ? summary.run.failures : []) {
      console.error(`${failure.source.name}: ${failure.error.name}: ${failure.error.message}`);
    }
    process.exit(failed ? 1 : 0);
  }
);
