//go:build linux

package hostapi

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// execRegions lists the process's anonymous executable mappings: the code
// wazero's compiler (or its cache) has mapped.
func execRegions() []region {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	var rs []region
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode [path]
		fields := bytes.Fields(sc.Bytes())
		if len(fields) != 5 || !bytes.HasPrefix(fields[1], []byte("r-x")) {
			continue // a named mapping (the binary, a library) or not executable
		}
		start, end, ok := bytes.Cut(fields[0], []byte("-"))
		if !ok {
			continue
		}
		s, err1 := strconv.ParseUint(string(start), 16, 64)
		e, err2 := strconv.ParseUint(string(end), 16, 64)
		if err1 == nil && err2 == nil && e > s {
			rs = append(rs, region{s, e})
		}
	}
	return rs
}
