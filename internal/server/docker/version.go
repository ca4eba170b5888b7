package docker

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

const (
	// MaxAPIVersion is the API version of the wire types this server
	// uses (github.com/moby/moby/api v1.57.0 describes API 1.57); a test
	// keeps it equal to the client module's MaxAPIVersion.
	MaxAPIVersion = "1.57"
	// MinAPIVersion is the oldest API version served: the one docker 25
	// speaks, which every CLI and SDK in use today can negotiate.
	MinAPIVersion = "1.44"
)

type versionKey struct{}

// apiVersion returns the API version of the request being served.
func apiVersion(ctx context.Context) string {
	if v, ok := ctx.Value(versionKey{}).(string); ok && v != "" {
		return v
	}
	return MaxAPIVersion
}

// versionBefore reports whether the request's API version is older than v.
func versionBefore(ctx context.Context, v string) bool {
	return compareVersions(apiVersion(ctx), v) < 0
}

// splitVersion separates a "/v1.50" prefix from path. A path without one
// is served at MaxAPIVersion, as dockerd does.
func splitVersion(path string) (rest, version string, err error) {
	after, ok := strings.CutPrefix(path, "/v")
	if !ok {
		return path, MaxAPIVersion, nil
	}
	seg, tail, _ := strings.Cut(after, "/")
	if seg == "" || strings.Trim(seg, "0123456789.") != "" {
		// "/version", "/volumes": not a version prefix.
		return path, MaxAPIVersion, nil
	}
	if _, ok := parseVersion(seg); !ok {
		return "", "", badRequest("invalid API version %q in the request path", seg)
	}
	return "/" + tail, seg, nil
}

// checkVersion refuses versions outside [MinAPIVersion, MaxAPIVersion]
// with dockerd's words, which clients recognise.
func checkVersion(v string) error {
	if compareVersions(v, MinAPIVersion) < 0 {
		return badRequest("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion)
	}
	if compareVersions(v, MaxAPIVersion) > 0 {
		return badRequest("client version %s is too new. Maximum supported API version is %s", v, MaxAPIVersion)
	}
	return nil
}

// parseVersion splits "1.44" into its numbers.
func parseVersion(v string) ([]int, bool) {
	parts := strings.Split(v, ".")
	if len(parts) > 3 {
		return nil, false
	}
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || len(p) > 4 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// compareVersions orders two API versions numerically ("1.9" < "1.44");
// an unparsable version sorts first.
func compareVersions(a, b string) int {
	pa, _ := parseVersion(a)
	pb, _ := parseVersion(b)
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// ping answers GET and HEAD /_ping, which clients call first to learn the
// API version and the daemon's capabilities from its headers.
func (s *Server) ping(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
	// No BuildKit in berthd: "1" tells clients to use the classic build
	// API (not served yet) rather than open a BuildKit session.
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err := fmt.Fprint(w, "OK")
	return err
}
