// kafkajs 2.2.4 over SASL_PLAINTEXT: SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN each produce and
// consume through a group; a wrong password is refused with kafkajs's authentication error and
// the broker keeps serving. Users are bootstrapped with depot --add-scram.
'use strict';

const { Broker, runTest } = require('./depot_harness');
const { saslChecks, CAROL } = require('./kafkajs_sasl');

runTest('test_sasl_kafkajs', 150000, async () => {
    const broker = new Broker({ listener: 'SASL_PLAINTEXT', scram: CAROL });
    await broker.start();
    await saslChecks(broker, 'sasl');
});
