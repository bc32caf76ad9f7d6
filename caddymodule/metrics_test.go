package consolemeauth

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsCountTheFlow(t *testing.T) {
	h := newTestHandler(t, nil)
	created, approved, collected := testutil.ToFloat64(metrics.created), testutil.ToFloat64(metrics.approved), testutil.ToFloat64(metrics.collected)
	refusedIP := testutil.ToFloat64(metrics.refused.WithLabelValues("poller ip differs"))
	hist := testutil.CollectAndCount(metrics.duration)

	tok := generate(t, h, "alice@example.com", "192.0.2.1")
	poll(t, h, tok, "198.51.100.1")
	approve(t, h, tok, "192.0.2.1", sessionCookie(t, h, "alice@example.com"))
	poll(t, h, tok, "192.0.2.1")

	for name, d := range map[string]float64{
		"created":   testutil.ToFloat64(metrics.created) - created,
		"approved":  testutil.ToFloat64(metrics.approved) - approved,
		"collected": testutil.ToFloat64(metrics.collected) - collected,
		"refused":   testutil.ToFloat64(metrics.refused.WithLabelValues("poller ip differs")) - refusedIP,
	} {
		if d != 1 {
			t.Errorf("%s grew by %v, want 1", name, d)
		}
	}
	if hist == 0 && testutil.CollectAndCount(metrics.duration) < 2 {
		t.Error("no latency observed for generator and poller")
	}
	generate(t, h, "bob@example.com", "192.0.2.1")
	if g := testutil.ToFloat64(metrics.pending); g < 1 {
		t.Errorf("pending gauge %v with a live memory store", g)
	}
}

// TestMetricsSurviveReload: a new config's registry gets the same
// collectors (no duplicate-registration error, counts kept), and two
// handlers in one config share them.
func TestMetricsSurviveReload(t *testing.T) {
	first := prometheus.NewPedanticRegistry()
	if err := registerMetrics(first); err != nil {
		t.Fatal(err)
	}
	if err := registerMetrics(first); err != nil {
		t.Fatalf("second handler in the same config: %v", err)
	}
	metrics.created.Inc()
	before := testutil.ToFloat64(metrics.created)
	second := prometheus.NewPedanticRegistry()
	if err := registerMetrics(second); err != nil {
		t.Fatalf("reload: %v", err)
	}
	mfs, err := second.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "consoleme_auth_challenges_created_total" {
			found = true
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != before {
				t.Errorf("after reload the counter reads %v, want %v", v, before)
			}
		}
		if !strings.HasPrefix(mf.GetName(), "consoleme_auth_") {
			t.Errorf("unexpected metric %s", mf.GetName())
		}
	}
	if !found {
		t.Error("created counter missing from the new registry")
	}
}
