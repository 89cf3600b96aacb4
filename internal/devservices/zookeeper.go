package devservices

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// zookeeperJar is where Debian's zookeeper package installs the server; its
// manifest names the libraries it needs. ClickHouse 18.16 speaks the
// handshake of ZooKeeper 3.8 (Debian 12's), not that of 3.9.
const zookeeperJar = "/usr/share/java/zookeeper.jar"

// zookeeperLogger is SLF4J's simple binding (Debian's libslf4j-java, which
// the zookeeper package pulls in): the server logs to its output file
// rather than nowhere.
const zookeeperLogger = "/usr/share/java/slf4j-simple.jar"

// StartZooKeeper starts a standalone ZooKeeper server, the coordinator of a
// ClickHouse cluster's replicated tables and ON CLUSTER statements, with
// its data in opts.Dir, and waits until it serves sessions. Its tick is
// short (500 ms) so that sessions of killed servers expire within seconds.
func StartZooKeeper(ctx context.Context, opts Options) (*Server, error) {
	java, err := LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("zookeeper needs java: install Debian's zookeeper package (apt-get install zookeeper), or run scripts/install-deps.sh: %w", err)
	}
	if _, err := os.Stat(zookeeperJar); err != nil {
		return nil, fmt.Errorf("%s not found: install Debian's zookeeper package (apt-get install zookeeper), or run scripts/install-deps.sh", zookeeperJar)
	}
	dir, err := prepareDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	port, err := portOrFree(opts.Port)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("create zookeeper directory: %w", err)
	}
	cfg := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfg, []byte(zookeeperConfig(dir, port)), 0o644); err != nil {
		return nil, fmt.Errorf("write zookeeper config: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s, err := start(opts, "zookeeper", addr, dir, java,
		"-Xmx256m", "-XX:+UseSerialGC", // one of several servers on a small machine
		"-Dzookeeper.log.dir="+dir,
		"-cp", zookeeperJar+":"+zookeeperLogger,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, func() error { return zookeeperPing(addr) }, filepath.Join(dir, "zookeeper.out")); err != nil {
		return nil, err
	}
	return s, nil
}

func zookeeperConfig(dir string, port int) string {
	var b strings.Builder
	b.WriteString("tickTime=500\n")
	fmt.Fprintf(&b, "dataDir=%s/data\n", dir)
	fmt.Fprintf(&b, "clientPort=%d\nclientPortAddress=127.0.0.1\n", port)
	// No admin web server (it would take port 8080) and no connection cap.
	b.WriteString("admin.enableServer=false\nmaxClientCnxns=0\n")
	b.WriteString("4lw.commands.whitelist=srvr,mntr\n")
	// Snapshots of a development coordinator need not pile up.
	b.WriteString("autopurge.snapRetainCount=3\nautopurge.purgeInterval=1\n")
	return b.String()
}

// zookeeperPing sends the four-letter command "srvr" and expects the
// server's statistics: it answers them once it serves sessions, whereas
// "ruok" is answered "imok" before that, while it still loads its data.
func zookeeperPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if !strings.HasPrefix(string(b), "Zookeeper version:") {
		return fmt.Errorf("srvr answered %q", strings.TrimSpace(string(b)))
	}
	return nil
}
