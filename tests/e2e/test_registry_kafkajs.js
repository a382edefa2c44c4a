// @kafkajs/confluent-schema-registry 3.3.0 (with kafkajs 2.2.4) against Depot's built-in schema
// registry: register (the same schema again keeps its id), the client's own compatibility
// handshake (GET /config/{subject} answering 40408, then PUT), an incompatible schema refused
// with 409, encode -> produce -> consume -> decode through the broker, and a topic with
// validation at the door accepting what the client encoded and refusing a plain string.
'use strict';

const { Kafka, logLevel } = require('kafkajs');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');

const { assert, freePort, portAccepts, sleep, Broker, runTest } = require('./depot_harness');

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

runTest('test_registry_kafkajs', 120000, async () => {
    const broker = new Broker();
    const regPort = await freePort();
    await broker.start({ 'schema.registry.listeners': `http://127.0.0.1:${regPort}` });
    await main(broker, regPort);
});
