// franzcheck: franz-go (github.com/twmb/franz-go, pinned in go.mod) against Depot. Built and
// run by tests/e2e/test_franz_go.py:
//
//	franzcheck BOOTSTRAP PROTOCOL   (PROTOCOL: classic or consumer)
//
// It creates a 6-partition topic, produces 1,500 records, consumes them with a group of three
// members (group.protocol as given: classic = client-side cooperative-sticky balancer,
// consumer = KIP-848 ServerSideBalancer), lets one member leave, produces 1,500 more and has
// the other two consume them. Every record must be consumed exactly once (each member commits
// after each poll; rebalances wait for that commit: BlockRebalanceOnPoll), no partition may be
// owned by two members at once, and ListGroups v5 must report the group's type. Prints
// "ok ..." lines and "ALL OK"; exits 1 on the first failure.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const half = 1500

var (
	mu         sync.Mutex
	owner      = map[int32]string{}
	violations []string
	seen       = map[string]int{}
	retries    atomic.Int64
)

func check(cond bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !cond {
		fmt.Println("FAIL " + msg)
		os.Exit(1)
	}
	fmt.Println("ok " + msg)
}

type member struct {
	name string
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}
}

func newMember(name, bs, group, topic, protocol string) *member {
	m := &member{name: name, stop: make(chan struct{}), done: make(chan struct{})}
	opts := []kgo.Opt{
		kgo.SeedBrokers(bs),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range a[topic] {
				if o, ok := owner[p]; ok && o != name {
					violations = append(violations, fmt.Sprintf("%d assigned to %s while %s owns it", p, name, o))
				}
				owner[p] = name
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			commit(ctx, cl)
			release(name, r[topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			release(name, l[topic])
		}),
	}
	if protocol == "consumer" {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	cl, err := kgo.NewClient(opts...)
	check(err == nil, "%s: new client (%v)", name, err)
	m.cl = cl
	go m.run()
	return m
}

func release(name string, parts []int32) {
	mu.Lock()
	defer mu.Unlock()
	for _, p := range parts {
		if owner[p] == name {
			delete(owner, p)
		}
	}
}

// commit retries a commit that raced a new member epoch (STALE_MEMBER_EPOCH), as Kafka's own
// brokers before 4.3 answer it too.
func commit(ctx context.Context, cl *kgo.Client) {
	for i := 0; i < 50; i++ {
		err := cl.CommitUncommittedOffsets(ctx)
		if err == nil {
			return
		}
		if !errors.Is(err, kerr.StaleMemberEpoch) && !errors.Is(err, kerr.RebalanceInProgress) {
			fmt.Println("commit:", err)
			return
		}
		retries.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *member) run() {
	defer close(m.done)
	ctx := context.Background()
	for {
		select {
		case <-m.stop:
			m.cl.Close() // leaves the group (commits nothing: everything polled was committed)
			mu.Lock()
			for p, o := range owner {
				if o == m.name {
					delete(owner, p)
				}
			}
			mu.Unlock()
			return
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		fs := m.cl.PollRecords(pctx, 100)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			mu.Lock()
			seen[string(r.Value)]++
			mu.Unlock()
			n++
		})
		if n > 0 {
			commit(ctx, m.cl)
		}
		m.cl.AllowRebalance()
	}
}

func (m *member) leave() {
	close(m.stop)
	<-m.done
}

func consumed() int {
	mu.Lock()
	defer mu.Unlock()
	return len(seen)
}

func waitConsumed(n int) bool {
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if consumed() >= n {
			return true
		}
	}
	return consumed() >= n
}

func owners() (int, int) {
	mu.Lock()
	defer mu.Unlock()
	who := map[string]bool{}
	for _, o := range owner {
		who[o] = true
	}
	return len(owner), len(who)
}

func waitOwners(parts, members int) bool {
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if p, w := owners(); p == parts && w == members {
			return true
		}
	}
	return false
}

func produce(ctx context.Context, cl *kgo.Client, topic string, from, to int) {
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i))})
	}
	check(cl.ProduceSync(ctx, rs...).FirstErr() == nil, "produced records %d-%d", from, to-1)
}

// groupType asks ListGroups v5 for the group's type ("classic" or "consumer").
func groupType(ctx context.Context, cl *kgo.Client, group string) string {
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 5
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err.Error()
	}
	for _, g := range resp.Groups {
		if g.Group == group {
			return g.GroupType
		}
	}
	return "missing"
}

func main() {
	bs, protocol := os.Args[1], os.Args[2]
	topic, group := "franz."+protocol, "franz.g."+protocol
	ctx := context.Background()
	admin, err := kgo.NewClient(kgo.SeedBrokers(bs), kgo.AllowAutoTopicCreation())
	check(err == nil, "admin/producer client (%v)", err)
	defer admin.Close()
	ct := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, 6, 1
	ct.Topics = append(ct.Topics, t)
	ctr, err := ct.RequestWith(ctx, admin)
	check(err == nil && ctr.Topics[0].ErrorCode == 0, "create topic %s (%v)", topic, err)
	produce(ctx, admin, topic, 0, half)

	var ms []*member
	for i := 0; i < 3; i++ {
		ms = append(ms, newMember(fmt.Sprint("m", i), bs, group, topic, protocol))
		time.Sleep(1500 * time.Millisecond)
	}
	check(waitConsumed(half), "three members consumed the first %d records (%d)", half, consumed())
	check(waitOwners(6, 3), "6 partitions spread over 3 members %v", owner)
	gt := groupType(ctx, admin, group)
	check(gt == protocol, "ListGroups v5 says the group is %q", gt)

	ms[2].leave()
	produce(ctx, admin, topic, half, 2*half)
	check(waitConsumed(2*half), "after m2 left, the other two consumed all %d (%d)", 2*half, consumed())
	check(waitOwners(6, 2), "6 partitions spread over the 2 remaining members %v", owner)
	ms[0].leave()
	ms[1].leave()
	mu.Lock()
	dup := 0
	for _, n := range seen {
		if n != 1 {
			dup++
		}
	}
	mu.Unlock()
	check(len(seen) == 2*half && dup == 0, "every record consumed exactly once (%d distinct, %d more than once)", len(seen), dup)
	check(len(violations) == 0, "no partition owned by two members at once %v", violations)
	fmt.Printf("ok commits retried after STALE_MEMBER_EPOCH: %d\n", retries.Load())
	fmt.Println("ALL OK")
}
