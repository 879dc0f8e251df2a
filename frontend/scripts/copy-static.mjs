// Next's standalone output leaves out <distDir>/static and public/: copy them beside server.js so
// the standalone server is complete on its own (the image and `platform dev` run it as is).
import { cpSync, existsSync } from "node:fs";

const dist = process.env.NEXT_DIST_DIR || ".next";
const out = `${dist}/standalone`;
cpSync(`${dist}/static`, `${out}/${dist}/static`, { recursive: true });
if (existsSync("public")) cpSync("public", `${out}/public`, { recursive: true });
