package registry

import (
	"fmt"
	"path/filepath"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
)

// dockerHubAuthKey is the key docker keeps Docker Hub's credentials under
// in config.json, for historical reasons.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// Auth is a credential given with one request (docker's X-Registry-Auth).
// It has the fields of internal/image.Auth, so the image service converts
// with a plain struct conversion. A nil or empty Auth means: look in
// config.json.
type Auth struct {
	Username, Password, IdentityToken, RegistryToken string
}

// authenticator picks the credentials for an endpoint: the explicit ones
// when given, else config.json's for the endpoint's host, read through
// docker's own config code so "auths" entries, "credsStore" and
// "credHelpers" (docker-credential-<helper> binaries) behave as with the
// docker CLI. No credentials means anonymous; go-containerregistry's
// transport turns either into basic auth or a bearer token as the
// registry's challenge asks.
func (c *Client) authenticator(ep endpoint, auth *Auth) (authn.Authenticator, error) {
	if auth != nil && *auth != (Auth{}) {
		return authn.FromConfig(authn.AuthConfig{
			Username:      auth.Username,
			Password:      auth.Password,
			IdentityToken: auth.IdentityToken,
			RegistryToken: auth.RegistryToken,
		}), nil
	}
	cf, err := config.Load(c.configDir)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", ep.host, err)
	}
	key := ep.host
	if key == dockerHubHost {
		key = dockerHubAuthKey
	}
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s from %s: %w", ep.host, filepath.Join(c.configDir, config.ConfigFileName), err)
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}), nil
}
