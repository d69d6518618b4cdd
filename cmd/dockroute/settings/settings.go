// Package settings reads the settings of a flag.FlagSet from three
// places, the first that gives a setting winning: the command line, the
// environment (PREFIX_FLAG_NAME) and a YAML file whose keys are the flag
// names. Every error names where the value came from (the variable, the
// file and line) and what the flag accepts; a misspelt name gets the
// closest known one.
package settings

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvName is the environment variable of a flag: --traefik-dir with
// prefix DOCKROUTE_ is DOCKROUTE_TRAEFIK_DIR.
func EnvName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnv sets each flag not yet given from its environment variable
// (EnvName), if present, and marks it given.
func ApplyEnv(fs *flag.FlagSet, prefix string, lookup func(string) (string, bool), given map[string]bool) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvName(prefix, f.Name)
		v, ok := lookup(name)
		if given[f.Name] || !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w (%s)", name, v, err, f.Usage))
		}
		given[f.Name] = true
	})
	return errors.Join(errs...)
}

// names lists the settings' names (the config file's keys).
func names(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			names = append(names, f.Name)
		}
	})
	return names
}

// DidYouMean suggests the name among names closest to got (hyphens and
// underscores alike, case ignored, at most two edits apart), as
// "; did you mean X?" with prefix before X ("" when none is close).
func DidYouMean(got string, names []string, prefix string) string {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "-")) }
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(norm(got), norm(n)); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %s%s?", prefix, best)
}

// MisspeltEnv warns of variables with the prefix that are no setting but
// close to one (DOCKROUTE_LOGLEVEL): set, they would be ignored without a
// word. Others (tests' DOCKROUTE_SKIP_DOCKER, say) are left alone.
func MisspeltEnv(fs *flag.FlagSet, prefix string, environ []string) []string {
	var vars []string
	fs.VisitAll(func(f *flag.Flag) { vars = append(vars, EnvName("", f.Name)) })
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || slices.Contains(vars, rest) {
			continue
		}
		if hint := DidYouMean(rest, vars, prefix); hint != "" {
			out = append(out, fmt.Sprintf("%s is not a setting and is ignored%s", name, hint))
		}
	}
	return out
}

// ApplyFile sets each flag not yet given from the YAML file. Keys are flag
// names; a list value is joined with commas. An unknown key, or a value the
// flag refuses, is an error naming the key and its line.
// The line of every key the file sets is recorded in lines.
func ApplyFile(fs *flag.FlagSet, path string, given map[string]bool, lines map[string]int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return ApplyYAML(fs, path, data, given, lines)
}

// ApplyYAML is ApplyFile on the file's contents.
func ApplyYAML(fs *flag.FlagSet, path string, data []byte, given map[string]bool, lines map[string]int) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s, line %d: want a mapping of settings", path, top.Line)
	}
	var errs []error
	seen := map[string]int{}
	for i := 0; i < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if first, dup := seen[k.Value]; dup {
			errs = append(errs, fmt.Errorf("config file %s, line %d: %q is set twice (first on line %d); one value per setting", path, k.Line, k.Value, first))
			continue
		}
		seen[k.Value] = k.Line
		f := fs.Lookup(k.Value)
		if f == nil || k.Value == "config" {
			errs = append(errs, fmt.Errorf("config file %s, line %d: unknown key %q%s", path, k.Line, k.Value, DidYouMean(k.Value, names(fs), "")))
			continue
		}
		val, err := scalar(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config file %s, line %d: %s: %w", path, v.Line, k.Value, err))
			continue
		}
		if given[k.Value] {
			continue
		}
		lines[k.Value] = v.Line
		if err := fs.Set(k.Value, val); err != nil {
			errs = append(errs, fmt.Errorf("config file %s, line %d: %s: %w (%s)", path, v.Line, k.Value, err, f.Usage))
		}
	}
	return errors.Join(errs...)
}

// scalar turns a YAML value into flag text: scalars as written, lists of
// scalars joined with commas.
func scalar(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		var items []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("want a list of plain values")
			}
			items = append(items, c.Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", fmt.Errorf("want a value or a list of values")
}

// FlagError turns the flag package's error into one line a user can act
// on: the unknown flag with the closest known one, or the bad value. cmd
// is the command as typed ("dockroute run").
func FlagError(cmd string, fs *flag.FlagSet, err error) string {
	hint := fmt.Sprintf("see %s -h", cmd)
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimLeft(name, "-")
		if near := closest(name, fs); near != "" {
			return fmt.Sprintf("%s: unknown flag --%s (did you mean --%s?); %s", cmd, name, near, hint)
		}
		return fmt.Sprintf("%s: unknown flag --%s; %s", cmd, name, hint)
	}
	return fmt.Sprintf("%s: %s; %s", cmd, strings.Replace(msg, "flag -", "flag --", 1), hint)
}

// closest is the known flag nearest to name (by edit distance, at most a
// third of its length), or "".
func closest(name string, fs *flag.FlagSet) string {
	best, bestD := "", len(name)/3+1
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); d < bestD || strings.HasPrefix(f.Name, name) && best == "" {
			best, bestD = f.Name, d
		}
	})
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// DurationValue is the flag.Value Duration declares.
type DurationValue struct{ d *time.Duration }

func (v DurationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v DurationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration: write it as a number with a unit, like 30s, 500ms or 2m")
	}
	*v.d = d
	return nil
}

// Duration declares a duration flag whose error says what a duration
// looks like.
func Duration(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(DurationValue{p}, name, usage)
}

// invalidError is an invalid setting, named by its flag.
type invalidError struct {
	key string
	msg string
}

func (e *invalidError) Error() string { return e.msg }

// Invalid is the error of a setting (named by its flag) whose value is
// refused; Where places it.
func Invalid(key, format string, args ...any) error {
	return &invalidError{key: key, msg: fmt.Sprintf(format, args...)}
}

// Where places an Invalid error at the line of the file that set it, as
// ApplyFile recorded in lines ("config file F, line N: KEY: ..."); other
// errors, and settings the file did not set, are returned as they are.
func Where(err error, file string, lines map[string]int) error {
	var ie *invalidError
	if errors.As(err, &ie) && lines[ie.key] > 0 {
		return fmt.Errorf("config file %s, line %d: %s: %w", file, lines[ie.key], ie.key, err)
	}
	return err
}
