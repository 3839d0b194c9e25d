// A STAND-IN for Flamenco Manager's job compiler (Flamenco cannot be installed here). It implements the
// documented job-type API the way the Manager runs it: the job type file evaluated in strict mode with
// the globals `author` (Task, Command), `frameChunker`, `path` and `print`; settings checked against
// JOB_TYPE (required keys, types, defaults filled in); `compileJob(job)` called; every command parameter
// checked (exec: `exe` a string, `args` all strings); Manager variables ({name}) replaced for the
// worker's platform. It prints the compiled job as JSON on stdout.
//
// usage: node manager_standin.js JOB_TYPE.js SETTINGS.json VARIABLES.json [PLATFORM]
"use strict";
const fs = require("fs");
const vm = require("vm");
const nodePath = require("path");

const [jobTypeFile, settingsFile, variablesFile, platform = "linux"] = process.argv.slice(2);
const submitted = JSON.parse(fs.readFileSync(settingsFile, "utf8"));
const variables = JSON.parse(fs.readFileSync(variablesFile, "utf8"));

function fail(message) {
    process.stderr.write(`job compiler stand-in: ${message}\n`);
    process.exit(3);
}

// Flamenco's frameChunker: explode "A-B,C" (or Blender's "A..B") into sorted distinct frames, cut into
// chunks of at most chunkSize frames, and write each chunk back as ranges (two frames as "A,B").
function frameChunker(frames, chunkSize) {
    if (typeof frames !== "string" || frames.trim() === "") fail(`frameChunker: empty range ${JSON.stringify(frames)}`);
    if (!(chunkSize >= 1)) fail(`frameChunker: invalid chunk size ${chunkSize}`);
    const all = new Set();
    for (const part of frames.replaceAll("..", "-").split(",")) {
        const ends = part.split("-").map((s) => s.trim());
        if (ends.length > 2 || ends.some((s) => !/^\d+$/.test(s))) fail(`frameChunker: invalid range part "${part}"`);
        const first = Number(ends[0]);
        const last = Number(ends[ends.length - 1]);
        for (let f = first; f <= last; f++) all.add(f);
    }
    const sorted = [...all].sort((a, b) => a - b);
    const chunks = [];
    for (let i = 0; i < sorted.length; i += chunkSize) {
        const chunk = sorted.slice(i, i + chunkSize);
        const ranges = [];
        let start = chunk[0];
        for (let j = 1; j <= chunk.length; j++) {
            if (j === chunk.length || chunk[j] !== chunk[j - 1] + 1) {
                const end = chunk[j - 1];
                if (start === end) ranges.push(`${start}`);
                else if (start + 1 === end) ranges.push(`${start}`, `${end}`);
                else ranges.push(`${start}-${end}`);
                if (j < chunk.length) start = chunk[j];
            }
        }
        chunks.push(ranges.join(","));
    }
    return chunks;
}

const author = {
    Task(name, taskType) {
        if (typeof name !== "string" || typeof taskType !== "string") fail("author.Task(name, type): both must be strings");
        const task = {
            name, type: taskType, commands: [], dependencies: [],
            addCommand(command) { this.commands.push(command); },
            addDependency(other) { this.dependencies.push(other.name); },
        };
        return task;
    },
    Command(type, parameters) {
        if (type === "exec") {
            if (typeof parameters.exe !== "string") fail("exec: `exe` must be a string");
            if (!Array.isArray(parameters.args) || parameters.args.some((a) => typeof a !== "string")) {
                fail(`exec: every argument must be a string, got ${JSON.stringify(parameters.args)}`);
            }
        }
        return { type, parameters };
    },
};

const sandbox = { author, frameChunker, path: nodePath.posix, print: (...a) => process.stderr.write(a.join(" ") + "\n"),
                  console: { log: (...a) => process.stderr.write(a.join(" ") + "\n") } };
vm.createContext(sandbox);
// goja runs job types in strict mode; `const JOB_TYPE` is exported the way the Manager reads it.
vm.runInContext(`"use strict";\n${fs.readFileSync(jobTypeFile, "utf8")}\n;globalThis.__JOB_TYPE = JOB_TYPE;\n` +
                "globalThis.__compileJob = compileJob;", sandbox, { filename: jobTypeFile });
const jobType = sandbox.__JOB_TYPE;

// The settings a submission carries, checked and completed as the Manager does.
const TYPES = { string: "string", int32: "number", float: "number", bool: "boolean" };
const settings = {};
for (const def of jobType.settings) {
    if (!(def.type in TYPES)) fail(`setting ${def.key}: unknown type ${def.type}`);
    let value = def.key in submitted ? submitted[def.key] : def.default;
    if (value === undefined) {
        if (def.required) fail(`setting ${def.key} is required`);
        continue;
    }
    if (typeof value !== TYPES[def.type] || (def.type === "int32" && !Number.isInteger(value))) {
        fail(`setting ${def.key}: ${JSON.stringify(value)} is not a ${def.type}`);
    }
    if (def.choices && !def.choices.includes(value)) fail(`setting ${def.key}: ${value} is not one of ${def.choices}`);
    settings[def.key] = value;
}
for (const key of Object.keys(submitted)) {
    if (!jobType.settings.some((d) => d.key === key)) fail(`setting ${key} is not in the job type`);
}

const job = { name: "living-portrait-test", settings, tasks: [], addTask(task) { this.tasks.push(task); } };
sandbox.__compileJob(job);

// Manager variables ({name}) in command parameters, replaced for the worker's platform.
function replaceVariables(text) {
    return text.replace(/\{([a-zA-Z_][a-zA-Z0-9_]*)\}/g, (whole, name) => {
        const variable = variables[name];
        if (!variable) return whole;
        const match = variable.values.find((v) => v.platform === platform || v.platform === "all");
        return match ? match.value : whole;
    });
}
const compiled = job.tasks.map((task) => ({
    name: task.name, type: task.type, dependencies: task.dependencies,
    commands: task.commands.map((c) => ({
        type: c.type,
        exe: replaceVariables(c.parameters.exe),
        args: c.parameters.args.map(replaceVariables),
    })),
}));
process.stdout.write(JSON.stringify({ label: jobType.label, settings, tasks: compiled }, null, 1) + "\n");
