package hostapi

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// PruneCache keeps the compilation cache in dir under max bytes by
// deleting its least recently written files first. A file dropped from the
// cache costs one compile the next time its module loads. It returns how
// many files it removed.
func PruneCache(dir string, max int64) (int, error) {
	type file struct {
		path string
		size int64
		mod  int64
	}
	var files []file
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		files = append(files, file{path, info.Size(), info.ModTime().UnixNano()})
		total += info.Size()
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod < files[j].mod })
	removed := 0
	for _, f := range files {
		if total <= max {
			break
		}
		if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
			return removed, err
		}
		total -= f.size
		removed++
	}
	return removed, nil
}
