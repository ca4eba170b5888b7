package docker

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/events"
	"github.com/berth-project/berth/internal/image"
)

// Config is what the API server needs from the daemon.
type Config struct {
	Images image.Backend
	// Containers is the engine: containers, exec sessions and volumes.
	// Without it those routes answer 404.
	Containers ContainerBackend
	Events     *events.Bus
	// Version, GitCommit and BuildTime describe the berthd binary.
	Version, GitCommit, BuildTime string
	// DataRoot is berthd's --data-root (docker info's DockerRootDir).
	DataRoot string
	// StorageDriver is the snapshotter asked for ("overlay", "copy"), empty
	// when the image store picks one itself.
	StorageDriver string
	// Mirrors and Insecure are the registry options, for docker info.
	Mirrors, Insecure []string
	// ID names this daemon instance across restarts (docker info's ID).
	ID    string
	Debug bool
	Log   *slog.Logger
	// SystemdCgroup is the engine's cgroup driver (docker info's
	// CgroupDriver "systemd", else "cgroupfs").
	SystemdCgroup bool
}

// Server is the Engine API as an http.Handler.
type Server struct {
	cfg    Config
	images image.Backend
	// containers is nil when the daemon runs without an engine.
	containers ContainerBackend
	events     *events.Bus
	log        *slog.Logger
	routes     map[string]map[string]handler // path -> method -> handler
	stopOnce   sync.Once
	stopping   chan struct{}
	now        func() time.Time
}

// handler serves one route; vars holds the {name} of image routes. A
// returned error is written as an error response unless the handler has
// already started a streamed body.
type handler func(w http.ResponseWriter, r *http.Request, vars map[string]string) error

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Events == nil {
		cfg.Events = events.NewBus()
	}
	s := &Server{cfg: cfg, images: cfg.Images, containers: cfg.Containers, events: cfg.Events, log: cfg.Log,
		stopping: make(chan struct{}), now: time.Now}
	s.routes = map[string]map[string]handler{
		"/_ping":         {http.MethodGet: s.ping, http.MethodHead: s.ping},
		"/version":       {http.MethodGet: s.version},
		"/info":          {http.MethodGet: s.info},
		"/system/df":     {http.MethodGet: s.diskUsage},
		"/events":        {http.MethodGet: s.streamEvents},
		"/images/json":   {http.MethodGet: s.listImages},
		"/images/create": {http.MethodPost: s.createImage},
		"/images/prune":  {http.MethodPost: s.pruneImages},
		"/images/get":    {http.MethodGet: s.saveImages},
		"/images/load":   {http.MethodPost: s.loadImages},
		// Routes on one image; the name may hold slashes and colons.
		"/images/{name}":         {http.MethodDelete: s.removeImage},
		"/images/{name}/json":    {http.MethodGet: s.inspectImage},
		"/images/{name}/history": {http.MethodGet: s.imageHistory},
		"/images/{name}/tag":     {http.MethodPost: s.tagImage},
		"/images/{name}/push":    {http.MethodPost: s.pushImage},
		"/images/{name}/get":     {http.MethodGet: s.saveImage},
	}
	if s.containers != nil {
		s.addContainerRoutes()
	}
	return s
}

// addContainerRoutes adds the routes of containers, exec sessions,
// volumes and networks; {name} is one path element (an ID, a name or an
// ID prefix).
func (s *Server) addContainerRoutes() {
	for path, byMethod := range map[string]map[string]handler{
		"/containers/json":           {http.MethodGet: s.listContainers},
		"/containers/create":         {http.MethodPost: s.createContainer},
		"/containers/prune":          {http.MethodPost: s.pruneContainers},
		"/containers/{name}":         {http.MethodDelete: s.removeContainer},
		"/containers/{name}/json":    {http.MethodGet: s.inspectContainer},
		"/containers/{name}/start":   {http.MethodPost: s.startContainer},
		"/containers/{name}/stop":    {http.MethodPost: s.stopContainer},
		"/containers/{name}/restart": {http.MethodPost: s.restartContainer},
		"/containers/{name}/kill":    {http.MethodPost: s.killContainer},
		"/containers/{name}/pause":   {http.MethodPost: s.pauseContainer},
		"/containers/{name}/unpause": {http.MethodPost: s.unpauseContainer},
		"/containers/{name}/rename":  {http.MethodPost: s.renameContainer},
		"/containers/{name}/wait":    {http.MethodPost: s.waitContainer},
		"/containers/{name}/resize":  {http.MethodPost: s.resizeContainer},
		"/containers/{name}/attach":  {http.MethodPost: s.attachContainer},
		"/containers/{name}/logs":    {http.MethodGet: s.containerLogs},
		"/containers/{name}/stats":   {http.MethodGet: s.containerStats},
		"/containers/{name}/top":     {http.MethodGet: s.topContainer},
		"/containers/{name}/changes": {http.MethodGet: s.containerChanges},
		"/containers/{name}/export":  {http.MethodGet: s.exportContainer},
		"/containers/{name}/update":  {http.MethodPost: s.updateResources},
		"/containers/{name}/exec":    {http.MethodPost: s.createExec},
		"/containers/{name}/archive": {http.MethodHead: s.statArchive, http.MethodGet: s.getArchive, http.MethodPut: s.putArchive},
		"/commit":                    {http.MethodPost: s.commitContainer},
		"/exec/{name}/start":         {http.MethodPost: s.startExec},
		"/exec/{name}/resize":        {http.MethodPost: s.resizeExec},
		"/exec/{name}/json":          {http.MethodGet: s.inspectExec},
		"/volumes":                   {http.MethodGet: s.listVolumes},
		"/volumes/create":            {http.MethodPost: s.createVolume},
		"/volumes/prune":             {http.MethodPost: s.pruneVolumes},
		"/volumes/{name}":            {http.MethodGet: s.inspectVolume, http.MethodDelete: s.removeVolume},

		// Networks (networks.go): 404 unless the engine has them.
		"/networks":                   {http.MethodGet: s.listNetworks},
		"/networks/create":            {http.MethodPost: s.createNetwork},
		"/networks/prune":             {http.MethodPost: s.pruneNetworks},
		"/networks/{name}":            {http.MethodGet: s.inspectNetwork, http.MethodDelete: s.removeNetwork},
		"/networks/{name}/connect":    {http.MethodPost: s.connectNetwork},
		"/networks/{name}/disconnect": {http.MethodPost: s.disconnectNetwork},
	} {
		s.routes[path] = byMethod
	}
}

// Stop tells long-lived streams (events) to end; http.Server.Shutdown then
// waits for them. berthd registers it with RegisterOnShutdown.
func (s *Server) Stop() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

// ServeHTTP strips the version prefix, refuses versions out of range and
// dispatches to the route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	path, version, err := splitVersion(r.URL.Path)
	s.setCommonHeaders(w)
	if err == nil {
		err = checkVersion(version)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	h, vars, err := s.match(r.Method, path)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithValue(r.Context(), versionKey{}, version)
	sw := &statusWriter{ResponseWriter: w}
	if err := h(sw, r.WithContext(ctx), vars); err != nil {
		if sw.status != 0 {
			// A streamed body has begun; the handler reported the
			// error inside it or the client went away.
			s.log.Debug("api stream ended with error", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			writeError(sw, err)
		}
		if statusOf(err) >= 500 {
			s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", s.now().Sub(start))
}

// match finds the handler of method and path (without version prefix).
func (s *Server) match(method, path string) (handler, map[string]string, error) {
	key, vars := path, map[string]string(nil)
	if _, ok := s.routes[path]; !ok {
		if strings.HasPrefix(path, "/images/") {
			key, vars = imageRoute(path)
		} else {
			key, vars = objectRoute(path)
		}
	}
	byMethod, ok := s.routes[key]
	if !ok {
		return nil, nil, routeNotFound(method, path)
	}
	h, ok := byMethod[method]
	if !ok {
		return nil, nil, &httpError{status: http.StatusMethodNotAllowed, msg: "method " + method + " not allowed on " + path}
	}
	return h, vars, nil
}

// imageRoute maps /images/<name>[/<verb>] to its route key. An image name
// can contain slashes ("127.0.0.1:5000/a/b:v1"), so the verb is recognised
// as the last path element.
func imageRoute(path string) (string, map[string]string) {
	rest, ok := strings.CutPrefix(path, "/images/")
	if !ok || rest == "" {
		return path, nil
	}
	for _, verb := range []string{"json", "history", "tag", "push", "get"} {
		if name, ok := strings.CutSuffix(rest, "/"+verb); ok && name != "" {
			return "/images/{name}/" + verb, map[string]string{"name": name}
		}
	}
	return "/images/{name}", map[string]string{"name": rest}
}

// objectRoute maps /containers/<name>[/<verb>], /exec/<id>/<verb>,
// /volumes/<name> and /networks/<name>[/<verb>] to their route keys.
// These names never hold a slash.
func objectRoute(path string) (string, map[string]string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[1] == "" {
		return path, nil
	}
	switch parts[0] {
	case "containers", "exec", "volumes", "networks":
	default:
		return path, nil
	}
	key := "/" + parts[0] + "/{name}"
	if len(parts) == 3 {
		key += "/" + parts[2]
	}
	return key, map[string]string{"name": parts[1]}
}

// routeNotFound is dockerd's 404 for unknown routes, with a clearer word
// for the parts of the API that berthd does not serve yet: the docker CLI
// probes them (docker inspect tries containers, networks and volumes
// before images) and needs the 404 to go on.
func routeNotFound(method, path string) error {
	for _, p := range []string{"/containers", "/networks", "/volumes", "/exec", "/build", "/plugins"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return &httpError{status: http.StatusNotFound, msg: "not implemented yet in berthd: " + method + " " + path}
		}
	}
	return &httpError{status: http.StatusNotFound, msg: "page not found"}
}

func (s *Server) setCommonHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Server", "Berth/"+s.cfg.Version+" (linux)")
	h.Set("Api-Version", MaxAPIVersion)
	h.Set("Ostype", "linux")
}

// statusWriter remembers whether a status was written, so ServeHTTP knows
// whether an error can still become a response of its own.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
