package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// apiClient is the Engine API client of the daemon, as the docker CLI's.
func (d *daemon) apiClient(t *testing.T) *client.Client {
	t.Helper()
	api, err := client.New(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	return api
}

// containerLog reads a container's stdout and stderr through the API.
func containerLog(ctx context.Context, api *client.Client, id string) (string, string, error) {
	rc, err := api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", "", err
	}
	defer rc.Close()
	var o, e bytes.Buffer
	_, err = stdcopy.StdCopy(&o, &e, rc)
	return o.String(), e.String(), err
}

// TestConcurrentContainers creates, starts and waits for 100 containers
// at once, each printing its own hostname and name: every one ends with
// its own name, hostname, log and exit status, none lost or mixed up.
// $BERTH_TEST_SCALE sets another number: make test-vm's guest, ten times
// slower under emulation, runs fewer (systemd's 30 s bound on a job, as
// runc's, is reached there with 100 at once).
func TestConcurrentContainers(t *testing.T) {
	n := 100
	if v := os.Getenv("BERTH_TEST_SCALE"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			t.Fatalf("BERTH_TEST_SCALE=%q: want a number of containers, at least 2", v)
		}
	}
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	api := d.apiClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	begin := time.Now()
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("n%03d", i)
			cr, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
				Name:       name,
				Config:     &container.Config{Image: ref, Hostname: fmt.Sprintf("h%03d", i), Cmd: []string{"sh", "-c", "echo $HOSTNAME " + name + "; exit " + fmt.Sprint(i%7)}},
				HostConfig: &container.HostConfig{NetworkMode: "none"},
			})
			if err != nil {
				errs[i] = fmt.Errorf("create %s: %w", name, err)
				return
			}
			ids[i] = cr.ID
			w := api.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
			if _, err := api.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
				errs[i] = fmt.Errorf("start %s: %w", name, err)
				return
			}
			select {
			case r := <-w.Result:
				if r.StatusCode != int64(i%7) {
					errs[i] = fmt.Errorf("%s: wait says exit %d, want %d", name, r.StatusCode, i%7)
				}
			case err := <-w.Error:
				errs[i] = fmt.Errorf("wait %s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d containers created, started and ended concurrently in %v", n, time.Since(begin).Round(time.Millisecond))
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	seen := map[string]bool{}
	for i, id := range ids {
		name := fmt.Sprintf("n%03d", i)
		if seen[id] {
			t.Errorf("%s: ID %s given twice", name, id)
		}
		seen[id] = true
		insp, err := api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Errorf("inspect %s: %v", name, err)
			continue
		}
		c := insp.Container
		if c.Name != "/"+name || c.Config.Hostname != fmt.Sprintf("h%03d", i) || c.State.Status != container.StateExited || c.State.ExitCode != i%7 {
			t.Errorf("%s: inspect says name %s, hostname %s, state %s %d", name, c.Name, c.Config.Hostname, c.State.Status, c.State.ExitCode)
		}
		stdout, stderr, err := containerLog(ctx, api, id)
		if want := fmt.Sprintf("h%03d %s\n", i, name); err != nil || stdout != want || stderr != "" {
			t.Errorf("%s: log %q %q %v, want %q", name, stdout, stderr, err, want)
		}
	}
	list, err := api.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil || len(list.Items) != n {
		t.Errorf("list: %d containers, %v", len(list.Items), err)
	}
}
