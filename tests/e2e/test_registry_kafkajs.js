// @kafkajs/confluent-schema-registry 3.3.0 (with kafkajs 2.2.4) against Depot's built-in schema
// registry: register (the same schema again keeps its id), the client's own compatibility
// handshake (GET /config/{subject} answering 40408, then PUT), an incompatible schema refused
// with 409, encode -> produce -> consume -> decode through the broker, and a topic with
// validation at the door accepting what the client encoded and refusing a plain string.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { Kafka, logLevel } = require('kafkajs');
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


const V1 = {
    type: 'record', name: 'Reading', namespace: 'plant',
    fields: [{ name: 'sensor', type: 'string' }, { name: 'temp', type: 'double' }],
};
const V2 = {
    type: 'record', name: 'Reading', namespace: 'plant',
    fields: [{ name: 'sensor', type: 'string' }, { name: 'temp', type: 'double' },
        { name: 'unit', type: 'string', default: 'C' }],
};
const BAD = {
    type: 'record', name: 'Reading', namespace: 'plant',
    fields: [{ name: 'sensor', type: 'long' }],
};

async function main(broker, regPort) {
    const host = `http://127.0.0.1:${regPort}`;
    for (let i = 0; i < 200 && !(await portAccepts(regPort)); i++) await sleep(50);
    const registry = new SchemaRegistry({ host });
    const subject = 'js-sensors-value';
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(V1) },
        { subject });
    assert(id === 1, `first id ${id}`);
    const again = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(V1) },
        { subject });
    assert(again.id === id, `the same schema got id ${again.id}`);
    console.log('  PASS register (same schema, same id; client set BACKWARD after 40408)');

    const v2 = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(V2) },
        { subject });
    assert(v2.id === 2, `v2 id ${v2.id}`);
    assert((await registry.getLatestSchemaId(subject)) === 2, 'latest id');
    let refused = null;
    try {
        await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(BAD) }, { subject });
    } catch (e) {
        refused = e;
    }
    assert(refused && refused.status === 409, `incompatible schema: ${refused}`);
    console.log('  PASS compatibility (a default is BACKWARD-compatible; a type change is 409)');

    const kafka = new Kafka({
        clientId: 'depot-e2e-registry', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING,
        retry: { retries: 2, initialRetryTime: 100 },
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
        topics: [{ topic: 'js-sensors', numPartitions: 1,
            configEntries: [{ name: 'confluent.value.schema.validation', value: 'true' }] }],
    });
    await admin.disconnect();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const values = [];
    for (let i = 0; i < 10; i++) {
        const v = { sensor: `t${i}`, temp: 20 + i / 4, unit: 'K' };
        values.push(v);
        await producer.send({ topic: 'js-sensors', acks: -1,
            messages: [{ value: await registry.encode(v2.id, v) }] });
    }
    let plain = null;
    try {
        await producer.send({ topic: 'js-sensors', acks: -1, messages: [{ value: 'temp=21.5' }] });
    } catch (e) {
        plain = e;
    }
    assert(plain, 'a plain string was accepted by a validated topic');
    const cause = plain.originalError || (plain.errors && plain.errors[0]) || plain;
    assert(/INVALID_RECORD|validation/i.test(`${cause.type} ${cause.message} ${plain.message}`),
        `plain string refused with ${plain}`);
    await producer.disconnect();
    console.log('  PASS validated topic: encoded records in, a plain string refused');

    const consumer = kafka.consumer({ groupId: 'js-registry' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'js-sensors', fromBeginning: true });
    const got = [];
    await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`consumed ${got.length} of 10`)), 30000);
        consumer.run({
            eachMessage: async ({ message }) => {
                got.push(await registry.decode(message.value));
                if (got.length === 10) { clearTimeout(t); resolve(); }
            },
        }).catch(reject);
    });
    await consumer.disconnect();
    assert(JSON.stringify(got) === JSON.stringify(values), `decoded ${JSON.stringify(got)}`);
    // A fresh client (empty cache) resolves ids through GET /schemas/ids/{id}.
    const fresh = new SchemaRegistry({ host });
    const one = await fresh.decode(await registry.encode(id, { sensor: 'x', temp: 1.5 }));
    assert(one.sensor === 'x' && one.temp === 1.5, `fresh decode ${JSON.stringify(one)}`);
    console.log('  PASS encode -> produce -> consume -> decode (10 records, and a fresh client)');
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
        await broker.start({ 'schema.registry.listeners': `http://127.0.0.1:${regPort}` });
        await main(broker, regPort);
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
