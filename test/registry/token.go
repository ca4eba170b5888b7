package registry

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// writeHtpasswd writes an htpasswd file with one bcrypt entry. The
// lowest cost keeps the registry's per-request check cheap; strength is
// irrelevant for a test password.
func writeHtpasswd(path, user, pass string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	return os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600)
}

// The registry checks a token's issuer and audience against these.
const (
	tokenIssuer  = "berth-test-issuer"
	tokenService = "berth-test-registry"
)

// tokenServer is a minimal token server of docker's token auth spec
// (distribution's docs/spec/auth/token.md):
//
//	client --GET /v2/--------------------------------> registry
//	client <--401 Bearer realm=…,service=…------------ registry
//	client --GET realm?service=…&scope=… (basic)-----> tokenServer
//	client <--{"token": JWT granting the scopes}------ tokenServer
//	client --GET … Authorization: Bearer JWT---------> registry (checks JWT against rootcertbundle)
//
// Tokens are ES256 JWTs whose "kid" is the libtrust key ID of the key in
// the self-signed certificate the registry trusts. The user with the right
// password gets every scope asked for; anonymous requests get a token
// granting nothing; wrong credentials get 401.
type tokenServer struct {
	user, pass string
	key        *ecdsa.PrivateKey
	kid        string
	realm      string
	certPath   string

	mu       sync.Mutex
	requests []TokenRequest
}

// TokenRequest is one request the token server answered.
type TokenRequest struct {
	User    string // "" for anonymous
	Scopes  []string
	Granted bool
}

func startTokenServer(t testing.TB, dir, user, pass string) (*tokenServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test token signer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ts := &tokenServer{user: user, pass: pass, key: key, certPath: filepath.Join(dir, "token-signer.pem")}
	if err := os.WriteFile(ts.certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if ts.kid, err = libtrustKeyID(&key.PublicKey); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// The realm names "localhost", not 127.0.0.1: go-containerregistry
	// refuses token realms at loopback or private IP literals other than
	// the registry's own host:port (SSRF protection).
	ts.realm = fmt.Sprintf("http://localhost:%d/token", l.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: http.HandlerFunc(ts.serve), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ts, nil
}

// libtrustKeyID is the key ID distribution derives from each certificate
// of its rootcertbundle (docker/libtrust): the SHA-256 of the DER public
// key, truncated to 240 bits, in base32, as 12 colon-separated groups of 4.
func libtrustKeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	s := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	groups := make([]string, 0, len(s)/4)
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:i+4])
	}
	return strings.Join(groups, ":"), nil
}

type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" || r.Method != http.MethodGet {
		// POST (the OAuth2 flow) is optional in the spec; clients fall
		// back to GET on 404.
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if q.Get("service") != tokenService {
		http.Error(w, `{"errors":[{"code":"DENIED","message":"unknown service"}]}`, http.StatusBadRequest)
		return
	}
	user, pass, hasBasic := r.BasicAuth()
	scopes := q["scope"]
	if hasBasic && (subtle.ConstantTimeCompare([]byte(user), []byte(ts.user)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(ts.pass)) != 1) {
		ts.record(TokenRequest{User: user, Scopes: scopes})
		w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required: wrong username or password"}]}`))
		return
	}
	granted := []access{}
	if hasBasic {
		for _, s := range scopes {
			// Scopes are space-separated lists of type:name:actions; the
			// name may itself hold a colon (host:port in it is not used
			// here, but a repository name never has one).
			for _, one := range strings.Fields(s) {
				typ, rest, ok := strings.Cut(one, ":")
				i := strings.LastIndex(rest, ":")
				if !ok || i < 0 {
					continue
				}
				granted = append(granted, access{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")})
			}
		}
	} else {
		user = ""
	}
	ts.record(TokenRequest{User: user, Scopes: scopes, Granted: len(granted) > 0})
	now := time.Now()
	token, err := ts.sign(map[string]any{
		"iss":    tokenIssuer,
		"sub":    user,
		"aud":    tokenService,
		"exp":    now.Add(5 * time.Minute).Unix(),
		"nbf":    now.Add(-time.Minute).Unix(),
		"iat":    now.Unix(),
		"jti":    randomID(),
		"access": granted,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token":        token,
		"access_token": token,
		"expires_in":   300,
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

func (ts *tokenServer) record(r TokenRequest) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.requests = append(ts.requests, r)
}

// sign makes an ES256 JWS of claims: the signature is r||s, 32 bytes each
// (RFC 7518 section 3.4), not ASN.1.
func (ts *tokenServer) sign(claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"typ": "JWT", "alg": "ES256", "kid": ts.kid})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig), nil
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
