package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What iocbench live reads of a server process from /proc: the CPU time
// it has used (utime+stime of /proc/<pid>/stat) and its resident memory
// (VmRSS of /proc/<pid>/status), so that each side's figures are its own
// process's, whatever else runs on the machine.

// userHZ is the unit of the times in /proc/<pid>/stat: USER_HZ, which is
// 100 on every Linux architecture Go builds for (sysconf(_SC_CLK_TCK)).
const userHZ = 100

// processCPU is the CPU time (user and system) process pid has used.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the CPU time of process %d: %w", pid, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces and parentheses itself, so fields are counted from the
// last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("read /proc stat: no command name in %q", trim(b, 80))
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime, field 14, is f[11].
	if len(f) < 13 {
		return 0, fmt.Errorf("read /proc stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("read /proc stat: utime %q, stime %q are not tick counts", f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// processRSS is the resident memory of process pid, in bytes.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read the memory of process %d: %w", pid, err)
	}
	return parseStatusRSS(b)
}

// parseStatusRSS reads the VmRSS line ("VmRSS:   123456 kB") of a
// /proc/<pid>/status file.
func parseStatusRSS(b []byte) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("read /proc status: VmRSS line %q is not \"<n> kB\"", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read /proc status: VmRSS %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("read /proc status: no VmRSS line (a kernel thread, or a process that exited)")
}

// selfCPU is the CPU time this process has used: the load tool's own
// share of the machine, printed beside the servers'.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFileLimit lifts this process's open-file limit (up to the hard
// limit) so that it can hold clients sockets, each a file, and its other
// files; it says how to raise the hard limit when that is not enough.
func raiseFileLimit(clients int) error {
	want := uint64(clients) + 1024
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("read the open-file limit: %w", err)
	}
	if l.Cur >= want {
		return nil
	}
	l.Cur = min(max(want, l.Cur), l.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("raise the open-file limit to %d: %w", l.Cur, err)
	}
	if l.Cur < want {
		return fmt.Errorf("%d client sockets need an open-file limit of about %d, but the hard limit is %d: raise it (ulimit -Hn as root, or LimitNOFILE in systemd) or use fewer -clients", clients, want, l.Max)
	}
	return nil
}
