// @ts-check
/**
 * `node -e <this> FILE SECONDS`, the URL on stdin: downloads it into FILE for a server that has
 * neither curl nor wget (fetch.sh runs it). Exit 75 when the download fails or takes longer than
 * SECONDS.
 */
const fs = require("node:fs");

const [file = "", seconds] = process.argv.slice(1);
/** @param {string} message */
const fail = (message) => {
  console.error(`nexus: download with node failed: ${message}`);
  process.exit(75);
};
setTimeout(() => fail("timed out"), Number(seconds) * 1000);
let url = "";
process.stdin
  .on("data", (chunk) => {
    url += chunk;
  })
  .on("end", () => {
    url = url.trim();
    /** @type {typeof import("node:http")} */
    const client = require(url.startsWith("https:") ? "node:https" : "node:http");
    client
      .get(url, (response) => {
        if (response.statusCode !== 200) fail(`HTTP ${response.statusCode}`);
        const out = fs.createWriteStream(file);
        response.on("error", (error) => fail(error.message));
        out.on("error", (error) => fail(error.message));
        response.on("aborted", () => fail("connection cut"));
        response.pipe(out).on("finish", () => process.exit(0));
      })
      .on("error", (error) => fail(error.message));
  });
