package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	fileSuffix = ".checkpoint"
	partSuffix = ".part"
)

// FileName is the name of the snapshot of the log up to offset in epoch: "%020d-%010d.checkpoint".
func FileName(offset, epoch uint64) string {
	return fmt.Sprintf("%020d-%010d%s", offset, epoch, fileSuffix)
}

// ParseFileName returns the offset and epoch a snapshot's name carries. It accepts only the names
// FileName makes, so "1-1.checkpoint" or "bootstrap.checkpoint" are not snapshots.
func ParseFileName(name string) (offset, epoch uint64, ok bool) {
	stem, found := strings.CutSuffix(name, fileSuffix)
	if !found {
		return 0, 0, false
	}
	o, e, found := strings.Cut(stem, "-")
	if !found {
		return 0, 0, false
	}
	offset, err1 := strconv.ParseUint(o, 10, 64)
	epoch, err2 := strconv.ParseUint(e, 10, 64)
	if err1 != nil || err2 != nil || FileName(offset, epoch) != name {
		return 0, 0, false
	}
	return offset, epoch, true
}

// Info describes a complete snapshot file found by List. Its content is not checked: Read does that.
type Info struct {
	Path    string
	Offset  uint64
	Epoch   uint64
	Size    int64
	ModTime time.Time
}

// List returns the complete snapshots in dir, oldest offset first (by epoch for equal offsets). It
// ignores the .part files a crash during Write leaves behind; PartFiles finds those. A directory that
// does not exist holds no snapshots.
func List(dir string) ([]Info, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []Info
	for _, e := range entries {
		offset, epoch, ok := ParseFileName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since ReadDir, by retention for instance
		}
		if err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		out = append(out, Info{
			Path: filepath.Join(dir, e.Name()), Offset: offset, Epoch: epoch,
			Size: fi.Size(), ModTime: fi.ModTime(),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Offset != out[j].Offset {
			return out[i].Offset < out[j].Offset
		}
		return out[i].Epoch < out[j].Epoch
	})
	return out, nil
}

// PartFiles returns the paths of the unfinished snapshots in dir: the .part files a crash during
// Write can leave, and the .fetch.part files of unfinished downloads. Nothing reads them; a node
// removes them at start.
func PartFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []string
	for _, e := range entries {
		name, isPart := strings.CutSuffix(e.Name(), partSuffix)
		name = strings.TrimSuffix(name, ".fetch")
		if _, _, ok := ParseFileName(name); isPart && ok {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}
