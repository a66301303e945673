#!/usr/bin/env node
/*
 * onnxruntime-peer.mjs - ONNX Runtime peer rows (inference only) for cnnbench's
 * backend-speed table.
 *
 * Times the forward pass of experiments/models/lenet5.ini and alexnet.ini in ONNX Runtime
 * on the CPU (the npm package onnxruntime-node, which ships the x64 CPU library), at the
 * batch and threads cnnbench times its backends at, a step at a time when cnnbench asks on
 * its standard input. It does not train: ONNX Runtime's inference sessions have no
 * backward pass.
 *
 * The network comes from scripts/pytorch-peer.py --export-onnx: the same layers, shapes,
 * variables and cnnbench-like initialisation as the PyTorch peer, in eval mode, softmax at
 * the end (cnnbench's forward ends in [prob]), LRN as ONNX's LRN operator, the batch fixed.
 * Exporting AlexNet takes PyTorch some seconds and a 250 MB file, written to a temporary
 * folder and removed once the session has read it.
 *
 * The contract with cnnbench (core/src/benchpeer.c states it too):
 *
 *   onnxruntime-peer.mjs --ways --threads N
 *
 * writes a line per way of running it, tab-separated (`way`, suffix, shipped or tuned,
 * arguments, environment, what it is): as shipped, the session options at ONNX Runtime's
 * defaults but intraOpNumThreads; tuned as ONNX Runtime's thread management guide says
 * (intraOpNumThreads = threads, interOpNumThreads = 1, sequential execution, every graph
 * optimization). cnnbench runs a process per way:
 *
 *   onnxruntime-peer.mjs --model FILE --name NAME --batch N --threads N --warmup N --lr X
 *                        --momentum X --weight-decay X [--tuned] [--var VAR=VALUE]...
 *
 * (FILE: lenet5 or alexnet, the model file's name; NAME and the SGD update's arguments are
 * accepted and unused). It exports the network, creates the session, runs --warmup untimed
 * forward passes, then writes
 *
 *   ready backend=onnxruntime-VERSION create_ms=X how=TEXT
 *
 * (create_ms: InferenceSession.create; how: the version, threads and session options) and
 * reads commands, a line each: `step F T` times F session.run back to back (the input is
 * fed as it was, the output is softmax's; T, for training steps it has none of, is
 * ignored) and answers
 *
 *   step FORWARD_SECONDS nan PEAK_KB
 *
 * (nan: no training step; PEAK_KB: how far its peak resident memory, VmHWM, grew over its
 * resident memory before the session was created). `quit` or the end of its input ends it.
 * Exit 3 after a line `skip WHY` when onnxruntime-node or PyTorch (for the export) is not
 * installed: cnnbench reports the rows as skipped; without node itself the shell cannot
 * start this script (exit 127), which cnnbench reports the same way. Exit 2 on any other
 * failure, said on stderr.
 *
 * Usage:
 *   printf 'step 3\n' | scripts/onnxruntime-peer.mjs --model lenet5 --batch 256 \
 *       --threads 1 --tuned --var act=relu --var pool=max
 *   scripts/onnxruntime-peer.mjs --check    # is onnxruntime-node there? exit 0 yes, 3 no
 *
 * onnxruntime-node and onnxruntime-common are pinned in scripts/peers/package.json and
 * installed into scripts/peers/node_modules by `bash scripts/peers.sh`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const EXIT_FAILED = 2;
const EXIT_ABSENT = 3;
const PEERS = fileURLToPath(new URL('./peers/', import.meta.url));
const PYTORCH_PEER = fileURLToPath(new URL('./pytorch-peer.py', import.meta.url));
const NOT_INSTALLED = 'ONNX Runtime (the npm package onnxruntime-node) is not installed in ' +
    'scripts/peers/node_modules (`bash scripts/peers.sh` installs it: npm ci ' +
    '--onnxruntime-node-install=skip in scripts/peers/)';
const SHAPES = { lenet5: [1, 28, 28], alexnet: [3, 227, 227] };
const DEFAULT_BATCH = { lenet5: 256, alexnet: 32 };

class Failure extends Error {
    constructor(message, status = EXIT_FAILED) {
        super(message);
        this.status = status;
    }
}

/* The integer in option --name's text, at least least. */
function integer(name, text, least) {
    const v = Number(text);
    if (!/^\d+$/.test(text) || v < least)
        throw new Failure(`--${name} ${text}: expected an integer from ${least}`);
    return v;
}

function parse(argv) {
    const { values } = parseArgs({
        args: argv,
        options: {
            ways: { type: 'boolean' }, check: { type: 'boolean' }, tuned: { type: 'boolean' },
            model: { type: 'string', default: 'lenet5' }, name: { type: 'string' },
            batch: { type: 'string' }, threads: { type: 'string', default: '1' },
            warmup: { type: 'string', default: '3' }, lr: { type: 'string' },
            momentum: { type: 'string' }, 'weight-decay': { type: 'string' },
            var: { type: 'string', multiple: true, default: [] },
        },
    });
    if (!(values.model in SHAPES))
        throw new Failure(`--model ${values.model}: this peer builds lenet5 or alexnet`);
    values.threads = integer('threads', values.threads, 1);
    values.batch = values.batch ? integer('batch', values.batch, 1) : DEFAULT_BATCH[values.model];
    values.warmup = integer('warmup', values.warmup, 0);
    return values;
}

/* onnxruntime-node from scripts/peers/node_modules; absent: a Failure with exit 3. */
function loadOrt() {
    const require = createRequire(join(PEERS, 'package.json'));
    try {
        return require('onnxruntime-node');
    } catch (e) {
        if (e.code === 'MODULE_NOT_FOUND')
            throw new Failure(NOT_INSTALLED, EXIT_ABSENT);
        throw new Failure(`onnxruntime-node could not be loaded: ${e.message}`);
    }
}

/* The ways, as --ways writes them (the module's comment). */
function ways(threads) {
    const rows = [
        ['way', '', 'shipped', '', '', 'inference only, as shipped: the session options at ' +
            `ONNX Runtime's defaults but the thread count (${threads})`],
        ['way', '-tuned', 'tuned', '--tuned', '', 'inference only, tuned as ONNX Runtime\'s ' +
            'thread management guide says'],
    ];
    return rows.map((r) => r.join('\t')).join('\n');
}

/* The session options of a way: the thread count always (a row at N threads runs on N),
 * the guide's settings when tuned; and how they read in the ready line. */
function sessionOptions(a) {
    const options = { executionProviders: ['cpu'], intraOpNumThreads: a.threads };
    if (a.tuned)
        Object.assign(options, { interOpNumThreads: 1, executionMode: 'sequential',
                                 graphOptimizationLevel: 'all' });
    const said = a.tuned ? 'interOpNumThreads 1, executionMode sequential, ' +
        'graphOptimizationLevel all' : 'interOpNumThreads, executionMode and ' +
        'graphOptimizationLevel at their defaults';
    return [options, `intraOpNumThreads ${a.threads}, ${said}`];
}

/* The network as an ONNX file in folder dir, by scripts/pytorch-peer.py --export-onnx;
 * what exported it. PyTorch absent: a Failure with exit 3. */
function exportOnnx(a, dir) {
    const file = join(dir, `${a.model}.onnx`);
    const args = ['--export-onnx', file, '--model', a.model, '--batch', String(a.batch)];
    for (const v of a.var)
        args.push('--var', v);
    const run = spawnSync(PYTORCH_PEER, args, { stdio: ['ignore', 'pipe', 'inherit'],
                                                encoding: 'utf8' });
    const said = (run.stdout || '').trim();
    if (run.status === EXIT_ABSENT || run.error?.code === 'ENOENT')
        throw new Failure('its ONNX file is exported by scripts/pytorch-peer.py: ' +
                          (said.replace(/^skip /, '') || run.error.message), EXIT_ABSENT);
    if (run.status !== 0)
        throw new Failure(`${PYTORCH_PEER} --export-onnx failed (${run.error?.message ??
            `exit ${run.status}`})`);
    return [file, said];
}

/* A field of /proc/self/status in KiB (VmRSS, VmHWM); 0 when unreadable. */
function statusKb(field) {
    try {
        const status = readFileSync('/proc/self/status', 'utf8');
        const m = status.match(new RegExp(`^${field}:\\s*(\\d+)`, 'm'));
        return m ? Number(m[1]) : 0;
    } catch {
        return 0;
    }
}

/* N(0, 1) pixels, like cnnbench's synthetic batch (another stream: speed does not depend
 * on the values, as long as they are normal numbers). */
function syntheticInput(n) {
    const x = new Float32Array(n);
    let s = 0x9e3779b9;
    const uniform = () => {
        s ^= s << 13, s ^= s >>> 17, s ^= s << 5;
        return ((s >>> 0) + 1) / 4294967297;
    };
    for (let i = 0; i < n; i += 2) {
        const r = Math.sqrt(-2 * Math.log(uniform())), t = 2 * Math.PI * uniform();
        x[i] = r * Math.cos(t);
        if (i + 1 < n)
            x[i + 1] = r * Math.sin(t);
    }
    return x;
}

async function timed(session, feeds, k) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < k; i++)
        await session.run(feeds);
    return Number(process.hrtime.bigint() - t0) * 1e-9 / k;
}

/* The session built and warmed up, then the ready line and the steps cnnbench asks for. */
async function serve(ort, a) {
    const dir = mkdtempSync(join(tmpdir(), 'onnxruntime-peer-'));
    let session, exported, createMs;
    const [options, said] = sessionOptions(a);
    const baseKb = statusKb('VmRSS');
    try {
        const [file, by] = exportOnnx(a, dir);
        exported = by;
        const t0 = process.hrtime.bigint();
        session = await ort.InferenceSession.create(file, options);
        createMs = Number(process.hrtime.bigint() - t0) * 1e-6;
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
    const shape = [a.batch, ...SHAPES[a.model]];
    const data = syntheticInput(shape.reduce((p, d) => p * d, 1));
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
    for (let i = 0; i < a.warmup; i++)
        await session.run(feeds);
    process.stdout.write(`ready backend=onnxruntime-${ort.env.versions.node} ` +
        `create_ms=${createMs.toFixed(3)} how=ONNX Runtime ${ort.env.versions.node} ` +
        `(onnxruntime-node, CPU execution provider), ${said}; ${exported}\n`);
    for await (const line of createInterface({ input: process.stdin })) {
        const words = line.trim().split(/\s+/);
        if (words.length === 1 && words[0] === 'quit')
            break;
        if (words[0] !== 'step' || words.length > 3 || !words.slice(1).every(w => /^[1-9]\d*$/.test(w)))
            throw new Failure(`unknown command '${line.trim()}' (step [F [T]], quit)`);
        const fwd = await timed(session, feeds, Number(words[1] || 1));
        process.stdout.write(`step ${fwd.toFixed(9)} nan ${statusKb('VmHWM') - baseKb}\n`);
    }
    await session.release();
}

async function main(argv) {
    const a = parse(argv);
    const ort = loadOrt();
    if (a.ways) {
        process.stdout.write(ways(a.threads) + '\n');
        return 0;
    }
    if (a.check) {
        console.log(`onnxruntime-peer: ONNX Runtime ${ort.env.versions.node} is there ` +
                    `(node ${process.version})`);
        return 0;
    }
    await serve(ort, a);
    return 0;
}

main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
}, (e) => {
    if (e.status === EXIT_ABSENT) {
        process.stdout.write(`skip ${e.message}\n`);
        process.exitCode = EXIT_ABSENT;
        return;
    }
    console.error(`onnxruntime-peer: ${e.message}`);
    process.exitCode = EXIT_FAILED;
});
