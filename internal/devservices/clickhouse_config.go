package devservices

import "fmt"

// clickhouseConfig keeps caches small: a development or test server shares
// the machine with everything else. A member of a cluster also gets the
// cluster's sections (clusterConfig).
func clickhouseConfig(dir string, tcpPort, httpPort int, member *ClusterMember) string {
	return fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>%[1]s/log/server.log</log>
    <errorlog>%[1]s/log/err.log</errorlog>
    <size>10M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <http_port>%[3]d</http_port>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
%[4]s</yandex>
`, dir, tcpPort, httpPort, clusterConfig(member))
}

// clickhouseUsers carries, in the default profile, the two settings a
// cluster needs that a client cannot send to 18.16 (whose protocol takes
// only numbers in a query's settings): see chstore's cluster.go; and how
// long an ON CLUSTER statement waits for a server that is down before
// the others go on (they apply it when it returns), which 18.16 also
// reads only from the profile.
const clickhouseUsers = `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>in_order</load_balancing>
      <distributed_product_mode>global</distributed_product_mode>
      <distributed_ddl_task_timeout>60</distributed_ddl_task_timeout>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`
