// kafkajs 2.2.4 over SASL_SSL (TLS with a CA and server certificate made here with openssl):
// SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN each produce and consume through a group; a wrong
// password is refused and the broker keeps serving.
'use strict';

const { Broker, runTest } = require('./depot_harness');
const { saslChecks, CAROL } = require('./kafkajs_sasl');

runTest('test_tls_kafkajs', 150000, async () => {
    const broker = new Broker({ listener: 'SASL_SSL', tls: true, scram: CAROL });
    await broker.start();
    await saslChecks(broker, 'tls');
});
