// @kafkajs/confluent-schema-registry 3.3.0 against Depot's schema registry over https://
// (schema.registry.listeners=https://..., the broker's ssl.keystore.location; certificates
// made here with openssl): the client trusts the test CA through an https.Agent and
// registers, encodes and decodes (a fresh client fetching the schema by id); a client with
// another CA is refused; basic auth over TLS (good password registers, bad one gets 401).
'use strict';

const fs = require('fs');
const https = require('https');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');
const { assert, freePort, portAccepts, sleep, Broker, runTest } = require('./depot_harness');

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

runTest('test_registry_tls_kafkajs', 120000, async () => {
    const regPort = await freePort();
    // the Kafka listener stays PLAINTEXT; the certificates serve the https:// registry
    const broker = new Broker({ tls: true, scram: ['SCRAM-SHA-256=[name=alice,password=alice-pw]'] });
    await broker.start({
        'schema.registry.listeners': `https://127.0.0.1:${regPort}`,
        'schema.registry.authentication.method': 'BASIC',
    });
    await main(broker, regPort, broker.certs);
});
