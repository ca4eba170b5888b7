package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
)

func TestHealthCheck(t *testing.T) {
	v := newEnv(t)
	id := v.create("", &container.Config{
		Cmd: []string{"sh", "-c", "sleep 1000"},
		Healthcheck: &container.HealthConfig{
			Test:     []string{"CMD-SHELL", "echo probing; test -f /tmp/ok"},
			Interval: 100 * time.Millisecond,
			Timeout:  2 * time.Second,
			Retries:  2,
		},
	}, nil)
	v.start(id)
	health := func() *container.Health { return v.inspect(id).State.Health }
	if h := health(); h == nil || h.Status != container.Starting {
		t.Fatalf("health at start %+v", h)
	}
	waitFor(t, 10*time.Second, "unhealthy", func() bool { return health().Status == container.Unhealthy })
	h := health()
	if h.FailingStreak < 2 || len(h.Log) == 0 || h.Log[len(h.Log)-1].ExitCode != 1 || h.Log[len(h.Log)-1].Output != "probing\n" {
		t.Errorf("unhealthy state %+v", h)
	}
	x, _ := v.e.ExecCreate(ctx(t), id, container.ExecCreateRequest{Cmd: []string{"touch", "/tmp/ok"}})
	if err := v.e.ExecStart(ctx(t), x, engine.ExecStartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "healthy", func() bool { return health().Status == container.Healthy })
	h = health()
	if h.FailingStreak != 0 || len(h.Log) > 5 || h.Log[len(h.Log)-1].ExitCode != 0 {
		t.Errorf("healthy state %+v", h)
	}
	cs, err := v.e.List(ctx(t), engine.ListOptions{Filters: map[string][]string{"health": {"healthy"}}})
	if err != nil || len(cs) != 1 || cs[0].Health == nil || cs[0].Health.Status != container.Healthy {
		t.Errorf("list health=healthy: %+v %v", cs, err)
	}
	ev := v.eventsOf(id)
	if !slices.Contains(ev, "health_status: unhealthy") || !slices.Contains(ev, "health_status: healthy") {
		t.Errorf("events %v", ev)
	}
}
