// kafkajs 2.2.4 against compacted topics: records produced by kafkajs (plain and gzip, and an
// idempotent producer whose last batch is kept empty after another producer overwrote its
// keys) are compacted by the broker's cleaner and read back from the start with kafkajs: each
// key once, with its latest value, at the offset it was first given. kafkajs has gzip only
// built in; snappy, lz4 and zstd come from the codec packages scripts/install-deps --test puts
// in build/node-codecs (kafkajs-snappy; lz4js and @bokuweb/zstd-wasm wrapped below in kafkajs'
// codec interface). Without them (npm registry unreachable) those three skip with a message.
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs');

const { assert, sleep, Broker, runTest } = require('./depot_harness');

// The codec packages' node_modules: installed by scripts/install-deps --test, fetched here once
// (before the test's clock starts) if this checkout lacks them.
function findCodecDir() {
    const fetch = path.resolve(__dirname, '../../scripts/fetch-node-codecs');
    let r = spawnSync(fetch, ['--print-dir'], { encoding: 'utf8' });
    if (r.status !== 0) {
        spawnSync(fetch, [], { stdio: 'ignore', timeout: 330000 });
        r = spawnSync(fetch, ['--print-dir'], { encoding: 'utf8' });
    }
    return r.status === 0 ? r.stdout.trim()
        : path.resolve(__dirname, '../../build/node-codecs/node_modules');
}
const CODEC_DIR = findCodecDir();

// Registers snappy, lz4 and zstd with kafkajs from build/node-codecs; returns the codec types
// registered, or null (with the reason) when the packages are not installed.
async function registerCodecs() {
    const dir = CODEC_DIR;
    let SnappyCodec, lz4, zstd;
    try {
        SnappyCodec = require(path.join(dir, 'kafkajs-snappy'));
        lz4 = require(path.join(dir, 'lz4js'));
        zstd = require(path.join(dir, '@bokuweb/zstd-wasm'));
    } catch (e) {
        return { why: `codec packages missing in ${dir} (scripts/fetch-node-codecs could not ` +
            `reach the npm registry? see build/fetch-node-codecs.log): ` +
            `${e.message.split('\n')[0]}` };
    }
    await zstd.init();
    // kafkajs' codec interface: compress(encoder) and decompress(buffer), both async. Kafka's
    // lz4 is the LZ4 frame format (lz4js' compress/decompress); zstd is one zstd frame.
    CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
    CompressionCodecs[CompressionTypes.LZ4] = () => ({
        async compress(encoder) { return Buffer.from(lz4.compress(encoder.buffer)); },
        async decompress(buf) { return Buffer.from(lz4.decompress(buf)); },
    });
    CompressionCodecs[CompressionTypes.ZSTD] = () => ({
        async compress(encoder) { return Buffer.from(zstd.compress(encoder.buffer, 3)); },
        async decompress(buf) { return Buffer.from(zstd.decompress(buf)); },
    });
    return { codecs: [['snappy', CompressionTypes.Snappy], ['lz4', CompressionTypes.LZ4],
        ['zstd', CompressionTypes.ZSTD]] };
}

const COMPACT = [
    { name: 'cleanup.policy', value: 'compact' }, { name: 'segment.bytes', value: '8192' },
    { name: 'min.cleanable.dirty.ratio', value: '0.01' },
    { name: 'max.compaction.lag.ms', value: '1500' },
];

// Offsets of one send of messages to partition 0.
async function send(producer, topic, messages, compression, model) {
    const md = await producer.send({ topic, messages, acks: -1, compression });
    const base = Number(md[0].baseOffset);
    messages.forEach((m, i) => {
        model.at.set(base + i, [m.key, m.value]);
        if (model.ts) model.ts.set(base + i, m.timestamp);
        model.latest.set(m.key, base + i);
    });
}

async function readAll(kafka, admin, topic) {
    const offs = await admin.fetchTopicOffsets(topic);
    const hw = Number(offs[0].high);
    const consumer = kafka.consumer({ groupId: `g-${topic}-${Date.now()}-${Math.random()}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const out = [];
    let done;
    const finished = new Promise((r) => { done = r; });
    await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
            const o = Number(message.offset);
            out.push([o, message.key && message.key.toString(),
                message.value === null ? null : message.value.toString(), message.timestamp]);
            if (o >= hw - 1) done();
        },
    });
    const t = setTimeout(done, 15000);
    await finished;
    clearTimeout(t);
    await consumer.disconnect();
    return out;
}

async function waitCompacted(kafka, admin, topic, model) {
    const deadline = Date.now() + 30000;
    for (;;) {
        const recs = await readAll(kafka, admin, topic);
        for (let i = 1; i < recs.length; i++)
            assert(recs[i][0] > recs[i - 1][0], `${topic}: offsets not increasing at ${recs[i][0]}`);
        for (const [o, k, v] of recs) {
            const want = model.at.get(o);
            assert(want && want[0] === k && want[1] === v, `${topic}: offset ${o} holds ${k}/${v}`);
        }
        const latest = recs.every(([o, k]) => model.latest.get(k) === o);
        if (latest && recs.length === model.latest.size) return recs;
        assert(Date.now() < deadline, `${topic}: not compacted: ${recs.length} records, ` +
            `want ${model.latest.size}`);
        await sleep(500);
    }
}

// Batches on disk with the KIP-534 delete-horizon attribute (bit 6), read from the segment
// files of partition 0: [baseOffset, baseTimestamp].
function stampedBatches(broker, topic) {
    const dir = path.join(broker.dataDir, `${topic}-0`);
    const out = [];
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.log')).sort()) {
        let b;
        try {
            b = fs.readFileSync(path.join(dir, f));
        } catch (e) {
            continue; // replaced by a clean meanwhile
        }
        for (let pos = 0; pos + 61 <= b.length;) {
            const len = b.readInt32BE(pos + 8);
            if (len < 49 || pos + 12 + len > b.length) break;
            if (b.readInt16BE(pos + 21) & 0x40) {
                out.push([Number(b.readBigInt64BE(pos)), Number(b.readBigInt64BE(pos + 27))]);
            }
            pos += 12 + len;
        }
    }
    return out;
}

async function main(broker) {
    const kafka = new Kafka({
        clientId: 'depot-e2e-kafkajs-compaction', brokers: [broker.bootstrap],
        logLevel: logLevel.NOTHING, retry: { retries: 4, initialRetryTime: 100 },
    });
    const admin = kafka.admin();
    await admin.connect();
    const reg = await registerCodecs();
    const codecs = [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]
        .concat(reg.codecs || []);
    const topics = codecs.map(([name]) => `js-c-${name}`).concat(['js-c-idem']);
    await admin.createTopics({
        topics: topics.map((topic) => ({ topic, numPartitions: 1, configEntries: COMPACT })),
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    for (const [name, codec] of codecs) {
        const topic = `js-c-${name}`;
        const model = { at: new Map(), latest: new Map() };
        for (let r = 0; r < 20; r++) {
            const msgs = [];
            for (let k = 0; k < 150; k++) msgs.push({ key: `k${k}`, value: `v${k}-${r}-${'x'.repeat(30)}` });
            await send(producer, topic, msgs, codec, model);
        }
        const recs = await waitCompacted(kafka, admin, topic, model);
        console.log(`  PASS ${topic}: 150 keys x 20 updates compacted to ${recs.length} records`);
    }
    if (!reg.codecs) console.log(`  SKIP snappy, lz4, zstd (kafkajs): ${reg.why}`);

    // Tombstones kept by a clean sit in batches stamped with their delete horizon (KIP-534:
    // attribute bit 6, the horizon in baseTimestamp, record timestamp deltas rebased): kafkajs
    // must read them with every record's own timestamp.
    await admin.createTopics({ topics: [{ topic: 'js-c-tomb', numPartitions: 1,
        configEntries: COMPACT.concat([{ name: 'delete.retention.ms', value: '600000' }]) }] });
    const tm = { at: new Map(), latest: new Map(), ts: new Map() };
    const t0 = Date.now() - 3600000;
    for (let r = 0; r < 5; r++) {
        const msgs = [];
        for (let k = 0; k < 100; k++) {
            msgs.push({ key: `k${k}`, value: k % 5 === 0 && r === 4 ? null : `v${k}-${r}`,
                timestamp: String(t0 + r * 1000 + k) });
        }
        await send(producer, 'js-c-tomb', msgs, CompressionTypes.GZIP, tm);
    }
    for (const deadline = Date.now() + 30000; !stampedBatches(broker, 'js-c-tomb').length;) {
        assert(Date.now() < deadline, 'js-c-tomb: no batch stamped with a delete horizon');
        await sleep(200);
    }
    const trecs = await waitCompacted(kafka, admin, 'js-c-tomb', tm);
    const tombs = trecs.filter(([, , v]) => v === null).length;
    assert(tombs === 20, `js-c-tomb: ${tombs} tombstones, want 20`);
    for (const [o, , , ts] of trecs) {
        assert(ts === tm.ts.get(o), `js-c-tomb: offset ${o} timestamp ${ts}, produced ${tm.ts.get(o)}`);
    }
    const st = stampedBatches(broker, 'js-c-tomb');
    assert(st.every(([, hz]) => hz > Date.now() + 500000), `js-c-tomb: horizons ${st}`);
    console.log(`  PASS tombstones in ${st.length} horizon-stamped batches read by kafkajs ` +
        'with their timestamps');

    const idem = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await idem.connect();
    const model = { at: new Map(), latest: new Map() };
    for (let r = 0; r < 10; r++) {
        const msgs = [];
        for (let k = 0; k < 100; k++) msgs.push({ key: `k${k}`, value: `idem-${k}-${r}` });
        await send(idem, 'js-c-idem', msgs, CompressionTypes.None, model);
    }
    const msgs = [];
    for (let k = 0; k < 100; k++) msgs.push({ key: `k${k}`, value: `other-${k}` });
    await send(producer, 'js-c-idem', msgs, CompressionTypes.None, model);
    await waitCompacted(kafka, admin, 'js-c-idem', model);
    const more = [];
    for (let k = 0; k < 100; k++) more.push({ key: `k${k}`, value: `idem-${k}-again` });
    await send(idem, 'js-c-idem', more, CompressionTypes.None, model); // no OUT_OF_ORDER
    await waitCompacted(kafka, admin, 'js-c-idem', model);
    console.log('  PASS idempotent producer across cleans; its empty last batch read by kafkajs');
    await idem.disconnect();
    await producer.disconnect();
    await admin.disconnect();
    await broker.stop();
}

runTest('test_compaction_kafkajs', 120000, async () => {
    const broker = new Broker();
    await broker.start({ 'log.cleaner.backoff.ms': 100 });
    await main(broker);
});
