package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// validName is docker's rule for container names; the leading "/" is the
// one docker's records keep.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// normalizeName checks a user's name and returns it as docker stores it,
// with the leading "/".
func normalizeName(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", invalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return "/" + strings.TrimPrefix(name, "/"), nil
}

// newID is a container or exec ID: 64 random hex digits, as docker's.
// An ID that is all digits is drawn again: a short form of it would read
// as a number, and docker avoids those for the same reason.
func newID() string {
	for {
		var b [32]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

// Words for generated names: a mood and a scientist or engineer, as
// docker's "adjective_surname". The lists are berth's own.
var (
	nameMoods = []string{
		"agile", "amazing", "bold", "brave", "bright", "busy", "calm", "careful",
		"cheerful", "clever", "cool", "curious", "daring", "dazzling", "eager",
		"earnest", "elated", "epic", "fair", "fervent", "fond", "frosty", "gallant",
		"gentle", "gifted", "glad", "graceful", "happy", "hardy", "honest", "humble",
		"jolly", "keen", "kind", "lively", "loyal", "lucid", "merry", "mighty",
		"modest", "nimble", "noble", "patient", "peaceful", "placid", "plucky",
		"polite", "proud", "quick", "quiet", "radiant", "rapid", "relaxed", "serene",
		"sharp", "shy", "sleepy", "smart", "steady", "stoic", "sturdy", "sunny",
		"swift", "tender", "tidy", "trusty", "upbeat", "vibrant", "vigilant",
		"vivid", "warm", "wise", "witty", "zealous", "zen",
	}
	nameScientists = []string{
		"agnesi", "babbage", "backus", "bartik", "bell", "bohr", "boole", "borg",
		"carson", "cerf", "curie", "darwin", "dijkstra", "einstein", "euclid",
		"euler", "faraday", "fermat", "fermi", "feynman", "franklin", "galileo",
		"gauss", "germain", "goldberg", "goodall", "hamilton", "hawking", "hellman",
		"hertz", "hodgkin", "hopper", "hypatia", "johnson", "joliot", "kepler",
		"knuth", "kowalevski", "lamarr", "lamport", "leakey", "liskov", "lovelace",
		"maxwell", "mcclintock", "meitner", "mendel", "mirzakhani", "moore",
		"morse", "napier", "newton", "noether", "pascal", "pasteur", "payne",
		"perlman", "planck", "poincare", "ptolemy", "raman", "ritchie", "rosalind",
		"shannon", "sinoussi", "snyder", "somerville", "tesla", "thompson",
		"torvalds", "turing", "volta", "wiles", "wilson", "wozniak", "wright", "yalow",
	}
)

func pick(list []string) string {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
	return list[n.Int64()]
}

// generateName returns a free "mood_scientist" name, as docker's
// namesgenerator does: after a few collisions a digit is appended.
func generateName(taken func(string) bool) string {
	for i := 0; ; i++ {
		name := "/" + pick(nameMoods) + "_" + pick(nameScientists)
		if i >= 6 {
			n, _ := rand.Int(rand.Reader, big.NewInt(10))
			name = fmt.Sprintf("%s%d", name, n.Int64())
		}
		if i >= 20 {
			// Tens of thousands of containers: fall back to a long suffix.
			name = fmt.Sprintf("%s_%s", name, newID()[:8])
		}
		if !taken(name) {
			return name
		}
	}
}
