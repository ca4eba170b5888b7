package docker

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/image"
)

// maxJSONBody caps request bodies that are JSON documents; image tars
// (load, import) are streams and bounded by the image store instead.
const maxJSONBody = 1 << 20

// boolValue reads a boolean query parameter as dockerd does: absent, "",
// "0", "no", "false" and "none" are false, anything else true.
func boolValue(r *http.Request, name string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(name))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// parseFilters decodes a "filters" query parameter: the JSON object docker
// clients send, either {"key":{"value":true}} or the older
// {"key":["value"]}, and refuses keys outside allowed.
func parseFilters(r *http.Request, allowed ...string) (map[string][]string, error) {
	raw := r.URL.Query().Get("filters")
	out := map[string][]string{}
	if raw == "" {
		return out, nil
	}
	var generic map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &generic); err != nil {
		return nil, badRequest("invalid filters parameter: %v", err)
	}
	for key, val := range generic {
		var set map[string]bool
		if err := json.Unmarshal(val, &set); err == nil {
			for v, on := range set {
				if on {
					out[key] = append(out[key], v)
				}
			}
		} else {
			var list []string
			if err := json.Unmarshal(val, &list); err != nil {
				return nil, badRequest("invalid filters parameter: the value of %q must be an object of strings to booleans or a list of strings", key)
			}
			out[key] = append(out[key], list...)
		}
		sort.Strings(out[key])
		if allowed != nil && !slices.Contains(allowed, key) {
			return nil, badRequest("invalid filter '%s'", key)
		}
	}
	return out, nil
}

// parsePlatform reads docker's "os[/arch[/variant]]" platform parameter.
func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || slices.Contains(parts, "") {
		return nil, badRequest("invalid platform parameter %q: want os[/arch[/variant]]", s)
	}
	p := &ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

// registryAuth decodes the X-Registry-Auth header: base64url JSON of a
// registry.AuthConfig, padded or not. An absent or empty credential is nil
// (the store then uses its own credential helpers).
func registryAuth(r *http.Request) (*image.Auth, error) {
	hdr := strings.TrimSpace(r.Header.Get(registry.AuthHeader))
	if hdr == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(hdr, "="))
	if err != nil {
		return nil, badRequest("invalid X-Registry-Auth header: %v", err)
	}
	var ac registry.AuthConfig
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&ac); err != nil {
		return nil, badRequest("invalid X-Registry-Auth header: %v", err)
	}
	if ac.Auth != "" && ac.Username == "" && ac.Password == "" {
		// The "auth" field is base64(user:password), as in config.json.
		up, err := base64.StdEncoding.DecodeString(ac.Auth)
		if err != nil {
			return nil, badRequest("invalid X-Registry-Auth header: auth field: %v", err)
		}
		user, pass, ok := strings.Cut(string(up), ":")
		if !ok {
			return nil, badRequest("invalid X-Registry-Auth header: auth field is not user:password")
		}
		ac.Username, ac.Password = user, pass
	}
	a := &image.Auth{Username: ac.Username, Password: ac.Password,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
	if *a == (image.Auth{}) {
		return nil, nil
	}
	return a, nil
}

// decodeJSONBody decodes a capped JSON request body into v; an empty body
// leaves v alone.
func decodeJSONBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJSONBody+1))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return badRequest("invalid JSON body: %v", err)
	}
	if dec.InputOffset() > maxJSONBody {
		return badRequest("request body larger than %d bytes", maxJSONBody)
	}
	return nil
}

// parseUnixTime reads docker's event timestamps: "seconds[.nanoseconds]".
func parseUnixTime(name, s string) (int64, error) {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, badRequest("invalid %s parameter %q: want seconds[.nanoseconds] since the epoch", name, s)
	}
	var nanos int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		f, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil || f < 0 {
			return 0, badRequest("invalid %s parameter %q: want seconds[.nanoseconds] since the epoch", name, s)
		}
		nanos = f
	}
	if n > 1<<33 || n < -(1<<33) {
		return 0, badRequest("invalid %s parameter %q: out of range", name, s)
	}
	return n*1e9 + nanos, nil
}
