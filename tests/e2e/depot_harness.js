// Shared by the kafkajs e2e tests: starts the real build/depot ($DEPOT_BIN) on a free
// loopback port with a fresh temp data dir, as tests/e2e/depot_harness.py does for Python.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const DEPOT_BIN = process.env.DEPOT_BIN || path.resolve(__dirname, '../../build/depot');

function assert(cond, msg) {
    if (!cond) throw new Error('assertion failed: ' + msg);
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

function portAccepts(port) {
    return new Promise((resolve) => {
        const c = net.connect({ host: '127.0.0.1', port }, () => { c.destroy(); resolve(true); });
        c.on('error', () => resolve(false));
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Broker {
    async start(settings = {}) {
        this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'depot-e2e-js-'));
        this.dataDir = path.join(this.tmp, 'data');
        fs.mkdirSync(this.dataDir);
        this.logPath = path.join(this.tmp, 'broker.log');
        this.port = await freePort();
        const args = ['--set', `listeners=PLAINTEXT://127.0.0.1:${this.port}`,
            '--set', `log.dirs=${this.dataDir}`];
        for (const [k, v] of Object.entries(settings)) args.push('--set', `${k}=${v}`);
        if (!fs.existsSync(DEPOT_BIN)) throw new Error(`broker did not start: ${DEPOT_BIN} missing`);
        const log = fs.openSync(this.logPath, 'a');
        this.proc = spawn(DEPOT_BIN, args, { stdio: ['ignore', log, log] });
        fs.closeSync(log);
        this.exit = null;
        this.proc.on('exit', (code, sig) => { this.exit = { code, sig }; });
        const deadline = Date.now() + 20000;
        while (Date.now() < deadline) {
            if (this.exit) throw new Error(`broker did not start (exit ${JSON.stringify(this.exit)})`);
            if (await portAccepts(this.port)) return;
            await sleep(20);
        }
        throw new Error(`broker did not start: port ${this.port} not accepting after 20 s`);
    }

    get bootstrap() { return `127.0.0.1:${this.port}`; }

    async stop() {
        if (this.exit) throw new Error(`broker not running at stop: ${JSON.stringify(this.exit)}`);
        this.proc.kill('SIGTERM');
        const deadline = Date.now() + 30000;
        while (!this.exit && Date.now() < deadline) await sleep(20);
        assert(this.exit, 'broker did not exit within 30 s of SIGTERM');
        assert(this.exit.code === 0, `broker exit after SIGTERM: ${JSON.stringify(this.exit)}`);
    }

    kill() {
        if (this.proc && !this.exit) this.proc.kill('SIGKILL');
    }

    logTail(n = 40) {
        try {
            return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-n)
                .map((l) => '    | ' + l).join('\n');
        } catch (e) {
            return '(no broker log)';
        }
    }
}

module.exports = { assert, freePort, portAccepts, sleep, Broker, DEPOT_BIN };
