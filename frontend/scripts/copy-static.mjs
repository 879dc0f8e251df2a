// Next's standalone output leaves out .next/static and public/: copy them beside server.js so the
// standalone server is complete on its own (the image and `platform dev` run it as is).
import { cpSync, existsSync } from "node:fs";

const out = ".next/standalone";
cpSync(".next/static", `${out}/.next/static`, { recursive: true });
if (existsSync("public")) cpSync("public", `${out}/public`, { recursive: true });
