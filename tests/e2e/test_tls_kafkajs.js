// kafkajs 2.2.4 over SASL_SSL (TLS with a CA and server certificate made here with openssl):
// SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN each produce and consume through a group; a wrong
// password is refused and the broker keeps serving.
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { Kafka, logLevel } = require('kafkajs');

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
        for (const mech of ['SCRAM-SHA-256', 'SCRAM-SHA-512']) {
            const r = spawnSync(DEPOT_BIN, ['--set', `log.dirs=${this.dataDir}`, '--add-scram',
                `${mech}=[name=carol,password=carol-pw]`]);
            if (r.status !== 0) throw new Error(`--add-scram failed: ${r.stderr}`);
        }
        const d = path.join(this.tmp, 'certs');
        fs.mkdirSync(d);
        const ossl = (...a) => {
            const r = spawnSync('openssl', a);
            if (r.status !== 0) throw new Error(`openssl ${a[0]}: ${r.stderr}`);
        };
        ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout',
            `${d}/ca.key`, '-out', `${d}/ca.pem`, '-subj', '/CN=Depot Test CA');
        ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${d}/s.key`, '-out',
            `${d}/s.csr`, '-subj', '/CN=localhost');
        fs.writeFileSync(`${d}/s.ext`, 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
        ossl('x509', '-req', '-in', `${d}/s.csr`, '-CA', `${d}/ca.pem`, '-CAkey', `${d}/ca.key`,
            '-CAcreateserial', '-out', `${d}/s.crt`, '-days', '2', '-extfile', `${d}/s.ext`);
        fs.writeFileSync(`${d}/server.pem`,
            fs.readFileSync(`${d}/s.key`, 'utf8') + fs.readFileSync(`${d}/s.crt`, 'utf8'));
        this.ca = fs.readFileSync(`${d}/ca.pem`, 'utf8');
        const args = ['--set', `listeners=SASL_SSL://127.0.0.1:${this.port}`,
            '--set', `ssl.keystore.location=${d}/server.pem`,
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

async function roundTrip(broker, mechanism, password = 'carol-pw') {
    const kafka = new Kafka({
        clientId: 'depot-e2e-kafkajs-sasl',
        brokers: [broker.bootstrap],
        sasl: { mechanism, username: 'carol', password },
        ssl: { ca: [broker.ca], servername: 'localhost' },
        connectionTimeout: 5000,
        requestTimeout: 15000,
        retry: { retries: 2, initialRetryTime: 100 },
        logLevel: logLevel.NOTHING,
    });
    const topic = `js-tls-${mechanism.replace(/-/g, '')}`;
    const producer = kafka.producer();
    await producer.connect();
    const values = [0, 1, 2, 3, 4].map((i) => `${mechanism}-${i}`);
    await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value })) });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: `g-${topic}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got = [];
    await consumer.run({ eachMessage: async ({ message }) => { got.push(message.value.toString()); } });
    const deadline = Date.now() + 30000;
    while (got.length < values.length && Date.now() < deadline) await sleep(100);
    await consumer.disconnect();
    assert(JSON.stringify(got.sort()) === JSON.stringify(values.sort()), `${mechanism}: got ${got}`);
}

async function main(broker) {
    for (const mech of ['scram-sha-256', 'scram-sha-512', 'plain']) {
        await roundTrip(broker, mech);
        console.log(`  PASS kafkajs ${mech} produce + consume`);
    }
    let failed = null;
    try {
        await roundTrip(broker, 'scram-sha-256', 'wrong');
    } catch (e) {
        failed = e;
    }
    assert(failed && /SASL|uthentication/.test(String(failed.message || failed)),
        `wrong password: ${failed}`);
    await roundTrip(broker, 'plain'); // still serving
    console.log('  PASS kafkajs wrong password refused, others served');
    await broker.stop();
}

(async () => {
    const broker = new Broker();
    const guard = setTimeout(() => {
        console.error('  FAIL: test timed out after 150 s');
        console.error(broker.logTail());
        broker.kill();
        process.exit(1);
    }, 150000);
    process.on('SIGTERM', () => { broker.kill(); process.exit(143); });
    let rc = 0;
    try {
        await broker.start();
        await main(broker);
        fs.rmSync(broker.tmp, { recursive: true, force: true });
    } catch (e) {
        rc = 1;
        console.error('  FAIL:', e && e.stack ? e.stack : e);
        if (broker.logPath) console.error(`  broker log ${broker.logPath}:\n${broker.logTail()}`);
    } finally {
        broker.kill();
        clearTimeout(guard);
    }
    process.exit(rc);
})();
