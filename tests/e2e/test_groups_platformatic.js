// KIP-848 consumer groups with @platformatic/kafka 1.35.0 (pinned in package.json; its
// consumer with groupProtocol: 'consumer' sends ConsumerGroupHeartbeat): a group of three on a
// 6-partition topic, started one after another, then one leaves. Every record is consumed (at
// least once: this client commits on a timer, so a record can come twice around a rebalance,
// which is counted and printed), no partition is ever in two members' assignments at once
// (sampled every 20 ms), the two left own all six partitions, and ListGroups (v5 types
// filter) lists the group as a consumer group in a consumer state.
'use strict';

const { assert, sleep, Broker, runTest } = require('./depot_harness');

let kafka;
try {
    kafka = require('@platformatic/kafka');
} catch (e) {
    console.log('  SKIP test_groups_platformatic: @platformatic/kafka not installed ' +
        '(npm ci in tests/e2e could not reach the npm registry): ' + e.message);
    process.exit(0);
}
const { Admin, Consumer, Producer, stringSerializers, stringDeserializers } = kafka;

const TOPIC = 'pk848';
const GROUP = 'pk848.g';
const HALF = 600;
const seen = new Map();
const violations = [];
const commitErrors = [];

async function startMember(bs, name) {
    const consumer = new Consumer({
        clientId: name, groupId: GROUP, bootstrapBrokers: [bs], groupProtocol: 'consumer',
        deserializers: stringDeserializers, retries: 20, retryDelay: 200,
    });
    const stream = await consumer.consume({
        topics: [TOPIC], mode: 'committed', fallbackMode: 'earliest', autocommit: 100,
        maxWaitTime: 200,
    });
    stream.on('data', (m) => seen.set(m.value, (seen.get(m.value) || 0) + 1));
    stream.on('error', (e) => violations.push(`${name} stream error: ${e.message}`));
    stream.on('autocommit', (e) => { if (e) commitErrors.push(`${name}: ${e.message}`); });
    return { name, consumer, stream };
}

function owned(members) {
    const owners = new Map();
    for (const m of members) {
        for (const a of m.consumer.assignments || []) {
            if (a.topic !== TOPIC) continue;
            for (const p of a.partitions) {
                if (owners.has(p) && owners.get(p) !== m.name) {
                    violations.push(`partition ${p} in ${owners.get(p)}'s and ${m.name}'s ` +
                        'assignments at once');
                }
                owners.set(p, m.name);
            }
        }
    }
    return owners;
}

async function waitFor(cond, ms) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (cond()) return true;
        await sleep(50);
    }
    return cond();
}

async function produce(producer, from, to) {
    const messages = [];
    for (let i = from; i < to; i++) messages.push({ topic: TOPIC, key: `k${i}`, value: `v${i}` });
    await producer.send({ messages, acks: -1 });
}

async function main() {
    const depot = new Broker();
    const settings = {
        // Kafka's default. At 500 ms this client re-reads committed offsets for all its
        // partitions while a heartbeat answer is still being applied and consumes hundreds of
        // records twice (with Depot and, at that interval, by the same mechanism anywhere).
        'group.consumer.heartbeat.interval.ms': 5000,
        'group.initial.rebalance.delay.ms': 0,
    };
    const members = [];
    let sampler;
    try {
        await depot.start(settings);
        const bs = `127.0.0.1:${depot.port}`;
        const admin = new Admin({ clientId: 'pk-admin', bootstrapBrokers: [bs] });
        await admin.createTopics({ topics: [TOPIC], partitions: 6, replicas: 1 });
        const producer = new Producer({
            clientId: 'pk-producer', bootstrapBrokers: [bs], serializers: stringSerializers,
        });
        await produce(producer, 0, HALF);
        sampler = setInterval(() => owned(members), 20);
        for (const name of ['m0', 'm1', 'm2']) {
            members.push(await startMember(bs, name));
            await sleep(1500);
        }
        assert(await waitFor(() => seen.size >= HALF, 60000),
            `three members consumed ${seen.size} of ${HALF}`);
        assert(await waitFor(() => {
            const o = owned(members);
            return o.size === 6 && new Set(o.values()).size === 3;
        }, 30000), `6 partitions over 3 members: ${JSON.stringify([...owned(members)])}`);
        console.log(`    three members own ${JSON.stringify([...owned(members)])}`);

        const groups = await admin.listGroups({ types: ['consumer'] });
        const g = groups.get(GROUP);
        assert(g && g.state === 'STABLE' && g.protocolType === 'consumer',
            `listGroups(types consumer): ${JSON.stringify([...groups])}`);

        const leaver = members.pop();
        await leaver.stream.close();
        await leaver.consumer.close();
        await produce(producer, HALF, 2 * HALF);
        assert(await waitFor(() => seen.size >= 2 * HALF, 60000),
            `after m2 left: consumed ${seen.size} of ${2 * HALF}`);
        assert(await waitFor(() => {
            const o = owned(members);
            return o.size === 6 && new Set(o.values()).size === 2;
        }, 30000), `6 partitions over the 2 left: ${JSON.stringify([...owned(members)])}`);
        console.log(`    after the leave ${JSON.stringify([...owned(members)])}`);
        clearInterval(sampler);
        const dup = [...seen.values()].filter((n) => n > 1).length;
        console.log(`    ${seen.size} distinct records consumed, ${dup} more than once; ${commitErrors.length} autocommit errors ${commitErrors.slice(0, 3)}`);
        assert(seen.size === 2 * HALF, `consumed ${seen.size} distinct of ${2 * HALF}`);
        assert(violations.length === 0, violations.slice(0, 5).join('; '));
        for (const m of members) {
            await m.stream.close();
            await m.consumer.close();
        }
        members.length = 0;
        await producer.close();
        await admin.close();
    } finally {
        clearInterval(sampler);
        for (const m of members) {
            try { await m.consumer.close(true); } catch (e) { /* already failing */ }
        }
    }
    await depot.stop();
}

runTest('test_groups_platformatic', 240000, main);
