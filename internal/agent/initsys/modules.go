package initsys

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Log attribute keys.
const (
	logKeyModule = "module"
	logKeyError  = "error"
	logKeyNIC    = "nic"
	logKeyAddr   = "addr"
)

// ModuleDeps is a parsed modules.dep: each module's path (relative to the modules directory,
// e.g. "kernel/drivers/net/virtio_net.ko") and the paths of every module it needs first.
type ModuleDeps map[string][]string

// ParseModulesDep reads depmod's modules.dep format: "path: dep dep ...", one module a line.
func ParseModulesDep(r io.Reader) (ModuleDeps, error) {
	deps := ModuleDeps{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(text, ":")
		if !ok || strings.TrimSpace(mod) == "" {
			return nil, fmt.Errorf("parse modules.dep line %d: no \"module:\"", line)
		}
		deps[strings.TrimSpace(mod)] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return deps, nil
}

// ModuleName is the name the kernel knows a module file by: the base name without .ko and a
// compression suffix, dashes as underscores ("kernel/drivers/nvme/host/nvme-core.ko.xz" →
// "nvme_core").
func ModuleName(file string) string {
	base := path.Base(file)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_")
}

// LoadOrder returns every module named in deps (as a module or a dependency) in an order
// where each comes after everything it depends on; independent modules sort by path, so
// the order is deterministic. A dependency cycle is an error.
func (d ModuleDeps) LoadOrder() ([]string, error) {
	all := map[string]bool{}
	for m, ds := range d {
		all[m] = true
		for _, x := range ds {
			all[x] = true
		}
	}
	names := make([]string, 0, len(all))
	for m := range all {
		names = append(names, m)
	}
	sort.Strings(names)
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	order := make([]string, 0, len(names))
	var visit func(m string, chain []string) error
	visit = func(m string, chain []string) error {
		switch state[m] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, m), " -> "))
		}
		state[m] = visiting
		ds := append([]string(nil), d[m]...)
		sort.Strings(ds)
		for _, x := range ds {
			if err := visit(x, append(chain, m)); err != nil {
				return err
			}
		}
		state[m] = done
		order = append(order, m)
		return nil
	}
	for _, m := range names {
		if err := visit(m, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ModuleReport says what LoadModules did.
type ModuleReport struct {
	Loaded  []string // module names newly loaded
	Present []string // already loaded or built in (EEXIST)
	Failed  []string // "name: error"
}

// LoadModules loads every module of dir/modules.dep (dir is /lib/modules/$(uname -r)) in
// dependency order with finit_module(2). A module the kernel already has counts as present; a
// module that fails is reported and the rest are still tried (a NIC driver failing must not
// stop the disk drivers). Compressed modules (.ko.xz, .ko.zst) are passed with
// MODULE_INIT_COMPRESSED_FILE, which needs kernel support; the ramdisk builder ships them
// decompressed. The error is non-nil only when modules.dep cannot be used.
func LoadModules(dir string, log *slog.Logger) (ModuleReport, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return ModuleReport{}, fmt.Errorf("load modules: %w", err)
	}
	deps, err := ParseModulesDep(f)
	f.Close()
	if err != nil {
		return ModuleReport{}, fmt.Errorf("load modules: %w", err)
	}
	order, err := deps.LoadOrder()
	if err != nil {
		return ModuleReport{}, fmt.Errorf("load modules: %w", err)
	}
	var rep ModuleReport
	for _, rel := range order {
		name := ModuleName(rel)
		err := loadModule(filepath.Join(dir, rel))
		switch {
		case err == nil:
			rep.Loaded = append(rep.Loaded, name)
			log.Debug("module loaded", logKeyModule, name)
		case errors.Is(err, unix.EEXIST):
			rep.Present = append(rep.Present, name)
		default:
			rep.Failed = append(rep.Failed, name+": "+err.Error())
			log.Warn("module not loaded", logKeyModule, name, logKeyError, err)
		}
	}
	return rep, nil
}

func loadModule(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(file, ".xz") || strings.HasSuffix(file, ".zst") || strings.HasSuffix(file, ".gz") {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), "", flags); err != nil {
		return fmt.Errorf("finit_module: %w", err)
	}
	return nil
}
