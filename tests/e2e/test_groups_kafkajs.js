// Consumer groups with kafkajs 2.2.4 (its consumer always joins a group): a group consumes
// and commits, a new member of the same group resumes after the committed offsets (also after
// a broker kill -9), a new group replays from the beginning, and the admin client sees the
// committed offsets and the group.
'use strict';

const { Kafka, logLevel } = require('kafkajs');
const { assert, Broker, runTest } = require('./depot_harness');

async function consumeUntil(kafka, groupId, topic, fromBeginning, want) {
    const consumer = kafka.consumer({
        groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000,
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning });
    const got = [];
    let resolve;
    const enough = new Promise((r) => { resolve = r; });
    await consumer.run({
        eachMessage: async ({ partition, message }) => {
            got.push({ partition, offset: Number(message.offset), value: message.value.toString() });
            if (got.length >= want) resolve();
        },
    });
    const timer = setTimeout(resolve, 30000);
    await enough;
    clearTimeout(timer);
    await consumer.disconnect(); // commits what was consumed, then leaves the group
    return got;
}

async function main() {
    const depot = new Broker();
    await depot.start({
        'group.min.session.timeout.ms': 1000,
        'group.initial.rebalance.delay.ms': 0,
    });
    const kafka = new Kafka({
        clientId: 'depot-e2e-groups', brokers: [`127.0.0.1:${depot.port}`],
        logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100 },
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'js-replay', numPartitions: 2 }] });
    const producer = kafka.producer();
    await producer.connect();
    const batch = (from, n) => Array.from({ length: n }, (_, i) => ({
        value: `m${from + i}`, partition: (from + i) % 2,
    }));
    await producer.send({ topic: 'js-replay', acks: -1, messages: batch(0, 20) });

    const first = await consumeUntil(kafka, 'jsg', 'js-replay', true, 20);
    assert(first.length === 20, `first run consumed ${first.length}`);
    const offs = await admin.fetchOffsets({ groupId: 'jsg', topics: ['js-replay'] });
    const committed = offs[0].partitions.map((p) => Number(p.offset)).sort();
    assert(JSON.stringify(committed) === '[10,10]', `committed ${JSON.stringify(offs)}`);

    await producer.send({ topic: 'js-replay', acks: -1, messages: batch(20, 10) });
    const second = await consumeUntil(kafka, 'jsg', 'js-replay', true, 10);
    const values = second.map((m) => m.value).sort();
    assert(second.length === 10 && second.every((m) => m.offset >= 10),
        `second run resumed wrongly: ${JSON.stringify(second)}`);
    assert(values.every((v) => Number(v.slice(1)) >= 20), `old values replayed: ${values}`);
    await producer.disconnect();
    await admin.disconnect();

    await depot.restart({ hard: true });
    const admin2 = kafka.admin();
    await admin2.connect();
    const after = await admin2.fetchOffsets({ groupId: 'jsg', topics: ['js-replay'] });
    const c2 = after[0].partitions.map((p) => Number(p.offset)).sort();
    assert(JSON.stringify(c2) === '[15,15]', `committed after kill -9 ${JSON.stringify(after)}`);
    const groups = (await admin2.listGroups()).groups.map((g) => g.groupId);
    assert(groups.includes('jsg'), `listGroups ${JSON.stringify(groups)}`);
    await admin2.disconnect();

    const replay = await consumeUntil(kafka, 'jsg-new', 'js-replay', true, 30);
    assert(replay.length === 30, `new group replayed ${replay.length} of 30`);
    await depot.stop();
}

runTest('test_groups_kafkajs', 240000, main);
