// The Java client's KIP-848 consumer (group.protocol=consumer) against Depot: a group of three
// consumers on a 6-partition topic, started one after another (each join takes partitions
// away from the others), then one leaves. Every record is consumed exactly once (each
// consumer commits after each batch, so a partition's next owner starts where the last one
// stopped), and no partition is ever owned by two members at once (a shared map, filled by
// the rebalance listeners: onPartitionsAssigned must find the partition free). Then
// Admin.describeConsumerGroups (ConsumerGroupDescribe) and listGroups (ListGroups v5 types)
// see the group as a consumer group. Prints "ok ..." lines, "ALL OK" at the end, exits 1 on a
// failure. Run by tests/e2e/test_java_consumer_group.py:
//   java -cp <classes>:<kafka libs>/* DepotConsumerGroupCheck HOST:PORT ASSIGNOR
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class DepotConsumerGroupCheck {
    static final Map<TopicPartition, String> owner = new ConcurrentHashMap<>();
    static final List<String> violations = Collections.synchronizedList(new ArrayList<>());
    static final ConcurrentHashMap<String, AtomicInteger> seen = new ConcurrentHashMap<>();
    static volatile boolean failed = false;
    static final AtomicInteger staleRetries = new AtomicInteger();

    static void check(boolean cond, String what) {
        if (!cond) {
            System.out.println("FAIL " + what);
            System.out.flush();
            System.exit(1);
        }
        System.out.println("ok " + what);
    }

    static class Member implements Runnable, ConsumerRebalanceListener {
        final String name;
        final KafkaConsumer<String, String> c;
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicInteger assignments = new AtomicInteger();
        final Thread thread;

        Member(String name, String bs, String group, String topic, String assignor) {
            this.name = name;
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bs);
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            p.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, assignor);
            p.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            c = new KafkaConsumer<>(p);
            c.subscribe(List.of(topic), this);
            thread = new Thread(this, name);
            thread.start();
        }

        public void onPartitionsAssigned(Collection<TopicPartition> parts) {
            for (TopicPartition tp : parts) {
                String prev = owner.putIfAbsent(tp, name);
                if (prev != null && !prev.equals(name))
                    violations.add(tp + " assigned to " + name + " while " + prev + " owns it");
            }
            if (!parts.isEmpty())
                assignments.incrementAndGet();
        }

        public void onPartitionsRevoked(Collection<TopicPartition> parts) {
            for (TopicPartition tp : parts)
                owner.remove(tp, name);
        }

        public void onPartitionsLost(Collection<TopicPartition> parts) {
            onPartitionsRevoked(parts);
        }

        public void run() {
            try {
                while (!stop.get()) {
                    ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                    for (ConsumerRecord<String, String> r : recs)
                        seen.computeIfAbsent(r.value(), k -> new AtomicInteger()).incrementAndGet();
                    if (!recs.isEmpty())
                        commit();
                }
            } catch (Exception e) {
                System.out.println("member " + name + " failed: " + e);
                failed = true;
            } finally {
                c.close(Duration.ofSeconds(10)); // leaves the group: MemberEpoch -1
                owner.values().removeIf(name::equals);
            }
        }

        // A commit racing a heartbeat that moved the member to a new epoch fails with
        // STALE_MEMBER_EPOCH (CommitFailedException), with Kafka's brokers too: the member
        // retries once its heartbeat brought the new epoch.
        void commit() throws InterruptedException {
            for (int attempt = 0; ; attempt++) {
                try {
                    c.commitSync();
                    return;
                } catch (CommitFailedException | RetriableCommitFailedException e) {
                    if (attempt >= 20)
                        throw e;
                    staleRetries.incrementAndGet();
                    Thread.sleep(100);
                }
            }
        }

        void leave() throws InterruptedException {
            stop.set(true);
            thread.join(30000);
        }
    }

    static void produce(KafkaProducer<String, String> p, String topic, int from, int to)
            throws Exception {
        for (int i = from; i < to; i++)
            p.send(new ProducerRecord<>(topic, "k" + i, "v" + i));
        p.flush();
    }

    static boolean waitConsumed(int n, long ms) throws InterruptedException {
        long end = System.currentTimeMillis() + ms;
        while (System.currentTimeMillis() < end && !failed) {
            if (seen.size() >= n)
                return true;
            Thread.sleep(100);
        }
        return seen.size() >= n;
    }

    public static void main(String[] args) throws Exception {
        String bs = args[0], assignor = args.length > 1 ? args[1] : "uniform";
        String topic = "j848." + assignor, group = "j848.g." + assignor;
        int half = 1500;
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bs);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bs);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (Admin admin = Admin.create(ap); KafkaProducer<String, String> prod = new KafkaProducer<>(pp)) {
            admin.createTopics(List.of(new NewTopic(topic, 6, (short) 1))).all().get(30, TimeUnit.SECONDS);
            produce(prod, topic, 0, half);
            List<Member> ms = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                ms.add(new Member("m" + i, bs, group, topic, assignor));
                Thread.sleep(1500); // each join moves partitions away from the earlier members
            }
            check(waitConsumed(half, 60000), "three members consumed the first " + half + " records (" + seen.size() + ")");
            long deadline = System.currentTimeMillis() + 30000;
            while (System.currentTimeMillis() < deadline && owner.size() < 6)
                Thread.sleep(100);
            Set<String> owners = new HashSet<>(owner.values());
            check(owner.size() == 6 && owners.size() == 3, "6 partitions spread over 3 members: " + owner);

            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            check(d.type() == GroupType.CONSUMER && d.members().size() == 3,
                  "describeConsumerGroups: type " + d.type() + ", " + d.members().size() + " members, state " + d.groupState()
                  + ", assignor " + d.partitionAssignor());
            check(d.partitionAssignor().equals(assignor), "server assignor is " + assignor);
            int described = 0;
            for (MemberDescription md : d.members())
                described += md.assignment().topicPartitions().size();
            check(described == 6, "members' described assignments cover 6 partitions (" + described + ")");
            boolean listed = false;
            for (GroupListing gl : admin.listGroups(ListGroupsOptions.forConsumerGroups()).all().get())
                if (gl.groupId().equals(group) && gl.type().orElse(null) == GroupType.CONSUMER)
                    listed = true;
            check(listed, "listGroups shows " + group + " with type consumer");

            ms.get(2).leave();
            produce(prod, topic, half, 2 * half);
            check(waitConsumed(2 * half, 60000), "after m2 left, the other two consumed all " + 2 * half + " records (" + seen.size() + ")");
            deadline = System.currentTimeMillis() + 30000;
            while (System.currentTimeMillis() < deadline && owner.size() < 6)
                Thread.sleep(100);
            owners = new HashSet<>(owner.values());
            check(owner.size() == 6 && owners.size() == 2 && !owners.contains("m2"),
                  "6 partitions spread over the 2 remaining members: " + owner);
            d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            check(d.members().size() == 2, "describe after the leave: " + d.members().size() + " members");
            ms.get(0).leave();
            ms.get(1).leave();
            check(!failed, "no member failed");
            int dup = 0;
            for (AtomicInteger a : seen.values())
                if (a.get() != 1)
                    dup++;
            check(seen.size() == 2 * half && dup == 0,
                  "every record consumed exactly once (" + seen.size() + " distinct, " + dup + " more than once)");
            check(violations.isEmpty(), "no partition owned by two members at once " + violations);
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            long sum = 0;
            for (OffsetAndMetadata o : committed.values())
                sum += o.offset();
            check(committed.size() == 6 && sum == 2 * half, "committed offsets sum to " + sum
                  + " (" + staleRetries.get() + " commits retried after STALE_MEMBER_EPOCH)");
        }
        System.out.println("ALL OK");
        System.exit(0);
    }
}
