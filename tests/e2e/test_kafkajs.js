// kafkajs 2.2.4 (pure JavaScript client) against the real broker: admin createTopics,
// produce with acks -1 (plain and gzip), fetchTopicMetadata, fetchTopicOffsets(ByTimestamp),
// describeCluster, and consumer replay through a consumer group with committed offsets.
'use strict';

const { Kafka, logLevel, CompressionTypes } = require('kafkajs');

const { assert, Broker, runTest } = require('./depot_harness');

async function main(broker) {
    const kafka = new Kafka({
        clientId: 'depot-e2e-kafkajs',
        brokers: [broker.bootstrap],
        connectionTimeout: 5000,
        requestTimeout: 15000,
        retry: { retries: 4, initialRetryTime: 100 },
        logLevel: logLevel.NOTHING, // expected errors (already exists, bad name) are asserted below
    });
    const admin = kafka.admin();
    await admin.connect();

    // createTopics: true when created, false when it already exists.
    const created = await admin.createTopics({
        topics: [{ topic: 'js-rt', numPartitions: 3 }, { topic: 'js-gzip', numPartitions: 1 }],
        waitForLeaders: true,
    });
    assert(created === true, `createTopics returned ${created}`);
    const again = await admin.createTopics({ topics: [{ topic: 'js-rt', numPartitions: 3 }] });
    assert(again === false, `second createTopics of the same topic returned ${again}`);
    const topics = await admin.listTopics();
    assert(topics.includes('js-rt') && topics.includes('js-gzip'), `listTopics: ${topics}`);
    console.log('  PASS admin createTopics / listTopics');

    const md = await admin.fetchTopicMetadata({ topics: ['js-rt'] });
    assert(md.topics.length === 1 && md.topics[0].name === 'js-rt', JSON.stringify(md));
    const parts = md.topics[0].partitions.slice().sort((a, b) => a.partitionId - b.partitionId);
    assert(parts.map((p) => p.partitionId).join() === '0,1,2', `partitions ${JSON.stringify(parts)}`);
    const cluster = await admin.describeCluster();
    assert(cluster.brokers.length === 1, `brokers ${JSON.stringify(cluster.brokers)}`);
    const node = cluster.brokers[0];
    assert(node.host === '127.0.0.1' && node.port === broker.port, `broker ${JSON.stringify(node)}`);
    assert(cluster.controller === node.nodeId, `controller ${cluster.controller} != ${node.nodeId}`);
    assert(typeof cluster.clusterId === 'string' && cluster.clusterId.length > 0, 'clusterId');
    for (const p of parts) {
        assert(p.partitionErrorCode === 0, `partition error ${JSON.stringify(p)}`);
        assert(p.leader === node.nodeId, `leader ${p.leader} != node ${node.nodeId}`);
        assert(p.replicas.includes(node.nodeId) && p.isr.includes(node.nodeId), JSON.stringify(p));
    }
    console.log('  PASS fetchTopicMetadata / describeCluster');

    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const ts = Date.now() - 60000;
    const perPart = [0, 0, 0];
    for (let round = 0; round < 20; round++) {
        const messages = [];
        for (let i = 0; i < 250; i++) {
            const n = round * 250 + i;
            messages.push({
                key: `key-${n % 13}`,
                value: n % 97 === 5 ? null : `value-${n}`,
                partition: n % 3,
                headers: { seq: String(n) },
                timestamp: String(ts + n),
            });
        }
        const res = await producer.send({ topic: 'js-rt', acks: -1, messages });
        for (const r of res) {
            assert(r.errorCode === 0, `produce error ${JSON.stringify(r)}`);
            assert(Number(r.baseOffset) === perPart[r.partition],
                `p${r.partition} baseOffset ${r.baseOffset}, expected ${perPart[r.partition]}`);
        }
        for (const m of messages) perPart[m.partition] += 1;
    }
    const gz = await producer.send({
        topic: 'js-gzip', acks: -1, compression: CompressionTypes.GZIP,
        messages: Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}`, value: 'x'.repeat(100) })),
    });
    assert(gz.length === 1 && gz[0].errorCode === 0 && Number(gz[0].baseOffset) === 0,
        `gzip produce ${JSON.stringify(gz)}`);
    await producer.disconnect();
    console.log('  PASS produce acks -1 (5000 messages, 1000 gzip)');

    const offs = await admin.fetchTopicOffsets('js-rt');
    offs.sort((a, b) => a.partition - b.partition);
    for (const o of offs) {
        assert(Number(o.low) === 0 && Number(o.high) === perPart[o.partition],
            `offsets ${JSON.stringify(o)}, expected high ${perPart[o.partition]}`);
    }
    const goffs = await admin.fetchTopicOffsets('js-gzip');
    assert(goffs.length === 1 && Number(goffs[0].high) === 1000, `gzip offsets ${JSON.stringify(goffs)}`);
    // Offsets by timestamp (ListOffsets with a time): message n has timestamp ts + n and sits
    // in partition n % 3 at offset n / 3; ts + 3030 falls inside a batch, and Kafka answers
    // with the first record at or after the time, not the batch start.
    const byTime = await admin.fetchTopicOffsetsByTimestamp('js-rt', ts + 3030);
    assert(byTime.length === 3, `offsets by time ${JSON.stringify(byTime)}`);
    for (const o of byTime) {
        assert(Number(o.offset) === 1010, `offset for time in p${o.partition}: ${o.offset}, expected 1010`);
    }
    console.log('  PASS fetchTopicOffsets / fetchTopicOffsetsByTimestamp');

    // Consumer replay: kafkajs's consumer always joins a group (JoinGroup/SyncGroup/
    // Heartbeat/OffsetFetch), so this also drives the group coordinator.
    const consumer = kafka.consumer({ groupId: 'js-replay', sessionTimeout: 10000,
        heartbeatInterval: 1000, rebalanceTimeout: 10000 });
    await consumer.connect();
    await consumer.subscribe({ topics: ['js-rt'], fromBeginning: true });
    const seen = [[], [], []];
    let total = 0;
    const done = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`consumer replay timed out: ${total} of 5000`)), 60000);
        consumer.run({
            autoCommit: true,
            eachMessage: async ({ partition, message }) => {
                seen[partition].push(message);
                total += 1;
                if (total === 5000) { clearTimeout(timer); resolve(); }
            },
        }).catch(reject);
    });
    await done;
    for (let p = 0; p < 3; p++) {
        assert(seen[p].length === perPart[p], `p${p}: replayed ${seen[p].length}, produced ${perPart[p]}`);
        seen[p].forEach((m, i) => {
            const n = i * 3 + p; // message n went to partition n % 3 at offset n / 3
            assert(Number(m.offset) === i, `p${p}: offset ${m.offset} at position ${i}`);
            assert(m.key.toString() === `key-${n % 13}`, `p${p}@${i}: key ${m.key}`);
            const want = n % 97 === 5 ? null : `value-${n}`;
            assert((m.value === null ? null : m.value.toString()) === want, `p${p}@${i}: value ${m.value}`);
            assert(m.headers.seq.toString() === String(n), `p${p}@${i}: header seq ${m.headers.seq}`);
            assert(Number(m.timestamp) === ts + n, `p${p}@${i}: timestamp ${m.timestamp}, want ${ts + n}`);
        });
    }
    await consumer.disconnect(); // commits, then LeaveGroup
    const committed = await admin.fetchOffsets({ groupId: 'js-replay', topics: ['js-rt'] });
    const cparts = committed[0].partitions.slice().sort((a, b) => a.partition - b.partition);
    for (const c of cparts) {
        assert(Number(c.offset) === perPart[c.partition],
            `committed offset ${JSON.stringify(c)}, expected ${perPart[c.partition]}`);
    }
    console.log('  PASS consumer group replay (5000 messages) and committed offsets');

    const unknown = await admin.createTopics({ topics: [{ topic: 'bad/name', numPartitions: 1 }] })
        .then(() => 'accepted', (e) => e.type || e.name);
    assert(unknown !== 'accepted', 'createTopics accepted an invalid topic name');
    await admin.disconnect();
    await broker.stop();
    console.log('  PASS clean shutdown');
}

runTest('test_kafkajs', 120000, async () => {
    const broker = new Broker();
    await broker.start();
    await main(broker);
});
