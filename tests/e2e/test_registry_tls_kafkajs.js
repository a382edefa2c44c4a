// @kafkajs/confluent-schema-registry 3.3.0 against Depot's schema registry over https://
// (schema.registry.listeners=https://..., the broker's ssl.keystore.location; certificates
// made here with openssl): the client trusts the test CA through an https.Agent and
// registers, encodes and decodes (a fresh client fetching the schema by id); a client with
// another CA is refused; basic auth over TLS (good password registers, bad one gets 401).
'use strict';

const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const https = require('https');
const net = require('net');
const os = require('os');
const path = require('path');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');

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
        const args = ['--set', `listeners=PLAINTEXT://127.0.0.1:${this.port}`];
        if (!settings['log.dirs']) args.push('--set', `log.dirs=${this.dataDir}`);
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

function openssl(...args) {
    execFileSync('openssl', args, { stdio: 'ignore' });
}

// A CA and a server certificate for localhost/127.0.0.1 (as tests/e2e/tls_certs.py makes).
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

const V1 = {
    type: 'record', name: 'Reading', namespace: 'plant',
    fields: [{ name: 'sensor', type: 'string' }, { name: 'temp', type: 'double' }],
};

async function refusedWith(promise) {
    try {
        await promise;
    } catch (e) {
        return e;
    }
    return null;
}

async function main(broker, regPort, certs) {
    const host = `https://127.0.0.1:${regPort}`;
    for (let i = 0; i < 200 && !(await portAccepts(regPort)); i++) await sleep(50);
    const agent = new https.Agent({ ca: fs.readFileSync(certs.ca) });
    const registry = new SchemaRegistry({ host, agent, auth: { username: 'alice', password: 'alice-pw' } });
    const subject = 'js-tls-value';
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(V1) },
        { subject });
    assert(id === 1, `first id ${id}`);
    const again = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(V1) },
        { subject });
    assert(again.id === id, `the same schema got id ${again.id}`);
    const encoded = await registry.encode(id, { sensor: 's1', temp: 21.5 });
    assert(encoded[0] === 0 && encoded.readInt32BE(1) === id, 'Confluent framing');
    const fresh = new SchemaRegistry({ host, agent, auth: { username: 'alice', password: 'alice-pw' } });
    const back = await fresh.decode(encoded);
    assert(back.sensor === 's1' && back.temp === 21.5, `decoded ${JSON.stringify(back)}`);
    console.log('  PASS register, encode, decode (fresh client) over https');

    const wrongAgent = new https.Agent({ ca: fs.readFileSync(certs.other) });
    const wrong = new SchemaRegistry({ host, agent: wrongAgent, retry: { retries: 0 },
        auth: { username: 'alice', password: 'alice-pw' } });
    const e1 = await refusedWith(wrong.getLatestSchemaId(subject));
    assert(e1 && /certificate|issuer/i.test(`${e1.message} ${e1.code}`),
        `wrong CA not refused: ${e1}`);
    console.log(`  PASS a client with another CA is refused (${e1.code || e1.message})`);

    const badPw = new SchemaRegistry({ host, agent, retry: { retries: 0 },
        auth: { username: 'alice', password: 'wrong' } });
    const e2 = await refusedWith(badPw.register({ type: SchemaType.AVRO,
        schema: JSON.stringify({ ...V1, name: 'Other' }) }, { subject: 'js-tls-2-value' }));
    assert(e2 && e2.status === 401, `bad password: ${e2 && e2.status} ${e2}`);
    const e3 = await refusedWith(fresh.getLatestSchemaId('js-tls-2-value'));
    assert(e3 && e3.status === 404, `registered with a bad password: ${e3}`);
    console.log('  PASS basic auth over TLS (bad password: 401, nothing stored)');
    await broker.stop();
}

(async () => {
    const broker = new Broker();
    const guard = setTimeout(() => {
        console.error('  FAIL: test timed out after 120 s');
        console.error(broker.logTail());
        broker.kill();
        process.exit(1);
    }, 120000);
    process.on('SIGTERM', () => { broker.kill(); process.exit(143); });
    let rc = 0;
    try {
        const regPort = await freePort();
        const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'depot-e2e-jstls-'));
        const certs = makeCerts(path.join(scratch, 'certs'));
        const dataDir = path.join(scratch, 'data');
        execFileSync(DEPOT_BIN, ['--set', `log.dirs=${dataDir}`, '--add-scram',
            'SCRAM-SHA-256=[name=alice,password=alice-pw]'], { stdio: 'ignore' });
        await broker.start({
            'log.dirs': dataDir,
            'schema.registry.listeners': `https://127.0.0.1:${regPort}`,
            'schema.registry.authentication.method': 'BASIC',
            'ssl.keystore.location': certs.server,
        });
        await main(broker, regPort, certs);
        fs.rmSync(broker.tmp, { recursive: true, force: true });
        fs.rmSync(scratch, { recursive: true, force: true });
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
