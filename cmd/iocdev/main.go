// Command iocdev starts and stops the local ClickHouse, Redis and Mosquitto
// servers that make run and make test use, with data under a directory of
// the project.
//
//	iocdev up   --dir var --clickhouse-port 19000 --redis-port 16379 --mqtt-port 11883
//	iocdev up   --dir var --cluster
//	iocdev balance --dir var --port 8080 --servers 127.0.0.1:8081,127.0.0.1:8082
//	iocdev down --dir var
//
// up prints the addresses as shell assignments (IOC_CLICKHOUSE_ADDR=…,
// IOC_MQTT_URL=tcp://…);
// servers already running from the same directory are reused. With
// --cluster it also starts ZooKeeper and a ClickHouse cluster named "ioc"
// of two shards of two replicas, and prints their addresses. balance puts
// HAProxy, configured as deploy/haproxy-iocd.cfg balances iocd nodes, on
// loopback in front of the nodes listed (restarting it if it runs).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/openioc/ioc/internal/devservices"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: iocdev up|down --dir DIR [--clickhouse-port N] [--redis-port N] [--mqtt-port N] [--cluster]\n"+
			"       iocdev balance --dir DIR --port N --servers HOST:PORT,HOST:PORT")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "var", "directory for data, configuration and logs")
	chPort := fs.Int("clickhouse-port", 0, "ClickHouse native port (0: a free one)")
	redisPort := fs.Int("redis-port", 0, "Redis port (0: a free one)")
	mqttPort := fs.Int("mqtt-port", 0, "Mosquitto MQTT port (0: a free one)")
	prefix := fs.String("prefix", "IOC_", "prefix of the printed variable names")
	cluster := fs.Bool("cluster", false, "also start ZooKeeper and a ClickHouse cluster \"ioc\" of 2 shards × 2 replicas")
	port := fs.Int("port", 0, "balance: the port HAProxy listens on (0: a free one)")
	servers := fs.String("servers", "", "balance: the iocd nodes, host:port, comma-separated")
	_ = fs.Parse(os.Args[2:])

	var err error
	switch os.Args[1] {
	case "up":
		err = up(*dir, *chPort, *redisPort, *mqttPort, *prefix)
		if err == nil && *cluster {
			err = upCluster(*dir, *prefix)
		}
	case "balance":
		err = balance(*dir, *port, *servers)
	case "down":
		err = down(*dir)
	default:
		err = fmt.Errorf("unknown command %q: want up, balance or down", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "iocdev:", err)
		os.Exit(1)
	}
}

func up(dir string, chPort, redisPort, mqttPort int, prefix string) error {
	ctx := context.Background()
	chDir, redisDir := filepath.Join(dir, "clickhouse"), filepath.Join(dir, "redis")
	ch, err := devservices.Attach("clickhouse", chDir)
	if err != nil {
		if ch, err = devservices.StartClickHouse(ctx, devservices.Options{Dir: chDir, Port: chPort, Detach: true}); err != nil {
			return err
		}
	}
	rd, err := devservices.Attach("redis", redisDir)
	if err != nil {
		if rd, err = devservices.StartRedis(ctx, devservices.Options{Dir: redisDir, Port: redisPort, Detach: true}); err != nil {
			return err
		}
	}
	mqDir := filepath.Join(dir, "mosquitto")
	mq, err := devservices.Attach("mosquitto", mqDir)
	if err != nil {
		if mq, err = devservices.StartMosquitto(ctx, devservices.Options{Dir: mqDir, Port: mqttPort, Detach: true}); err != nil {
			return err
		}
	}
	fmt.Printf("%sCLICKHOUSE_ADDR=%s\n%sREDIS_ADDR=%s\n%sMQTT_URL=%s\n", prefix, ch.Addr, prefix, rd.Addr, prefix, devservices.MQTTURL(mq))
	return nil
}

// upCluster starts ZooKeeper and the cluster under dir/cluster, or finds
// them running there.
func upCluster(dir, prefix string) error {
	ctx := context.Background()
	zkDir, cDir := filepath.Join(dir, "zookeeper"), filepath.Join(dir, "cluster")
	zk, err := devservices.Attach("zookeeper", zkDir)
	if err != nil {
		if zk, err = devservices.StartZooKeeper(ctx, devservices.Options{Dir: zkDir, Detach: true}); err != nil {
			return err
		}
	}
	var addrs []string
	members, _ := filepath.Glob(filepath.Join(cDir, "s*r*"))
	for _, m := range members {
		if s, err := devservices.Attach("clickhouse", m); err == nil {
			addrs = append(addrs, s.Addr)
		}
	}
	switch {
	case len(addrs) > 0 && len(addrs) == len(members):
		// running: reused
	case len(addrs) > 0:
		return fmt.Errorf("%d of the cluster's %d servers under %s run: stop them with iocdev down --dir %s, then start the cluster again", len(addrs), len(members), cDir, dir)
	default:
		c, err := devservices.StartClickHouseCluster(ctx, devservices.ClusterOptions{Dir: cDir, ZooKeeper: []string{zk.Addr}, Detach: true})
		if err != nil {
			return err
		}
		addrs = c.Addrs()
	}
	fmt.Printf("%sZOOKEEPER_ADDR=%s\n%sCLICKHOUSE_CLUSTER_SERVERS=%s\n", prefix, zk.Addr, prefix, strings.Join(addrs, ","))
	return nil
}

// balance starts HAProxy under dir/haproxy in front of servers, stopping
// the one running there first (its servers may have changed), and prints
// its address.
func balance(dir string, port int, servers string) error {
	if servers == "" {
		return fmt.Errorf("balance needs the nodes: --servers 127.0.0.1:8081,127.0.0.1:8082")
	}
	hDir := filepath.Join(dir, "haproxy")
	if s, err := devservices.Attach("haproxy", hDir); err == nil {
		if err := s.Stop(); err != nil {
			return err
		}
	}
	s, err := devservices.StartHAProxy(context.Background(), devservices.Options{Dir: hDir, Port: port, Detach: true}, strings.Split(servers, ","))
	if err != nil {
		return err
	}
	fmt.Printf("BALANCER_ADDR=%s\n", s.Addr)
	return nil
}

func down(dir string) error {
	servers := [][2]string{{"haproxy", "haproxy"}, {"clickhouse", "clickhouse"}, {"redis", "redis"}, {"mosquitto", "mosquitto"}}
	members, _ := filepath.Glob(filepath.Join(dir, "cluster", "s*r*"))
	for _, m := range members {
		servers = append(servers, [2]string{"clickhouse", filepath.Join("cluster", filepath.Base(m))})
	}
	servers = append(servers, [2]string{"zookeeper", "zookeeper"}) // after the servers it coordinates
	for _, s := range servers {
		srv, err := devservices.Attach(s[0], filepath.Join(dir, s[1]))
		if err != nil {
			continue // not running
		}
		if err := srv.Stop(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "stopped %s (pid %d)\n", s[1], srv.PID)
	}
	return nil
}
