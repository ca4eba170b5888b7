package vm

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// moduleName is the name the kernel knows a module by: its file name
// without .ko, with dashes as underscores (modprobe treats them alike).
func moduleName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(file), ".ko"), "-", "_")
}

// indexModules maps module names to their .ko files under a lib/modules/
// <release> tree.
func indexModules(tree string) (map[string]string, error) {
	idx := map[string]string{}
	err := filepath.WalkDir(tree, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".ko") {
			idx[moduleName(path)] = path
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", tree, err)
	}
	return idx, nil
}

// moduleDepends reads the modules a .ko needs loaded first, from the
// "depends=" entry of its .modinfo section: the same data depmod turns into
// modules.dep, which the kernel package does not ship (its postinst
// generates it).
func moduleDepends(ko string) ([]string, error) {
	f, err := elf.Open(ko)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", ko, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("read module %s: no .modinfo section", ko)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", ko, err)
	}
	return parseDepends(data), nil
}

// parseDepends extracts the dependency list from .modinfo data: NUL
// separated key=value strings, one of them "depends=a,b".
func parseDepends(modinfo []byte) []string {
	for _, kv := range bytes.Split(modinfo, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d != "" {
					deps = append(deps, strings.ReplaceAll(d, "-", "_"))
				}
			}
			return deps
		}
	}
	return nil
}

// loadOrder returns want and everything it depends on, each module after
// its dependencies, in the order want lists them otherwise. depends reports
// a module's direct dependencies.
func loadOrder(want []string, depends func(name string) ([]string, error)) ([]string, error) {
	var order []string
	state := map[string]int{} // 1: visiting, 2: done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(path, name), " -> "))
		}
		state[name] = 1
		deps, err := depends(name)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, w := range want {
		if err := visit(w, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// resolveModules returns the .ko files to load, in order, for want from
// the module tree indexed by idx.
func resolveModules(idx map[string]string, want []string) ([]string, error) {
	names, err := loadOrder(want, func(name string) ([]string, error) {
		ko, ok := idx[name]
		if !ok {
			return nil, fmt.Errorf("module %s: not in the kernel package", name)
		}
		return moduleDepends(ko)
	})
	if err != nil {
		return nil, err
	}
	files := make([]string, len(names))
	for i, n := range names {
		files[i] = idx[n]
	}
	return files, nil
}
