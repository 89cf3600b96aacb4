// Command iocdev starts and stops the local ClickHouse, Redis and Mosquitto
// servers that make run and make test use, with data under a directory of
// the project.
//
//	iocdev up   --dir var --clickhouse-port 19000 --redis-port 16379 --mqtt-port 11883
//	iocdev down --dir var
//
// up prints the addresses as shell assignments (IOC_CLICKHOUSE_ADDR=…,
// IOC_MQTT_URL=tcp://…);
// servers already running from the same directory are reused.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/openioc/ioc/internal/devservices"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: iocdev up|down --dir DIR [--clickhouse-port N] [--redis-port N] [--mqtt-port N]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "var", "directory for data, configuration and logs")
	chPort := fs.Int("clickhouse-port", 0, "ClickHouse native port (0: a free one)")
	redisPort := fs.Int("redis-port", 0, "Redis port (0: a free one)")
	mqttPort := fs.Int("mqtt-port", 0, "Mosquitto MQTT port (0: a free one)")
	prefix := fs.String("prefix", "IOC_", "prefix of the printed variable names")
	_ = fs.Parse(os.Args[2:])

	var err error
	switch os.Args[1] {
	case "up":
		err = up(*dir, *chPort, *redisPort, *mqttPort, *prefix)
	case "down":
		err = down(*dir)
	default:
		err = fmt.Errorf("unknown command %q: want up or down", os.Args[1])
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

func down(dir string) error {
	for _, name := range []string{"clickhouse", "redis", "mosquitto"} {
		s, err := devservices.Attach(name, filepath.Join(dir, name))
		if err != nil {
			continue // not running
		}
		if err := s.Stop(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "stopped %s (pid %d)\n", name, s.PID)
	}
	return nil
}
