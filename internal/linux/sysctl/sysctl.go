package sysctl

import (
	"fmt"
	"strings"
)

// Namespace is the namespace a sysctl belongs to, named as in the runtime
// spec ("ipc", "uts", "network").
type Namespace string

var ipcKeys = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// Owner returns the namespace key belongs to, or an error for a sysctl that
// no namespace isolates.
func Owner(key string) (Namespace, error) {
	dotted, err := normalize(key)
	if err != nil {
		return "", err
	}
	switch {
	case ipcKeys[dotted] || strings.HasPrefix(dotted, "fs.mqueue."):
		return "ipc", nil
	case dotted == "kernel.hostname" || dotted == "kernel.domainname":
		return "uts", nil
	case strings.HasPrefix(dotted, "net."):
		return "network", nil
	}
	return "", fmt.Errorf("sysctl %q is not namespaced: setting it would change the host", key)
}

// Validate checks key and value against the namespaces the container owns.
func Validate(key, value string, owned map[Namespace]bool) error {
	ns, err := Owner(key)
	if err != nil {
		return err
	}
	if !owned[ns] {
		return fmt.Errorf("sysctl %q needs the container's own %s namespace: it shares the host's", key, ns)
	}
	if strings.ContainsAny(value, "\x00\n") {
		return fmt.Errorf("sysctl %q: value contains a NUL or newline", key)
	}
	return nil
}

// normalize turns "net/ipv4/ip_forward" or "net.ipv4.ip_forward" into the
// dotted form for checks, refusing names that could walk out of /proc/sys.
func normalize(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("empty sysctl name")
	}
	sep := "."
	if strings.Contains(key, "/") {
		sep = "/"
	}
	parts := strings.Split(key, sep)
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "\x00") {
			return "", fmt.Errorf("invalid sysctl name %q", key)
		}
	}
	if sep == "/" {
		return strings.Join(parts, "."), nil
	}
	return key, nil
}

// Path turns a key into its file under /proc/sys. With dots as separators,
// an interface name that contains dots (eth0.100) must be written with
// slashes, as sysctl(8) allows.
func Path(key string) string {
	if strings.Contains(key, "/") {
		return key
	}
	return strings.ReplaceAll(key, ".", "/")
}
