package redistest

import (
	"context"
	"strconv"
	"testing"
)

// A slot moves from one master to another in three steps, as redis-cli
// --cluster reshard moves it: BeginMove marks it importing on the target
// and migrating on the source (the source then answers ASK for the keys
// it no longer holds), MigrateKeys moves its keys (MIGRATE), and EndMove
// hands it over (the source answers MOVED from then on). Between the steps
// the slot's keys are served as Redis serves them during a resharding.

// ID is the cluster node ID of s.
func (s *Server) ID(tb testing.TB) string {
	tb.Helper()
	id, err := s.Client(tb).Do(context.Background(), "cluster", "myid").Text()
	if err != nil {
		tb.Fatalf("CLUSTER MYID on %s: %v", s.Addr, err)
	}
	return id
}

// BeginMove marks slot as importing from from on to, then as migrating to
// to on from.
func BeginMove(tb testing.TB, slot int, from, to *Server) {
	tb.Helper()
	setSlot(tb, to, slot, "importing", from.ID(tb))
	setSlot(tb, from, slot, "migrating", to.ID(tb))
}

// MigrateKeys moves every key of slot from from to to (MIGRATE), and
// returns how many it moved.
func MigrateKeys(tb testing.TB, slot int, from, to *Server) int {
	tb.Helper()
	ctx := context.Background()
	fc := from.Client(tb)
	moved := 0
	for {
		keys, err := fc.ClusterGetKeysInSlot(ctx, slot, 100).Result()
		if err != nil {
			tb.Fatalf("CLUSTER GETKEYSINSLOT %d on %s: %v", slot, from.Addr, err)
		}
		if len(keys) == 0 {
			return moved
		}
		args := []any{"migrate", "127.0.0.1", strconv.Itoa(to.Port), "", 0, 5000, "keys"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := fc.Do(ctx, args...).Err(); err != nil {
			tb.Fatalf("MIGRATE slot %d from %s to %s: %v", slot, from.Addr, to.Addr, err)
		}
		moved += len(keys)
	}
}

// EndMove hands slot over to to: on to first, then on from, then on the
// other masters given (the others learn it from them).
func EndMove(tb testing.TB, slot int, from, to *Server, others ...*Server) {
	tb.Helper()
	id := to.ID(tb)
	for _, n := range append([]*Server{to, from}, others...) {
		setSlot(tb, n, slot, "node", id)
	}
}

func setSlot(tb testing.TB, n *Server, slot int, how, id string) {
	tb.Helper()
	if err := n.Client(tb).Do(context.Background(), "cluster", "setslot", slot, how, id).Err(); err != nil {
		tb.Fatalf("CLUSTER SETSLOT %d %s %s on %s: %v", slot, how, id, n.Addr, err)
	}
}
