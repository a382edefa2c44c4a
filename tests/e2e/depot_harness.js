// Shared by the JavaScript e2e tests: starts the real build/depot ($DEPOT_BIN) on a free
// loopback port with a fresh temp data dir, as tests/e2e/depot_harness.py does for Python.
//
//   const { Broker, runTest } = require('./depot_harness');
//   runTest('test_x', 120000, async () => {
//       const broker = new Broker({ listener: 'SASL_SSL', tls: true,
//           scram: ['SCRAM-SHA-256=[name=carol,password=carol-pw]'] });
//       await broker.start({ 'num.partitions': 2 });   // extra server.properties lines
//       ... broker.bootstrap, broker.ca (PEM of the test CA with tls) ...
//       await broker.restart();                        // SIGTERM (exit 0), same dir and port
//       await broker.restart({ hard: true });          // kill -9, start again (recovery)
//       await broker.stop();
//   });
//
// runTest prints PASS/FAIL, kills every broker the test made, prints their log tails on a
// failure (temp dirs kept and named) and removes the temp dirs when the test passed.
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const DEPOT_BIN = process.env.DEPOT_BIN || path.resolve(__dirname, '../../build/depot');

const started = []; // every Broker made in this process (log tails, cleanup)

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

function openssl(...args) {
    const r = spawnSync('openssl', args);
    if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
}

// A test CA, a second CA that signed nothing here (for "wrong CA" checks) and a server
// certificate for localhost/127.0.0.1 signed by the first, as tests/e2e/tls_certs.py makes.
// Returns the paths: { ca, other, server } (server: key + certificate, one PEM file).
function makeCerts(dir) {
    fs.mkdirSync(dir, { recursive: true });
    const p = (f) => path.join(dir, f);
    for (const ca of ['ca', 'other-ca']) {
        openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout',
            p(`${ca}.key`), '-out', p(`${ca}.pem`), '-subj', `/CN=Depot JS Test ${ca}`);
    }
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out',
        p('server.csr'), '-subj', '/CN=localhost');
    fs.writeFileSync(p('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    openssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'),
        '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('server.ext'));
    fs.writeFileSync(p('server.pem'), fs.readFileSync(p('server.key')) +
        fs.readFileSync(p('server.crt')));
    return { ca: p('ca.pem'), other: p('other-ca.pem'), server: p('server.pem') };
}

class Broker {
    // opts.listener: the Kafka listener's security protocol (PLAINTEXT by default);
    // opts.tls: make certificates (this.certs, this.ca) and set ssl.keystore.location;
    // opts.scram: --add-scram arguments stored in log.dirs before the first start.
    constructor(opts = {}) {
        this.opts = opts;
        this.settings = {};
        this.port = null;
        this.proc = null;
        this.exit = null;
        started.push(this);
    }

    // Makes the temp dir, certificates and credentials once (first start).
    prepare() {
        if (this.tmp) return;
        this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'depot-e2e-js-'));
        this.dataDir = path.join(this.tmp, 'data');
        fs.mkdirSync(this.dataDir);
        this.logPath = path.join(this.tmp, 'broker.log');
        if (this.opts.tls) {
            this.certs = makeCerts(path.join(this.tmp, 'certs'));
            this.ca = fs.readFileSync(this.certs.ca, 'utf8');
        }
    }

    get logDir() { return this.settings['log.dirs'] || this.dataDir; }

    args() {
        const proto = this.opts.listener || 'PLAINTEXT';
        const set = { listeners: `${proto}://127.0.0.1:${this.port}`, 'log.dirs': this.dataDir };
        if (this.certs) set['ssl.keystore.location'] = this.certs.server;
        Object.assign(set, this.settings);
        const args = [];
        for (const [k, v] of Object.entries(set)) args.push('--set', `${k}=${v}`);
        return args;
    }

    addScram() {
        for (const cred of this.opts.scram || []) {
            const r = spawnSync(DEPOT_BIN, ['--set', `log.dirs=${this.logDir}`, '--add-scram', cred]);
            if (r.status !== 0) throw new Error(`--add-scram ${cred}: ${r.stderr}`);
        }
    }

    // Starts the broker and returns once its port accepts. The first start takes settings
    // (extra server.properties keys; 'log.dirs' replaces the temp data dir) and a free port,
    // retrying with another if someone took it meanwhile; a restart reuses both.
    async start(settings) {
        if (this.proc && !this.exit) throw new Error('broker already running');
        if (!fs.existsSync(DEPOT_BIN)) throw new Error(`broker did not start: ${DEPOT_BIN} missing`);
        const first = !this.tmp;
        if (settings) this.settings = settings;
        this.prepare();
        if (first) this.addScram();
        const fixed = this.port !== null;
        for (let attempt = 0; ; attempt++) {
            if (!fixed) this.port = await freePort();
            const why = await this.spawnAndWait();
            if (!why) return;
            const inUse = /in use/i.test(this.logTail(5));
            if (fixed || !inUse || attempt >= 2) throw new Error(`broker did not start (${why}); log ${this.logPath}`);
        }
    }

    async spawnAndWait() {
        const log = fs.openSync(this.logPath, 'a');
        fs.writeSync(log, `\n=== start on port ${this.port}\n`);
        this.proc = spawn(DEPOT_BIN, this.args(), { stdio: ['ignore', log, log] });
        fs.closeSync(log);
        this.exit = null;
        const proc = this.proc;
        proc.on('exit', (code, sig) => { if (this.proc === proc) this.exit = { code, sig }; });
        const deadline = Date.now() + 20000;
        while (Date.now() < deadline) {
            if (this.exit) return `exit ${JSON.stringify(this.exit)}`;
            if (await portAccepts(this.port)) return null;
            await sleep(20);
        }
        this.kill();
        return `port ${this.port} not accepting after 20 s`;
    }

    get bootstrap() { return `127.0.0.1:${this.port}`; }

    async waitExit(ms) {
        const deadline = Date.now() + ms;
        while (!this.exit && Date.now() < deadline) await sleep(20);
        return this.exit;
    }

    // SIGTERM; the broker must exit with status 0 (a clean shutdown) within 30 s.
    async stop() {
        if (!this.proc || this.exit) throw new Error(`broker not running at stop: ${JSON.stringify(this.exit)}`);
        this.proc.kill('SIGTERM');
        assert(await this.waitExit(30000), 'broker did not exit within 30 s of SIGTERM');
        assert(this.exit.code === 0, `broker exit after SIGTERM: ${JSON.stringify(this.exit)}`);
    }

    // kill -9 and wait until it is gone (no chance to flush anything).
    async kill9() {
        if (!this.proc || this.exit) return;
        this.proc.kill('SIGKILL');
        assert(await this.waitExit(10000), 'broker still there 10 s after SIGKILL');
    }

    async restart({ hard = false } = {}) {
        if (hard) await this.kill9(); else await this.stop();
        await this.start();
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

// Runs one test body with a time limit; exits the process with 0 (passed) or 1.
function runTest(name, timeoutMs, body) {
    const tails = () => {
        for (const b of started) {
            if (b.logPath) console.error(`  broker log ${b.logPath} (kept: ${b.tmp}):\n${b.logTail()}`);
        }
    };
    const guard = setTimeout(() => {
        console.error(`  FAIL ${name}: timed out after ${timeoutMs / 1000} s`);
        tails();
        started.forEach((b) => b.kill());
        process.exit(1);
    }, timeoutMs);
    process.on('SIGTERM', () => { started.forEach((b) => b.kill()); process.exit(143); });
    (async () => {
        let rc = 0;
        try {
            await body();
            console.log(`  PASS ${name}`);
        } catch (e) {
            rc = 1;
            console.error(`  FAIL ${name}:`, e && e.stack ? e.stack : e);
            tails();
        } finally {
            started.forEach((b) => b.kill());
            clearTimeout(guard);
        }
        if (rc === 0) {
            for (const b of started) if (b.tmp) fs.rmSync(b.tmp, { recursive: true, force: true });
        }
        process.exit(rc);
    })();
}

module.exports = {
    assert, freePort, portAccepts, sleep, makeCerts, Broker, runTest, DEPOT_BIN,
};
