// The kafkajs SASL checks shared by test_sasl_kafkajs.js (SASL_PLAINTEXT) and
// test_tls_kafkajs.js (SASL_SSL): user carol (SCRAM credentials stored with --add-scram, PLAIN
// from them too) produces and consumes through a group with each mechanism; a wrong password
// is refused with kafkajs's authentication error and the broker keeps serving; then it stops
// cleanly. Over TLS the client trusts broker.ca (the harness's test CA).
'use strict';

const { Kafka, logLevel } = require('kafkajs');
const { assert, sleep } = require('./depot_harness');

const CAROL = ['SCRAM-SHA-256', 'SCRAM-SHA-512'].map((m) => `${m}=[name=carol,password=carol-pw]`);

async function roundTrip(broker, tag, mechanism, password = 'carol-pw') {
    const kafka = new Kafka({
        clientId: 'depot-e2e-kafkajs-sasl',
        brokers: [broker.bootstrap],
        sasl: { mechanism, username: 'carol', password },
        ssl: broker.ca ? { ca: [broker.ca], servername: 'localhost' } : undefined,
        connectionTimeout: 5000,
        requestTimeout: 15000,
        retry: { retries: 2, initialRetryTime: 100 },
        logLevel: logLevel.NOTHING,
    });
    const topic = `js-${tag}-${mechanism.replace(/-/g, '')}`;
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

async function saslChecks(broker, tag) {
    for (const mech of ['scram-sha-256', 'scram-sha-512', 'plain']) {
        await roundTrip(broker, tag, mech);
        console.log(`  PASS kafkajs ${mech} produce + consume`);
    }
    let failed = null;
    try {
        await roundTrip(broker, tag, 'scram-sha-256', 'wrong');
    } catch (e) {
        failed = e;
    }
    assert(failed && /SASL|uthentication/.test(String(failed.message || failed)),
        `wrong password: ${failed}`);
    await roundTrip(broker, tag, 'plain'); // still serving
    console.log('  PASS kafkajs wrong password refused, others served');
    await broker.stop();
}

module.exports = { saslChecks, CAROL };
