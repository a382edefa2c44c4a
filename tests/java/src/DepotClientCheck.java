// The Java client (org.apache.kafka:kafka-clients, the version pinned in tests/java/pom.xml)
// against Depot: admin (create topic, create partitions, incremental alter configs, describe
// configs with sources, consumer-group describe and offsets), an idempotent producer (the Java
// default: enable.idempotence=true, acks=all) and a consumer group (classic protocol) that
// commits with metadata. Prints one "ok ..." line per check and exits 1 on the first failure.
// Run by tests/e2e/test_java_tools.py:  java -cp <classes>:<kafka libs>/* DepotClientCheck HOST:PORT
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class DepotClientCheck {
    static void check(boolean cond, String what) {
        if (!cond) {
            System.out.println("FAIL " + what);
            System.exit(1);
        }
        System.out.println("ok " + what);
    }

    public static void main(String[] args) throws Exception {
        String bs = args[0];
        String topic = "java.t";
        int n = 300;
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bs);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1)
                    .configs(Map.of("compression.type", "producer", "min.insync.replicas", "1"))))
                    .all().get(30, TimeUnit.SECONDS);
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3)))
                    .all().get(30, TimeUnit.SECONDS);
            int parts = admin.describeTopics(List.of(topic)).allTopicNames().get()
                    .get(topic).partitions().size();
            check(parts == 3, "createPartitions 2 -> 3 (describeTopics says " + parts + ")");
            try {
                admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2)))
                        .all().get(30, TimeUnit.SECONDS);
                check(false, "shrinking refused");
            } catch (java.util.concurrent.ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.InvalidPartitionsException,
                      "shrinking refused with InvalidPartitionsException");
            }
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                    .all().get(30, TimeUnit.SECONDS);
            Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
            ConfigEntry ret = cfg.get("retention.ms"), cp = cfg.get("cleanup.policy"),
                        seg = cfg.get("segment.bytes");
            check(ret.value().equals("3600000") && ret.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                  "incrementalAlterConfigs SET retention.ms (" + ret + ")");
            check(cp.value().equals("delete,compact") || cp.value().equals("compact,delete"),
                  "incrementalAlterConfigs APPEND cleanup.policy (" + cp.value() + ")");
            check(seg.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG, "segment.bytes from the default");
            admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.SUBTRACT),
                    new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE))))
                    .all().get(30, TimeUnit.SECONDS);
            cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
            check(cfg.get("cleanup.policy").value().equals("delete")
                  && cfg.get("retention.ms").source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG,
                  "SUBTRACT and DELETE (" + cfg.get("cleanup.policy").value() + ")");
        }

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bs);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        try (Producer<String, String> p = new KafkaProducer<>(pp)) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++)
                fs.add(p.send(new ProducerRecord<>(topic, i % 3, "k" + i, "value-" + i)));
            p.flush();
            for (java.util.concurrent.Future<RecordMetadata> f : fs) f.get(30, TimeUnit.SECONDS);
        }
        check(true, "idempotent producer (enable.idempotence default true, acks=all): " + n + " records acknowledged");

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bs);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, "java.g");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        Set<String> seen = new HashSet<>();
        try (Consumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 60000;
            while (seen.size() < n && System.currentTimeMillis() < deadline)
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500)))
                    seen.add(r.value());
            check(seen.size() == n, "consumer group java.g read " + seen.size() + "/" + n);
            Map<TopicPartition, OffsetAndMetadata> commits = new HashMap<>();
            for (TopicPartition tp : c.assignment())
                commits.put(tp, new OffsetAndMetadata(c.position(tp), "java-meta-\u00e9"));
            c.commitSync(commits);
            try (Admin admin = Admin.create(ap)) {
                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of("java.g"))
                        .all().get().get("java.g");
                check(d.members().size() == 1 && d.members().iterator().next().assignment()
                        .topicPartitions().size() == 3, "describeConsumerGroups: 1 member, 3 partitions (" + d.groupState() + ")");
                Map<TopicPartition, OffsetAndMetadata> offs = admin.listConsumerGroupOffsets("java.g")
                        .partitionsToOffsetAndMetadata().get();
                long total = 0;
                boolean meta = true;
                for (OffsetAndMetadata o : offs.values()) {
                    total += o.offset();
                    meta &= o.metadata().equals("java-meta-\u00e9");
                }
                check(offs.size() == 3 && total == n && meta, "listConsumerGroupOffsets: sum " + total + ", metadata kept");
            }
        }
        System.out.println("ALL OK");
    }
}
